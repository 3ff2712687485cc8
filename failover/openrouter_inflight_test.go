package failover

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// OpenRouter's 402s for its in-flight spending budget
// (https://openrouter.ai/docs/api-reference/limits#in-flight-spending-budget):
// the estimated cost of the requests running or recently settled fills the
// budget, so this one is refused before it reaches a provider, with a
// Retry-After, while the balance is positive; or this one request's
// estimate is larger than the whole budget, which a smaller request is
// not. OpenRouter says to branch on metadata's limit_source and reason,
// not on the words: openRouterOverBudget's message is ours.
const (
	openRouterInFlight = `{"error":{"code":402,"message":"This request would exceed your available credits given your current in-flight requests. Retry after in-flight requests settle, or add credits.",` +
		`"metadata":{"reason":"in_flight_budget_exhausted","limit_source":"openrouter_in_flight_budget","remedy_hint":"Retry after your in-flight requests settle (see the Retry-After header). Adding credits at https://openrouter.ai/settings/credits raises your in-flight budget, up to a capped ceiling."}}}`
	openRouterOverBudget = `{"error":{"code":402,"message":"This request's estimated cost exceeds your in-flight spending budget.",` +
		`"metadata":{"reason":"weight_exceeds_budget","limit_source":"openrouter_credits","remedy_hint":"Lower max_tokens or the prompt size, or add credits."}}}`
)

// TestOpenRouterInFlightBudget: OpenRouter's 402 for a full in-flight
// budget clears once the requests before it settle, and says when
// (Retry-After); read as an account out of money, it put OpenRouter out of
// service for the quota cool-down (30 minutes) for every bot after one
// burst of concurrent requests, and a bot with no other target got a 503
// while a retry two seconds later would have been served. It is a rate
// limit: a short Retry-After is waited out on the same target, a long one
// cools the provider down that long and moves the round on. Its 402 for a
// request larger than the whole budget is this request's size, as
// "can only afford N" is: the next target, and no cool-down.
func TestOpenRouterInFlightBudget(t *testing.T) {
	for _, stream := range []bool{true, false} {
		t.Run(fmt.Sprintf("stream %v: short Retry-After, the only target: waited out", stream), func(t *testing.T) {
			e := newEnv(t, map[string]func(c *fconn, n int){"a": func(c *fconn, n int) {
				if n == 0 {
					c.status(402, openRouterInFlight, "Retry-After: 2")
					return
				}
				healthy("a")(c, n)
			}}, []string{"a"}, nil)
			if got := e.open(t.Context(), stream); got.openErr != nil || got.provider != "a" {
				t.Fatalf("stream %v: served by %q (err %v); want a, after its Retry-After", stream, got.provider, got.openErr)
			}
			if g := e.fakes["a"].gaps(); len(g) != 1 || g[0] != 2*time.Second {
				t.Errorf("stream %v: a asked again after %v; want once, after its Retry-After of 2s", stream, g)
			}
		})
		t.Run(fmt.Sprintf("stream %v: long Retry-After: next target, cooled that long", stream), func(t *testing.T) {
			e := newEnv(t, map[string]func(c *fconn, n int){"a": func(c *fconn, n int) {
				if n == 0 {
					c.status(402, openRouterInFlight, "Retry-After: 20")
					return
				}
				healthy("a")(c, n)
			}}, []string{"a", "b"}, nil)
			start := e.clock.Now()
			if got := e.open(t.Context(), stream); got.openErr != nil || got.provider != "b" {
				t.Fatalf("stream %v: served by %q (err %v); want b", stream, got.provider, got.openErr)
			}
			st := statusOf(e.r, "a")
			if st.CoolingCause != CauseRateLimited || !st.CoolingUntil.Equal(start.Add(20*time.Second)) {
				t.Errorf("stream %v: a cooling until %v for %q; want %v for %q", stream, st.CoolingUntil, st.CoolingCause, start.Add(20*time.Second), CauseRateLimited)
			}
			if n := providerOf(t, e.r, "a").breaker.Counts().ConsecutiveFailures; n != 0 {
				t.Errorf("stream %v: a's breaker counted %d failures; a full budget is no fault of the provider's", stream, n)
			}
			e.clock.Advance(21 * time.Second)
			if got := e.open(t.Context(), stream); got.provider != "a" {
				t.Errorf("stream %v: after its Retry-After, served by %q (err %v); want a again", stream, got.provider, got.openErr)
			}
		})
		t.Run(fmt.Sprintf("stream %v: long Retry-After, the only target: a 429 with the wait", stream), func(t *testing.T) {
			e := newEnv(t, map[string]func(c *fconn, n int){"a": always(statusFn(402, openRouterInFlight, "Retry-After: 20"))}, []string{"a"}, nil)
			var ue *UpstreamError
			if got := e.open(t.Context(), stream); !errors.As(got.openErr, &ue) || ue.Status != 429 || ue.RetryAfter != 20*time.Second {
				t.Fatalf("stream %v: err %v (served by %q); want a 429 saying to come back in 20s", stream, got.openErr, got.provider)
			}
		})
		t.Run(fmt.Sprintf("stream %v: one request over the whole budget: next target, no cool-down", stream), func(t *testing.T) {
			e := newEnv(t, map[string]func(c *fconn, n int){"a": always(statusFn(402, openRouterOverBudget))}, []string{"a", "b"}, nil)
			for round := range 2 {
				if got := e.open(t.Context(), stream); got.openErr != nil || got.provider != "b" {
					t.Fatalf("stream %v, round %d: served by %q (err %v); want b", stream, round, got.provider, got.openErr)
				}
			}
			if n := len(e.fakes["a"].hits()); n != 2 {
				t.Errorf("stream %v: a asked %d times in two rounds; want 2 (still in service for smaller requests)", stream, n)
			}
			if st := statusOf(e.r, "a"); !st.CoolingUntil.IsZero() {
				t.Errorf("stream %v: a cooling until %v for %q; want none", stream, st.CoolingUntil, st.CoolingCause)
			}
		})
	}
}
