package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/store/testdrivers"
)

// TestUserIDBounded: an end user's id or a session's over maxUserID bytes
// names payment state no bot has (an OpenID is 28 bytes) and would be a
// store key of that size, on every request: a signed-in turn and the user
// API refuse it with a 400 in OpenAI's error JSON, before any provider or
// store sees it. An id of maxUserID bytes is served.
func TestUserIDBounded(t *testing.T) {
	long, max := strings.Repeat("o", maxUserID+1), strings.Repeat("o", maxUserID)
	fp := newFakeProvider(t, jsonHandler(http.StatusOK, `{"id":"c1","object":"chat.completion","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"message":{"role":"assistant","content":"Hi."},"finish_reason":"stop"}]}`))
	tools := &countingTools{}
	s, ledger, _ := ledgerProxy(t, testConfig(t, fp.URL, nil), nil, tools)
	defer ledger.Close()
	for _, tc := range []struct {
		name, header, session, bodyUser string
		status                          int
		names                           string // what the error says was too long
	}{
		// The session defaults to the user: a long user without the
		// session header is the user's id, not an X-Paygate-Session the
		// bot never sent.
		{"header id too long", long, "", "", 400, "X-WeChat-OpenID"},
		{"body user too long", "", "", long, 400, "the body's user"},
		{"session too long", "o-user-1", long, "", 400, "the X-Paygate-Session is"},
		{"ids of the bound", max, max, "", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(fp.requests())
			w := chatAs(s, tc.header, tc.session, tc.bodyUser)
			if w.Code != tc.status {
				t.Fatalf("status %d %s; want %d", w.Code, w.Body, tc.status)
			}
			sent := len(fp.requests()) - before
			if tc.status == 200 {
				if sent != 1 {
					t.Fatalf("the provider got %d requests; want 1", sent)
				}
				return
			}
			if e := gjson.Get(w.Body.String(), "error"); e.Get("code").Str != "user_id_too_long" || e.Get("type").Str != "invalid_request_error" {
				t.Errorf("body %s; want OpenAI's error JSON with code user_id_too_long", w.Body)
			}
			if msg := gjson.Get(w.Body.String(), "error.message").Str; !strings.Contains(msg, tc.names) {
				t.Errorf("message %q; want it to name %s", msg, tc.names)
			}
			if sent != 0 {
				t.Errorf("the provider got %d requests; want none", sent)
			}
		})
	}

	srv := userAPIServer(t, testdrivers.Open(t, "embedded", nil))
	resp := send(t, http.MethodGet, srv, "/v1/paygate/orders", "", map[string]string{headerOpenID: long})
	body := readAll(t, resp.Body)
	if resp.StatusCode != 400 || gjson.Get(body, "error.code").Str != "user_id_too_long" {
		t.Fatalf("user API: %d %s; want 400 user_id_too_long", resp.StatusCode, body)
	}
	resp = send(t, http.MethodGet, srv, "/v1/paygate/orders", "", map[string]string{headerOpenID: max})
	if body := readAll(t, resp.Body); resp.StatusCode != 200 {
		t.Fatalf("user API, an id of the bound: %d %s; want 200", resp.StatusCode, body)
	}
}
