package payments_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestLateConfirmationRecordDoesNotOverwriteALaterRefund: a confirmation
// reserves half an order, spends the user's word and is paused (a process
// pause) before it records the refund, past its time limit. Meanwhile the
// sweep records and sends that refund in its place and WeChat Pay settles
// it, and the user confirms a second refund of the rest, recorded and
// sent. When the paused confirmation goes on, the order has moved on from
// the version it reserved: its record must not replace the second
// refund's (whose SUCCESS then found no record of it and sent a fully
// refunded order to needs_review), it must send nothing, and it must not
// tell the user its refund is on its way: it answers with where the
// refund stands, succeeded.
func TestLateConfirmationRecordDoesNotOverwriteALaterRefund(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, storeClock: true})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-late-record", 1)
			p := propose(t, e, o, o.AmountFen/2)
			var later *store.RefundProposal
			paused := replicaOn(t, e, &beforeRecord{Store: e.st, hook: func() {
				// Paused past its bound: the sweep sends the refund the
				// user confirmed, and WeChat Pay settles it.
				for i := 0; i < 2; i++ {
					e.clock.Advance(2 * time.Minute)
					if _, err := e.svc.Sweep(ctx); err != nil {
						t.Fatal(err)
					}
				}
				// The user confirms the refund of the rest once the first settles.
				later = settleThenConfirmRest(ctx, t, e, o, p)
			}})

			res, err := paused.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
			if later == nil {
				t.Fatal("the confirmation recorded no refund: the hook never ran")
			}
			if err != nil || res.Status != payments.RefundSucceeded {
				var status string
				if res != nil {
					status = res.Status
				}
				t.Errorf("paused confirmation answered %q, %v; want its refund as it stands, succeeded (the sweep sent it), not on its way", status, err)
			}
			b, err := e.st.GetExchange(ctx, store.RefundRecordKey(o.OrderNo))
			if err != nil {
				t.Fatal(err)
			}
			var rec struct {
				Proposal store.RefundProposal `json:"proposal"`
			}
			if err := json.Unmarshal(b, &rec); err != nil {
				t.Fatal(err)
			}
			if rec.Proposal.RefundID != later.RefundID {
				t.Errorf("order's refund record names %s; want the second refund's %s", rec.Proposal.RefundID, later.RefundID)
			}

			settleSecondAndCheckRefunded(ctx, t, e, o, p, later, " (by the sweep)")
		})
	}
}
