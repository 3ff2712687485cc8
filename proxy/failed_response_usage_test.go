package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/accounting"
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
			accountedPerAttempt(t, ledger, tc.want, map[string]int64{"fake": int64(len(a.requests())), "other": 1})
		})
	}
}

// TestFailedAttemptUsageAccountedOnAJSONAnswer: a forwarded generation
// answered as JSON accounts, beside its answer's usage, the usage of the
// round's attempts that failed with one their provider billed, each to its
// provider: a Responses stream whose first event was response.failed (the
// only forwarded attempt that fails with a usage) before a target that
// answers with the whole response as JSON. A non-stream Responses object
// whose status is failed is an answer, its usage counted once and no other
// target asked; a 2xx error envelope with a usage, and a legacy completion
// the provider could not finish (an error as well), fail over, and the
// usage they name, the provider's count of the work it did before it
// failed, is counted to it (TestErrorEnvelopeUsageCounted).
func TestFailedAttemptUsageAccountedOnAJSONAnswer(t *testing.T) {
	jsonAnswer := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, body)
		}
	}
	const (
		billed   = `{"input_tokens":1000,"output_tokens":40,"total_tokens":1040}`
		answered = `{"id":"resp_2","object":"response","status":"completed","output":[],"usage":{"input_tokens":1100,"output_tokens":60,"total_tokens":1160}}`
	)
	failedEvent := "event: response.failed\ndata: {\"type\":\"response.failed\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"failed\"," +
		"\"error\":{\"code\":\"server_error\",\"message\":\"The model failed to generate a response.\"},\"output\":[],\"usage\":" + billed + "}}\n\n"
	for _, tc := range []struct {
		name, path, body string
		first            http.HandlerFunc
		answer           string              // the bot's body holds it
		want             map[string][2]int64 // by provider: prompt and completion tokens an attempt
	}{
		{"a stream's response.failed, then a JSON answer", "/v1/responses", `{"model":"gpt-test","input":"hi","stream":true}`,
			sseHandler(failedEvent), `"id":"resp_2"`, map[string][2]int64{"fake": {1000, 40}, "other": {1100, 60}}},
		{"a failed response object is the answer", "/v1/responses", `{"model":"gpt-test","input":"hi"}`,
			jsonAnswer(`{"id":"resp_1","object":"response","status":"failed","error":{"code":"server_error","message":"x"},"output":[],"usage":` + billed + `}`),
			`"status":"failed"`, map[string][2]int64{"fake": {1000, 40}}},
		{"an error envelope with a usage", "/v1/responses", `{"model":"gpt-test","input":"hi"}`,
			jsonAnswer(`{"error":{"message":"boom","type":"server_error","code":"server_error"},"usage":` + billed + `}`),
			`"id":"resp_2"`, map[string][2]int64{"fake": {1000, 40}, "other": {1100, 60}}},
		{"a legacy completion its provider could not finish", "/v1/completions", `{"model":"gpt-test","prompt":"hi"}`,
			jsonAnswer(`{"id":"c","object":"text_completion","choices":[{"index":0,"text":"","finish_reason":"insufficient_system_resource"}],"usage":{"prompt_tokens":1000,"completion_tokens":40,"total_tokens":1040}}`),
			`"id":"resp_2"`, map[string][2]int64{"fake": {1000, 40}, "other": {1100, 60}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newFakeProvider(t, tc.first)
			b := newFakeProvider(t, jsonAnswer(answered))
			s, ledger, _ := ledgerProxy(t, testConfig(t, a.URL, withSecondProvider(b.URL)), nil, nil)
			t.Cleanup(ledger.Close)
			srv, handled := waitedServer(t, s.Handler())
			resp := clientReq(t, http.MethodPost, srv.URL+tc.path, strings.NewReader(tc.body), map[string]string{"Content-Type": "application/json"})
			if got := readAll(t, resp.Body); resp.StatusCode != 200 || !strings.Contains(got, tc.answer) {
				t.Fatalf("%d %s; want 200 holding %s", resp.StatusCode, got, tc.answer)
			}
			handled.Wait()
			accountedPerAttempt(t, ledger, tc.want, map[string]int64{"fake": int64(len(a.requests())), "other": int64(len(b.requests()))})
		})
	}
}

// accountedPerAttempt checks the ledger's figures by provider: each of
// want's providers, and no other, counted its prompt and completion tokens
// (want) once for each of its attempts.
func accountedPerAttempt(t *testing.T, ledger *accounting.Ledger, want map[string][2]int64, attempts map[string]int64) {
	t.Helper()
	got := ledger.Stats().ByModel
	if len(got) != len(want) {
		t.Fatalf("accounted %+v; want %v by provider", got, want)
	}
	for _, m := range got {
		if w, n := want[m.Provider], attempts[m.Provider]; m.PromptTokens != n*w[0] || m.CompletionTokens != n*w[1] {
			t.Errorf("%s counted %d prompt and %d completion tokens over %d attempts; want %d and %d", m.Provider, m.PromptTokens, m.CompletionTokens, n, n*w[0], n*w[1])
		}
	}
}
