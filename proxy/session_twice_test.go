package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestSessionHeaderNamingTwoConversations: a request whose
// X-Paygate-Session header is given more than once with different values
// names no one conversation, and is refused with a 400 before any provider
// is asked, as a repeated X-WeChat-OpenID is (user_ambiguous). Every path
// took the first value: a bot that forwards its client's headers and adds
// its own (Header.Add, fetch's append, an SDK's default headers and a
// request's both appended by a transport) sent the client's first, so the
// end user chose the conversation the turn was kept in, and two
// conversations the bot kept apart were one: their kept payment exchanges
// (restored by the bot's call ids, which Kimi numbers alike in every
// conversation) and their LLM cost per transaction. The same value
// repeated still names one conversation and is served.
func TestSessionHeaderNamingTwoConversations(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(http.StatusOK, `{"id":"c1","object":"chat.completion","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"message":{"role":"assistant","content":"Hi."},"finish_reason":"stop"}]}`))
	s, ledger, _ := ledgerProxy(t, testConfig(t, fp.URL, nil), nil, &countingTools{})
	defer ledger.Close()
	const chat = `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`
	for _, tc := range []struct {
		name, path, body, openID string
		sessions                 []string
		status                   int
	}{
		{"chat, two sessions", "/v1/chat/completions", chat, "o-user-1", []string{"chat-a", "chat-b"}, 400},
		{"chat, the other first", "/v1/chat/completions", chat, "o-user-1", []string{"chat-b", "chat-a"}, 400},
		{"chat, one of them empty", "/v1/chat/completions", chat, "o-user-1", []string{"", "chat-a"}, 400},
		{"chat without a user", "/v1/chat/completions", chat, "", []string{"chat-a", "chat-b"}, 400},
		{"embeddings", "/v1/embeddings", `{"model":"embed-test","input":"hi"}`, "o-user-1", []string{"chat-a", "chat-b"}, 400},
		{"chat, the same session twice", "/v1/chat/completions", chat, "o-user-1", []string{"chat-a", "chat-a"}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(fp.requests())
			req := httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+testClientKey)
			req.Header.Set("Content-Type", "application/json")
			if tc.openID != "" {
				req.Header.Set(headerOpenID, tc.openID)
			}
			for _, v := range tc.sessions {
				req.Header.Add("X-Paygate-Session", v)
			}
			w := httptest.NewRecorder()
			s.Handler().ServeHTTP(w, req)
			sent := len(fp.requests()) - before
			if w.Code != tc.status {
				t.Fatalf("status %d %s; want %d", w.Code, w.Body, tc.status)
			}
			if tc.status == 200 {
				if sent != 1 {
					t.Errorf("the provider got %d requests; want 1", sent)
				}
				return
			}
			if e := gjson.Get(w.Body.String(), "error"); e.Get("code").Str != "session_ambiguous" || e.Get("type").Str != "invalid_request_error" ||
				!strings.Contains(e.Get("message").Str, "X-Paygate-Session") {
				t.Errorf("body %s; want OpenAI's error JSON with code session_ambiguous naming X-Paygate-Session", w.Body)
			}
			if sent != 0 {
				t.Errorf("the provider got %d requests; want none", sent)
			}
		})
	}
}
