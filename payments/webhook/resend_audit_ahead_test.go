package webhook_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// audited commits order transitions as paygate does with webhooks on
// (cmd/paygate withWebhookEvents): the transition's audit record, then its
// webhook event, on the order's queue.
type audited struct{ orders }

func (o audited) events(tr payments.Transition) []store.Event {
	return append(audit.TransitionEvents(tr), webhook.Events(tr)...)
}

func (o audited) move(ord *store.Order, to store.OrderStatus, cause string) {
	o.t.Helper()
	before := *ord
	ord.Status, ord.UpdatedAt = to, time.Now()
	if to == store.StatusPaid && ord.PaidAt.IsZero() {
		ord.PaidAt, ord.TransactionID = ord.UpdatedAt, "4200"+ord.OrderNo
	}
	tr := payments.Transition{Before: before, After: *ord, Cause: cause}
	if err := o.st.UpdateOrder(context.Background(), ord, before.Status, o.events(tr)...); err != nil {
		o.t.Fatalf("move %s %s -> %s: %v", ord.OrderNo, before.Status, to, err)
	}
}

func (o audited) refund(ord *store.Order, id string, amount int64) {
	o.t.Helper()
	p := &store.RefundProposal{RefundID: id, OrderNo: ord.OrderNo, AmountFen: amount, Reason: "damaged"}
	for _, to := range []store.OrderStatus{store.StatusRefunding, store.StatusPartiallyRefunded} {
		before := *ord
		ord.Status, ord.UpdatedAt = to, time.Now()
		if to == store.StatusPartiallyRefunded {
			ord.RefundedFen += amount
		}
		tr := payments.Transition{Before: before, After: *ord, Cause: "refund", Refund: p}
		if err := o.st.UpdateOrder(context.Background(), ord, before.Status, o.events(tr)...); err != nil {
			o.t.Fatal(err)
		}
	}
}

// firstHeads closes read after the first outbox heads read (a resend's).
type firstHeads struct {
	store.Store
	once sync.Once
	read chan struct{}
}

func (s *firstHeads) OutboxHeads(ctx context.Context, prefixes ...string) ([]store.Event, error) {
	h, err := s.Store.OutboxHeads(ctx, prefixes...)
	s.once.Do(func() { close(s.read) })
	return h, err
}

// TestResendSeesTheAnnouncementBehindItsAuditRecord: a transition queues
// its audit record ahead of its webhook event on the order's queue, and a
// resend reads only the heads of the order's queues. Until the audit
// worker sealed the record, the webhook event behind it was not seen: a
// paid order's order.paid waiting there was answered 409 "nothing lost"
// with can_force (whose new id has the merchant deliver the goods twice),
// and a refunded order's earlier given-up refund.succeeded was queued
// again behind the later refund's event still waiting there, so the
// merchant's last word on the order was the earlier, smaller refunded
// total. The resend now waits for the record ahead to be sealed, and while
// it is not refuses with a 409 that offers no force and queues nothing.
func TestResendSeesTheAnnouncementBehindItsAuditRecord(t *testing.T) {
	for _, tc := range []struct {
		name string
		// sealed: the audit worker seals the record while the resend
		// waits; otherwise it is not sealed before the resend answers.
		sealed bool
		refund bool // a refunded order with an earlier refund given up
	}{
		{"paid, the record not sealed", false, false},
		{"paid, the record sealed meanwhile", true, false},
		{"refunded, the record not sealed", false, true},
		{"refunded, the record sealed meanwhile", true, true},
	} {
		for _, driver := range drivers(t) {
			t.Run(tc.name+"/"+driver, func(t *testing.T) {
				ctx := context.Background()
				clk := newClock()
				rc, up := downReceiver(t, clk.Now)
				st := testdrivers.Open(t, driver, nil)
				w, err := audit.NewWorker(audit.WorkerOptions{Store: st})
				if err != nil {
					t.Fatal(err)
				}
				seal := func() {
					t.Helper()
					if _, err := w.Drain(ctx); err != nil {
						t.Fatal(err)
					}
				}
				no := "PGAUDITAHEAD" + driver
				if tc.sealed {
					no += "S"
				}
				if tc.refund {
					no += "R"
				}
				ob := audited{orders{t, st}}
				up.Store(true)
				o := ob.orders.create(no, store.StatusAwaitingPayment)
				r := newRelay(t, st, rc.URL, clk.Now, shortWindow)
				drain(t, r)
				if tc.refund {
					ob.orders.move(o, store.StatusPaid, "notification")
					drain(t, r)
					up.Store(false)
					ob.orders.refund(o, "rf_first", 1000)
					runFor(t, r, clk, 14*time.Second)
					if v := getAdminView(t, r); len(v.DeadLetters) != 1 {
						t.Fatalf("dead letters %+v; want the first refund's", v.DeadLetters)
					}
					up.Store(true)
					ob.refund(o, "rf_second", 500)
				} else {
					ob.move(o, store.StatusPaid, "notification")
				}
				h, ok := head(t, st, no)
				if !ok || h.Kind != audit.KindAudit {
					t.Fatalf("order queue head %+v; want the transition's audit record", h)
				}
				// The announcement: the webhook event behind the record.
				wantType := webhook.TypeOrderPaid
				if tc.refund {
					wantType = webhook.TypeRefundSucceeded
				}

				hooked := &firstHeads{Store: st, read: make(chan struct{})}
				rr := newRelay(t, hooked, rc.URL, clk.Now, shortWindow)
				sealed := make(chan struct{})
				if tc.sealed {
					go func() {
						defer close(sealed)
						<-hooked.read
						if _, err := w.Drain(ctx); err != nil {
							t.Error(err)
						}
					}()
				} else {
					close(sealed)
				}
				a := postResend(t, rr, no, "")
				<-sealed
				if !tc.sealed {
					if a.code != http.StatusConflict || a.CanForce {
						t.Fatalf("resend while the record waits: %+v; want a 409 offering no force (the announcement waits behind it)", a)
					}
					if h, _ := head(t, st, no); h.Kind != audit.KindAudit {
						t.Fatalf("order queue head %+v; want the record, the refused resend queueing nothing", h)
					}
					seal()
					a = postResend(t, rr, no, "")
				}
				if a.code != http.StatusOK || !a.AlreadyPending || a.Type != wantType {
					t.Fatalf("resend: %+v; want 200 naming the %s waiting", a, wantType)
				}
				// What the merchant gets: each event once, the order's
				// last word its current state.
				for range 10 {
					seal()
					drain(t, r)
				}
				var last arrival
				for _, x := range rc.accepted() {
					if x.typ == webhook.TypeOrderPaid || x.typ == webhook.TypeRefundSucceeded {
						last = x
					}
				}
				if last.typ != wantType {
					t.Fatalf("merchant's last event %q; want %s (accepted %v)", last.typ, wantType, rc.acceptedTypes())
				}
				if tc.refund {
					if got := gjson.GetBytes(last.body, "data.refund.refunded_fen").Int(); got != 1500 {
						t.Errorf("merchant's last word: %d fen refunded; want 1500 (accepted %v)", got, rc.acceptedTypes())
					}
				}
				if n := countType(rc.accepted(), webhook.TypeOrderPaid); n != 1 {
					t.Errorf("%d order.paid accepted; want 1", n)
				}
			})
		}
	}
}

func countType(as []arrival, typ string) int {
	n := 0
	for _, a := range as {
		if a.typ == typ {
			n++
		}
	}
	return n
}
