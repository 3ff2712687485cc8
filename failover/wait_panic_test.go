package failover

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/paygate/paygate/config"
)

// panicTransport panics in RoundTrip, as a defect in a transport would.
type panicTransport struct{}

func (panicTransport) RoundTrip(*http.Request) (*http.Response, error) { panic("transport defect") }

// clockedRouter is a Router for cfg over rt, on a fake clock (returned)
// that its waits step, with no jitter and no log.
func clockedRouter(t *testing.T, cfg *config.Config, rt http.RoundTripper) (*Router, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	r, err := New(cfg, Options{
		Transport: rt,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:       clock.Now,
		Sleep:     clock.Sleep,
		Jitter:    func(d time.Duration) time.Duration { return d },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r, clock
}

// TestAttemptPanicEndsItsWait: an attempt that panics (the proxy's handler
// recovers it as a 500) ends the wait lowest-latency counts for its target.
// Left counted, the target's key grew with the clock from then on and it
// sorted behind every other target until paygate restarted.
func TestAttemptPanicEndsItsWait(t *testing.T) {
	cfg := testConfig(map[string]string{"a": "http://a.invalid", "b": "http://b.invalid", "c": "http://c.invalid"}, []string{"a"})
	cfg.Models[0].Strategy = StrategyLowestLatency
	r, clock := clockedRouter(t, cfg, panicTransport{})
	for _, stream := range []bool{true, false} {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatalf("stream %v: the transport's panic did not reach the caller", stream)
				}
			}()
			_, _ = r.Open(t.Context(), &Request{Model: "gpt", Method: "POST", Path: "/chat/completions", Body: chatBody(stream),
				Stream: stream, ContentType: "application/json", Accept: "text/event-stream"})
		}()
		clock.Advance(time.Hour)
		if w := r.models[0].targets[0].waited(latencyKind(stream), clock.Now()); w != 0 {
			t.Errorf("stream %v: after the attempt panicked its target still counts a wait of %v; want none", stream, w)
		}
	}
}

// probePanics fails its first request with a 500, panics in its second,
// as a defect in a transport would, and answers every later one.
type probePanics struct {
	n      atomic.Int32
	answer cannedAnswer
}

func (p *probePanics) RoundTrip(req *http.Request) (*http.Response, error) {
	switch p.n.Add(1) {
	case 1:
		body := errBody("server_error", "", "down")
		return &http.Response{StatusCode: http.StatusInternalServerError, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/json"}}, ContentLength: int64(len(body)),
			Body: io.NopCloser(strings.NewReader(body)), Request: req}, nil
	case 2:
		panic("transport defect")
	}
	return p.answer.RoundTrip(req)
}

// TestAttemptPanicFreesTheProbe: a half-open breaker's probe whose
// attempt panics (the proxy's handler recovers it as a 500) gives its
// turn back, so that the next round probes the provider again. Its turn
// kept, the breaker stayed half-open with its one probe "in flight" for
// good: the provider was passed over by every round until an operator
// reset it.
func TestAttemptPanicFreesTheProbe(t *testing.T) {
	rt := &probePanics{answer: cannedAnswer(`{"id":"c1","object":"chat.completion","model":"up-a",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"total_tokens":5}}`)}
	cfg := testConfig(map[string]string{"a": "http://a.invalid"}, []string{"a"})
	cfg.Failover.Breaker = config.Breaker{Failures: 1, Cooldown: config.Duration(time.Millisecond)}
	// One attempt a round: the cool-down runs on the real clock, and a
	// round that tried a again after its 500 (the back-off is on the fake
	// clock) sent the probe itself once a millisecond had passed on a
	// loaded machine, its panic escaping the first round.
	cfg.Failover.MaxAttempts = 1
	r, _ := clockedRouter(t, cfg, rt)
	open := func() (*Response, error) {
		return r.Open(t.Context(), &Request{Model: "gpt", Method: "POST", Path: "/chat/completions", Body: chatBody(false),
			ContentType: "application/json"})
	}
	if _, err := open(); err == nil {
		t.Fatal("a's 500 answered the round")
	}
	// Read without asking the breaker, which moves it to half-open once
	// the millisecond has passed.
	if st := gobreaker.State(r.providers[0].state.Load()); st != gobreaker.StateOpen {
		t.Fatalf("breaker %s after a failure with failures: 1; want open", st)
	}
	// The breaker's cool-down runs on the real clock.
	time.Sleep(r.providers[0].breakerLeft())
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the probe's panic did not reach the caller")
			}
		}()
		_, _ = open()
	}()
	resp, err := open()
	if err != nil {
		t.Fatalf("after the probe panicked: %v; want a probed again and answering (requests seen: %d)", err, rt.n.Load())
	}
	resp.Close()
	if st := statusOf(r, "a"); st.Breaker != "closed" {
		t.Errorf("breaker %s after the second probe's answer; want closed", st.Breaker)
	}
}
