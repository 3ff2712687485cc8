package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestRefundTurnResentAfterTheConfirm: the turn in which the model proposed
// a partial refund (10.00 of 49.99) is sent again after the user confirmed
// it and WeChat Pay settled it (a mini-program backend resending the
// user's message whose first request dropped, a second tap). The resent
// turn's request_refund of the same amount of the same order is a repeat
// of the ask the user already answered: it is told that refund (confirmed,
// succeeded), with no second proposal, no second refund.proposed and no
// second confirm button the user could tap for a refund they asked once.
// On Redis the resent turn reaches a second replica.
// Once the proposal would have lapsed (payments.refunds.confirm_ttl), the
// same ask is a new refund and is proposed.
func TestRefundTurnResentAfterTheConfirm(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			up := newScriptedProvider(t, directedScript)
			var ahead atomic.Int64
			src := premiumConfig(t, driver, up.URL, "")
			url, a := serveConfig(t, src, io.Discard, withPaymentsClock(func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }))
			resendURL := url
			if driver == "redis" { // the resent turn reaches another replica
				resendURL, _ = serveConfig(t, src, io.Discard)
			}
			ctx := context.Background()
			const user = "oUser-refund-resent"
			no := chatAs(t, url, user, `call create_order {"sku":"premium-monthly"}`).Get(`paygate.actions.#(type=="order_created").order.order_no`).Str
			if d, err := a.sim.Pay(ctx, no); no == "" || err != nil || !d.Acked {
				t.Fatalf("pay %q: %+v %v", no, d, err)
			}
			ask := `call request_refund {"order_no":"` + no + `","reason":"it does not work","amount":"10.00"}`
			proposed := func(ans gjson.Result) string {
				return ans.Get(`paygate.actions.#(type=="refund_proposed").refund.refund_id`).Str
			}
			id := proposed(chatAs(t, url, user, ask))
			if id == "" {
				t.Fatal("no refund proposed")
			}
			if status, b := httpCall(t, http.MethodPost, url+"/v1/paygate/refunds/"+id+"/confirm", "Bearer "+e2eClientKey, user); status != http.StatusOK {
				t.Fatalf("confirm: %d %s", status, b.Raw)
			}
			if d, err := a.sim.CompleteRefund(ctx, payments.OutRefundNo(id)); err != nil || !d.Acked {
				t.Fatalf("refund notification: %+v %v", d, err)
			}

			again := chatAs(t, resendURL, user, ask) // the same turn, sent again
			reqs := up.requests()
			result := gjson.Get(reqs[len(reqs)-1], "messages.@reverse.0.content").Str
			if other := proposed(again); other != "" {
				t.Errorf("the resent turn proposed refund %s of 10.00 again after the user confirmed %s (tool result %s); want none", other, id, result)
			}
			if !strings.Contains(result, `"refund_already_confirmed"`) || !strings.Contains(result, id) || !strings.Contains(result, `"succeeded"`) {
				t.Errorf("the resent turn's model was told %s; want the refund %s the user confirmed, succeeded", result, id)
			}
			_, o := httpCall(t, http.MethodGet, url+"/v1/paygate/orders/"+no, "Bearer "+e2eClientKey, user)
			if n := o.Get("refunds_proposed.#").Int(); n != 0 {
				t.Errorf("the order lists %d open refund proposals after the resent turn: %s; want none", n, o.Get("refunds_proposed").Raw)
			}
			if n := a.sim.RefundCount(no); n != 1 {
				t.Errorf("%d refunds at WeChat Pay; want 1", n)
			}

			// Past the proposal's life the same ask is a new refund.
			ahead.Store(int64(payments.DefaultRefundConfirmTTL + time.Minute))
			if later := proposed(chatAs(t, url, user, ask)); later == "" || later == id {
				t.Errorf("the ask after confirm_ttl proposed %q; want a new proposal", later)
			}
		})
	}
}
