package failover

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
)

// TestLowestLatencyStreamCutMidAnswerSortsLast: a stream the provider
// breaks after its first token (its connection lost mid-answer) is a
// failure of the target's own, as one before the first token is: the
// lowest-latency order puts the target behind the others until the
// failure is stale. Measured by its fast first token alone, a target that
// broke its streams kept the lead, and each bot's answer broke and had to
// be recovered elsewhere, round after round, until failover.breaker.failures
// breaks in a row opened its breaker (and never, when it broke one stream
// in two).
func TestLowestLatencyStreamCutMidAnswerSortsLast(t *testing.T) {
	cut := make(chan struct{})
	broken := func(c *fconn, n int) {
		c.sse()
		c.event(roleChunk())
		c.event(contentChunk("from a, and then"))
		<-cut
		c.cut()
	}
	e := newEnv(t, map[string]func(*fconn, int){"a": broken}, []string{"a", "b"}, func(c *config.Config) {
		c.Models[0].Strategy = StrategyLowestLatency
	})
	b := e.r.models[0].targets[1]
	b.observe(e.clock.Now(), true, 2*time.Second) // b: measured, slow
	resp, err := e.r.Open(t.Context(), &Request{Model: "gpt", Method: "POST", Path: "/chat/completions", Body: chatBody(true),
		Stream: true, ContentType: "application/json", Accept: "text/event-stream"})
	if err != nil || resp.Provider != "a" {
		t.Fatalf("first round: %v; want a's stream (unmeasured, tried first)", err)
	}
	e.clock.Advance(time.Millisecond) // the cut comes after the first token
	close(cut)
	for {
		_, err = resp.Next()
		if err != nil {
			break
		}
	}
	resp.Close()
	if errors.Is(err, io.EOF) {
		t.Fatal("a's stream ended whole; want its cut")
	}
	if got := e.open(t.Context(), true); got.provider != "b" || !got.complete() {
		t.Errorf("the round after a's stream broke mid-answer: served by %q (%v, %v); want b, a sorted behind it for its failure", got.provider, got.openErr, got.end)
	}
}
