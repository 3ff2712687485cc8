package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/store/testdrivers"
)

// TestTwoUsersOneSessionName: a bot that names every conversation
// "default" (a constant X-Paygate-Session) serves two users. The session
// names a conversation only together with its user (SPEC 2.2): the other
// user's turns in "default" are never told of the victim's payment, never
// read the victim's order in their payment state, cannot propose, confirm
// or be told of the victim's refund, and do not use up the victim's one
// payment_confirmed, which the victim's own next turn gets.
func TestTwoUsersOneSessionName(t *testing.T) {
	const victim, other, session = "oVictim-shared-session-01", "oOther-shared-session-002", "default"
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			var orderNo string
			up := refundProvider(t, &orderNo, "it does not work for me")
			url, a := serveConfig(t, premiumConfig(t, driver, up.URL, ""), io.Discard)
			chat := func(user, content string) (gjson.Result, []string) {
				t.Helper()
				before := len(up.requests())
				status, b, err := postSessionChat(url, user, session, userMessage(content))
				if err != nil {
					t.Fatal(err)
				}
				if status != http.StatusOK {
					t.Fatalf("chat as %s: %d %s", user, status, b)
				}
				return gjson.ParseBytes(b), up.requests()[before:]
			}
			// seesNothingOfTheVictim fails unless the other user's answer
			// names neither the victim's order nor its refund, and what the
			// provider was sent for it holds no payment state naming the
			// order and no tool result naming the refund or proposing one
			// (the model's own call may name the order: refundProvider
			// asks for the victim's).
			seesNothingOfTheVictim := func(step string, ans gjson.Result, sent []string, refundID string) {
				t.Helper()
				if strings.Contains(ans.Raw, orderNo) || refundID != "" && strings.Contains(ans.Raw, refundID) {
					t.Errorf("%s: the other user's answer names the victim's order %s or refund %q: %s", step, orderNo, refundID, ans.Raw)
				}
				for _, body := range sent {
					for _, m := range gjson.Get(body, "messages").Array() {
						c := m.Get("content").String()
						switch m.Get("role").Str {
						case "system":
							if strings.Contains(c, orderNo) {
								t.Errorf("%s: the other user's model read the victim's order: %s", step, c)
							}
						case "tool":
							if refundID != "" && strings.Contains(c, refundID) || strings.Contains(c, "awaiting_user_confirmation") {
								t.Errorf("%s: the other user's model was told of a refund proposal: %s", step, c)
							}
						}
					}
				}
			}

			ans, _ := chat(victim, "premium monthly please")
			orderNo = ans.Get(`paygate.actions.#(type=="order_created").order.order_no`).Str
			if orderNo == "" {
				t.Fatalf("no order for the victim: %s", ans.Raw)
			}
			if d, err := a.sim.Pay(t.Context(), orderNo); err != nil || !d.Acked {
				t.Fatalf("pay %s: %+v %v", orderNo, d, err)
			}

			ans, sent := chat(other, "hello there")
			seesNothingOfTheVictim("after the victim paid", ans, sent, "")

			ans, _ = chat(victim, "did it go through?")
			if got := ans.Get(`paygate.actions.#(type=="payment_confirmed")#.order.order_no`).Array(); len(got) != 1 || got[0].Str != orderNo {
				t.Fatalf("the victim's next turn: paygate %s; want one payment_confirmed of %s", ans.Get("paygate").Raw, orderNo)
			}
			id := func() string {
				ans, _ := chat(victim, "I want a refund")
				return ans.Get(`paygate.actions.#(type=="refund_proposed").refund.refund_id`).Str
			}()
			if id == "" {
				t.Fatal("no refund proposed to the victim")
			}

			// The other user's model asks to refund the victim's order
			// (refundProvider names it): refused as not theirs.
			ans, sent = chat(other, "I want a refund")
			seesNothingOfTheVictim("the other user asking for the victim's refund", ans, sent, id)
			if last := sent[len(sent)-1]; gjson.Get(last, "messages.@reverse.0.role").Str != "tool" ||
				!strings.Contains(gjson.Get(last, "messages.@reverse.1").Raw, orderNo) {
				t.Fatalf("the other user's model never asked to refund the victim's order: %s", last)
			}
			for _, answer := range []string{"confirm", "cancel"} {
				status, b := httpCall(t, http.MethodPost, url+"/v1/paygate/refunds/"+id+"/"+answer, "Bearer "+e2eClientKey, other)
				if status == http.StatusOK || strings.Contains(b.Raw, orderNo) {
					t.Errorf("the other user's %s of the victim's refund: %d %s; want it refused without the order", answer, status, b.Raw)
				}
			}
			if status, b := httpCall(t, http.MethodGet, url+"/v1/paygate/orders", "Bearer "+e2eClientKey, other); status != http.StatusOK || strings.Contains(b.Raw, orderNo) {
				t.Errorf("the other user's order list: %d %s; want it without %s", status, b.Raw, orderNo)
			}
			if n := a.sim.RefundCount(""); n != 0 {
				t.Fatalf("%d refunds reached WeChat Pay on the other user's answers; want none", n)
			}

			if status, b := httpCall(t, http.MethodPost, url+"/v1/paygate/refunds/"+id+"/confirm", "Bearer "+e2eClientKey, victim); status != http.StatusOK {
				t.Fatalf("the victim's confirm: %d %s", status, b.Raw)
			}
			ans, sent = chat(other, "hello again")
			seesNothingOfTheVictim("after the victim's refund", ans, sent, id)
		})
	}
}

// TestSessionHeaderTwiceOnTheWire: two X-Paygate-Session lines with
// different values, as a bot that appends its own to the headers it
// forwards sends them, reach the handler through the served listener (its
// own HTTP/1 parser) as two values, and are refused with OpenAI's error
// JSON before any provider is asked; the same value twice is served.
func TestSessionHeaderTwiceOnTheWire(t *testing.T) {
	var orderNo string
	up := refundProvider(t, &orderNo, "")
	url, _ := serveConfig(t, premiumConfig(t, "embedded", up.URL, ""), io.Discard)
	for _, tc := range []struct {
		sessions []string
		status   int
	}{
		{[]string{"chat-a", "chat-b"}, http.StatusBadRequest},
		{[]string{"chat-a", "chat-a"}, http.StatusOK},
	} {
		before := len(up.requests())
		req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions",
			strings.NewReader(`{"model":"gpt-4o","messages":[{"role":"user","content":"premium please"}]}`))
		req.Header.Set("Authorization", "Bearer "+e2eClientKey)
		req.Header.Set("X-WeChat-OpenID", "oUser-session-twice-wire1")
		for _, v := range tc.sessions {
			req.Header.Add("X-Paygate-Session", v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Fatalf("sessions %q: %d %s; want %d", tc.sessions, resp.StatusCode, b, tc.status)
		}
		if tc.status == http.StatusOK {
			continue
		}
		if gjson.GetBytes(b, "error.code").Str != "session_ambiguous" {
			t.Errorf("sessions %q: %s; want OpenAI's error JSON with code session_ambiguous", tc.sessions, b)
		}
		if n := len(up.requests()) - before; n != 0 {
			t.Errorf("sessions %q: the provider was asked %d times; want none", tc.sessions, n)
		}
	}
}
