package proxy

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
)

// TestClientForward: a client with clients[].forward reaches only the
// forwarded paths its patterns match; any other is a 403 path_not_allowed
// that names the method, the path and the key, and the provider sees
// nothing (without the list, any bot's key listed the provider account's
// files and stored completions). A client without the list, and the paths
// paygate serves itself (chat completions, GET /v1/models), are unchanged.
func TestClientForward(t *testing.T) {
	const chatAnswer = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/chat/completions" {
			jsonHandler(200, chatAnswer)(w, r)
			return
		}
		jsonHandler(200, `{"object":"list","data":[]}`)(w, r)
	})
	const openKey, closedKey = "sk-paygate-open-client-key", "sk-paygate-closed-client-key"
	proxyURL, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) {
		c.Clients[0].Forward = []string{"POST /v1/embeddings", "POST /v1/responses", "GET /v1/responses/*", "/v1/moderations"}
		c.Clients = append(c.Clients,
			config.Client{Name: "open-bot", Key: openKey},
			config.Client{Name: "closed-bot", Key: closedKey, Forward: []string{}})
	}))
	const embed = `{"model":"embed-test","input":"hi"}`
	const chat = `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`
	tests := []struct {
		name, key, method, path, body string
		allowed                       bool // false: a 403 path_not_allowed, nothing upstream
		key2                          string
	}{
		{"a matching method and path", testClientKey, "POST", "/v1/embeddings", embed, true, ""},
		{"a matching prefix", testClientKey, "GET", "/v1/responses/resp_1/input_items", "", true, ""},
		{"a pattern without a method", testClientKey, "POST", "/v1/moderations", `{"input":"hi"}`, true, ""},
		{"an escaped path that decodes to a match", testClientKey, "POST", "/v1/embedding%73", embed, true, ""},
		{"the account's files", testClientKey, "GET", "/v1/files", "", false, "clients[0].forward"},
		{"stored chat completions", testClientKey, "GET", "/v1/chat/completions", "", false, "clients[0].forward"},
		{"a matching path, another method", testClientKey, "DELETE", "/v1/responses/resp_1", "", false, "clients[0].forward"},
		{"a path the exact pattern is a prefix of", testClientKey, "POST", "/v1/embeddings/x", embed, false, "clients[0].forward"},
		{"the prefix pattern's bare path", testClientKey, "GET", "/v1/responses", "", false, "clients[0].forward"},
		{"batches", testClientKey, "POST", "/v1/batches", `{"input_file_id":"f"}`, false, "clients[0].forward"},
		{"an empty list forwards nothing", closedKey, "POST", "/v1/embeddings", embed, false, "clients[2].forward"},
		{"unset forwards files", openKey, "GET", "/v1/files", "", true, ""},
		{"unset forwards stored completions", openKey, "GET", "/v1/chat/completions", "", true, ""},
		{"chat is not a forwarded path", testClientKey, "POST", "/v1/chat/completions", chat, true, ""},
		{"chat, with an empty list", closedKey, "POST", "/v1/chat/completions", chat, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(fp.requests())
			resp := send(t, tc.method, proxyURL, tc.path, tc.body, map[string]string{"Authorization": "Bearer " + tc.key})
			body := readAll(t, resp.Body)
			seen := fp.requests()[before:]
			if tc.allowed {
				if resp.StatusCode != 200 || len(seen) != 1 {
					t.Fatalf("%s %s: status %d (%s), provider saw %d requests; want 200 and one", tc.method, tc.path, resp.StatusCode, body, len(seen))
				}
				return
			}
			if len(seen) != 0 {
				t.Errorf("%s %s reached the provider: %+v", tc.method, tc.path, seen)
			}
			var e struct {
				Error struct{ Message, Type, Code string }
			}
			if resp.StatusCode != http.StatusForbidden || json.Unmarshal([]byte(body), &e) != nil ||
				e.Error.Type != "invalid_request_error" || e.Error.Code != "path_not_allowed" {
				t.Fatalf("%s %s: status %d body %s; want 403 invalid_request_error path_not_allowed", tc.method, tc.path, resp.StatusCode, body)
			}
			for _, s := range []string{tc.method + " " + tc.path, tc.key2} {
				if !strings.Contains(e.Error.Message, s) {
					t.Errorf("message %q does not name %q", e.Error.Message, s)
				}
			}
		})
	}
	// GET /v1/models is paygate's own, whatever the list.
	resp := send(t, http.MethodGet, proxyURL, "/v1/models", "", map[string]string{"Authorization": "Bearer " + closedKey})
	if body := readAll(t, resp.Body); resp.StatusCode != 200 || !strings.Contains(body, "gpt-test") {
		t.Errorf("GET /v1/models with an empty forward list: %d %s", resp.StatusCode, body)
	}
}

// TestForwardAllowedNoAlloc: the check is compiled at New, so a forwarded
// request that matches costs no allocation; a pattern New cannot parse (a
// config that skipped validation) fails New, naming the key.
func TestForwardAllowedNoAlloc(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1", func(c *config.Config) {
		c.Clients[0].Forward = []string{"POST /v1/embeddings", "GET /v1/responses/*"}
	})
	fr, err := compileForward(cfg.Clients[0].Forward, "clients[0].forward")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{forward: map[*config.Client]forwardRules{&cfg.Clients[0]: fr}}
	if n := testing.AllocsPerRun(100, func() {
		if s.forwardAllowed(&cfg.Clients[0], "GET", "/v1/responses/resp_1") != nil {
			t.Fatal("refused a matching request")
		}
	}); n != 0 {
		t.Errorf("%v allocations per allowed request; want 0", n)
	}
	if _, err := compileForward([]string{"GET /v1/ok", "GET /files"}, "clients[3].forward"); err == nil ||
		!strings.Contains(err.Error(), `clients[3].forward[1] "GET /files"`) {
		t.Errorf("compileForward of a bad pattern: %v", err)
	}
}
