package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestFailedResponseUsageAccounted: a Responses stream whose first event is
// response.failed fails its attempt before any byte reaches the bot
// (failover's forwardedEventError), as a rate limit does, and the round
// goes on to the next target or ends with the failure. OpenAI bills a
// failed response's tokens, which its response.usage names: they were
// dropped with the attempt, the LLM spend short of the provider's bill.
// They are counted to the provider that failed, whether another target
// then answered or none did; a failed response without usage counts none,
// and so does one a retrieval's stream (GET /v1/responses/{id}?stream=true)
// starts with: the response was billed when it was made (generation).
func TestFailedResponseUsageAccounted(t *testing.T) {
	failed := func(usage string) string {
		return "event: response.failed\ndata: {\"type\":\"response.failed\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"failed\"," +
			"\"error\":{\"code\":\"server_error\",\"message\":\"The model failed to generate a response.\"},\"output\":[],\"usage\":" + usage + "}}\n\n"
	}
	completed := "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_2\",\"status\":\"in_progress\",\"usage\":null}}\n\n" +
		"event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":1,\"response\":{\"id\":\"resp_2\",\"status\":\"completed\",\"output\":[]," +
		"\"usage\":{\"input_tokens\":1100,\"output_tokens\":60,\"total_tokens\":1160}}}\n\n"
	billed := `{"input_tokens":1000,"input_tokens_details":{"cached_tokens":0},"output_tokens":40,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":1040}`
	for _, tc := range []struct {
		name   string
		get    bool // a retrieval's stream, not a generation
		failed string
		second bool                // another target answers the round
		status int                 // the bot's
		want   map[string][2]int64 // by provider: prompt and completion tokens an attempt
	}{
		{"another target answers", false, failed(billed), true, 200, map[string][2]int64{"fake": {1000, 40}, "other": {1100, 60}}},
		{"none answers", false, failed(billed), false, 502, map[string][2]int64{"fake": {1000, 40}}},
		{"a failed response without usage", false, failed("null"), true, 200, map[string][2]int64{"other": {1100, 60}}},
		{"a retrieval, another target answers", true, failed(billed), true, 200, map[string][2]int64{}},
		{"a retrieval, none answers", true, failed(billed), false, 502, map[string][2]int64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newFakeProvider(t, sseHandler(tc.failed))
			cfg := testConfig(t, a.URL, nil)
			if tc.second {
				b := newFakeProvider(t, sseHandler(completed))
				cfg = testConfig(t, a.URL, withSecondProvider(b.URL))
			}
			s, ledger, _ := ledgerProxy(t, cfg, nil, nil)
			t.Cleanup(ledger.Close)
			srv, handled := waitedServer(t, s.Handler())
			method, path, body := http.MethodPost, "/v1/responses", io.Reader(strings.NewReader(`{"model":"gpt-test","input":"hi","stream":true}`))
			if tc.get {
				method, path, body = http.MethodGet, "/v1/responses/resp_1?stream=true", nil
			}
			resp := clientReq(t, method, srv.URL+path, body, map[string]string{"Content-Type": "application/json"})
			if b := readAll(t, resp.Body); resp.StatusCode != tc.status {
				t.Fatalf("%d %s; want %d", resp.StatusCode, b, tc.status)
			}
			handled.Wait()
			got := ledger.Stats().ByModel
			if len(got) != len(tc.want) {
				t.Fatalf("accounted %+v; want %v by provider", got, tc.want)
			}
			attempts := map[string]int64{"fake": int64(len(a.requests())), "other": 1}
			for _, m := range got {
				if w, n := tc.want[m.Provider], attempts[m.Provider]; m.PromptTokens != n*w[0] || m.CompletionTokens != n*w[1] {
					t.Errorf("%s counted %d prompt and %d completion tokens over %d attempts; want %d and %d", m.Provider, m.PromptTokens, m.CompletionTokens, n, n*w[0], n*w[1])
				}
			}
		})
	}
}
