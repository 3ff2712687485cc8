package failover

import (
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"
)

// panicTransport panics in RoundTrip, as a defect in a transport would.
type panicTransport struct{}

func (panicTransport) RoundTrip(*http.Request) (*http.Response, error) { panic("transport defect") }

// TestAttemptPanicEndsItsWait: an attempt that panics (the proxy's handler
// recovers it as a 500) ends the wait lowest-latency counts for its target.
// Left counted, the target's key grew with the clock from then on and it
// sorted behind every other target until paygate restarted.
func TestAttemptPanicEndsItsWait(t *testing.T) {
	clock := newFakeClock()
	cfg := testConfig(map[string]string{"a": "http://a.invalid", "b": "http://b.invalid", "c": "http://c.invalid"}, []string{"a"})
	cfg.Models[0].Strategy = StrategyLowestLatency
	r, err := New(cfg, Options{
		Transport: panicTransport{},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:       clock.Now,
		Sleep:     clock.Sleep,
		Jitter:    func(d time.Duration) time.Duration { return d },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
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
