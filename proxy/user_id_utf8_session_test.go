package proxy

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestSessionNotUTF8IsToldAsASession: an X-Paygate-Session that is not
// valid UTF-8 (or holds U+FFFD) is a 400 user_id_not_utf8 naming the
// session, and its advice is the session's: it told the bot to send the
// OpenID as WeChat gives it, in ASCII, of a header that holds no OpenID
// (the bot's name for a conversation), while the OpenID it sent was fine.
// An end user's id that is not UTF-8 is still told to send the OpenID.
func TestSessionNotUTF8IsToldAsASession(t *testing.T) {
	s, ledger, _ := ledgerProxy(t, testConfig(t, "http://127.0.0.1:1", nil), nil, &countingTools{})
	defer ledger.Close()
	for _, tc := range []struct{ name, header, session, want, not string }{
		{"session", "o-user-1", "chat-\xd5\xc5", "conversation", "OpenID as WeChat gives it"},
		{"session as stored", "o-user-1", "chat-\uFFFD", "conversation", "OpenID as WeChat gives it"},
		{"user", "\xd5\xc5", "chat-1", "OpenID as WeChat gives it", "conversation"},
	} {
		w := chatAs(s, tc.header, tc.session, "")
		msg := gjson.Get(w.Body.String(), "error.message").Str
		if w.Code != 400 || gjson.Get(w.Body.String(), "error.code").Str != "user_id_not_utf8" ||
			!strings.Contains(msg, tc.want) || strings.Contains(msg, tc.not) {
			t.Errorf("%s: %d %q; want 400 user_id_not_utf8 saying %q, not %q", tc.name, w.Code, msg, tc.want, tc.not)
		}
	}
}
