package payments_test

import (
	"context"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestPrepayNumberUsedOnAPaidOrder: WeChat Pay answers the prepay
// OUT_TRADE_NO_USED, which says it holds an order under the number (with
// other parameters, or paid), here one the payer has paid. paygate closed
// the order as refused and told the user so, while the payer's money was
// taken under its number. The order is queried by its number: paid, it is
// paid; and when the query cannot say, it is left creating for the
// reconciler, which finds it paid, never closed.
func TestPrepayNumberUsedOnAPaidOrder(t *testing.T) {
	t.Run("the query says paid", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		e.sim.InjectFault(wxsim.Fault{Op: "prepay", Kind: wxsim.FaultNumberUsedPaid})
		res, err := e.svc.CreateOrder(context.Background(), payments.CreateRequest{Client: "shop-bot", User: "oUser-number-used", SKU: "premium-monthly"})
		if err != nil || res == nil {
			t.Fatalf("create: %+v, %v; want the order, paid", res, err)
		}
		tx, ok := e.sim.Order(res.Order.OrderNo)
		if !ok || tx.TradeState != "SUCCESS" {
			t.Fatalf("the simulator's order %s: %+v, %v; want paid (the test pays it)", res.Order.OrderNo, tx, ok)
		}
		if got := e.order(res.Order.OrderNo); got.Status != store.StatusPaid || got.TransactionID != tx.TransactionID {
			t.Errorf("order %s, transaction %q; want paid, %q", got.Status, got.TransactionID, tx.TransactionID)
		}
	})
	t.Run("the query is refused", func(t *testing.T) {
		paidButQueryRefusedStaysOpen(t, wxsim.FaultNumberUsedPaid, "oUser-number-used-refused")
	})
}
