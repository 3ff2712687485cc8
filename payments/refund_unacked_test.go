package payments_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// driverMode is one case of a test run per store driver and mode.
type driverMode struct{ name, driver, mode string }

func driverModes(t *testing.T, modes ...string) []driverMode {
	var out []driverMode
	for _, d := range drivers(t) {
		for _, m := range modes {
			out = append(out, driverMode{name: d + "/" + m, driver: d, mode: m})
		}
	}
	return out
}

// unackedRefundSteps applies a refund confirmation's step and reports it
// unavailable, as the Redis driver does when WAIT sees too few replicas in
// time (store.redis.wait_replicas) or a write's reply is lost: consume
// (the user's word taken), record (the refund in flight written) or cancel
// (the user's "no" taken). With lost, the step is not applied at all,
// meanwhile run in its place (another replica's answer reaching the store
// first). With unread, the read of the proposal that follows a cancel so reported
// fails too (the store still down).
type unackedRefundSteps struct {
	fullStore
	consume, record, cancel, lost, unread bool
	mu                                    sync.Mutex
	done, failRead                        bool
	meanwhile                             func()
}

var errUnacked = fmt.Errorf("redis: 0 of 1 replicas within 1s: %w", store.ErrUnavailable)

func (u *unackedRefundSteps) first() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	first := !u.done
	u.done = true
	return first
}

func (u *unackedRefundSteps) ConsumeRefundProposal(ctx context.Context, id, user string, ev ...store.Event) (*store.RefundProposal, error) {
	if !u.consume || !u.first() {
		return u.fullStore.ConsumeRefundProposal(ctx, id, user, ev...)
	}
	if u.lost {
		return nil, errUnacked
	}
	p, err := u.fullStore.ConsumeRefundProposal(ctx, id, user, ev...)
	if err != nil {
		return p, err
	}
	return p, errUnacked
}

func (u *unackedRefundSteps) CancelRefundProposal(ctx context.Context, id, user string, ev ...store.Event) (*store.RefundProposal, error) {
	if !u.cancel || !u.first() {
		return u.fullStore.CancelRefundProposal(ctx, id, user, ev...)
	}
	if u.lost {
		if u.meanwhile != nil {
			u.meanwhile()
		}
		return nil, errUnacked
	}
	p, err := u.fullStore.CancelRefundProposal(ctx, id, user, ev...)
	if err != nil {
		return p, err
	}
	u.mu.Lock()
	u.failRead = u.unread
	u.mu.Unlock()
	return p, errUnacked
}

func (u *unackedRefundSteps) RefundProposalState(ctx context.Context, id string) (*store.RefundProposal, store.ProposalState, error) {
	u.mu.Lock()
	fail := u.failRead
	u.failRead = false
	u.mu.Unlock()
	if fail {
		return nil, "", fmt.Errorf("read refund proposal %s: %w", id, errUnacked)
	}
	return u.fullStore.RefundProposalState(ctx, id)
}

func (u *unackedRefundSteps) PutRefundRecord(ctx context.Context, orderNo string, version int64, data []byte, ttl time.Duration) error {
	if !u.record || !u.first() {
		return u.fullStore.PutRefundRecord(ctx, orderNo, version, data, ttl)
	}
	if u.lost {
		return errUnacked
	}
	if err := u.fullStore.PutRefundRecord(ctx, orderNo, version, data, ttl); err != nil {
		return err
	}
	return errUnacked
}

// TestConfirmRefundUnackedStepGoesOn: a confirmation step that applied
// though the store reported it unavailable (the proposal consumed, or the
// refund recorded) is read back, and the confirmation goes on under its
// reservation and sends the refund the user confirmed. Before, the
// confirmation failed with the user's word spent: their retry was told the
// proposal was used, and the sweep sent the order to needs_review with
// nothing refunded (consume), or undid the reservation (record).
func TestConfirmRefundUnackedStepGoesOn(t *testing.T) {
	for _, tc := range driverModes(t, "consume", "record") {
		step := tc.mode
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: tc.driver, storeClock: true, service: func(o *payments.Options) {
				o.Store = &unackedRefundSteps{fullStore: o.Store.(fullStore), consume: step == "consume", record: step == "record"}
			}})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-unacked-"+step, 1)
			p := propose(t, e, o, 0)
			res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
			if err != nil || res.Status == payments.RefundPending || res.Status == "" {
				t.Fatalf("confirm: %+v, %v; want the refund sent", res, err)
			}
			for i := 0; i < 3; i++ {
				e.clock.Advance(2 * time.Minute)
				if _, err := e.svc.Sweep(ctx); err != nil {
					t.Fatalf("sweep: %v", err)
				}
			}
			if n, got := e.sim.RefundCount(o.OrderNo), e.order(o.OrderNo); n != 1 || got.Status != store.StatusRefunding {
				t.Fatalf("refunds sent: %d, order %s (%s); want the confirmed refund sent once, the order refunding", n, got.Status, got.ReviewReason)
			}
			e.clock.Advance(-6 * time.Minute) // the notification's timestamp is checked against the clock
			if d, err := e.sim.CompleteRefund(ctx, p.OutRefundNo); err != nil || !d.Acked {
				t.Fatalf("complete refund: %+v %v", d, err)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusRefunded {
				t.Errorf("order %s (%s); want refunded", got.Status, got.ReviewReason)
			}
		})
	}
}

// TestConfirmRefundLostStepSendsNothing: a step that did not apply (the
// store was down) sends nothing: a proposal not taken is not refunded, and
// a refund not recorded is not sent (the sweep would not know of it).
func TestConfirmRefundLostStepSendsNothing(t *testing.T) {
	for _, tc := range driverModes(t, "consume", "record") {
		step := tc.mode
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: tc.driver, storeClock: true, service: func(o *payments.Options) {
				o.Store = &unackedRefundSteps{fullStore: o.Store.(fullStore), consume: step == "consume", record: step == "record", lost: true}
			}})
			o := paidOrder(t, e, "oUser-lost-"+step, 1)
			p := propose(t, e, o, 0)
			if _, err := e.svc.ConfirmRefund(context.Background(), "shop-bot", o.User, p.RefundID); err == nil {
				t.Errorf("confirm: no error; want the store's")
			}
			if n := e.sim.RefundCount(o.OrderNo); n != 0 {
				t.Errorf("refunds sent: %d; want none", n)
			}
		})
	}
}

// TestCancelNotTakenIsNotAnsweredCancelled: a cancel whose write the store
// did not confirm and did not apply reads the proposal back and, finding it
// open, or taken by the user's confirmation meanwhile (its refund sent), is
// answered 503, not cancelled: "cancelled" for a refund on its way told
// the user no money was coming. Its retry is answered with what stands: the
// proposal cancelled then, or the 409 naming the refund sent once.
func TestCancelNotTakenIsNotAnsweredCancelled(t *testing.T) {
	for _, tc := range driverModes(t, "open", "confirmed") {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: tc.driver, storeClock: true})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-cancel-lost-"+tc.mode, 1)
			p := propose(t, e, o, 0)
			u := &unackedRefundSteps{fullStore: e.st, cancel: true, lost: true}
			if tc.mode == "confirmed" {
				u.meanwhile = func() {
					if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil {
						t.Errorf("confirm meanwhile: %v", err)
					}
				}
			}
			b := replicaOn(t, e, u)
			if got, err := b.CancelRefund(ctx, "shop-bot", o.User, p.RefundID); !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("cancel: %+v, %v; want store.ErrUnavailable, the proposal not cancelled", got, err)
			}
			_, err := b.CancelRefund(ctx, "shop-bot", o.User, p.RefundID)
			var already *payments.AlreadyConfirmedError
			switch {
			case tc.mode == "open" && err != nil:
				t.Errorf("cancel sent again: %v; want it cancelled now", err)
			case tc.mode == "confirmed" && !errors.As(err, &already):
				t.Errorf("cancel sent again: %v; want AlreadyConfirmedError", err)
			}
			if n, want := e.sim.RefundCount(o.OrderNo), map[string]int{"confirmed": 1}[tc.mode]; n != want {
				t.Errorf("refunds at WeChat Pay %d; want %d", n, want)
			}
		})
	}
}
