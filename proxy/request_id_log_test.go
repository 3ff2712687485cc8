package proxy

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestUpstreamFailureLogCarriesRequestID: failover's "upstream attempt
// failed" line is written deep below the handler, which alone knew the
// request's id; it must carry the X-Request-Id the client was answered
// with, or an operator cannot tie the failure to the request.
func TestUpstreamFailureLogCarriesRequestID(t *testing.T) {
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":{"message":"bad request","type":"invalid_request_error"}}`))
	})
	url, logs := newTestProxy(t, testConfig(t, fp.URL, nil))
	resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`, nil)
	id := resp.Header.Get("X-Request-Id")
	if id == "" {
		t.Fatal("no X-Request-Id")
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == "upstream attempt failed" {
			found = true
			if rec["request_id"] != id {
				t.Errorf("request_id %v; want %q: %s", rec["request_id"], id, line)
			}
		}
	}
	if !found {
		t.Fatalf("no upstream attempt failed line: %s", logs.String())
	}
}
