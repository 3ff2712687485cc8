package webhook_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestProposedBeforeItsRefundWhateverTheClocks: the replica that made a
// refund proposal runs a minute ahead of the one that recorded the refund's
// success (replicas' clocks may differ by that much), so the
// refund.succeeded is stamped before the refund.proposed of the very
// refund it settles. The merchant still hears of the proposal first: a
// refund's outcome waits for its own proposal's queue whatever the times
// say, and the proposal does not wait for its own refund's outcome (the two
// would wait for each other for good). Times alone let the refund.succeeded
// go first: it waited only for proposals stamped before it.
func TestProposedBeforeItsRefundWhateverTheClocks(t *testing.T) {
	for _, driver := range drivers(t) {
		for _, outcome := range []store.OrderStatus{store.StatusRefunded, store.StatusPaid} {
			t.Run(driver+"/"+string(outcome), func(t *testing.T) {
				clk := newClock()
				rc := newReceiver(t, clk.Now, nil)
				st := testdrivers.Open(t, driver, nil)
				ob := orders{t, st}
				o := ob.create("PSKEW"+string(outcome)+driver, store.StatusAwaitingPayment)
				ob.move(o, store.StatusPaid, "notification")
				p := &store.RefundProposal{RefundID: "rf_skew_" + string(outcome), OrderNo: o.OrderNo, Client: o.Client, User: o.User,
					AmountFen: o.AmountFen, OutRefundNo: "RFskew" + string(outcome), CreatedAt: time.Now().Add(time.Minute)}
				if err := st.PutRefundProposal(context.Background(), p, 15*time.Minute,
					webhook.ProposalEvents(context.Background(), payments.ProposalMade, *p, o)...); err != nil {
					t.Fatal(err)
				}
				ob.move(o, store.StatusRefunding, "refund")
				before := *o
				o.Status, o.UpdatedAt = outcome, time.Now()
				if outcome == store.StatusRefunded {
					o.RefundedFen = p.AmountFen
				}
				tr := payments.Transition{Before: before, After: *o, Cause: "notification", Refund: p}
				evs := webhook.Events(tr)
				if len(evs) != 1 || !evs[0].CreatedAt.Before(p.CreatedAt) {
					t.Fatalf("events %+v; want one stamped before the proposal's %v", evs, p.CreatedAt)
				}
				if err := st.UpdateOrder(context.Background(), o, before.Status, evs...); err != nil {
					t.Fatal(err)
				}
				r := newRelay(t, st, rc.URL, clk.Now, nil)
				drainPasses(t, r, clk, 4)
				want := []string{webhook.TypeOrderPaid, webhook.TypeRefundProposed, webhook.TypeRefundSucceeded}
				if outcome == store.StatusPaid {
					want[2] = webhook.TypeRefundFailed
				}
				if got := rc.acceptedTypes(); !slices.Equal(got, want) {
					t.Fatalf("accepted %v; want %v", got, want)
				}
			})
		}
	}
}

// TestPaidBeforeItsProposalWhateverTheClocks: the mirror of
// TestProposedBeforeItsRefundWhateverTheClocks. The replica that made the
// refund proposal runs a minute behind the one that recorded the payment,
// so the refund.proposed is stamped before the order.paid it can only
// follow (a refund is proposed on a paid order), and the order.paid still
// waits on its order's queue behind the payment's audit record (an audit
// worker that lags). The merchant still hears of the payment first: a
// refund.proposed waits for its order's queue while its head is one that
// never waits for a proposal (an order.paid, an audit record), whatever
// the times. By times alone it went first.
func TestPaidBeforeItsProposalWhateverTheClocks(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			rc := newReceiver(t, clk.Now, nil)
			st := testdrivers.Open(t, driver, nil)
			ob := orders{t, st}
			o := ob.create("PSKEWPAID"+driver, store.StatusAwaitingPayment)
			drain(t, newRelay(t, st, rc.URL, clk.Now, nil)) // nothing yet
			before := *o
			o.Status, o.UpdatedAt, o.PaidAt, o.TransactionID = store.StatusPaid, time.Now(), time.Now(), "4200skew"
			rec := store.Event{ID: "aud_skewpaid" + driver, Kind: "audit", Key: o.OrderNo, Payload: []byte(`{}`), CreatedAt: o.UpdatedAt}
			evs := append([]store.Event{rec}, webhook.Events(payments.Transition{Before: before, After: *o, Cause: "notification"})...)
			if err := st.UpdateOrder(context.Background(), o, before.Status, evs...); err != nil {
				t.Fatal(err)
			}
			p := &store.RefundProposal{RefundID: "rf_skewpaid" + driver, OrderNo: o.OrderNo, Client: o.Client, User: o.User,
				AmountFen: o.AmountFen, OutRefundNo: "RFskewpaid" + driver, CreatedAt: time.Now().Add(-time.Minute)}
			if err := st.PutRefundProposal(context.Background(), p, 15*time.Minute,
				webhook.ProposalEvents(context.Background(), payments.ProposalMade, *p, o)...); err != nil {
				t.Fatal(err)
			}
			r := newRelay(t, st, rc.URL, clk.Now, nil)
			drainPasses(t, r, clk, 2)
			if err := st.AckEvent(context.Background(), o.OrderNo, rec.ID); err != nil { // the audit worker catches up
				t.Fatal(err)
			}
			drainPasses(t, r, clk, 4)
			want := []string{webhook.TypeOrderPaid, webhook.TypeRefundProposed}
			if got := rc.acceptedTypes(); !slices.Equal(got, want) {
				t.Fatalf("accepted %v; want %v", got, want)
			}
		})
	}
}
