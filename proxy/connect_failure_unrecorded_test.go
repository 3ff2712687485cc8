package proxy

import (
	"net/http/httptest"
	"testing"
)

// TestConnectFailureNotRecorded: a provider whose connection was refused
// never received the request, so it bills nothing and the ledger records
// no call of it, on the chat path and on a forwarded one, stream or not.
// Only an answer cut after its head (cutBeforeUsage: a lost connection, an
// idle timeout) is recorded with no token; a connect failure taken for one
// put a call the provider never saw into its stats.
func TestConnectFailureNotRecorded(t *testing.T) {
	dead := httptest.NewServer(nil)
	url := dead.URL
	dead.Close() // connections to it are refused
	for _, tc := range []struct{ name, path, body string }{
		{"chat answer", "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`},
		{"chat stream", "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}`},
		{"Responses API answer", "/v1/responses", `{"model":"gpt-test","input":"hi"}`},
		{"Responses API stream", "/v1/responses", `{"model":"gpt-test","input":"hi","stream":true}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := failedCallAccounted(t, testConfig(t, url, nil), tc.path, tc.body); len(got) != 0 {
				t.Errorf("accounted %+v; want none: the provider was never reached", got)
			}
		})
	}
}
