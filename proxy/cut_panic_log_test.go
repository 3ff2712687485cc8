package proxy

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/payments"
)

// panickingHeldTools runs the recording tools' names, each call once
// started waiting for release and then panicking: a bug in a payment call
// still at WeChat Pay when the drain deadline cut its turn.
type panickingHeldTools struct {
	recordingTools
	started chan struct{}
	release chan struct{}
}

func (h *panickingHeldTools) Execute(context.Context, payments.Caller, string, string) payments.Outcome {
	h.started <- struct{}{}
	<-h.release
	panic("payment call bug")
}

// logLines hands each log line written (slog's JSON handler writes a
// record in one Write) to lines.
type logLines struct{ lines chan string }

func (l logLines) Write(p []byte) (int, error) {
	l.lines <- string(p)
	return len(p), nil
}

// TestPaymentCallPanicAfterTheCutLogCarriesRequestID: a payment call that
// panics after the drain deadline ended its turn is logged (nobody else
// hears of it: the handler has returned), and the line carries the
// request's id, as every line a bot's request writes does (README), so
// that an operator ties the panic to the turn and its order. It carried
// only the tool's name.
func TestPaymentCallPanicAfterTheCutLogCarriesRequestID(t *testing.T) {
	tools := &panickingHeldTools{started: make(chan struct{}, 1), release: make(chan struct{})}
	const calls = `[{"index":0,"id":"call_pay","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]`
	fp := newFakeProvider(t, roundByRound(callsRound(false, calls), textRound(false, "Done.")))
	cfg := testConfig(t, fp.URL, nil)
	out := logLines{lines: make(chan string, 1024)}
	var cut func()
	_, url := servePaygate(t, cfg, Options{Tools: tools, State: &memState{}, Logger: logging.New(out, slog.LevelDebug, cfg.Secrets())},
		func(h http.Handler) http.Handler {
			h, cut = shutdownCut(h)
			return h
		})
	req, err := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", strings.NewReader(chatBody(false, "")))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testClientKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-WeChat-OpenID", "o-user-1")
	if a := <-cutOnceStarted(req, tools.started, cut); a.err != nil || a.code != http.StatusServiceUnavailable {
		t.Fatalf("the turn cut at its payment call answered %d %s (%v); want 503", a.code, a.body, a.err)
	}
	close(tools.release) // the call panics now, its turn answered
	var id string
	timeout := time.After(10 * time.Second)
	for {
		var line string
		select {
		case line = <-out.lines:
		case <-timeout:
			t.Fatal("no log line of the payment call's panic after the cut")
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		msg, _ := rec["msg"].(string)
		if strings.HasPrefix(msg, "payment call still running at the drain deadline") {
			id, _ = rec["request_id"].(string)
			if id == "" {
				t.Fatalf("the cut's line has no request_id: %s", line)
			}
		}
		if strings.Contains(msg, "panicked after the drain deadline") {
			if id == "" {
				t.Fatalf("the panic's line came before the cut's: %s", line)
			}
			if rec["request_id"] != id {
				t.Fatalf("the panic's line has request_id %v; want the turn's %q: %s", rec["request_id"], id, line)
			}
			return
		}
	}
}
