package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestUserIDNotUTF8Refused: an end user's id that is not valid UTF-8 (a
// GBK nickname in X-WeChat-OpenID: D5 C5) was served, and the orders,
// proposals and texts paid for it hold it as their JSON carries it, each
// byte that is not UTF-8 a U+FFFD. Two users whose ids differ only in such
// bytes were then one stored user, and a user whose id is those U+FFFD
// (valid UTF-8) was handed the first user's paid order, while its own user
// got a 404 for it. An OpenID is ASCII: an id that is not valid UTF-8, or
// that holds U+FFFD (what an invalid byte is stored as), is a 400 in
// OpenAI's error JSON naming where the id came from, on the chat turn and
// on every user API route, on either store, before any provider or the
// store sees it.
func TestUserIDNotUTF8Refused(t *testing.T) {
	const alice, bob, stored = "\xd5\xc5", "\xc8\xfd", "\uFFFD\uFFFD"
	refused := func(t *testing.T, what, body string, code int) {
		t.Helper()
		e := gjson.Get(body, "error")
		if code != 400 || e.Get("code").Str != "user_id_not_utf8" || e.Get("type").Str != "invalid_request_error" {
			t.Errorf("%s: %d %s; want 400 user_id_not_utf8", what, code, body)
		}
	}
	for _, driver := range []string{"embedded", "redis"} {
		t.Run(driver, func(t *testing.T) {
			st := testdrivers.Open(t, driver, nil)
			srv := userAPIServer(t, st)
			// Alice paid, as an earlier version stored it.
			seedPaidOrder(t, st, "PG-A1", alice, func(*store.Order) {})
			seedProposal(t, st, "rf_a1", "PG-A1", alice, 100)
			for _, u := range []string{alice, bob, stored} {
				for _, rt := range []struct{ method, path string }{
					{http.MethodGet, "/v1/paygate/orders"},
					{http.MethodGet, "/v1/paygate/orders/PG-A1"},
					{http.MethodPost, "/v1/paygate/refunds/rf_a1/confirm"},
					{http.MethodPost, "/v1/paygate/refunds/rf_a1/cancel"},
				} {
					resp := send(t, rt.method, srv, rt.path, "", map[string]string{headerOpenID: u})
					body := readAll(t, resp.Body)
					refused(t, rt.method+" "+rt.path+" as "+strings.ToValidUTF8(u, "?"), body, resp.StatusCode)
					if !strings.Contains(gjson.Get(body, "error.message").Str, headerOpenID) {
						t.Errorf("%s %s: message %s; want it to name %s", rt.method, rt.path, body, headerOpenID)
					}
				}
			}
			// The body's user, read without the header.
			resp := send(t, http.MethodPost, srv, "/v1/paygate/refunds/rf_a1/cancel", `{"user":"\ufffd\ufffd"}`, nil)
			body := readAll(t, resp.Body)
			refused(t, "a body's user", body, resp.StatusCode)
			if gjson.Get(body, "error.param").Str != "user" {
				t.Errorf("a body's user: %s; want param user", body)
			}
		})
	}

	// A chat turn of such a user: refused before the provider sees it.
	fp := newFakeProvider(t, jsonHandler(http.StatusOK, `{"id":"c1","object":"chat.completion","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"message":{"role":"assistant","content":"Hi."},"finish_reason":"stop"}]}`))
	s, ledger, _ := ledgerProxy(t, testConfig(t, fp.URL, nil), nil, &countingTools{})
	defer ledger.Close()
	for _, tc := range []struct{ name, header, session, bodyUser, names string }{
		{"header", alice, "", "", headerOpenID},
		{"header as stored", stored, "", "", headerOpenID},
		{"body user", "", "", `\ufffd`, "the body's user"},
		{"session", "o-user-1", bob, "", "X-Paygate-Session"},
	} {
		before := len(fp.requests())
		w := chatAs(s, tc.header, tc.session, tc.bodyUser)
		refused(t, "chat, "+tc.name, w.Body.String(), w.Code)
		if msg := gjson.Get(w.Body.String(), "error.message").Str; !strings.Contains(msg, tc.names) {
			t.Errorf("chat, %s: message %q; want it to name %s", tc.name, msg, tc.names)
		}
		if n := len(fp.requests()) - before; n != 0 {
			t.Errorf("chat, %s: the provider got %d requests; want none", tc.name, n)
		}
	}
}
