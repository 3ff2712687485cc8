package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/store/testdrivers"
)

// TestOpenIDHeaderNamingTwoUsers: a request whose X-WeChat-OpenID header is
// given twice with two users names no one user, and is refused with a 400
// before any order is read, any refund confirmed or any provider asked. A
// bot that forwards its client's headers and adds its own (Header.Add,
// fetch's append) sends the client's first, and paygate acted for the
// first: the end user wrote a paying user's OpenID there and was shown that
// user's orders, their payment state and confirmed the refund proposed to
// them. The same user given twice still names one user and is served.
func TestOpenIDHeaderNamingTwoUsers(t *testing.T) {
	const victim, other = "oVictim-openid-twice-0001", "oOther-openid-twice-00002"
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			var orderNo string
			up := refundProvider(t, &orderNo, "it does not work for me")
			url, a := serveConfig(t, premiumConfig(t, driver, up.URL, ""), io.Discard)
			orderNo = paidByChat(t, url, a, victim)
			id := chatAs(t, url, victim, "I want a refund").Get(`paygate.actions.#(type=="refund_proposed").refund.refund_id`).Str
			if id == "" {
				t.Fatal("no refund proposed to the victim")
			}
			asked := len(up.requests())
			call := func(method, path, body string, users ...string) (int, string) {
				t.Helper()
				var rd io.Reader
				if body != "" {
					rd = strings.NewReader(body)
				}
				req, _ := http.NewRequest(method, url+path, rd)
				req.Header.Set("Authorization", "Bearer "+e2eClientKey)
				for _, u := range users {
					req.Header.Add("X-WeChat-OpenID", u)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			chat := `{"model":"gpt-4o","messages":[{"role":"user","content":"what did I buy?"}]}`
			for _, tc := range []struct {
				name, method, path, body string
			}{
				{"order list", http.MethodGet, "/v1/paygate/orders", ""},
				{"one order", http.MethodGet, "/v1/paygate/orders/" + orderNo, ""},
				{"refund confirm", http.MethodPost, "/v1/paygate/refunds/" + id + "/confirm", ""},
				{"refund cancel", http.MethodPost, "/v1/paygate/refunds/" + id + "/cancel", ""},
				{"chat", http.MethodPost, "/v1/chat/completions", chat},
				{"embeddings", http.MethodPost, "/v1/embeddings", `{"model":"gpt-4o","input":"hello"}`},
			} {
				for _, users := range [][]string{{victim, other}, {other, victim}} {
					t.Run(tc.name+"/"+users[0][:7]+" first", func(t *testing.T) {
						status, b := call(tc.method, tc.path, tc.body, users...)
						if status != http.StatusBadRequest || gjson.Get(b, "error.code").Str != "user_ambiguous" {
							t.Errorf("%d %s; want 400 user_ambiguous", status, b)
						}
						if strings.Contains(b, orderNo) || strings.Contains(b, id) {
							t.Errorf("the answer names the victim's order or refund: %s", b)
						}
					})
				}
			}
			if n := len(up.requests()); n != asked {
				t.Errorf("the provider was asked %d times for requests naming two users; want none", n-asked)
			}
			if n := a.sim.RefundCount(""); n != 0 {
				t.Errorf("%d refunds reached WeChat Pay; want none", n)
			}
			// The same user twice is one user: served, and the proposal
			// the refused requests could not touch is still open.
			status, b := call(http.MethodGet, "/v1/paygate/orders/"+orderNo, "", victim, victim)
			if status != http.StatusOK || gjson.Get(b, "refunds_proposed.0.refund_id").Str != id {
				t.Errorf("the victim's order with the header given twice alike: %d %s; want it with refund %s open", status, b, id)
			}
		})
	}
}

// TestUserAPIBodyNamingTwoUsers: a refund answer whose body names the end
// user twice ({"user": …, "user": …}, a bot that appends its user to the
// body its client sent) is refused with a 400 naming "user", as a chat or
// passthrough body repeating "user" is, and confirms or cancels nothing.
// The user API took the first, the client's: an end user who wrote a
// paying user's OpenID there confirmed the refund proposed to that user.
func TestUserAPIBodyNamingTwoUsers(t *testing.T) {
	const victim, other = "oVictim-openid-body-00001", "oOther-openid-body-000002"
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			var orderNo string
			up := refundProvider(t, &orderNo, "it does not work for me")
			url, a := serveConfig(t, premiumConfig(t, driver, up.URL, ""), io.Discard)
			orderNo = paidByChat(t, url, a, victim)
			id := chatAs(t, url, victim, "I want a refund").Get(`paygate.actions.#(type=="refund_proposed").refund.refund_id`).Str
			if id == "" {
				t.Fatal("no refund proposed to the victim")
			}
			for _, answer := range []string{"confirm", "cancel"} {
				for _, body := range []string{
					`{"user":"` + victim + `","user":"` + other + `"}`,
					`{"user":"` + other + `","user":"` + victim + `"}`,
					// Another member repeated before them: its refusal
					// came first and hid theirs.
					`{"model":"a","model":"b","user":"` + victim + `","user":"` + other + `"}`,
					`{"Model":"a","user":"` + victim + `","user":"` + other + `"}`,
				} {
					t.Run(answer, func(t *testing.T) {
						req, _ := http.NewRequest(http.MethodPost, url+"/v1/paygate/refunds/"+id+"/"+answer, strings.NewReader(body))
						req.Header.Set("Authorization", "Bearer "+e2eClientKey)
						resp, err := http.DefaultClient.Do(req)
						if err != nil {
							t.Fatal(err)
						}
						defer resp.Body.Close()
						b, _ := io.ReadAll(resp.Body)
						if resp.StatusCode != http.StatusBadRequest || gjson.GetBytes(b, "error.param").Str != "user" {
							t.Errorf("%s with %s: %d %s; want 400 naming user", answer, body, resp.StatusCode, b)
						}
					})
				}
			}
			if n := a.sim.RefundCount(""); n != 0 {
				t.Errorf("%d refunds reached WeChat Pay; want none", n)
			}
			status, one := httpCall(t, http.MethodGet, url+"/v1/paygate/orders/"+orderNo, "Bearer "+e2eClientKey, victim)
			if status != http.StatusOK || one.Get("refunds_proposed.0.refund_id").Str != id {
				t.Errorf("the victim's order: %d %s; want it with refund %s still open", status, one.Raw, id)
			}
		})
	}
}
