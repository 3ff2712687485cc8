package failover

import (
	"errors"
	"strings"
	"testing"
)

// openRouterAfford is OpenRouter's 402 for a request whose max_tokens (or
// the model's default output cap, when the bot sent none) costs more than
// the credit left, with afford the tokens the credit still buys.
func openRouterAfford(afford string) string {
	return `{"error":{"message":"This request requires more credits, or fewer max_tokens. You requested up to 65536 tokens, but can only afford ` + afford +
		`. To increase, visit https://openrouter.ai/settings/credits and upgrade to a paid account","code":402,"metadata":{"provider_name":null}},"user_id":"user_2x"}`
}

// TestOpenRouterAffordRefusal: OpenRouter refuses with a 402 a request
// whose max_tokens costs more than the credit left ("You requested up to
// 65536 tokens, but can only afford 3919"), while a request that asks for
// fewer tokens, or a cheaper model, on the same account is served. Taken
// for an account out of money, it put OpenRouter out of service for the
// quota cool-down (30 minutes) for every bot and every model because one
// request asked for a long answer. That refusal moves its round on, and
// OpenRouter stays in the next round; "can only afford 0" is the account
// out of money, and cools it down as before.
func TestOpenRouterAffordRefusal(t *testing.T) {
	tests := []struct {
		name   string
		afford string
		// wantHits: the requests a saw over two rounds
		wantHits int
		cooling  bool
	}{
		{"affords fewer tokens: this round only", "3919", 2, false},
		{"affords none: out of service", "0", 1, true},
	}
	for _, tc := range tests {
		for _, stream := range []bool{true, false} {
			t.Run(tc.name, func(t *testing.T) {
				e := newEnv(t, map[string]func(c *fconn, n int){"a": always(statusFn(402, openRouterAfford(tc.afford)))}, []string{"a", "b"}, nil)
				for round := range 2 {
					if got := e.open(t.Context(), stream); got.openErr != nil || got.provider != "b" {
						t.Fatalf("stream %v, round %d: served by %q (err %v); want b", stream, round, got.provider, got.openErr)
					}
				}
				if n := len(e.fakes["a"].hits()); n != tc.wantHits {
					t.Errorf("stream %v: a asked %d times in two rounds; want %d", stream, n, tc.wantHits)
				}
				st := statusOf(e.r, "a")
				if cooling := !st.CoolingUntil.IsZero(); cooling != tc.cooling {
					t.Errorf("stream %v: a cooling %v (until %v, %s); want %v", stream, cooling, st.CoolingUntil, st.CoolingCause, tc.cooling)
				}
			})
		}
	}
	// The class stays the account's money, for the bot's error and the
	// metrics, whatever the cool-down.
	for _, afford := range []string{"3919", "0"} {
		f := classifyHTTP(402, nil, []byte(openRouterAfford(afford)), newFakeClock().Now())
		if f.cause != CauseInsufficientQuota || !strings.Contains(f.errMsg, "can only afford "+afford) {
			t.Errorf("afford %s: cause %q message %q; want %s with the provider's message", afford, f.cause, f.errMsg, CauseInsufficientQuota)
		}
	}
}

// TestOpenRouterAffordRefusalTellsTheBot: a bot whose request OpenRouter
// refused for its size alone is told that a smaller one (max_tokens) or a
// cheaper model would be served, in paygate's words. It got only
// "a: upstream_insufficient_quota (HTTP 402)", which reads as the
// operator's account out of money: it waited for a top-up, or sent the
// same request again, when lowering max_tokens would have passed.
func TestOpenRouterAffordRefusalTellsTheBot(t *testing.T) {
	tests := []struct {
		afford string
		hint   bool
	}{
		{"3919", true},
		{"0", false},
	}
	for _, tc := range tests {
		for _, stream := range []bool{true, false} {
			e := newEnv(t, map[string]func(c *fconn, n int){"a": always(statusFn(402, openRouterAfford(tc.afford)))}, []string{"a"}, nil)
			got := e.open(t.Context(), stream)
			var ue *UpstreamError
			if !errors.As(got.openErr, &ue) {
				t.Fatalf("afford %s, stream %v: Open: %v (answered by %q); want an *UpstreamError", tc.afford, stream, got.openErr, got.provider)
			}
			if ue.Code != CauseInsufficientQuota {
				t.Errorf("afford %s, stream %v: code %q; want %q", tc.afford, stream, ue.Code, CauseInsufficientQuota)
			}
			if hint := strings.Contains(ue.Message, "max_tokens"); hint != tc.hint {
				t.Errorf("afford %s, stream %v: message %q names max_tokens %v; want %v", tc.afford, stream, ue.Message, hint, tc.hint)
			}
		}
	}
}
