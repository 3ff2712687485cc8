package failover

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// anthropicLowCredit is Anthropic's refusal when the account has no credit
// left: a 400 invalid_request_error that says so in words only, no code.
const anthropicLowCredit = `{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."}}`

// TestBillingInWordsFailsOver: a provider whose account is out of credit
// and says so only in its message (Anthropic's 400 "Your credit balance is
// too low…") is the operator's billing, not the bot's bad request: the
// next target answers. It was taken for the bot's error, so the round
// ended there and the bot got the provider's billing text while a healthy
// fallback stood unasked. Words may be the bot's own, quoted back, so
// only a message that begins so counts, and it moves this round on
// without cooling the provider down for every bot (as TestBadKeyInWords).
// With no target left the bot gets a 503, not the provider's words.
func TestBillingInWordsFailsOver(t *testing.T) {
	for _, stream := range []bool{true, false} {
		e := newEnv(t, map[string]func(c *fconn, n int){"a": always(statusFn(400, anthropicLowCredit))}, []string{"a", "b"}, nil)
		for round := range 2 {
			got := e.open(t.Context(), stream)
			if got.openErr != nil || got.provider != "b" {
				t.Fatalf("stream %v, round %d: served by %q (err %v); want b, a out of credit", stream, round, got.provider, got.openErr)
			}
			if n := len(e.fakes["a"].hits()); n != round+1 {
				t.Errorf("stream %v: after round %d, a was asked %d times; want %d (once a round, not cooled down)", stream, round, n, round+1)
			}
		}
	}

	e := newEnv(t, map[string]func(c *fconn, n int){"a": always(firstEvent(anthropicLowCredit))}, []string{"a", "b"}, nil)
	if got := e.open(t.Context(), true); got.provider != "b" {
		t.Errorf("as the first event: served by %q (err %v); want b", got.provider, got.openErr)
	}

	e = newEnv(t, map[string]func(c *fconn, n int){"a": always(statusFn(400, anthropicLowCredit))}, []string{"a"}, nil)
	var ue *UpstreamError
	got := e.open(t.Context(), true)
	if !errors.As(got.openErr, &ue) {
		t.Fatalf("a out of credit, no other target: %v; want an UpstreamError", got.openErr)
	}
	if ue.Status != http.StatusServiceUnavailable || ue.Code != CauseInsufficientQuota || strings.Contains(ue.Message, "Plans & Billing") {
		t.Errorf("a out of credit, no other target: %d %q %q; want 503 %s, not the provider's words", ue.Status, ue.Code, ue.Message, CauseInsufficientQuota)
	}

	// The bot's own words quoted back are the bot's request.
	quoted := errBody("invalid_request_error", "invalid_value", "Invalid value: 'Your credit balance is too low'. Supported values are: 'auto', 'none'.")
	e = newEnv(t, map[string]func(c *fconn, n int){"a": always(statusFn(400, quoted))}, []string{"a", "b"}, nil)
	got = e.open(t.Context(), true)
	if !errors.As(got.openErr, &ue) || ue.Status != http.StatusBadRequest {
		t.Errorf("a quoting the bot: served by %q (err %v); want the provider's 400", got.provider, got.openErr)
	}
	if n := len(e.fakes["b"].hits()); n != 0 {
		t.Errorf("a quoting the bot: b was asked %d times; want 0", n)
	}
}
