package failover

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
)

// TestNonStreamAnswerTimeouts: a non-stream answer is bounded by its
// provider's timeouts.total, not by first_byte, first_token or the round's
// time once it is coming. Providers that send the head only with the whole
// answer (OpenAI) were cut at max(first_byte, first_token), and the next
// target asked and cut the same way, each attempt billed; providers that
// send the head at once and then whitespace keep-alives while a reasoning
// model thinks (OpenRouter, DeepSeek) were cut by failover.max_round_time.
// Now the wait for the head is bounded by total (and, until a 2xx head has
// come, by the round's time), the body by total and by idle between reads,
// which keep-alives reset. Streams keep first_byte, first_token and the
// round's time until their first token.
func TestNonStreamAnswerTimeouts(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	const answer = `{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"from a"},"finish_reason":"stop"}]}`
	chunkedHead := func(c *fconn) {
		_, _ = io.WriteString(c.c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
	}
	roundTime := func(d time.Duration) func(*config.Config) {
		return func(c *config.Config) { c.Failover.MaxRoundTime = config.Duration(d) }
	}
	totalOfA := func(d time.Duration) func(*config.Config) {
		return func(c *config.Config) { c.Providers[0].Timeouts.Total = config.Duration(d) }
	}
	tests := []struct {
		name     string
		stream   bool
		a        func(c *fconn, n int)
		mutate   func(*config.Config)
		wantErr  string // the round's error code; "": answered by wantFrom
		wantFrom string
		wantHits [2]int
		minTook  time.Duration
		maxTook  time.Duration // 0: none
	}{
		{
			name: "head only with the whole answer, after first_byte and first_token",
			a: always(func(c *fconn) {
				c.pause(2 * tFirstToken) // writing the answer
				okJSON(c, "from a")
			}),
			wantFrom: "a", wantHits: [2]int{1, 0}, minTook: 2 * tFirstToken,
		},
		{
			name: "head at once, whitespace keep-alives past the round's time",
			a: always(func(c *fconn) {
				chunkedHead(c)
				for range 8 { // 800ms of thinking, a keep-alive every 100ms (idle is 300ms)
					c.chunk("\n")
					c.pause(100 * ms)
				}
				c.chunk(answer)
				c.end()
			}),
			mutate:   roundTime(300 * ms),
			wantFrom: "a", wantHits: [2]int{1, 0}, minTook: 800 * ms,
		},
		{
			name:     "no head before total: the next target",
			a:        always((*fconn).hang),
			mutate:   totalOfA(700 * ms),
			wantFrom: "b", wantHits: [2]int{1, 1}, minTook: 700 * ms, maxTook: 700*ms + slack,
		},
		{
			name: "keep-alives past total: the next target",
			a: always(func(c *fconn) {
				chunkedHead(c)
				for !c.dead {
					c.chunk(" ")
					c.pause(100 * ms)
				}
			}),
			mutate:   totalOfA(700 * ms),
			wantFrom: "b", wantHits: [2]int{1, 1}, minTook: 700 * ms, maxTook: 700*ms + slack,
		},
		{
			name: "body silent past idle after the head: the next target",
			a: always(func(c *fconn) {
				_, _ = io.WriteString(c.c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":")
				c.hang()
			}),
			wantFrom: "b", wantHits: [2]int{1, 1}, minTook: tIdle, maxTook: tIdle + slack,
		},
		{
			name:    "no head within the round's time: round timeout",
			a:       always((*fconn).hang),
			mutate:  roundTime(300 * ms),
			wantErr: CauseRoundTime, wantHits: [2]int{1, 0}, minTook: 300 * ms, maxTook: 300*ms + slack,
		},
		{
			name:   "stream: head at once, no token within the round's time: round timeout",
			stream: true,
			a: always(func(c *fconn) {
				c.sse()
				c.comment("OPENROUTER PROCESSING")
				c.hang()
			}),
			mutate: func(c *config.Config) {
				c.Failover.MaxRoundTime = config.Duration(300 * ms)
				c.Providers[0].Timeouts.FirstToken = config.Duration(2 * time.Second)
			},
			wantErr: CauseRoundTime, wantHits: [2]int{1, 0}, minTook: 300 * ms, maxTook: 300*ms + slack,
		},
		{
			name:     "stream: no head before first_byte: the next target",
			stream:   true,
			a:        always((*fconn).hang),
			wantFrom: "b", wantHits: [2]int{1, 1}, minTook: tFirstByte, maxTook: tFirstByte + slack,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, map[string]func(*fconn, int){"a": tc.a}, []string{"a", "b"}, tc.mutate)
			got := e.open(t.Context(), tc.stream)
			if tc.wantErr != "" {
				var ue *UpstreamError
				if !errors.As(got.openErr, &ue) || ue.Code != tc.wantErr {
					t.Errorf("Open: %v; want %s", got.openErr, tc.wantErr)
				}
			} else {
				if got.openErr != nil || got.provider != tc.wantFrom {
					t.Fatalf("answered by %q (err %v); want %s", got.provider, got.openErr, tc.wantFrom)
				}
				text := got.body
				if tc.stream {
					text = got.text
				}
				if !strings.Contains(text, "from "+tc.wantFrom) {
					t.Errorf("answer %q; want %s's", text, tc.wantFrom)
				}
			}
			if h := [2]int{len(e.fakes["a"].hits()), len(e.fakes["b"].hits())}; h != tc.wantHits {
				t.Errorf("providers saw a=%d b=%d; want %v", h[0], h[1], tc.wantHits)
			}
			if got.took < tc.minTook || tc.maxTook > 0 && got.took > tc.maxTook {
				t.Errorf("round took %v; want %v to %v", got.took, tc.minTook, tc.maxTook)
			}
		})
	}
}
