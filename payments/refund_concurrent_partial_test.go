package payments_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestConcurrentPartialRefundsNeverSumAboveThePayment: two open proposals
// of 60.00 each on a paid 99.98 order, confirmed by the user at once on two
// replicas of one store: one refund is sent, the other is refused (in
// progress, or more than is left once the first one is applied), and the
// order never refunds more than it was paid.
func TestConcurrentPartialRefundsNeverSumAboveThePayment(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var opts payments.Options
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) { opts = *o }})
			other := otherReplica(t, opts)
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-partial-concurrent", 2) // 9998 fen
			a := propose(t, e, o, 6000)
			b, _, err := other.ProposeRefund(ctx, payments.RefundRequest{Client: "shop-bot", User: o.User, OrderNo: o.OrderNo, Reason: "other half", AmountFen: 6000 - 1})
			if err != nil {
				t.Fatal(err)
			}
			replicas := []*payments.Service{e.svc, other}
			ids := []string{a.RefundID, b.RefundID}
			errs := make([]error, 2)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, errs[i] = replicas[i].ConfirmRefund(ctx, "shop-bot", o.User, ids[i])
				}()
			}
			close(start)
			wg.Wait()
			sent := 0
			for i, err := range errs {
				switch {
				case err == nil:
					sent++
				case errors.Is(err, payments.ErrRefundInProgress), errors.Is(err, payments.ErrRefundAmount):
				default:
					t.Errorf("confirm %d: %v; want it sent, or refused as in progress or above what is left", i, err)
				}
			}
			if sent != 1 || e.sim.RefundCount(o.OrderNo) != 1 {
				t.Fatalf("%d confirmations sent, %d refunds at WeChat Pay; want 1 and 1", sent, e.sim.RefundCount(o.OrderNo))
			}
			// The first applied, the other can no longer run: 60.00 (or 59.99)
			// is more than the 39.98 (or 39.99) left.
			for i, id := range ids {
				if p, ok := e.sim.Refund(payments.OutRefundNo(id)); ok {
					if d, err := e.sim.CompleteRefund(ctx, p.OutRefundNo); err != nil || !d.Acked {
						t.Fatal(d, err)
					}
					j := 1 - i
					if _, err := replicas[j].ConfirmRefund(ctx, "shop-bot", o.User, ids[j]); !errors.Is(err, payments.ErrRefundAmount) {
						t.Errorf("the other proposal after the first refund: %v; want ErrRefundAmount", err)
					}
				}
			}
			got := e.order(o.OrderNo)
			if got.RefundedFen > got.AmountFen || got.Status != store.StatusPartiallyRefunded || e.sim.RefundCount(o.OrderNo) != 1 {
				t.Errorf("order %s refunded %d of %d with %d refunds; want partially_refunded, one refund", got.Status, got.RefundedFen, got.AmountFen, e.sim.RefundCount(o.OrderNo))
			}
		})
	}
}

// TestConfirmReadBeforeAnotherRefundReservedIsRefused: two open proposals
// of 60.00 and 59.99 on a paid 99.98 order. Tap B (59.99) reads the order
// while it is paid; tap A (60.00), on another replica, then reserves the
// order and sends its refund before B reserves. B must be refused (another
// refund in progress) by its reservation, which reads the order again: it
// neither takes over A's reservation nor sends a second refund, and A's
// refund stands. Checked on the read before the reservation alone, B held
// the order for itself under A's refund.
func TestConfirmReadBeforeAnotherRefundReservedIsRefused(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-confirm-stale-read", 2) // 9998 fen
			a := propose(t, e, o, 6000)
			b := propose(t, e, o, 5999)
			late := &onceGetOrder{Store: e.st, after: func() {
				if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, a.RefundID); err != nil {
					t.Errorf("tap A: %v", err)
				}
			}}
			_, err := replicaOn(t, e, late).ConfirmRefund(ctx, "shop-bot", o.User, b.RefundID)
			if !errors.Is(err, payments.ErrRefundInProgress) {
				t.Errorf("tap B: %v; want ErrRefundInProgress", err)
			}
			got := e.order(o.OrderNo)
			if got.RefundReservedBy != a.RefundID || e.sim.RefundCount(o.OrderNo) != 1 {
				t.Errorf("order %s reserved by %q, %d refunds at WeChat Pay; want reserved by A (%s), one refund", got.Status, got.RefundReservedBy, e.sim.RefundCount(o.OrderNo), a.RefundID)
			}
			if _, ok := e.sim.Refund(payments.OutRefundNo(a.RefundID)); !ok {
				t.Errorf("A's refund is not at WeChat Pay")
			}
		})
	}
}
