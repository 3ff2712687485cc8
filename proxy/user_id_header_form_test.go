package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/store/testdrivers"
)

// TestBodyUserNoHeaderCouldName: the body's "user" is read where the
// X-WeChat-OpenID header is not sent, and both name one user (SPEC 2.2).
// A header value carries no control character and no surrounding
// whitespace (the listener and net/http trim it; fetch strips it, Go's
// client refuses it), but the body's user was taken whole: a bot whose
// OpenID variable ended in a newline ("oABC\n") had its chat orders kept
// for a user that the header-only GET /v1/paygate/orders could never
// name, its header "oABC" another user, and a user id holding NUL made the
// conversation keys (client, user and session joined with NUL) of two
// such users one. Such a body user is a 400 user_id_invalid naming the
// body's user, on the chat turn and the user API, before any provider or
// the store sees it; an id with a space inside, which a header carries,
// is served.
func TestBodyUserNoHeaderCouldName(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(http.StatusOK, `{"id":"c1","object":"chat.completion","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"message":{"role":"assistant","content":"Hi."},"finish_reason":"stop"}]}`))
	s, ledger, _ := ledgerProxy(t, testConfig(t, fp.URL, nil), nil, &countingTools{})
	defer ledger.Close()
	st := testdrivers.Open(t, "embedded", nil)
	srv := userAPIServer(t, st)
	for _, tc := range []struct {
		name, user string // user as JSON string content
		refused    bool
	}{
		{"a newline after", `oABC\n`, true},
		{"a space before", ` oABC`, true},
		{"a tab after", `oABC\t`, true},
		{"NUL inside", `oA\u0000BC`, true},
		{"DEL inside", `oA\u007fBC`, true},
		{"a space inside", `oA BC`, false},
		{"plain", `oABC`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(fp.requests())
			w := chatAs(s, "", "", tc.user)
			resp := send(t, http.MethodPost, srv, "/v1/paygate/refunds/rf_none/cancel", `{"user":"`+tc.user+`"}`, nil)
			api := readAll(t, resp.Body)
			for _, got := range []struct {
				what string
				code int
				body string
			}{{"chat", w.Code, w.Body.String()}, {"refund cancel", resp.StatusCode, api}} {
				e := gjson.Get(got.body, "error")
				refused := got.code == http.StatusBadRequest && e.Get("code").Str == "user_id_invalid"
				if refused != tc.refused {
					t.Errorf("%s: %d %s; want refused (400 user_id_invalid) %v", got.what, got.code, got.body, tc.refused)
				}
				if refused && (e.Get("param").Str != "user" || e.Get("type").Str != "invalid_request_error" || !strings.Contains(e.Get("message").Str, "body's user")) {
					t.Errorf("%s: %s; want param user and a message naming the body's user", got.what, got.body)
				}
			}
			if n := len(fp.requests()) - before; tc.refused && n != 0 || !tc.refused && n != 1 {
				t.Errorf("the provider got %d requests; want %d", n, map[bool]int{true: 0, false: 1}[tc.refused])
			}
		})
	}
}
