package main

import (
	"io"
	"net/http"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestRefundAcrossSessions: one user in two conversations. The refund
// proposed in chat-a is the one the model of chat-b gets when it asks for
// the same refund (one open proposal per order and amount, not one per
// conversation); confirmed through the user API, it reaches WeChat Pay
// once, and its outcome is announced once per user: to the first turn after
// it, here chat-b's, and chat-a's next turn is quiet, as payment_confirmed
// is (TestPaymentConfirmedOnceAcrossSessions).
func TestRefundAcrossSessions(t *testing.T) {
	const user = "oUser-sessions-refund-001"
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			var orderNo string
			up := refundProvider(t, &orderNo, "it does not work for me")
			url, a := serveConfig(t, premiumConfig(t, driver, up.URL, ""), io.Discard)
			chat := func(session, content string) gjson.Result {
				t.Helper()
				status, b, err := postSessionChat(url, user, session, userMessage(content))
				if err != nil {
					t.Fatal(err)
				}
				if status != http.StatusOK {
					t.Fatalf("chat in %s: %d %s", session, status, b)
				}
				return gjson.ParseBytes(b)
			}
			orderNo = chat("chat-a", "premium monthly please").Get(`paygate.actions.#(type=="order_created").order.order_no`).Str
			if orderNo == "" {
				t.Fatal("no order")
			}
			if d, err := a.sim.Pay(t.Context(), orderNo); err != nil || !d.Acked {
				t.Fatalf("pay %s: %+v %v", orderNo, d, err)
			}
			id := chat("chat-a", "I want a refund").Get(`paygate.actions.#(type=="refund_proposed").refund.refund_id`).Str
			if id == "" {
				t.Fatal("no refund proposed in chat-a")
			}

			ans := chat("chat-b", "I want a refund")
			for _, act := range ans.Get("paygate.actions").Array() {
				if typ := act.Get("type").Str; typ != "refund_proposed" || act.Get("refund.refund_id").Str != id {
					t.Errorf("chat-b asking for the same refund: action %s; want at most refund %s proposed again", act.Raw, id)
				}
			}
			code, one := httpCall(t, http.MethodGet, url+"/v1/paygate/orders/"+orderNo, "Bearer "+e2eClientKey, user)
			if code != http.StatusOK || one.Get("refunds_proposed.#").Int() != 1 || one.Get("refunds_proposed.0.refund_id").Str != id {
				t.Fatalf("the order after both conversations asked: %d %s; want one open proposal, %s", code, one.Raw, id)
			}

			if code, b := httpCall(t, http.MethodPost, url+"/v1/paygate/refunds/"+id+"/confirm", "Bearer "+e2eClientKey, user); code != http.StatusOK {
				t.Fatalf("confirm: %d %s", code, b.Raw)
			}
			if d, err := a.sim.CompleteRefund(t.Context(), payments.OutRefundNo(id)); err != nil || !d.Acked {
				t.Fatalf("complete the refund: %+v %v", d, err)
			}
			if n := a.sim.RefundCount(orderNo); n != 1 {
				t.Fatalf("refunds at WeChat Pay %d; want 1", n)
			}

			told := func(ans gjson.Result) []gjson.Result {
				return ans.Get(`paygate.actions.#(type=="refund_succeeded")#`).Array()
			}
			if got := told(chat("chat-b", "I want a refund")); len(got) != 1 || got[0].Get("order.order_no").Str != orderNo {
				t.Errorf("chat-b's turn after the refund: %v; want one refund_succeeded of %s", got, orderNo)
			}
			if got := told(chat("chat-a", "I want a refund")); len(got) != 0 {
				t.Errorf("chat-a's turn after chat-b's was told: %v; want nothing again", got)
			}
			if n := a.sim.RefundCount(orderNo); n != 1 {
				t.Errorf("refunds at WeChat Pay %d after both conversations asked again; want 1", n)
			}
		})
	}
}
