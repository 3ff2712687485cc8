package proxy

import (
	"net/http"
	"testing"

	"github.com/tidwall/gjson"
)

// TestLegacyEnginesNotForwarded: /v1/engines is OpenAI's legacy name for
// /v1/models, its paths naming an upstream model. Forwarded, GET
// /v1/engines answered the first model's provider's own model list (every
// model of the operator's account, none of the config's names), and POST
// /v1/engines/{model}/completions ran a model of the bot's choosing that no
// config model routes to. Every method and spelling is a 404 unknown_url
// that reaches no provider, as a GET of another spelling of /v1/models is.
func TestLegacyEnginesNotForwarded(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(200, `{"object":"list","data":[{"id":"o1-pro","object":"engine","owner":"openai","ready":true}]}`))
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	for _, tc := range []struct{ method, path, body string }{
		{http.MethodGet, "/v1/engines", ""},
		{http.MethodGet, "/v1/engines/o1-pro", ""},
		{http.MethodGet, "/v1/Engines", ""},
		{http.MethodGet, "/v1/engines;x=1", ""},
		{http.MethodGet, "/v1/%65ngines", ""},
		{http.MethodGet, "/v1/%2565ngines", ""}, // decoded before the provider does (heldDecoded)
		{http.MethodPost, "/v1/%252565ngines/o1-pro/completions", `{"prompt":"hi"}`},
		{http.MethodPost, "/v1/engines/o1-pro/completions", `{"prompt":"hi"}`},
		{http.MethodPost, "/v1/engines/o1-pro/embeddings", `{"model":"embed-test","input":"hi"}`},
		{http.MethodDelete, "/v1/engines/o1-pro", ""},
	} {
		resp, body := rawRequest(t, url, tc.method, tc.path, tc.body)
		if resp.StatusCode != http.StatusNotFound || gjson.Get(body, "error.code").Str != "unknown_url" {
			t.Errorf("%s %s: %d %s; want 404 unknown_url", tc.method, tc.path, resp.StatusCode, body)
		}
	}
	if n := len(fp.requests()); n != 0 {
		t.Errorf("the provider was asked %d times; want 0", n)
	}
}

// TestMisjoinedChatDecodedTwiceNotForwarded: a path a base URL joined
// wrong, escaped so that only a server in front of the provider that
// decodes before it does (heldDecoded) reads it so (/v1/%25761/embeddings
// is /v1/v1/embeddings there, /v1/x/%2563hat/completions ends in
// /chat/completions), is the 404 its plain spelling is: forwarded, such a
// chat reached the provider without the payment tools.
func TestMisjoinedChatDecodedTwiceNotForwarded(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(200, okCompletion))
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	for _, p := range []string{"/v1/%25761/embeddings", "/v1/x/%2563hat/completions"} {
		resp, body := rawRequest(t, url, http.MethodPost, p, `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`)
		if resp.StatusCode != http.StatusNotFound || gjson.Get(body, "error.code").Str != "unknown_url" {
			t.Errorf("POST %s: %d %s; want 404 unknown_url", p, resp.StatusCode, body)
		}
	}
	if n := len(fp.requests()); n != 0 {
		t.Errorf("the provider was asked %d times; want 0", n)
	}
}
