package proxy

import (
	"io"
	"net/http"
	"sync/atomic"
	"testing"
)

// TestStreamRequestMalformedWholeAnswerUsageAccounted: a provider that
// ignores "stream": true answers a whole chat completion; one that names a
// member two ways is refused as malformed (the next target is asked), as it
// is for a non-stream request, but the provider billed it: its usage counts
// in the tokens and the LLM spend, as TestMalformedAnswerUsageAccounted has
// it for a non-stream request; so is a JSON object without choices, and
// either labelled an event stream (a relay that labels the answer by the
// request's "stream"). Plain and payment turn.
func TestStreamRequestMalformedWholeAnswerUsageAccounted(t *testing.T) {
	refusedWholeAnswerCounted(t, true, "")
}

// TestNonStreamEventsMalformedAnswerUsageAccounted: a provider that ignores
// "stream": false answers a non-stream request with keep-alive comments
// before a whole chat completion (": PROCESSING", then the JSON); one that
// names a member two ways is refused as malformed, as the same answer sent
// as JSON is, but the provider billed it: its usage counts in the tokens
// and the LLM spend, as TestMalformedAnswerUsageAccounted has it for the
// answer sent as JSON; so is a JSON object without choices after the
// keep-alives, no chat completion as it is sent as JSON. Plain and payment
// turn, labelled JSON and an event stream.
func TestNonStreamEventsMalformedAnswerUsageAccounted(t *testing.T) {
	refusedWholeAnswerCounted(t, false, ": PROCESSING\n\n")
}

// refusedWholeAnswerCounted asks a chat turn (streamed or not) of a provider
// whose first answer is a whole completion paygate refuses as malformed,
// after prefix, and whose second is good; it wants both answers' usage
// counted in the tokens and the LLM spend.
func refusedWholeAnswerCounted(t *testing.T, stream bool, prefix string) {
	t.Helper()
	const usage = `"usage":{"prompt_tokens":1000,"completion_tokens":200,"total_tokens":1200}`
	bad := prefix + `{"id":"c0","object":"chat.completion","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"message":{"role":"assistant","content":"a","content":"b"},"finish_reason":"stop"}],` + usage + `}`
	noChoices := prefix + `{"id":"c0","object":"chat.completion",` + usage + `}`
	good := `{"id":"c1","object":"chat.completion","created":1,"model":"vendor/upstream-model",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":1000,"completion_tokens":50,"total_tokens":1050}}`
	req := `{"model":"gpt-test","user":"o-user-1","messages":[{"role":"user","content":"hi"}]}`
	if stream {
		req = `{"model":"gpt-test","stream":true,"user":"o-user-1","messages":[{"role":"user","content":"hi"}]}`
	}
	const asJSON, asEvents = "application/json", "text/event-stream"
	for _, tc := range []struct {
		name, bad, label string
		tools            PaymentTools
	}{
		{"member named twice, plain", bad, asJSON, nil},
		{"member named twice, payment turn", bad, asJSON, noTools{}},
		{"no choices, plain", noChoices, asJSON, nil},
		{"no choices, payment turn", noChoices, asJSON, noTools{}},
		{"labelled an event stream, member named twice", bad, asEvents, nil},
		{"labelled an event stream, no choices, payment turn", noChoices, asEvents, noTools{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.ReadAll(r.Body)
				if n.Add(1) == 1 {
					w.Header().Set("Content-Type", tc.label)
					_, _ = io.WriteString(w, tc.bad)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, good)
			})
			s, ledger, reg := ledgerProxy(t, pricedConfig(t, fp.URL), nil, tc.tools)
			t.Cleanup(ledger.Close)
			srv, handled := waitedServer(t, s.Handler())
			resp := post(t, srv.URL, "/v1/chat/completions", req,
				map[string]string{"Content-Type": "application/json", "X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			handled.Wait() // a non-stream turn is accounted after its answer
			if resp.StatusCode != http.StatusOK || n.Load() != 2 {
				t.Fatalf("%d after %d calls: %s", resp.StatusCode, n.Load(), body)
			}
			for kind, want := range map[string]float64{"prompt": 2000, "completion": 250} {
				if got := tokensCounted(t, reg, kind); got != want {
					t.Errorf("%s tokens: %v; want %v (the refused answer's and the answer's)", kind, got, want)
				}
			}
			if got, want := ledger.Stats().LLMCost, "0.007500"; got != want {
				t.Errorf("LLM cost %s; want %s", got, want)
			}
		})
	}
}
