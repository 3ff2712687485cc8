package payments_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestLastMinuteRenewalAcrossReplicas: two replicas on one store, each
// asked for the purchase twice at once in its order's last minute, on a
// day with one order left to the user. The order is closed once, one next
// order is opened and counted once, and no ask is handed the closed
// order's payment: never two payable orders of one purchase, nor a payment
// of a closed one.
func TestLastMinuteRenewalAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var opts payments.Options
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				o.Rules.MaxOrdersPerUserPerDay = 2
				opts = *o
			}})
			other := otherReplica(t, opts)
			user := "oUser-last-minute-replicas-" + driver
			old := e.create(user, 1)
			e.clock.Advance(old.ExpiresAt.Sub(e.clock.Now()) - 20*time.Second)
			svcs := []*payments.Service{e.svc, e.svc, other, other}
			res := make([]*payments.CreateResult, len(svcs))
			errs := make([]error, len(svcs))
			var wg sync.WaitGroup
			for i, s := range svcs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res[i], errs[i] = s.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: 1})
				}()
			}
			wg.Wait()
			fresh := map[string]bool{}
			for i := range res {
				if errs[i] != nil && !errors.Is(errs[i], payments.ErrInProgress) {
					t.Errorf("ask %d: %v; want the next order or in progress", i, errs[i])
				}
				if res[i] == nil || res[i].Order == nil {
					continue
				}
				if res[i].Order.OrderNo == old.OrderNo && (res[i].Payment != nil || res[i].CodeURL != "") {
					t.Errorf("ask %d: handed the old order %s's payment (err %v); want the next order", i, old.OrderNo, errs[i])
				}
				if res[i].Order.OrderNo != old.OrderNo {
					fresh[res[i].Order.OrderNo] = true
				}
			}
			if len(fresh) != 1 {
				t.Errorf("next orders answered: %v; want one", fresh)
			}
			if got := e.order(old.OrderNo).Status; got != store.StatusClosed {
				t.Errorf("the old order: %s; want closed", got)
			}
			if n := e.sim.OrderCount(); n != 2 {
				t.Errorf("orders at WeChat Pay: %d; want 2", n)
			}
			if _, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "tip"}); !errors.Is(err, payments.ErrDailyLimit) {
				t.Errorf("a third order of the day: %v; want the daily limit (the renewal counted once)", err)
			}
		})
	}
}

// TestLastMinuteRenewalPaidUnseenAtClose: the close of a renewal is
// answered ORDERPAID by a WeChat Pay replica that has seen the payment
// while the query still says NOTPAY. No next order is opened (the payer
// paid the old one), the old order is left open, the ask is told the
// close was not confirmed; the payment's notification, arriving after the
// close was sent, settles it paid, the next ask is answered already paid,
// and the count the renewal took for the day goes back.
func TestLastMinuteRenewalPaidUnseenAtClose(t *testing.T) {
	ctx := context.Background()
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, notifyTo: "sink", service: func(o *payments.Options) {
				o.Rules.MaxOrdersPerUserPerDay = 2
			}})
			user := "oUser-last-minute-unseen-" + driver
			req := payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: 1}
			old := e.create(user, 1)
			e.clock.Advance(old.ExpiresAt.Sub(e.clock.Now()) - 20*time.Second)
			e.sim.InjectFault(wxsim.Fault{Op: "close", Kind: wxsim.FaultOrderPaidUnseen})
			res, err := e.svc.CreateOrder(ctx, req)
			if !errors.Is(err, payments.ErrPaymentUnavailable) || res == nil || res.Order == nil || res.Order.OrderNo != old.OrderNo || res.Payment != nil {
				t.Fatalf("renewal whose close met an unseen payment: %+v, %v; want the old order, no payment, payment unavailable", res, err)
			}
			if n := e.sim.OrderCount(); n != 1 {
				t.Errorf("orders at WeChat Pay: %d; want 1", n)
			}
			if _, err := e.sim.Pay(ctx, old.OrderNo); err != nil { // its notification lost
				t.Fatalf("pay: %v", err)
			}
			tx, _ := e.sim.Order(old.OrderNo)
			n := e.buildPayment(tx, func(s *wxsim.NotificationSpec) { s.Timestamp = e.clock.Now() })
			if status, body := e.post(n.Header, n.Body); status != http.StatusNoContent {
				t.Fatalf("the payment's notification: %d %s; want 204", status, body)
			}
			if got := e.order(old.OrderNo).Status; got != store.StatusPaid {
				t.Fatalf("after the notification: %s; want paid", got)
			}
			res, err = e.svc.CreateOrder(ctx, req)
			if err != nil || res.Order.OrderNo != old.OrderNo || res.Order.Status != store.StatusPaid {
				t.Errorf("asked again: %+v, %v; want the paid order", res, err)
			}
			if _, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "tip"}); err != nil {
				t.Errorf("a second order of the day: %v; want made (the renewal's count given back)", err)
			}
		})
	}
}
