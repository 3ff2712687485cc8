package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/proxy/h1/h1test"
)

// TestMetricSeriesDoNotGrowWithWhatBotsAndProvidersSend: what a bot
// chooses (models, paths, queries, users, sessions) and what a provider
// answers (error codes, types and messages, the model its answer names,
// its usage) never becomes a label value: the same kinds of requests
// sent again with other values add no series to /metrics. One label
// taken from either side would let a bot, or a provider's error text,
// grow the scrape without bound.
func TestMetricSeriesDoNotGrowWithWhatBotsAndProvidersSend(t *testing.T) {
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		i := r.Header.Get("X-Test-Round")
		if i == "" {
			// The bot's own header is not forwarded: read the round
			// from the body, which names it in the last message.
			if j := strings.LastIndex(string(body), "round-"); j >= 0 {
				i = string(body[j+len("round-") : j+len("round-")+1])
			}
		}
		if strings.Contains(string(body), `"stream":true`) {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprintf(w, "data: {\"id\":\"c%s\",\"object\":\"chat.completion.chunk\",\"model\":\"streamed-by-%s\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}\n\n", i, i)
			fmt.Fprintf(w, "data: {\"id\":\"c%s\",\"object\":\"chat.completion.chunk\",\"model\":\"streamed-by-%s\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\ndata: [DONE]\n\n", i, i)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.Contains(string(body), "fail-me"):
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error":{"message":"bad thing %s","type":"type_%s","code":"code_%s","param":"p%s"}}`, i, i, i, i)
		case strings.HasSuffix(r.URL.Path, "/embeddings"):
			fmt.Fprintf(w, `{"object":"list","data":[],"model":"emb-%s","usage":{"prompt_tokens":3,"total_tokens":3}}`, i)
		default:
			fmt.Fprintf(w, `{"id":"c%s","object":"chat.completion","model":"answered-by-%s","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}`, i, i)
		}
	})
	s, ledger, _ := ledgerProxy(t, testConfig(t, fp.URL, nil), nil, nil)
	defer ledger.Close()
	srv := h1test.NewServer(s.Handler())
	defer srv.Close()
	url := srv.URL
	series := func() map[string]bool {
		t.Helper()
		resp := send(t, http.MethodGet, url, "/metrics", "", nil)
		out := map[string]bool{}
		for line := range strings.SplitSeq(readAll(t, resp.Body), "\n") {
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			name, _, _ := strings.Cut(line, " ")
			out[name] = true
		}
		return out
	}
	round := func(i int) {
		t.Helper()
		hdr := map[string]string{"X-WeChat-OpenID": fmt.Sprintf("o-user-%d", i), "X-Paygate-Session": fmt.Sprintf("s-%d", i)}
		msg := fmt.Sprintf(`[{"role":"user","content":"hello round-%d"}]`, i)
		for _, c := range []struct{ method, path, body string }{
			{http.MethodPost, "/v1/chat/completions", `{"model":"gpt-test","messages":` + msg + `}`},
			{http.MethodPost, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"fail-me round-` + fmt.Sprint(i) + `"}]}`},
			{http.MethodPost, "/v1/chat/completions", fmt.Sprintf(`{"model":"no-such-model-%d","messages":%s}`, i, msg)},
			{http.MethodPost, fmt.Sprintf("/v1/chat/completions?x=%d", i), `{"model":"gpt-test","messages":` + msg + `}`},
			{http.MethodPost, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":` + msg + `}`},
			{http.MethodPost, "/v1/embeddings", fmt.Sprintf(`{"model":"gpt-test","input":"round-%d"}`, i)},
			{http.MethodPost, fmt.Sprintf("/v1/unknown-%d", i), `{"model":"gpt-test","input":"round-` + fmt.Sprint(i) + `"}`},
			{http.MethodGet, fmt.Sprintf("/v1/models/m-%d", i), ""},
			{http.MethodGet, fmt.Sprintf("/elsewhere-%d", i), ""},
			{http.MethodPost, fmt.Sprintf("/v1/paygate/refunds/r-%d/confirm", i), ""},
			{http.MethodGet, fmt.Sprintf("/v1/paygate/nothing-%d", i), ""},
		} {
			resp := send(t, c.method, url, c.path, c.body, hdr)
			_, _ = io.Copy(io.Discard, resp.Body)
		}
	}
	round(1)
	round(2)
	before := series()
	for _, want := range []string{`paygate_llm_tokens_total{kind="prompt",model="vendor/upstream-model",provider="fake"}`,
		`paygate_requests_total{route="passthrough",status="200"}`, `paygate_upstream_attempts_total{outcome="upstream_client_error",provider="fake"}`} {
		if !before[want] {
			t.Fatalf("/metrics has no %s: the requests did not go as the test means", want)
		}
	}
	for i := 3; i <= 6; i++ {
		round(i)
	}
	for s := range series() {
		if !before[s] {
			t.Errorf("a new series after the same kinds of requests with other values: %s", s)
		}
	}
}
