package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/store/testdrivers"
)

// TestBodyUserRefusedNamesParamUser: an end user's id refused from the
// body's "user" names that member in error.param, whatever refused it,
// on the chat turn as on the user API. The user API named it for an id
// too long as for one not in UTF-8; the chat turn only for the latter,
// and left a too long body user with no param. An id refused from the
// header, or a session, names no body member.
func TestBodyUserRefusedNamesParamUser(t *testing.T) {
	long := strings.Repeat("o", maxUserID+1)
	s, ledger, _ := ledgerProxy(t, testConfig(t, "http://127.0.0.1:1", nil), nil, &countingTools{})
	defer ledger.Close()
	for _, tc := range []struct{ name, header, session, bodyUser, code, param string }{
		{"body user too long", "", "", long, "user_id_too_long", "user"},
		{"body user not UTF-8", "", "", `\ufffd`, "user_id_not_utf8", "user"},
		{"header too long", long, "", "", "user_id_too_long", ""},
		{"session too long, body user", "", long, "o-user-1", "user_id_too_long", ""},
		// Both refused: the user's refusal is the one told, with its
		// param, not the session's under the user's param.
		{"body user too long, session not UTF-8", "", "chat-\xd5\xc5", long, "user_id_too_long", "user"},
	} {
		w := chatAs(s, tc.header, tc.session, tc.bodyUser)
		e := gjson.Get(w.Body.String(), "error")
		if w.Code != 400 || e.Get("code").Str != tc.code || e.Get("param").Str != tc.param {
			t.Errorf("chat, %s: %d %s; want 400 %s with param %q", tc.name, w.Code, e.Raw, tc.code, tc.param)
		}
	}

	srv := userAPIServer(t, testdrivers.Open(t, "embedded", nil))
	resp := send(t, http.MethodPost, srv, "/v1/paygate/refunds/rf_x/cancel", `{"user":"`+long+`"}`, nil)
	body := readAll(t, resp.Body)
	if resp.StatusCode != 400 || gjson.Get(body, "error.code").Str != "user_id_too_long" || gjson.Get(body, "error.param").Str != "user" {
		t.Errorf("user API, body user too long: %d %s; want 400 user_id_too_long with param user", resp.StatusCode, body)
	}
}
