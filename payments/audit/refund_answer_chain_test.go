package audit

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// cancelOnReserve is a store that, once armed with a proposal, runs the
// user's cancel of it right after a confirmation of it reserved the order
// and before that confirmation consumes it: the cancel commits in between.
type cancelOnReserve struct {
	store.Store
	mu     sync.Mutex
	armed  string
	cancel func(ctx context.Context, id string) error // the user's cancel
	err    error                                      // what it answered
}

func (c *cancelOnReserve) UpdateOrder(ctx context.Context, o *store.Order, expect store.OrderStatus, events ...store.Event) error {
	err := c.Store.UpdateOrder(ctx, o, expect, events...)
	c.mu.Lock()
	id := c.armed
	fire := err == nil && id != "" && o.Status == store.StatusRefunding && o.RefundReservedBy == id
	if fire {
		c.armed = ""
	}
	c.mu.Unlock()
	if fire {
		// Unlocked: the cancel frees the order it reserved, an
		// UpdateOrder of its own through this store.
		cerr := c.cancel(ctx, id)
		c.mu.Lock()
		c.err = cerr
		c.mu.Unlock()
	}
	return err
}

// TestReviewRefundCancelIsAudited: the chain records the user's answer to a
// refund proposal as it was, and a confirmation only once it was used.
//   - A plain cancel: refund.proposed, then refund.cancelled; before, the
//     chain held only refund.proposed, as for a proposal left to expire.
//   - A cancel that commits between a confirmation's reservation of the
//     order and its consumption of the proposal (the confirmation answers
//     410, nothing goes to WeChat Pay): refund.proposed, the order's
//     refund.reserved and refund.aborted, the proposal's refund.cancelled,
//     and no refund.confirmed; before, the reservation was recorded as
//     refund.confirmed and the cancel not at all.
//   - A confirmation that runs: refund.proposed, refund.reserved,
//     refund.confirmed, refund.succeeded, and no refund.cancelled.
//
// A proposal's records (proposed, then the answer) and its order's records
// (reserved, then aborted or succeeded) are two queues, so only the order
// within each is fixed.
func TestRefundAnswersInTheChain(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			st := &cancelOnReserve{Store: e.store()}
			w := newTestWorker(t, e.store(), nil)
			svc, sim := simService(t, st, w, payments.Options{Events: TransitionEvents, ProposalEvents: ProposalEvents})
			st.cancel = func(ctx context.Context, id string) error {
				_, err := svc.CancelRefund(ctx, "shop-bot", "oAlice", id)
				return err
			}

			ctx := context.Background()
			body := []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"refund my plan please"}]}`)
			tctx := payments.WithTurn(ctx, TurnFromRequest("shop-bot", "oAlice", body, "openrouter", "openai/gpt-4o"))
			res, err := svc.CreateOrder(tctx, payments.CreateRequest{Client: "shop-bot", User: "oAlice", SKU: "premium-monthly"})
			if err != nil {
				t.Fatalf("create order: %v", err)
			}
			orderNo := res.Order.OrderNo
			if d, err := sim.Pay(ctx, orderNo); err != nil || !d.Acked {
				t.Fatalf("pay: %+v %v", d, err)
			}
			propose := func(what string) *store.RefundProposal {
				t.Helper()
				p, _, err := svc.ProposeRefund(tctx, payments.RefundRequest{Client: "shop-bot", User: "oAlice", OrderNo: orderNo, Reason: "changed my mind"})
				if err != nil {
					t.Fatalf("propose (%s): %v", what, err)
				}
				return p
			}

			// A plain cancel.
			plain := propose("plain cancel")
			if _, err := svc.CancelRefund(ctx, "shop-bot", "oAlice", plain.RefundID); err != nil {
				t.Fatalf("cancel: %v", err)
			}

			// A cancel that commits between the reservation and the consumption.
			raced := propose("cancel racing confirm")
			st.mu.Lock()
			st.armed = raced.RefundID
			st.mu.Unlock()
			_, cerr := svc.ConfirmRefund(ctx, "shop-bot", "oAlice", raced.RefundID)
			st.mu.Lock()
			armed, rerr := st.armed, st.err
			st.mu.Unlock()
			if armed != "" || !errors.Is(cerr, store.ErrGone) || rerr != nil {
				t.Fatalf("race: confirm err %v (want ErrGone), cancel err %v (want nil), cancel ran %v", cerr, rerr, armed == "")
			}
			if o, _ := e.store().GetOrder(ctx, orderNo); o.Status != store.StatusPaid || o.RefundedFen != 0 {
				t.Fatalf("order after the race: %s refunded %d; want paid, 0", o.Status, o.RefundedFen)
			}
			if got := sim.RefundCount(orderNo); got != 0 {
				t.Fatalf("wechat pay saw %d refunds; want none", got)
			}

			// A confirmation that runs to its end.
			confirmed := propose("confirm")
			if r, err := svc.ConfirmRefund(ctx, "shop-bot", "oAlice", confirmed.RefundID); err != nil || r.Status != payments.RefundProcessing {
				t.Fatalf("confirm: %+v %v; want processing", r, err)
			}
			if _, err := svc.CancelRefund(ctx, "shop-bot", "oAlice", confirmed.RefundID); !errors.Is(err, store.ErrGone) {
				t.Fatalf("cancel after the confirmation: %v; want ErrGone", err)
			}
			if d, err := sim.CompleteRefund(ctx, confirmed.OutRefundNo); err != nil || !d.Acked {
				t.Fatalf("refund notification: %+v %v", d, err)
			}
			if o, _ := e.store().GetOrder(ctx, orderNo); o.Status != store.StatusRefunded || o.RefundedFen != 4999 {
				t.Fatalf("order after the refund: %s refunded %d; want refunded, 4999", o.Status, o.RefundedFen)
			}

			drainAll(t, w)
			_, recs := chainEvents(t, e.store())
			byRefund := map[string][]string{}
			for _, r := range recs {
				if r.RefundID != "" {
					if r.OrderNo != orderNo || r.Client != "shop-bot" || r.User != "oAlice" || r.RefundFen != 4999 {
						t.Errorf("record %s of %s: order %s client %s user %s refund %d; want the proposal's", r.Name, r.RefundID, r.OrderNo, r.Client, r.User, r.RefundFen)
					}
					byRefund[r.RefundID] = append(byRefund[r.RefundID], r.Name+"/"+r.Cause)
				}
			}
			const (
				proposed  = "refund.proposed/request_refund"
				cancelled = "refund.cancelled/cancel"
				reserved  = "refund.reserved/refund"
				aborted   = "refund.aborted/refund_aborted"
				confirm   = "refund.confirmed/confirm"
				succeeded = "refund.succeeded/notification"
			)
			for _, c := range []struct {
				what   string
				id     string
				want   []string
				before [][2]string // pairs of one queue, in their order
			}{
				{"plain cancel", plain.RefundID, []string{proposed, cancelled}, [][2]string{{proposed, cancelled}}},
				{"cancel racing confirm", raced.RefundID, []string{proposed, reserved, cancelled, aborted},
					[][2]string{{proposed, cancelled}, {reserved, aborted}}},
				{"confirm", confirmed.RefundID, []string{proposed, reserved, confirm, succeeded},
					[][2]string{{proposed, confirm}, {reserved, succeeded}}},
			} {
				got := byRefund[c.id]
				if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(c.want))) {
					t.Errorf("%s: the chain records %v for the proposal; want %v (in any order across the proposal's and the order's queues)", c.what, got, c.want)
					continue
				}
				for _, p := range c.before {
					if slices.Index(got, p[0]) > slices.Index(got, p[1]) {
						t.Errorf("%s: the chain records %v; want %s before %s", c.what, got, p[0], p[1])
					}
				}
			}
		})
	}
}
