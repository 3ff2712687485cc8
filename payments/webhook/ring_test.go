package webhook_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestTwoRefundsSkewedClocksNoRing: two refunds of one order while the
// relay is down (a deploy). The first proposal (rA) is made by a replica a
// minute ahead, its outcome recorded seconds later by one on time, and a
// second proposal (rB) made after that, on time too: rA's outcome is
// stamped before rB's proposal, itself stamped before rA's proposal. rA's
// outcome waits for rA's proposal queue (whatever the times), rA's
// refund.proposed waits for rB's (stamped before it), and rB's waited for
// the order's queue, whose head (rA's outcome) was stamped before it: each
// waited for the next in a ring, and none of the three ever reached the
// merchant. Every event must arrive, each refund's outcome after its own
// proposal.
func TestTwoRefundsSkewedClocksNoRing(t *testing.T) {
	for _, driver := range drivers(t) {
		for _, tc := range []struct {
			outcome store.OrderStatus
			aside   bool // moved by the SetAside of a process that runs no relay, not by a relay
		}{{store.StatusPartiallyRefunded, false}, {store.StatusPaid, false}, {store.StatusPartiallyRefunded, true}} {
			outcome := tc.outcome
			name := driver + "/" + string(outcome)
			if tc.aside {
				name += "/set_aside"
			}
			t.Run(name, func(t *testing.T) {
				name := strings.ReplaceAll(name, "/", "_")
				ctx := context.Background()
				clk := newClock()
				rc := newReceiver(t, clk.Now, nil)
				st := testdrivers.Open(t, driver, nil)
				ob := orders{t, st}
				o := ob.create("PRING"+name, store.StatusAwaitingPayment)
				ob.move(o, store.StatusPaid, "notification")
				drain(t, newRelay(t, st, rc.URL, clk.Now, nil)) // order.paid delivered; the relay then stops
				t0 := time.Now()
				propose := func(id string, at time.Time) *store.RefundProposal {
					p := &store.RefundProposal{RefundID: id + name, OrderNo: o.OrderNo, Client: o.Client, User: o.User,
						AmountFen: 1000, OutRefundNo: "RF" + id + name, CreatedAt: at}
					if err := st.PutRefundProposal(ctx, p, 15*time.Minute, webhook.ProposalEvents(ctx, payments.ProposalMade, *p, o)...); err != nil {
						t.Fatal(err)
					}
					return p
				}
				pa := propose("rf_ringA_", t0.Add(time.Minute)) // clock a minute ahead
				ob.move(o, store.StatusRefunding, "refund")
				before := *o
				o.Status, o.UpdatedAt = outcome, t0.Add(5*time.Second) // on time, 5 s later
				if outcome == store.StatusPartiallyRefunded {
					o.RefundedFen = pa.AmountFen
				}
				evs := webhook.Events(payments.Transition{Before: before, After: *o, Cause: "notification", Refund: pa})
				if len(evs) != 1 {
					t.Fatalf("outcome events %+v; want one", evs)
				}
				if err := st.UpdateOrder(ctx, o, before.Status, evs...); err != nil {
					t.Fatal(err)
				}
				propose("rf_ringB_", t0.Add(10*time.Second)) // on time, 10 s later

				if tc.aside {
					// Every event is older than the wait: each one offered is
					// set aside unless it must follow another.
					aside := webhook.SetAside(st, 0, func() time.Time { return time.Now().Add(time.Hour) })
					for range 4 { // the audit worker's passes
						hs, err := st.OutboxHeads(ctx, o.OrderNo, store.ProposalEventKeyPrefix)
						if err != nil {
							t.Fatal(err)
						}
						for _, h := range hs {
							if h.Key != o.OrderNo && gjson.GetBytes(h.Payload, "data.order.order_no").Str != o.OrderNo {
								continue
							}
							if _, err := aside(ctx, h); err != nil {
								t.Fatalf("set aside %s: %v", h.ID, err)
							}
						}
					}
					hs, err := st.OutboxHeads(ctx, o.OrderNo, store.ProposalEventKeyPrefix)
					if err != nil {
						t.Fatal(err)
					}
					for _, h := range hs {
						if h.Key == o.OrderNo || gjson.GetBytes(h.Payload, "data.order.order_no").Str == o.OrderNo {
							t.Fatalf("%s still waits on %s after the passes of a process that runs no relay", gjson.GetBytes(h.Payload, "type").Str, h.Key)
						}
					}
				}
				r := newRelay(t, st, rc.URL, clk.Now, nil) // the relay is back
				drainPasses(t, r, clk, 6)
				outcomeType := webhook.TypeRefundSucceeded
				if outcome == store.StatusPaid {
					outcomeType = webhook.TypeRefundFailed
				}
				got := rc.accepted()
				var types []string
				for _, a := range got {
					types = append(types, a.typ)
				}
				if len(got) != 4 || got[0].typ != webhook.TypeOrderPaid {
					s, _ := st.OutboxStats(ctx)
					var pending []string
					for _, h := range s.Heads {
						pending = append(pending, h.Key+" "+gjson.GetBytes(h.Payload, "type").Str)
					}
					t.Fatalf("accepted %v; want order.paid then both proposals and %s (still pending: %v)", types, outcomeType, pending)
				}
				iProposedA, iOutcome := -1, -1
				for i, a := range got {
					switch {
					case a.typ == webhook.TypeRefundProposed && gjson.GetBytes(a.body, "data.refund.refund_id").Str == pa.RefundID:
						iProposedA = i
					case a.typ == outcomeType:
						iOutcome = i
					}
				}
				if iProposedA < 0 || iOutcome < iProposedA {
					t.Fatalf("accepted %v; rA's %s must follow its refund.proposed", types, outcomeType)
				}
			})
		}
	}
}
