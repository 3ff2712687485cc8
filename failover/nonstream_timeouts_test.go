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
// round's time until their first token. (How the round's time bounds the
// wait for the head: TestSilentProviderNonStream, TestLongNonStreamAnswer.)
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
				for range 8 { // 800ms of thinking, a keep-alive every 100ms (idle is 600ms)
					c.chunk("\n")
					c.pause(100 * ms)
				}
				c.chunk(answer)
				c.end()
			}),
			// Idle at 600ms, not 300ms: the thinking outlasts it, so
			// only the keep-alives keep a alive, and a stall of up to
			// 500ms (a loaded CI machine under -race) is not taken
			// for silence.
			mutate: func(c *config.Config) {
				roundTime(300 * ms)(c)
				c.Providers[0].Timeouts.Idle = config.Duration(600 * ms)
			},
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
			// Idle at 2s, not 300ms: the keep-alives' 100ms gaps are
			// not what is tested, and a stall of 200ms on a loaded CI
			// machine under -race ended a's wait as idle, before total.
			mutate: func(c *config.Config) {
				totalOfA(700 * ms)(c)
				c.Providers[0].Timeouts.Idle = config.Duration(2 * time.Second)
			},
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
			// With b to fall back on, a's wait is its half of the
			// round's time (TestSilentProviderNonStream, roundShare).
			name:     "no head within its share of the round's time: the next target",
			a:        always((*fconn).hang),
			mutate:   roundTime(2 * roundShare),
			wantFrom: "b", wantHits: [2]int{1, 1}, minTook: roundShare, maxTook: roundShare + slack,
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

// TestSilentProviderNonStream: a non-stream request to a silent provider
// (no headers ever) waited for them until failover.max_round_time cut the
// round, which ended it breaker-neutral: every request waited the round's
// whole time (60 s by default) for a 504, the next target was never asked
// and the breaker never opened. SPEC 5 wants the next target. An attempt
// with a later target to ask now waits for its head at most an even share
// of the round's time left (here 2s/2), then the next target answers;
// the cut is a first-byte timeout, a breaker failure, so after
// breaker.failures (here 2) such rounds the provider is not asked at all.
// The defaults scaled by 1/30: first_byte 30s, total 300s, max_round_time
// 60s. Not by 1/100: a's one timer, due at its share (300ms), fired 300ms
// late under -race on a loaded host, found the round's time spent too and
// ended the round, which was then a 504 (roundShare).
func TestSilentProviderNonStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]func(*fconn, int){"a": always((*fconn).hang)}, []string{"a", "b"}, func(c *config.Config) {
		for i := range c.Providers {
			c.Providers[i].Timeouts.FirstByte = config.Duration(roundShare)
			c.Providers[i].Timeouts.Total = config.Duration(10 * roundShare)
		}
		c.Failover.MaxRoundTime = config.Duration(2 * roundShare)
		c.Failover.Breaker.Failures = 2
	})
	for i := range 7 {
		got := e.open(t.Context(), false)
		if got.provider != "b" {
			t.Fatalf("round %d: %v after %v, b saw %d requests, a's breaker %s; want b's answer",
				i+1, got.openErr, got.took.Round(time.Millisecond), len(e.fakes["b"].hits()), statusOf(e.r, "a").Breaker)
		}
		if i == 0 && (got.took < roundShare || got.took > roundShare+slack) {
			t.Errorf("round 1 took %v; want a's share of the round's time, %v", got.took, roundShare)
		}
	}
	if n, st := len(e.fakes["a"].hits()), statusOf(e.r, "a").Breaker; n != 2 || st != "open" {
		t.Errorf("a asked %d times, its breaker %s; want 2 (breaker.failures), then open", n, st)
	}
}

// TestLongNonStreamAnswer: "a non-streamed request waits for [its
// headers] up to total, since many providers send them only with the
// whole answer" (timeouts.first_byte). The round's time cut that wait
// first: with the defaults, every non-stream answer taking over 60 s was a
// 504 even from a model's only provider. The round's last chance (no later
// target to ask) now waits up to total, whichever target it is. Scaled by
// 1/100: total 300s, max_round_time 60s, an answer after 100s.
func TestLongNonStreamAnswer(t *testing.T) {
	t.Parallel()
	long := always(func(c *fconn) {
		c.pause(time.Second) // the model writes its answer; head and body come together
		okJSON(c, "from the last")
	})
	for _, tc := range []struct {
		name    string
		scripts map[string]func(*fconn, int)
		targets []string
		want    string
	}{
		{"the only target", map[string]func(*fconn, int){"a": long}, []string{"a"}, "a"},
		{"the last target after the others failed", map[string]func(*fconn, int){"a": always(statusFn(500, "")), "b": long},
			[]string{"a", "b"}, "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tc.scripts, tc.targets, func(c *config.Config) {
				for i := range c.Providers {
					c.Providers[i].Timeouts.Total = config.Duration(3 * time.Second)
				}
				c.Failover.MaxRoundTime = config.Duration(600 * time.Millisecond)
			})
			got := e.open(t.Context(), false)
			if got.provider != tc.want || !strings.Contains(got.body, "from the last") {
				t.Errorf("answer due after 1s, total 3s: %q %v after %v; want %s's answer", got.provider, got.openErr,
					got.took.Round(time.Millisecond), tc.want)
			}
		})
	}
}
