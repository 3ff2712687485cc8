package failover

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// openAITooLargeForTPM is OpenAI's refusal of a request larger than the
// organization's tokens-per-minute limit for the model: a 429
// rate_limit_exceeded that no wait mends, since the request alone is over
// the limit ("The input or output tokens must be reduced").
const openAITooLargeForTPM = `{"error":{"message":"Request too large for gpt-4o in organization org-abc on tokens per min (TPM): ` +
	`Limit 30000, Requested 36278. The input or output tokens must be reduced in order to run successfully. ` +
	`Visit https://platform.openai.com/account/rate-limits to learn more.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}`

// TestRequestOverTheTokenLimitIsNoRateLimit: a request larger than the
// target's tokens-per-minute limit is refused the same way however long
// one waits, as Groq says with a 413 for the same words. Read as a rate
// limit, the whole provider cooled down for a back-off (every bot's
// requests of every model it serves passed over or kept waiting, longer
// with each such request), the target was asked again in vain, and a bot
// with no other target got a 429 with a Retry-After its SDK obeyed, asked
// again, and was refused again, for ever. It is now the request's size at
// this target (upstream_request_too_large): the next target at once, no
// cool-down, and with none left a 413 with the provider's words.
func TestRequestOverTheTokenLimitIsNoRateLimit(t *testing.T) {
	t.Parallel()
	tooLarge := always(statusFn(http.StatusTooManyRequests, openAITooLargeForTPM))

	e := newEnv(t, map[string]func(*fconn, int){"a": tooLarge}, []string{"a", "b"}, nil)
	got := e.open(t.Context(), true)
	if got.openErr != nil || got.provider != "b" {
		t.Fatalf("answered by %q (%v); want b", got.provider, got.openErr)
	}
	if n := len(e.fakes["a"].hits()); n != 1 {
		t.Errorf("a asked %d times; want once: a wait does not make the request smaller", n)
	}
	if st := statusOf(e.r, "a"); !st.CoolingUntil.IsZero() {
		t.Errorf("a cooling down until %v (%s); want none: its other requests are within the limit", st.CoolingUntil, st.CoolingCause)
	}

	e = newEnv(t, map[string]func(*fconn, int){"a": tooLarge}, []string{"a"}, nil)
	got = e.open(t.Context(), true)
	var ue *UpstreamError
	if !errors.As(got.openErr, &ue) {
		t.Fatalf("Open error %v; want *UpstreamError", got.openErr)
	}
	if ue.Status != http.StatusRequestEntityTooLarge || ue.RetryAfter != 0 || !strings.Contains(ue.Message, "must be reduced") {
		t.Errorf("got %d %q retry after %v: %s; want 413 with the provider's words and no Retry-After", ue.Status, ue.Code, ue.RetryAfter, ue.Message)
	}
	if n := len(e.fakes["a"].hits()); n != 1 {
		t.Errorf("a asked %d times; want once", n)
	}

	// A rate limit that a wait does mend stays one.
	e = newEnv(t, map[string]func(*fconn, int){"a": always(statusFn(http.StatusTooManyRequests,
		errBody("requests", "rate_limit_exceeded", "Rate limit reached for gpt-4o in organization org-abc on requests per min (RPM): Limit 3, Used 3, Requested 1.")))},
		[]string{"a"}, nil)
	got = e.open(t.Context(), true)
	if !errors.As(got.openErr, &ue) || ue.Status != http.StatusTooManyRequests {
		t.Errorf("Open error %v; want a 429", got.openErr)
	}
}

// TestRequestOverTheTokenLimitIsNotCodedARateLimit: the 413 a bot gets for
// a request over a target's tokens-per-minute limit does not carry
// OpenAI's rate_limit_exceeded: a bot (or its retry helper) that reads the
// code, as the OpenAI error docs tell it to, took the refusal for a rate
// limit and sent the same request again after a back-off, refused again
// for ever, which the 413 is there to stop. Its type and words stay the
// provider's.
func TestRequestOverTheTokenLimitIsNotCodedARateLimit(t *testing.T) {
	t.Parallel()
	for _, stream := range []bool{false, true} {
		e := newEnv(t, map[string]func(*fconn, int){"a": always(statusFn(http.StatusTooManyRequests, openAITooLargeForTPM))}, []string{"a"}, nil)
		got := e.open(t.Context(), stream)
		var ue *UpstreamError
		if !errors.As(got.openErr, &ue) {
			t.Fatalf("stream %v: Open error %v; want *UpstreamError", stream, got.openErr)
		}
		if ue.Status != http.StatusRequestEntityTooLarge || ue.Code != CodeRequestTooLarge || ue.Type != "tokens" ||
			!strings.Contains(ue.Message, "must be reduced") {
			t.Errorf("stream %v: got %d type %q code %q: %s; want 413 %q, the provider's type and words",
				stream, ue.Status, ue.Type, ue.Code, ue.Message, CodeRequestTooLarge)
		}
	}
}
