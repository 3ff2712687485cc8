package payments_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
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
		rt := &refusingRT{refuse: func(method, path string, nth int) bool {
			return method == http.MethodGet && strings.HasPrefix(path, "/v3/pay/transactions/out-trade-no/") && nth == 1
		}}
		e := newEnv(t, envOptions{client: func(c *wechatpay.Config) { c.Transport = rt }})
		ctx := context.Background()
		e.sim.InjectFault(wxsim.Fault{Op: "prepay", Kind: wxsim.FaultNumberUsedPaid})
		res, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: "oUser-number-used-refused", SKU: "premium-monthly"})
		if errors.Is(err, payments.ErrPrepayRejected) || !errors.Is(err, payments.ErrPaymentUnavailable) || res == nil {
			t.Fatalf("create: %+v, %v; want ErrPaymentUnavailable (WeChat Pay holds the order), not ErrPrepayRejected", res, err)
		}
		no := res.Order.OrderNo
		if got := e.order(no); got.Status != store.StatusCreating {
			t.Fatalf("order %s; want creating, left to the reconciler", got.Status)
		}
		e.clock.Advance(time.Minute)
		if _, err := e.svc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if got := e.order(no); got.Status != store.StatusPaid {
			t.Errorf("after the sweep: order %s; want paid", got.Status)
		}
	})
}
