package failover

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
)

// Reasoning models and the per-attempt timeouts. A reasoning model either
// streams its thinking (DeepSeek-R1 and Qwen3/QwQ as reasoning_content,
// OpenRouter as reasoning with reasoning_details beside it) or thinks in
// silence (OpenAI's o-series and gpt-5: at most a role chunk, and
// OpenRouter's ": OPENROUTER PROCESSING" comments, until the answer).

// openRouterReasoningChunk is a thinking delta as OpenRouter streams one
// for Anthropic's extended thinking: the text in reasoning, its block in
// reasoning_details.
func openRouterReasoningChunk(s string) string {
	return `{"id":"gen-1","provider":"Anthropic","model":"anthropic/claude-sonnet-4","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"","reasoning":"` + s + `","reasoning_details":[{"type":"reasoning.text","text":"` + s + `","format":"anthropic-claude-v1","index":0}]},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}`
}

// TestStreamedReasoningIsTheFirstToken: a model that streams its thinking
// has begun its answer with its first thought. A think far longer than
// first_token, each thought within idle of the last, is the answer, not a
// silent provider to fail over from (which would bill the thinking and ask
// another model again, for a payment turn a second decision).
func TestStreamedReasoningIsTheFirstToken(t *testing.T) {
	t.Parallel()
	const (
		firstToken = 300 * time.Millisecond
		idle       = time.Second
		gap        = 300 * time.Millisecond // between two thoughts
		thoughts   = 5                      // 5 gaps: 1.5 s, past first_token and idle
	)
	for _, tc := range []struct {
		name    string
		opening string // the chunk before the thinking
		thought func(string) string
	}{
		{"deepseek reasoning_content", `{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":""},"finish_reason":null}]}`, reasoningChunk},
		{"dashscope qwen reasoning_content", `{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"","reasoning_content":"","role":"assistant"},"finish_reason":null}]}`, reasoningChunk},
		{"openrouter reasoning", `{"id":"gen-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`, openRouterReasoningChunk},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, map[string]func(*fconn, int){
				"a": func(c *fconn, n int) {
					c.sse()
					c.comment("OPENROUTER PROCESSING")
					c.event(tc.opening)
					c.event(tc.thought("Let"))
					for i := range thoughts {
						c.pause(gap) // the model thinking
						if c.dead {
							return
						}
						c.event(tc.thought(" me" + strings.Repeat("m", i)))
					}
					c.event(contentChunk("Paris"))
					c.event(finishChunk())
					c.event(usageChunk())
					c.done()
				},
			}, []string{"a", "b"}, func(cfg *config.Config) {
				cfg.Providers[0].Timeouts.FirstToken = config.Duration(firstToken)
				cfg.Providers[0].Timeouts.Idle = config.Duration(idle)
			})
			got := e.open(t.Context(), true)
			if got.openErr != nil {
				t.Fatalf("Open: %v", got.openErr)
			}
			if got.provider != "a" || got.attempts != 1 {
				t.Fatalf("answered by %q after %d attempts; want a's answer at the first: its thinking is its first token", got.provider, got.attempts)
			}
			if !got.complete() {
				t.Fatalf("stream ended with %v after %d events; want the whole answer: each thought resets the idle wait", got.end, len(got.events))
			}
			if n := len(e.fakes["b"].hits()); n != 0 {
				t.Errorf("b asked %d times; want none", n)
			}
			if !strings.Contains(strings.Join(got.events, "\n"), `"Paris"`) {
				t.Errorf("events %q lack the answer", got.events)
			}
		})
	}
}

// TestSilentThinkMeetsFirstToken: a model that thinks in silence (OpenAI's
// reasoning models) sends its head, perhaps a role chunk, and nothing more
// until its answer; OpenRouter sends comments meanwhile. That silence is
// the wait for the first token, counted from the attempt's start: neither
// the role chunk nor a comment ends it or starts the idle wait, so a think
// longer than first_token fails over (a provider that only says it is
// processing must not hold the round), after first_token and not idle.
func TestSilentThinkMeetsFirstToken(t *testing.T) {
	t.Parallel()
	const firstToken = 400 * time.Millisecond
	left := make(chan struct{})
	e := newEnv(t, map[string]func(*fconn, int){
		"a": func(c *fconn, n int) {
			c.sse()
			c.event(roleChunk())
			for !c.dead {
				c.comment("OPENROUTER PROCESSING")
				c.pause(50 * time.Millisecond)
			}
			close(left) // paygate closed the connection
		},
	}, []string{"a", "b"}, func(cfg *config.Config) {
		cfg.Providers[0].Timeouts.FirstToken = config.Duration(firstToken)
		cfg.Providers[0].Timeouts.Idle = config.Duration(20 * time.Second)
		cfg.Providers[0].Timeouts.Total = config.Duration(30 * time.Second)
	})
	start := time.Now()
	resp, err := e.r.Open(t.Context(), &Request{Model: "gpt", Method: "POST", Path: "/chat/completions", Body: chatBody(true),
		Stream: true, ContentType: "application/json", Accept: "text/event-stream"})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Open: %v; want b's answer after a's first_token", err)
	}
	defer resp.Close()
	if resp.Provider != "b" {
		t.Fatalf("answered by %q; want b, after a thought past first_token", resp.Provider)
	}
	if len(resp.Tried) != 2 || resp.Tried[0].Cause != CauseFirstTokenTimeout {
		t.Fatalf("attempts %+v; want a's ended by %s, then b's", resp.Tried, CauseFirstTokenTimeout)
	}
	if took > firstToken+slack {
		t.Errorf("round took %v; want about a's first_token (%v)", took, firstToken)
	}
	select {
	case <-left: // a's request was abandoned, not left running
	case <-time.After(10 * time.Second):
		t.Error("a's connection still open 10s after the failover: its thinking goes on, billed")
	}
}

// TestCommentsDoNotExtendTheIdleWait: after the answer began (a thought),
// a provider that sends only comments is cut at the idle timeout, not held
// until the total one: a keep-alive says the connection lives, not that
// the model does.
func TestCommentsDoNotExtendTheIdleWait(t *testing.T) {
	t.Parallel()
	const idle = 500 * time.Millisecond
	e := newEnv(t, map[string]func(*fconn, int){
		"a": func(c *fconn, n int) {
			c.sse()
			c.event(roleChunk())
			c.event(reasoningChunk("Let me think"))
			for !c.dead {
				c.comment("OPENROUTER PROCESSING")
				c.pause(50 * time.Millisecond)
			}
		},
	}, []string{"a"}, func(cfg *config.Config) {
		cfg.Providers[0].Timeouts.Idle = config.Duration(idle)
		cfg.Providers[0].Timeouts.Total = config.Duration(30 * time.Second)
	})
	got := e.open(t.Context(), true)
	if got.openErr != nil {
		t.Fatalf("Open: %v", got.openErr)
	}
	var se *StreamError
	if !errors.As(got.end, &se) || se.Cause != CauseIdleTimeout {
		t.Fatalf("stream ended with %v; want a cut by the idle timeout", got.end)
	}
	if got.took > idle+2*slack {
		t.Errorf("stream took %v; want about the idle timeout (%v)", got.took, idle)
	}
}

// TestSilentThinkBoundedByTheRoundToo: a stream's wait for its first token
// is bounded by failover.max_round_time as well, on the round's last
// target too: a first_token raised for a reasoning model does nothing past
// the round's time, which must be raised with it (README).
func TestSilentThinkBoundedByTheRoundToo(t *testing.T) {
	t.Parallel()
	const round = 500 * time.Millisecond
	e := newEnv(t, map[string]func(*fconn, int){
		"a": func(c *fconn, n int) {
			c.sse()
			c.event(roleChunk())
			c.hang()
		},
	}, []string{"a"}, func(cfg *config.Config) {
		cfg.Providers[0].Timeouts.FirstToken = config.Duration(20 * time.Second)
		cfg.Providers[0].Timeouts.Total = config.Duration(30 * time.Second)
		cfg.Failover.MaxRoundTime = config.Duration(round)
	})
	got := e.open(t.Context(), true)
	var ue *UpstreamError
	if !errors.As(got.openErr, &ue) || len(ue.Tried) != 1 || ue.Tried[0].Cause != CauseRoundTime {
		t.Fatalf("Open: %v; want a's attempt ended by %s", got.openErr, CauseRoundTime)
	}
	if got.took > round+slack {
		t.Errorf("round took %v; want about max_round_time (%v)", got.took, round)
	}
}

// TestSilentThinksOpenTheBreaker: a silent think cut by first_token counts
// against the provider's circuit breaker as a silent provider does, so a
// reasoning model under a first_token shorter than its thinks takes its
// whole provider (every model it serves) out of the rounds once
// failover.breaker.failures of them came in a row (README, first_token).
func TestSilentThinksOpenTheBreaker(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]func(*fconn, int){
		"a": func(c *fconn, n int) {
			c.sse()
			c.event(roleChunk())
			c.hang()
		},
	}, []string{"a", "b"}, func(cfg *config.Config) {
		cfg.Providers[0].Timeouts.FirstToken = config.Duration(200 * time.Millisecond)
		cfg.Failover.Breaker = config.Breaker{Failures: 2, Cooldown: config.Duration(time.Hour)}
	})
	for i := range 3 {
		got := e.open(t.Context(), true)
		if got.openErr != nil || got.provider != "b" || !got.complete() {
			t.Fatalf("round %d: %q answered, Open %v, end %v; want b's whole answer", i+1, got.provider, got.openErr, got.end)
		}
	}
	if n := len(e.fakes["a"].hits()); n != 2 {
		t.Errorf("a asked %d times in 3 rounds; want 2: its breaker opened after two thinks cut by first_token", n)
	}
}
