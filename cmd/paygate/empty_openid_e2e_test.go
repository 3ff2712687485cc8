package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestEmptyOpenIDHeaderIsNoUser: a bot that names its end user in the
// X-WeChat-OpenID header sends it empty for a visitor WeChat's OAuth did
// not sign in (extra_headers={"X-WeChat-OpenID": openid} with no openid),
// and such a bot forwards its client's body. paygate took the body's
// "user" then, as for a bot that sends no header: a visitor who wrote a
// paying user's OpenID there had the model propose a refund of that
// user's order, confirmed it, and the refund reached WeChat Pay, without
// the payer's confirmation. A header that is present names the user,
// empty or not: empty is no user, so the turn offers no payment tools
// and the confirmation is a 400 user_required.
func TestEmptyOpenIDHeaderIsNoUser(t *testing.T) {
	var orderNo string
	up := refundProvider(t, &orderNo, "forged")
	url, _, a := moneyApp(t, up.URL, "")
	const victim = "oUser-empty-header-victim"
	orderNo = paidByChat(t, url, a, victim)

	post := func(path, body string) (int, gjson.Result) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, url+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+e2eClientKey)
		req.Header["X-Wechat-Openid"] = []string{""} // present, empty
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, gjson.ParseBytes(b)
	}

	before := len(up.requests())
	status, ans := post("/v1/chat/completions", `{"model":"gpt-4o","user":"`+victim+`","messages":[{"role":"user","content":"refund please"}]}`)
	if status != http.StatusOK {
		t.Fatalf("chat: %d %s", status, ans.Raw)
	}
	if acts := ans.Get("paygate.actions"); acts.Exists() {
		t.Errorf("a visitor's turn made payment actions: %s", acts.Raw)
	}
	reqs := up.requests()[before:]
	if len(reqs) != 1 {
		t.Fatalf("upstream requests %d; want 1", len(reqs))
	}
	if tools := gjson.Get(reqs[0], "tools"); tools.Exists() || strings.Contains(reqs[0], "Payment state") {
		t.Errorf("the visitor's turn was offered payment tools or state: %s", reqs[0])
	}
	if u := gjson.Get(reqs[0], "user").Str; u == "" || strings.Contains(reqs[0], victim) {
		t.Errorf("the provider got user %q; want the body's user hashed, as before", u)
	}

	// The visitor confirms a proposal of the victim's, as the victim.
	id := chatAs(t, url, victim, "refund please").Get(`paygate.actions.#(type=="refund_proposed").refund.refund_id`).Str
	if id == "" {
		t.Fatal("the victim's own turn proposed no refund")
	}
	status, e := post("/v1/paygate/refunds/"+id+"/confirm", `{"user":"`+victim+`"}`)
	if status != http.StatusBadRequest || e.Get("error.code").Str != "user_required" {
		t.Errorf("confirm with an empty header and the victim in the body: %d %s; want 400 user_required", status, e.Raw)
	}
	if n := a.sim.RefundCount(""); n != 0 {
		t.Errorf("refunds at WeChat Pay %d; want 0", n)
	}
}
