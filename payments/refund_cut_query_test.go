package payments_test

import (
	"context"
	"errors"
	"testing"

	"github.com/paygate/paygate/store"
)

// TestQueryOrderOfACutConfirmationIsTrue: a confirmation cut short after it
// reserved the order and before it spent the user's word sent nothing.
// The payment state the model reads says so (paid, UnsentRefunds), and so
// must query_order, the tool the model calls when the user asks "where is
// my refund?": it answered "refunding", and the model told the user to
// wait for a refund nobody sent, against the state it had just read. A
// refund really on its way is still refunding there. The stored order
// stays reserved (a tap goes on under it).
func TestQueryOrderOfACutConfirmationIsTrue(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, storeClock: true})
			ctx := context.Background()
			a := replicaOn(t, e, &cutStore{Store: e.st, at: cutBeforeConsume})
			const user = "oUser-cut-query"
			cut := paidOrder(t, e, user, 1)
			p := propose(t, e, cut, 0)
			if _, err := a.ConfirmRefund(ctx, "shop-bot", user, p.RefundID); !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("confirmation on A: %v; want it cut short", err)
			}
			sent := paidOrder(t, e, user, 2)
			q := propose(t, e, sent, 0)
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", user, q.RefundID); err != nil {
				t.Fatal(err)
			}
			tools := newTools(e)
			for _, tt := range []struct {
				no, want string
			}{
				{cut.OrderNo, string(store.StatusPaid)},
				{sent.OrderNo, string(store.StatusRefunding)},
			} {
				tc := call(t, tools, caller(user), "query_order", `{"order_no":"`+tt.no+`"}`)
				if tc.result["status"] != tt.want {
					t.Errorf("query_order of %s: %s; want status %s", tt.no, tc.out.Result, tt.want)
				}
			}
			if stored := e.order(cut.OrderNo); stored.Status != store.StatusRefunding || stored.RefundReservedBy != p.RefundID {
				t.Errorf("query_order changed the stored order: %s reserved by %q", stored.Status, stored.RefundReservedBy)
			}
		})
	}
}
