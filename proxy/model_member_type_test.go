package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestModelOfAnotherTypeIsRefused: a body whose "model" is a number, a
// boolean, an array or an object names no model, and OpenAI refuses it as
// a 400 invalid_type on "model". Forwarded as one that names none, it went
// to the first model's targets as sent: a provider the bot never named was
// asked, and ["embed-test"] reached it with a public name inside. A
// model-less body, "" and null still go to the first model's targets
// (README: a batch, an upload, a moderation left to the provider's
// default).
func TestModelOfAnotherTypeIsRefused(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(200, `{"object":"list","data":[],"model":"vendor/embed"}`))
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	for _, tc := range []struct{ path, body, got string }{
		{"/v1/embeddings", `{"model":123,"input":"x"}`, "an integer"},
		{"/v1/embeddings", `{"model":1.5,"input":"x"}`, "a decimal"},
		{"/v1/embeddings", `{"model":true,"input":"x"}`, "a boolean"},
		{"/v1/embeddings", `{"model":["embed-test"],"input":"x"}`, "an array"},
		{"/v1/responses", `{"model":{"id":"gpt-test"},"input":"x"}`, "an object"},
		{"/v1/chat/completions", `{"model":123,"messages":[{"role":"user","content":"hi"}]}`, "an integer"},
		{"/v1/chat/completions", `{"model":["gpt-test"],"messages":[{"role":"user","content":"hi"}]}`, "an array"},
	} {
		resp := post(t, url, tc.path, tc.body, nil)
		body := readAll(t, resp.Body)
		want := "Invalid type for 'model': expected a string, but got " + tc.got + " instead."
		if resp.StatusCode != http.StatusBadRequest || gjson.Get(body, "error.param").Str != "model" ||
			gjson.Get(body, "error.code").Str != "invalid_type" || !strings.Contains(gjson.Get(body, "error.message").Str, want) {
			t.Errorf("%s %s: %d %s; want 400 invalid_type, param model, %q", tc.path, tc.body, resp.StatusCode, body, want)
		}
	}
	if n := len(fp.requests()); n != 0 {
		t.Errorf("the provider was asked %d times; want 0", n)
	}
	for _, b := range []string{`{"input":"x"}`, `{"model":null,"input":"x"}`, `{"model":"","input":"x"}`} {
		n := len(fp.requests())
		resp := post(t, url, "/v1/embeddings", b, nil)
		body := readAll(t, resp.Body)
		if r := fp.requests(); resp.StatusCode != 200 || len(r) != n+1 || string(r[n].Body) != b {
			t.Errorf("%s: %d %s; want it forwarded as sent to the first model's targets", b, resp.StatusCode, body)
		}
	}
}
