package webhook_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestRefundsSkewedClocksAlwaysDelivered builds, from fixed seeds, an
// order's worst backlogs while no relay runs: several refund proposals,
// outcomes of some of them (the others cancelled or expired: no outcome),
// an order.needs_review and a refund.proposed an older version queued on
// the order's own queue between them, each stamped by a replica whose clock
// is a minute behind, on time or a minute ahead. Once a relay runs, every
// event reaches the merchant (no ring of events waiting for each other),
// each refund's outcome after its own refund.proposed.
func TestRefundsSkewedClocksAlwaysDelivered(t *testing.T) {
	const scenarios = 25
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			clk := newClock()
			rc := newReceiver(t, clk.Now, nil)
			st := testdrivers.Open(t, driver, nil)
			ob := orders{t, st}
			for seed := range uint64(scenarios) {
				rng := rand.New(rand.NewPCG(seed, 7))
				o := ob.create(fmt.Sprintf("PRAND%s%d", driver, seed), store.StatusAwaitingPayment)
				drain(t, newRelay(t, st, rc.URL, clk.Now, nil))
				t0 := time.Now()
				skew := func(step int) time.Time {
					return t0.Add(time.Duration(step)*5*time.Second + time.Duration(rng.IntN(3)-1)*time.Minute)
				}
				var open []string
				var log []string
				want := map[string]bool{}
				// The payment, recorded by a replica on time or a minute
				// ahead, is in the backlog too on odd seeds.
				before := *o
				o.Status, o.UpdatedAt, o.PaidAt, o.TransactionID = store.StatusPaid, t0.Add(time.Duration(rng.IntN(2))*time.Minute), t0, "4200"+o.OrderNo
				paid := webhook.Events(payments.Transition{Before: before, After: *o, Cause: "notification"})
				if err := st.UpdateOrder(ctx, o, before.Status, paid...); err != nil {
					t.Fatal(err)
				}
				if seed%2 == 0 {
					drain(t, newRelay(t, st, rc.URL, clk.Now, nil))
				} else {
					want[paid[0].ID] = true
					log = append(log, "order.paid at "+o.UpdatedAt.Sub(t0).String())
				}
				for step := range 4 + rng.IntN(4) {
					var ev store.Event
					switch k := rng.IntN(6); {
					case k < 3 || len(open) == 0:
						id := fmt.Sprintf("rf_rand_%s_%d_%d", driver, seed, step)
						p := &store.RefundProposal{RefundID: id, OrderNo: o.OrderNo, Client: o.Client, User: o.User,
							AmountFen: 100, OutRefundNo: "RF" + id, CreatedAt: skew(step)}
						evs := webhook.ProposalEvents(ctx, payments.ProposalMade, *p, o)
						if err := st.PutRefundProposal(ctx, p, 15*time.Minute, evs...); err != nil {
							t.Fatal(err)
						}
						open = append(open, id)
						want[evs[0].ID] = true
						log = append(log, "proposed "+id+" at "+p.CreatedAt.Sub(t0).String())
						continue
					case k == 3:
						i := rng.IntN(len(open))
						typ := webhook.TypeRefundSucceeded
						if rng.IntN(2) == 0 {
							typ = webhook.TypeRefundFailed
						}
						ev = webhook.NewEvent(typ, o, map[string]any{"refund_id": open[i], "order_no": o.OrderNo, "amount_fen": 100}, skew(step))
						log = append(log, typ+" "+open[i]+" at "+ev.CreatedAt.Sub(t0).String())
						open = append(open[:i], open[i+1:]...)
					case k == 4:
						ev = webhook.NewEvent(webhook.TypeOrderNeedsReview, o, nil, skew(step))
						log = append(log, "order.needs_review at "+ev.CreatedAt.Sub(t0).String())
					default: // an older version's refund.proposed, on the order's queue
						id := fmt.Sprintf("rf_old_%s_%d_%d", driver, seed, step)
						ev = webhook.NewEvent(webhook.TypeRefundProposed, o, map[string]any{"refund_id": id, "order_no": o.OrderNo}, skew(step))
						log = append(log, "older version's refund.proposed "+id+" at "+ev.CreatedAt.Sub(t0).String())
					}
					if err := st.EnqueueEvents(ctx, ev); err != nil {
						t.Fatal(err)
					}
					want[ev.ID] = true
				}
				drainPasses(t, newRelay(t, st, rc.URL, clk.Now, nil), clk, 8)
				proposedAt := map[string]int{}
				first := true
				for i, a := range rc.accepted() {
					if a.orderNo != o.OrderNo {
						continue
					}
					if first && a.typ != webhook.TypeOrderPaid {
						t.Errorf("seed %d: %s reached the merchant before the order.paid; backlog %v", seed, a.typ, log)
					}
					first = false
					delete(want, a.id)
					refund := gjson.GetBytes(a.body, "data.refund.refund_id").Str
					switch a.typ {
					case webhook.TypeRefundProposed:
						proposedAt[refund] = i
					case webhook.TypeRefundSucceeded, webhook.TypeRefundFailed:
						if _, ok := proposedAt[refund]; !ok {
							t.Errorf("seed %d: %s of %s reached the merchant before its refund.proposed; backlog %v", seed, a.typ, refund, log)
						}
					}
				}
				if len(want) > 0 {
					t.Fatalf("seed %d: %d events never reached the merchant; backlog %v", seed, len(want), log)
				}
			}
		})
	}
}
