package proxy

import (
	"net/http"
	"strings"
	"testing"
)

// TestPassthroughCreationSentOnce: every forwarded POST used to go through
// chat's retry rules, so a creation the provider had performed before its
// gateway answered 502 was sent again, and then to the next provider: two
// batches (or background responses), each billed, of which the bot knew
// one. A forwarded call that is no generation is sent at most once
// (failover.Replayable); a generation still fails over.
func TestPassthroughCreationSentOnce(t *testing.T) {
	tests := []struct {
		name, path, body string
		wantStatus       int
		wantHits         [2]int // requests the first and the other provider saw
	}{
		{"a batch", "/v1/batches", `{"input_file_id":"file-1","endpoint":"/v1/chat/completions","completion_window":"24h"}`,
			http.StatusBadGateway, [2]int{1, 0}},
		{"a fine-tuning job", "/v1/fine_tuning/jobs", `{"model":"gpt-test","training_file":"file-1"}`,
			http.StatusBadGateway, [2]int{1, 0}},
		{"a background response", "/v1/responses", `{"model":"gpt-test","input":"hi","background":true}`,
			http.StatusBadGateway, [2]int{1, 0}},
		{"embeddings, a generation", "/v1/embeddings", `{"model":"gpt-test","input":"hi"}`,
			http.StatusOK, [2]int{2, 1}},
		{"a response, a generation", "/v1/responses", `{"model":"gpt-test","input":"hi"}`,
			http.StatusOK, [2]int{2, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			first := newFakeProvider(t, jsonHandler(http.StatusBadGateway, `{"error":{"message":"bad gateway","type":"server_error"}}`))
			other := newFakeProvider(t, jsonHandler(http.StatusOK, `{"id":"obj_2","object":"list","data":[]}`))
			proxyURL, _ := newTestProxy(t, testConfig(t, first.URL, withSecondProvider(other.URL)))
			resp := post(t, proxyURL, tc.path, tc.body, nil)
			body := readAll(t, resp.Body)
			if h := [2]int{len(first.requests()), len(other.requests())}; h != tc.wantHits {
				t.Errorf("providers saw %v; want %v", h, tc.wantHits)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("client got %d %s; want %d", resp.StatusCode, body, tc.wantStatus)
			}
			if tc.wantStatus != http.StatusOK && !strings.Contains(body, "is sent at most once") {
				t.Errorf("client got %s; want it told why nothing else was tried", body)
			}
		})
	}
}
