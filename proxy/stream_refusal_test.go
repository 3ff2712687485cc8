package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/proxy/h1/h1test"
)

// withSecondProvider adds provider "other" at url as gpt-test's second
// target.
func withSecondProvider(url string) func(*config.Config) {
	return func(c *config.Config) {
		p := c.Providers[0]
		p.Name, p.BaseURL = "other", url+"/v1"
		c.Providers = append(c.Providers, p)
		c.Models[0].Targets = append(c.Models[0].Targets, config.Target{Provider: "other", Model: "vendor/upstream-model", Weight: 1})
	}
}

// pathProxy serves cfg on path: "plain", a proxy without payment tools
// whose bot names no user, or "turn", a payment turn's (ledgerProxy with
// queryTools) over HTTP/1.1; it returns the URL and the headers of user
// o-user-1's requests (none on the plain path). The recovery tests run one
// stream on both paths.
func pathProxy(t *testing.T, cfg *config.Config, path string) (string, map[string]string) {
	t.Helper()
	if path == "plain" {
		url, _ := newTestProxy(t, cfg)
		return url, nil
	}
	s, ledger, _ := ledgerProxy(t, cfg, nil, queryTools{})
	t.Cleanup(ledger.Close)
	srv := h1test.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv.URL, map[string]string{"X-WeChat-OpenID": "o-user-1"}
}

// TestMidStreamRefusalNotFinishedElsewhere: a content filter that stops a
// stream after its first byte (DashScope's output moderation,
// data_inspection_failed; OpenRouter's moderation error object) ends the
// client's stream with the provider's reason. No other provider is asked to
// finish the flagged answer (SPEC 5: a content filter is retried nowhere),
// on the plain path and in a payment turn alike. Any other mid-stream error
// object is still recovered.
func TestMidStreamRefusalNotFinishedElsewhere(t *testing.T) {
	const c = `data: {"id":"q1","object":"chat.completion.chunk","created":1,"model":"qwen-plus","choices":`
	tests := []struct {
		name      string
		errEvent  string
		recovered bool     // the other provider finishes the answer
		want      []string // in the client's stream
	}{
		{"dashscope data_inspection_failed",
			`data: {"error":{"message":"Output data may contain inappropriate content.","type":"data_inspection_failed","param":null,"code":"data_inspection_failed"},"id":"q1"}` + "\n\n",
			false, []string{"Output data may contain inappropriate content.", `"code":"data_inspection_failed"`, `"type":"data_inspection_failed"`}},
		{"openrouter moderation error object",
			`data: {"id":"q1","object":"chat.completion.chunk","error":{"code":403,"message":"Your input was flagged for \"harassment\".","metadata":{"reasons":["harassment"],"flagged_input":"x"}},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}` + "\n\n",
			false, []string{"Your input was flagged", `"code":"403"`}},
		{"openrouter server error is recovered",
			`data: {"id":"q1","object":"chat.completion.chunk","error":{"code":"server_error","message":"Provider disconnected unexpectedly"},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}` + "\n\n",
			true, []string{" and the rest from elsewhere", "[DONE]"}},
	}
	for _, tc := range tests {
		for _, path := range []string{"plain", "turn"} {
			t.Run(tc.name+"/"+path, func(t *testing.T) {
				first := newFakeProvider(t, sseHandler(
					c+`[{"index":0,"delta":{"role":"assistant","content":"Partial"},"finish_reason":null}]}`+"\n\n",
					tc.errEvent))
				other := newFakeProvider(t, sseHandler(
					c+`[{"index":0,"delta":{"role":"assistant","content":"Partial and the rest from elsewhere"},"finish_reason":null}]}`+"\n\n",
					c+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n",
					"data: [DONE]\n\n"))
				cfg := testConfig(t, first.URL, withSecondProvider(other.URL))
				url, hdr := pathProxy(t, cfg, path)
				resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"x"}]}`, hdr)
				body := readAll(t, resp.Body)
				asked := len(other.requests())
				if tc.recovered != (asked > 0) {
					t.Errorf("the other provider was asked %d times; want recovered=%v", asked, tc.recovered)
				}
				if !strings.Contains(body, "Partial") {
					t.Errorf("the client lacks the text sent before the error:\n%s", body)
				}
				for _, w := range tc.want {
					if !strings.Contains(body, w) {
						t.Errorf("the client's stream lacks %q:\n%s", w, body)
					}
				}
				if !tc.recovered && strings.Contains(body, "[DONE]") {
					t.Errorf("[DONE] after a refusal:\n%s", body)
				}
			})
		}
	}
}

// TestProviderWireQuirks: provider stream and error shapes reach the client
// as OpenAI's: OpenRouter's mid-stream error (an error object, or only a
// finish_reason "error") ends the stream with an error event and no
// [DONE]; CRLF events, "data:" without a space and a stream ending after
// its finish without [DONE] are a complete answer; a Cloudflare HTML 524
// and a text/plain 503 become paygate's own errors.
func TestProviderWireQuirks(t *testing.T) {
	const c = `{"id":"g1","object":"chat.completion.chunk","created":1,"model":"m","provider":"Vendor","choices":`
	stream := `{"model":"gpt-test","stream":true,"messages":[]}`
	tests := []struct {
		name   string
		h      http.HandlerFunc
		req    string
		status int
		want   []string
		not    []string
	}{
		{"openrouter mid-stream error object", sseHandler(
			"data: "+c+`[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}`+"\n\n",
			"data: "+`{"id":"g1","object":"chat.completion.chunk","created":1,"model":"m","provider":"Vendor","error":{"code":"server_error","message":"Provider disconnected unexpectedly"},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}`+"\n\n",
			"data: [DONE]\n\n"), stream, 200,
			[]string{"Hel", `"error"`, "Provider disconnected"}, []string{"[DONE]"}},
		{"openrouter mid-stream error finish", sseHandler(
			"data: "+c+`[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}`+"\n\n",
			"data: "+c+`[{"index":0,"delta":{"content":""},"finish_reason":"error","native_finish_reason":"error"}]}`+"\n\n",
			"data: [DONE]\n\n"), stream, 200,
			[]string{"Hel", `{"error":`, "upstream_stream_error"}, []string{"[DONE]", `"finish_reason":"error"`}},
		{"crlf, data: without space, no [DONE] after finish", sseHandler(
			"data:"+c+`[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}`+"\r\n\r\n",
			"data:"+c+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\r\n\r\n"), stream, 200,
			[]string{"Hi", `"finish_reason":"stop"`, "[DONE]"}, []string{`"error"`}},
		{"cloudflare 524 html", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=UTF-8")
			w.WriteHeader(524)
			_, _ = w.Write([]byte("<!DOCTYPE html><html><head><title>api.example.com | 524: A timeout occurred</title></head><body>cloudflare</body></html>"))
		}, stream, 502, []string{"upstream_server_error", "524"}, nil},
		{"text/plain 503", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(503)
			_, _ = w.Write([]byte("Service Unavailable: server busy"))
		}, `{"model":"gpt-test","messages":[]}`, 503, []string{"upstream_rate_limited", "503"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, tc.h)
			url, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) { c.Failover.MaxAttempts = 2 }))
			resp := post(t, url, "/v1/chat/completions", tc.req, nil)
			body := readAll(t, resp.Body)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d want %d: %s", resp.StatusCode, tc.status, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("body lacks %q: %s", w, body)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(body, w) {
					t.Errorf("body has %q: %s", w, body)
				}
			}
		})
	}
}
