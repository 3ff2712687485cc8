package proxy

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/proxy/h1/h1test"
)

// afterFinishURL serves cfg on the plain path (no end user) or on the
// payment-turn path (a signed-in user, payment tools offered), returning
// the URL and the headers naming the user.
func afterFinishURL(t *testing.T, cfg *config.Config, turn bool, tools PaymentTools) (string, map[string]string) {
	t.Helper()
	if !turn {
		url, _ := newTestProxy(t, cfg)
		return url, nil
	}
	s, ledger, _ := ledgerProxy(t, cfg, nil, tools)
	t.Cleanup(ledger.Close)
	srv := h1test.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv.URL, map[string]string{"X-WeChat-OpenID": "o-user-1"}
}

// TestLateErrorAfterFinishIsNotACut: a stream whose finish_reason chunk
// already reached the client, followed by a provider error event
// (OpenRouter's server_error) or three malformed events before the
// connection ends. The answer was complete (SPEC 5: a stream that ends
// after a finish reason is complete): the client gets no second answer,
// no second finish_reason and no error event, and no other provider is
// asked to generate it again. On the plain path and on a payment turn.
func TestLateErrorAfterFinishIsNotACut(t *testing.T) {
	const c = `data: {"id":"q1","object":"chat.completion.chunk","created":1,"model":"m","choices":`
	answer := []string{
		c + `[{"index":0,"delta":{"role":"assistant","content":"Hello world."},"finish_reason":null}]}` + "\n\n",
		c + `[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n",
	}
	tails := map[string][]string{
		"error event": {`data: {"error":{"code":"server_error","message":"upstream hiccup after finish"}}` + "\n\n"},
		"3 malformed": {"data: {bad\n\n", "data: {bad\n\n", "data: {bad\n\n"},
	}
	for name, tail := range tails {
		for _, turn := range []bool{false, true} {
			path := "plain"
			if turn {
				path = "payment turn"
			}
			t.Run(name+", "+path, func(t *testing.T) {
				first := newFakeProvider(t, sseHandler(append(append([]string{}, answer...), tail...)...))
				other := newFakeProvider(t, sseHandler(
					c+`[{"index":0,"delta":{"role":"assistant","content":"Hello world. And more words."},"finish_reason":null}]}`+"\n\n",
					c+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n",
					"data: [DONE]\n\n"))
				url, hdr := afterFinishURL(t, testConfig(t, first.URL, withSecondProvider(other.URL)), turn, queryTools{})
				body := readAll(t, post(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"x"}]}`, hdr).Body)
				if n := strings.Count(body, `"finish_reason":"stop"`); n != 1 {
					t.Errorf("client got %d finish_reason chunks; want exactly 1:\n%s", n, body)
				}
				if n := strings.Count(body, "Hello world."); n != 1 {
					t.Errorf("client got the answer's text %d times; want once:\n%s", n, body)
				}
				if strings.Contains(body, `"error"`) {
					t.Errorf("client got an error event after a complete answer:\n%s", body)
				}
				if n := len(other.requests()); n != 0 {
					t.Errorf("the other provider was asked %d times to redo a complete answer", n)
				}
			})
		}
	}
}

// TestPaymentCallRunsOnceWhenItsRoundEndsLate: a payment call in a round
// that finished (finish_reason tool_calls) and then sent an error event
// runs once, and the round goes on with its result; the same call in a
// round cut before its finish does not run from that round, and runs once
// from the recovered one.
func TestPaymentCallRunsOnceWhenItsRoundEndsLate(t *testing.T) {
	const c = `data: {"id":"m1","object":"chat.completion.chunk","created":1,"model":"m","choices":`
	text := c + `[{"index":0,"delta":{"role":"assistant","content":"Sure. "},"finish_reason":null}]}` + "\n\n"
	call := c + `[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]},"finish_reason":null}]}` + "\n\n"
	fin := c + `[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}` + "\n\n"
	for _, tc := range []struct {
		name, tail string
		wantOther  int // requests the second provider gets (a recovery)
	}{
		{"cut before finish", "", 1},
		{"error after finish", fin + `data: {"error":{"code":"server_error","message":"x"}}` + "\n\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := func(first bool) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					b, _ := io.ReadAll(r.Body)
					if bytes.Contains(b, []byte(`"role":"tool"`)) {
						sseHandler(c+`[{"index":0,"delta":{"role":"assistant","content":"Order X1 is ready."},"finish_reason":null}]}`+"\n\n",
							c+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n", "data: [DONE]\n\n")(w, r)
						return
					}
					if first {
						sseHandler(text, call, tc.tail)(w, r)
						return
					}
					sseHandler(text, call, fin, "data: [DONE]\n\n")(w, r)
				}
			}
			first := newFakeProvider(t, h(true))
			other := newFakeProvider(t, h(false))
			tools := &countingTools{}
			url, hdr := afterFinishURL(t, testConfig(t, first.URL, withSecondProvider(other.URL)), true, tools)
			body := readAll(t, post(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"buy"}]}`, hdr).Body)
			if got := tools.executed.Load(); got != 1 {
				t.Errorf("create_order executed %d times; want 1:\n%s", got, body)
			}
			if n := strings.Count(body, "Sure. "); n != 1 {
				t.Errorf("the text before the call reached the client %d times; want once:\n%s", n, body)
			}
			if !strings.Contains(body, "Order X1 is ready.") {
				t.Errorf("the turn did not go on with the call's result:\n%s", body)
			}
			if n := len(other.requests()); n != tc.wantOther {
				t.Errorf("the other provider got %d requests; want %d", n, tc.wantOther)
			}
		})
	}
}
