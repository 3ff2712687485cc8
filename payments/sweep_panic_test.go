package payments_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// panicsFor panics in every query of one order or refund number, as the
// SDK does on some answers it does not expect, and asks WeChat Pay as
// usual for every other.
type panicsFor struct {
	payments.Backend
	no atomic.Pointer[string]
}

func (b *panicsFor) is(no string) bool {
	p := b.no.Load()
	return p != nil && *p == no
}

func (b *panicsFor) QueryOrder(ctx context.Context, no string) (*wechatpay.Transaction, error) {
	if b.is(no) {
		var tx *wechatpay.Transaction
		_ = tx.TradeState // nil dereference
	}
	return b.Backend.QueryOrder(ctx, no)
}

func (b *panicsFor) QueryRefund(ctx context.Context, no string) (*wechatpay.Refund, error) {
	if b.is(no) {
		var r *wechatpay.Refund
		_ = r.Status // nil dereference
	}
	return b.Backend.QueryRefund(ctx, no)
}

// TestSweepPanicOnOneOrderSweepsTheRest: a panic in the reconcile of one
// order (the SDK's, on an answer it does not expect) is that order's
// failed reconcile, as an error is: the sweep goes on with the others. It
// ended the whole pass, and since the same order panicked on every pass
// and the sweep goes newest first, every order listed after it (expired
// orders never closed, refunds whose notification was lost never asked
// about) stayed as it was for good; with a shared store the replica also
// held their sweep leases, so no other replica swept them either.
func TestSweepPanicOnOneOrderSweepsTheRest(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			// lost delivers no notification: WeChat Pay's word comes from
			// the sweep's queries alone.
			lost, cancel := context.WithCancel(ctx)
			cancel()
			var b *panicsFor
			e := newEnv(t, envOptions{driver: driver, storeClock: true, service: func(o *payments.Options) {
				b = &panicsFor{Backend: o.Backend}
				o.Backend = b
			}})
			older := e.create("oUser-sweep-panic-older", 1)
			paidLost := e.create("oUser-sweep-panic-paid", 1)
			if _, err := e.sim.Pay(lost, paidLost.OrderNo); err != nil {
				t.Fatal(err)
			}
			r := paidOrder(t, e, "oUser-sweep-panic-refund", 1)
			p := propose(t, e, r, 0)
			if res, err := e.svc.ConfirmRefund(ctx, "shop-bot", r.User, p.RefundID); err != nil || res.Status != payments.RefundProcessing {
				t.Fatalf("confirm: %+v, %v; want processing", res, err)
			}
			if _, err := e.sim.CompleteRefund(lost, p.OutRefundNo); err != nil {
				t.Fatal(err)
			}
			// Two refunds with WeChat Pay, for the second sweep.
			r2 := paidOrder(t, e, "oUser-sweep-panic-refund2", 1)
			p2 := propose(t, e, r2, 0)
			if res, err := e.svc.ConfirmRefund(ctx, "shop-bot", r2.User, p2.RefundID); err != nil || res.Status != payments.RefundProcessing {
				t.Fatalf("confirm: %+v, %v; want processing", res, err)
			}
			r3 := paidOrder(t, e, "oUser-sweep-panic-refund3", 1)
			p3 := propose(t, e, r3, 0)
			if res, err := e.svc.ConfirmRefund(ctx, "shop-bot", r3.User, p3.RefundID); err != nil || res.Status != payments.RefundProcessing {
				t.Fatalf("confirm: %+v, %v; want processing", res, err)
			}
			e.clock.Advance(time.Second)
			newest := e.create("oUser-sweep-panic-newest", 1)
			poison := newest.OrderNo
			b.no.Store(&poison)
			e.clock.Advance(payments.DefaultOrderTTL + time.Minute)

			st, err := e.svc.Sweep(ctx)
			if err != nil {
				t.Fatalf("sweep: %+v, %v", st, err)
			}
			if st.Errors != 1 {
				t.Errorf("sweep: %+v; want one error, the order that panicked", st)
			}
			for no, want := range map[string]store.OrderStatus{
				older.OrderNo: store.StatusExpired, paidLost.OrderNo: store.StatusPaid,
				r.OrderNo: store.StatusRefunded, newest.OrderNo: store.StatusAwaitingPayment,
			} {
				if got := e.order(no).Status; got != want {
					t.Errorf("order %s after a sweep in which %s panicked: %s; want %s", no, poison, got, want)
				}
			}
			if !strings.Contains(e.logs.String(), "panicked") || !strings.Contains(e.logs.String(), poison) {
				t.Errorf("no log line names the order whose reconcile panicked; log:\n%s", e.logs.String())
			}

			// A refund whose query panics is that refund's failed
			// reconcile too: r3's, the newer, swept first.
			if _, err := e.sim.CompleteRefund(lost, p2.OutRefundNo); err != nil {
				t.Fatal(err)
			}
			b.no.Store(&p3.OutRefundNo)
			e.clock.Advance(2 * payments.DefaultSweepInterval * 3)
			if st, err := e.svc.Sweep(ctx); err != nil || st.Errors != 1 {
				t.Errorf("sweep: %+v, %v; want one error, the refund that panicked", st, err)
			}
			if got := e.order(r2.OrderNo).Status; got != store.StatusRefunded {
				t.Errorf("order %s after a sweep in which refund %s panicked: %s; want refunded", r2.OrderNo, p3.OutRefundNo, got)
			}
		})
	}
}
