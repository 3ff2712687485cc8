package payments_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestCreatingOrderOfMethodTakenOff: an order left creating (its prepay's
// outcome unknown) whose pay method the merchant has since taken off
// (payments.pay_methods, clients[].pay_methods) is not prepaid again in
// that method by the sweep: the merchant may no longer have the product
// (a JSAPI order of a bot now offered Native alone), and the prepay the
// sweep sent opened a payable order the user's bot no longer offers.
// Never opened at WeChat Pay (the query says not found), it is closed
// here with no call (nobody holds payment parameters of a creating
// order) and its count of the day goes back, as a refused prepay's does;
// the user's next turn reads it closed without payment. Held at WeChat
// Pay, it is queried as usual: paid there, it is paid here; unpaid, it is
// closed there, then here.
func TestCreatingOrderOfMethodTakenOff(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// atWeChatPay opens (and may pay) the order at WeChat Pay with
		// the parameters paygate's lost prepay sent.
		atWeChatPay func(t *testing.T, e *env, o *store.Order)
		want        store.OrderStatus
		wantAtSim   string // the order's trade_state at WeChat Pay; "": none
		countBack   bool
	}{
		{name: "never opened", want: store.StatusClosed, countBack: true},
		{name: "open at wechat pay", atWeChatPay: openAsSent, want: store.StatusClosed, wantAtSim: "CLOSED"},
		{name: "paid at wechat pay", atWeChatPay: func(t *testing.T, e *env, o *store.Order) {
			openAsSent(t, e, o)
			if _, err := e.sim.Pay(ctx, o.OrderNo); err != nil {
				t.Fatalf("pay: %v", err)
			}
		}, want: store.StatusPaid, wantAtSim: "SUCCESS"},
	}
	for _, driver := range drivers(t) {
		for _, tt := range tests {
			t.Run(driver+"/"+tt.name, func(t *testing.T) {
				var methods atomic.Pointer[[]string]
				both := []string{"jsapi", "native"}
				methods.Store(&both)
				e := newEnv(t, envOptions{driver: driver, notifyTo: "sink", service: func(o *payments.Options) {
					o.PayMethods = func(string) []string { return *methods.Load() }
					o.Rules.MaxOrdersPerUserPerDay = 1
				}})
				e.sim.InjectFault(wxsim.Fault{Op: "prepay", Kind: wxsim.FaultSystemError, Times: 3})
				user := "oUser-creating-method-off-" + driver
				res, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", PayMethod: "jsapi"})
				if !errors.Is(err, payments.ErrPaymentUnavailable) || res == nil || res.Order.Status != store.StatusCreating {
					t.Fatalf("got %+v, %v; want the order kept creating and ErrPaymentUnavailable", res, err)
				}
				no := res.Order.OrderNo
				if tt.atWeChatPay != nil {
					tt.atWeChatPay(t, e, e.order(no))
				}
				prepaysBefore := len(prepayOps(e.sim))
				native := []string{"native"} // restarted with payments.pay_methods: [native]
				methods.Store(&native)
				e.clock.Advance(payments.DefaultCreatingGrace + time.Second)
				if st, err := e.svc.Sweep(ctx); err != nil || st.Errors != 0 {
					t.Fatalf("sweep: %+v, %v", st, err)
				}
				if ops := prepayOps(e.sim)[prepaysBefore:]; len(ops) != 0 {
					t.Errorf("prepays the sweep sent: %q; want none (jsapi is taken off)", ops)
				}
				if got := e.order(no).Status; got != tt.want {
					t.Errorf("order after the sweep: %s; want %s", got, tt.want)
				}
				if tx, ok := e.sim.Order(no); ok != (tt.wantAtSim != "") || tx.TradeState != tt.wantAtSim {
					t.Errorf("at WeChat Pay: %q (held: %v); want %q", tx.TradeState, ok, tt.wantAtSim)
				}
				if tt.countBack {
					next, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", PayMethod: "native", PayMethods: native})
					if err != nil || next.Order.Status != store.StatusAwaitingPayment || next.Order.OrderNo == no {
						t.Errorf("the purchase asked again by QR on a day limited to one order: %+v, %v; want a new native order (the closed one was never opened)", next, err)
					}
				}
			})
		}
	}
}

// openAsSent opens o at WeChat Pay with the parameters paygate's prepay
// sends: a prepay that reached WeChat Pay and whose answer was lost.
func openAsSent(t *testing.T, e *env, o *store.Order) {
	t.Helper()
	if _, err := e.client.Prepay(context.Background(), wechatpay.PrepayRequest{
		Method: wechatpay.PayMethod(o.PayMethod), OutTradeNo: o.OrderNo, Description: o.Description,
		Total: o.AmountFen, PayerOpenID: o.User, AppID: o.AppID, ExpireAt: o.ExpiresAt,
	}); err != nil {
		t.Fatalf("open %s at WeChat Pay: %v", o.OrderNo, err)
	}
}
