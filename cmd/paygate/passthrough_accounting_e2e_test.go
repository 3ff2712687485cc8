package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestEmbeddingsTokensAccounted: SPEC 9 asks for tokens and cost by
// provider and model; an embeddings call forwarded on /v1/embeddings is
// billed by the provider like a chat round and must show in
// paygate_llm_tokens_total, under the target's upstream model.
func TestEmbeddingsTokensAccounted(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"model":"openai/gpt-4o","usage":{"prompt_tokens":4242,"total_tokens":4242}}`)
	}))
	defer up.Close()
	url := e2eApp(t, up.URL)
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/embeddings", strings.NewReader(`{"model":"gpt-4o","input":"hello"}`))
	req.Header.Set("Authorization", "Bearer "+e2eClientKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	m := scrape(t, url)
	if got := metricSum(t, m, "paygate_llm_tokens_total", map[string]string{"provider": "fake", "model": "openai/gpt-4o", "kind": "prompt"}); got != 4242 {
		t.Errorf("paygate_llm_tokens_total{kind=prompt} for the embeddings call = %v; want 4242", got)
	}
	if got := metricSum(t, m, "paygate_llm_tokens_total", map[string]string{"provider": "fake", "model": "openai/gpt-4o", "kind": "completion"}); got != 0 {
		t.Errorf("paygate_llm_tokens_total{kind=completion} = %v; want 0", got)
	}
}
