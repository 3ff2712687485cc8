package failover

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
)

// TestLowestLatencyStreamCutMidAnswerSortsLast: a stream the provider
// breaks after its first token (its connection lost mid-answer, an error
// event: a server error, an overload, the account out of quota) is a
// failure of the target's own, as one before the first token is
// (failedOwn): the lowest-latency order puts the target behind the others
// until the failure is stale. Measured by its fast first token alone, a
// target that broke its streams kept the lead, and each bot's answer broke
// and had to be recovered elsewhere, round after round, until
// failover.breaker.failures breaks in a row opened its breaker (and never,
// when it broke one stream in two). An overload's back-off (at most
// failover.retry_after_max_wait, 5s) ended, the target that had sent the
// overload event led again by its first token; 10s later it is still
// behind b. A content filter's refusal says nothing of the target, and it
// keeps the lead.
func TestLowestLatencyStreamCutMidAnswerSortsLast(t *testing.T) {
	for _, tc := range []struct {
		name  string
		brk   func(c *fconn)
		want  string // the provider of the next round's answer
		after time.Duration
	}{
		{"connection lost", func(c *fconn) { c.cut() }, "b", time.Millisecond},
		{"a server error event", func(c *fconn) {
			c.event(errBody("server_error", "", "internal error"))
			c.end()
		}, "b", time.Millisecond},
		{"an overload error event", func(c *fconn) {
			c.event(errBody("overloaded_error", "", "Overloaded"))
			c.end()
		}, "b", 10 * time.Second},
		{"a content filter", func(c *fconn) {
			c.event(errBody("invalid_request_error", "content_filter", "The response was filtered"))
			c.end()
		}, "a", time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cut := make(chan struct{})
			broken := func(c *fconn, n int) {
				if n > 0 {
					okStream(c, "from a")
					return
				}
				c.sse()
				c.event(roleChunk())
				c.event(contentChunk("from a, and then"))
				<-cut
				tc.brk(c)
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
			e.clock.Advance(time.Millisecond) // the break comes after the first token
			close(cut)
			for {
				_, err = resp.Next()
				if err != nil {
					break
				}
			}
			resp.Close()
			if errors.Is(err, io.EOF) {
				t.Fatal("a's stream ended whole; want it broken")
			}
			e.clock.Advance(tc.after)
			if got := e.open(t.Context(), true); got.provider != tc.want || !got.complete() {
				t.Errorf("the round %v after a's stream broke mid-answer (%v): served by %q (%v, %v); want %s", tc.after, err, got.provider, got.openErr, got.end, tc.want)
			}
		})
	}
}
