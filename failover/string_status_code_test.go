package failover

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// LiteLLM's proxy writes an error object's code as a string of the HTTP
// status it stands for ({"code": "429"}, litellm/proxy/_types.py
// ProxyException: "the code should be a string"), and sends a streamed
// request's error as the first event of a 200 stream, its head already
// out. Read as an unknown code, each was a 500: a rate limit was asked
// again after the server-error pause and held against the breaker, and a
// bad request or a content policy refusal went on to the next provider
// (SPEC 5: other 4xx, no retry anywhere).
func TestErrorObjectStatusCodeAsString(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	liteLLM := func(code, msg string) string {
		return `{"error":{"message":"` + msg + `","type":"None","param":"None","code":"` + code + `"}}`
	}
	tests := []struct {
		name      string
		a         func(*fconn, int)
		wantFrom  string
		wantHits  [2]int
		wantGapsA []time.Duration
		// With no answer: the client's status and code.
		wantStatus int
		wantCode   string
	}{
		{
			name:     "429 as a string: a rate limit, backed off",
			a:        always(firstEvent(liteLLM("429", "litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached"))),
			wantFrom: "b", wantHits: [2]int{2, 1}, wantGapsA: []time.Duration{500 * ms},
		},
		{
			name:       "400 as a string: the client's error, no other provider asked",
			a:          always(firstEvent(liteLLM("400", "litellm.ContentPolicyViolationError: the input was flagged"))),
			wantHits:   [2]int{1, 0},
			wantStatus: 400, wantCode: "400",
		},
		{
			name:     "401 as a string: misconfigured, the next target at once",
			a:        always(firstEvent(liteLLM("401", "litellm.AuthenticationError: invalid key"))),
			wantFrom: "b", wantHits: [2]int{1, 1},
		},
		{
			name:     "503 as a string: overloaded, backed off",
			a:        always(firstEvent(liteLLM("503", "litellm.ServiceUnavailableError: try later"))),
			wantFrom: "b", wantHits: [2]int{2, 1}, wantGapsA: []time.Duration{500 * ms},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, map[string]func(*fconn, int){"a": tc.a}, []string{"a", "b"}, nil)
			got := e.open(t.Context(), true)
			if tc.wantFrom != "" {
				if got.openErr != nil {
					t.Fatalf("Open: %v; want an answer from %s", got.openErr, tc.wantFrom)
				}
				if got.provider != tc.wantFrom {
					t.Errorf("answered by %q; want %q", got.provider, tc.wantFrom)
				}
			} else {
				var ue *UpstreamError
				if !errors.As(got.openErr, &ue) {
					t.Fatalf("Open error %v; want *UpstreamError", got.openErr)
				}
				if ue.Status != tc.wantStatus || ue.Code != tc.wantCode {
					t.Errorf("got %d %q; want %d %q (%s)", ue.Status, ue.Code, tc.wantStatus, tc.wantCode, ue.Message)
				}
			}
			if h := [2]int{len(e.fakes["a"].hits()), len(e.fakes["b"].hits())}; h != tc.wantHits {
				t.Errorf("providers saw a=%d b=%d; want a=%d b=%d", h[0], h[1], tc.wantHits[0], tc.wantHits[1])
			}
			if gaps := e.fakes["a"].gaps(); tc.wantGapsA != nil && !slices.Equal(gaps, tc.wantGapsA) {
				t.Errorf("a's attempts apart by %v; want %v", gaps, tc.wantGapsA)
			}
		})
	}
}

// TestObjectStatusStringCode: only a string of an HTTP error status is read
// as one; other numeric strings are business codes (Zhipu's 1301, 1113)
// read by their meaning, as before.
func TestObjectStatusStringCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		data string
		want int
	}{
		{`{"error":{"message":"m","code":"429"}}`, 429},
		{`{"error":{"message":"m","code":"400"}}`, 400},
		{`{"error":{"message":"m","code":"529"}}`, 529},
		{`{"error":{"message":"m","code":"1301"}}`, 400}, // Zhipu's content filter
		{`{"error":{"message":"m","code":"1113"}}`, 429}, // Zhipu's arrears
		{`{"error":{"message":"m","code":"200"}}`, 500},
		{`{"error":{"message":"m","code":"42"}}`, 500},
		{`{"error":{"message":"m","code":"4x9"}}`, 500},
		{`{"error":{"message":"m","code":"+429"}}`, 500},
	}
	for _, tc := range tests {
		f := errorObject([]byte(tc.data))
		if f == nil {
			t.Errorf("%s: no failure; want status %d", tc.data, tc.want)
			continue
		}
		if f.status != tc.want {
			t.Errorf("%s: status %d; want %d", tc.data, f.status, tc.want)
		}
	}
}
