package payments_test

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestRenewalCutBeforeTheNextOrderKeepsItsMethod: the purchase of a QR
// order (Native, chosen by the user on a desktop) is asked again in the
// order's last minute with no pay method named, which renews it in its own
// method. Killed after the close and before the next order is recorded,
// the renewal is finished by the user's next ask (cutSwitch): that next
// order is the one the renewal would have made, a QR order again. Made in
// the client's first method, the desktop user was handed a JSAPI payment
// they cannot open there. A cut switch to native, asked again with no
// method named, likewise makes the QR order the switch was making.
func TestRenewalCutBeforeTheNextOrderKeepsItsMethod(t *testing.T) {
	both := []string{"jsapi", "native"}
	for _, tt := range []struct {
		name     string
		cut      bool
		moved    bool
		switched bool // the cut ask is a switch from a JSAPI order to native, named
	}{
		{"not cut", false, false, false},
		{"cut before the claim moved", true, false, false},
		{"cut after the claim moved", true, true, false},
		{"switch to native cut", true, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The store stamps the close with the wall clock, which the
			// test's clock has run ahead of by the order's time: a dedupe
			// window that covers it keeps the close within it (cutSwitch).
			sole := func(o *payments.Options) { o.SoleWriter, o.DedupeWindow = true, 24*time.Hour }
			e := newEnv(t, envOptions{driver: "embedded", service: sole})
			ctx := context.Background()
			user := "oUser-renew-cut"
			firstMethod := "native"
			if tt.switched {
				firstMethod = "jsapi"
			}
			first, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", PayMethod: firstMethod, PayMethods: both})
			if err != nil || first.Order == nil {
				t.Fatalf("the QR order: %+v, %v", first, err)
			}
			old := first.Order.OrderNo
			e.clock.Advance(first.Order.ExpiresAt.Sub(e.clock.Now()) - 30*time.Second)
			// pay_method left out: the tool asks in the first method offered, keeping the order's.
			again := payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", PayMethod: "jsapi", KeepPayMethod: true, PayMethods: both}
			if tt.cut {
				st := &diesAtAdvance{Store: e.st, moved: tt.moved}
				cutAsk := again
				if tt.switched {
					cutAsk.PayMethod, cutAsk.KeepPayMethod = "native", false
				}
				_, _ = replicaOn(t, e, st, sole).CreateOrder(ctx, cutAsk)
				if got := e.order(old); got.Status != store.StatusClosed || !st.dead.Load() {
					t.Fatalf("after the cut renewal the old order is %s (cut: %v); want closed, and the process cut", got.Status, st.dead.Load())
				}
			}
			res, err := e.svc.CreateOrder(ctx, again)
			if err != nil || res.Order == nil {
				t.Fatalf("ask again: %+v, %v", res, err)
			}
			if res.Order.OrderNo == old || res.Order.Status != store.StatusAwaitingPayment || res.Order.PayMethod != "native" || res.CodeURL == "" {
				t.Errorf("ask again: order %s (old %s), %s, pay method %s, code_url %q; want the next order, awaiting payment, native with its code_url", res.Order.OrderNo, old, res.Order.Status, res.Order.PayMethod, res.CodeURL)
			}
			if got := e.sim.OrderCount(); got != 2 {
				t.Errorf("WeChat Pay holds %d orders; want the closed one and the next", got)
			}
		})
	}
}
