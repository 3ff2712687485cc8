package payments_test

import (
	"strings"
	"testing"

	"github.com/paygate/paygate/store"
)

// TestRefundOfAnotherAmountAfterACutConfirmationKeepsEarlierRefunds: 10.00
// of a 49.99 order went back, then the user confirmed a refund of the
// 39.99 left and the confirmation was cut short after it reserved the
// order: nothing of it went to WeChat Pay. The user asks for part of it
// instead. The tool result said "no refund of this order has been sent",
// while 10.00 of it had been refunded: a model asked whether any money went
// back could answer no. It says that nothing was sent for the proposal
// still waiting, and gives the order's status, partially refunded.
func TestRefundOfAnotherAmountAfterACutConfirmationKeepsEarlierRefunds(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, storeClock: true})
			o, _ := refundedThenCut(t, e, "oUser-cut-other-kept")
			if got := e.order(o.OrderNo); got.Status != store.StatusRefunding || got.RefundedFen != 1000 {
				t.Fatalf("after A died: order %s, %d fen refunded; want refunding, 1000 fen refunded", got.Status, got.RefundedFen)
			}

			tc := call(t, newTools(e), caller(o.User), "request_refund", `{"order_no":"`+o.OrderNo+`","reason":"only part","amount":"10.00"}`)
			why, _ := tc.result["error"].(string)
			if tc.result["status"] != "refund_in_progress" || tc.action != nil {
				t.Fatalf("request_refund of another amount: %s; want refund_in_progress", tc.out.Result)
			}
			if strings.Contains(why, "no refund of this order has been sent") {
				t.Errorf("request_refund of another amount: %s; 10.00 of the order was refunded", tc.out.Result)
			}
			if !strings.Contains(why, "waiting for the user's confirmation") || tc.result["order_status"] != string(store.StatusPartiallyRefunded) {
				t.Errorf("request_refund of another amount: %s; want the proposal waiting for the user's confirmation, the order partially_refunded", tc.out.Result)
			}
		})
	}
}
