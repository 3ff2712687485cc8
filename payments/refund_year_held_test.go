package payments_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// toYearsEnd moves e's clock to before the end of paid order o's year,
// as WeChat Pay counts it (China Standard Time).
func toYearsEnd(e *env, o *store.Order, before time.Duration) {
	end := o.PaidAt.In(time.FixedZone("CST", 8*3600)).AddDate(1, 0, 0)
	e.clock.Advance(end.Add(-before).Sub(e.clock.Now()))
}

// cutConfirm confirms p of o on replica a, which dies before spending
// the user's word: the order is left held for p, nothing sent.
func cutConfirm(t *testing.T, a *payments.Service, o *store.Order, p *store.RefundProposal) {
	t.Helper()
	if _, err := a.ConfirmRefund(context.Background(), "shop-bot", o.User, p.RefundID); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("confirmation on A: %v; want it cut short", err)
	}
}

// TestHeldRefundConfirmedPastTheYearSendsNothing: a confirmation made in the
// last minutes of the order's year reserved the order and was cut short
// (its replica died before spending the user's word); the user's tap after
// the year ended went on under that reservation and sent the refund, which
// WeChat Pay takes no refund of (交易时间超过一年): the user heard only
// "WeChat Pay refused the refund". The tap refuses it itself, as a tap on
// an order not held does, and sends nothing.
func TestHeldRefundConfirmedPastTheYearSendsNothing(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, storeClock: true})
			ctx := context.Background()
			a := replicaOn(t, e, &cutStore{Store: e.st, at: cutBeforeConsume})
			o := paidOrder(t, e, "oUser-refund-year-held", 1)
			toYearsEnd(e, o, 5*time.Minute)
			p := propose(t, e, o, 0)
			cutConfirm(t, a, o, p)
			if got := e.order(o.OrderNo); got.Status != store.StatusRefunding || got.RefundReservedBy != p.RefundID {
				t.Fatalf("after A died: order %s reserved by %q; want refunding, held for %s", got.Status, got.RefundReservedBy, p.RefundID)
			}
			e.clock.Advance(6 * time.Minute)

			_, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
			if !errors.Is(err, payments.ErrRefundWindowPassed) {
				t.Errorf("tap a minute past the year under the reservation: %v; want ErrRefundWindowPassed", err)
			}
			if n := e.sim.RefundCount(o.OrderNo); n != 0 {
				t.Errorf("refunds sent to WeChat Pay past the order's year: %d; want 0", n)
			}
		})
	}
}

// TestProposalPastTheYearIsNotListed: the user API lists an open proposal
// with its confirm button only while a tap on it can go through
// (Confirmable). One made in the last minutes of the order's year stayed
// listed after the year ended, for up to confirm_ttl (72 hours at most),
// and its button only answered 409, paid more than a year ago: held for
// it or not, it is listed until the year ends and not after.
func TestProposalPastTheYearIsNotListed(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, storeClock: true})
			ctx := context.Background()
			a := replicaOn(t, e, &cutStore{Store: e.st, at: cutBeforeConsume})
			open := paidOrder(t, e, "oUser-refund-year-listed", 1)
			held := paidOrder(t, e, "oUser-refund-year-listed-held", 1)
			toYearsEnd(e, open, 5*time.Minute)
			po, ph := propose(t, e, open, 0), propose(t, e, held, 0)
			cutConfirm(t, a, held, ph)
			cases := []struct {
				name string
				o    *store.Order
				p    *store.RefundProposal
			}{{"open", open, po}, {"held", held, ph}}
			for _, c := range cases {
				if !e.svc.Confirmable(e.order(c.o.OrderNo), c.p) {
					t.Errorf("%s proposal within the year: not confirmable; want listed", c.name)
				}
			}
			e.clock.Advance(6 * time.Minute)
			for _, c := range cases {
				listed := e.svc.Confirmable(e.order(c.o.OrderNo), c.p)
				_, err := e.svc.ConfirmRefund(ctx, "shop-bot", c.o.User, c.p.RefundID)
				if listed || !errors.Is(err, payments.ErrRefundWindowPassed) {
					t.Errorf("%s proposal a minute past the year: confirmable %v, its tap %v; want unlisted, the tap refused as past the year", c.name, listed, err)
				}
			}
		})
	}
}

// TestRefundAskedAgainPastTheYearUnderAHeldProposal: request_refund of an
// order held for the user's open proposal answers with that proposal
// (heldOpen), a confirm button the user taps. Held by a confirmation cut
// short in the year's last minutes and asked again after the year ended,
// it offered that button, which could only be refused as paid more than a
// year ago; it is not_refundable, as for an order not held.
func TestRefundAskedAgainPastTheYearUnderAHeldProposal(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, storeClock: true})
			a := replicaOn(t, e, &cutStore{Store: e.st, at: cutBeforeConsume})
			o := paidOrder(t, e, "oUser-refund-year-asked", 1)
			toYearsEnd(e, o, 5*time.Minute)
			cutConfirm(t, a, o, propose(t, e, o, 0))
			e.clock.Advance(6 * time.Minute)
			tc := call(t, newTools(e), caller(o.User), "request_refund", `{"order_no":"`+o.OrderNo+`","reason":"late"}`)
			if tc.result["status"] != "not_refundable" || tc.result["order_status"] != "paid" || tc.action != nil {
				t.Errorf("asked again a minute past the year: %s, action %s; want not_refundable of a paid order (nothing was sent), no confirm button", tc.out.Result, tc.out.Action)
			}
		})
	}
}

// TestRefundPastTheYearIsNotRefundableWhateverTheAmount: request_refund of
// an order past its year is not_refundable, whatever amount the model
// asked. Asked for more than the order has left, it was asked to clarify
// ("at most 49.99 CNY can be refunded"), and the user was asked about an
// amount of which nothing could be refunded; asked for another amount
// than a proposal the order is held for (a confirmation cut short in the
// year's last minutes), it was told that proposal is still waiting for
// the user's confirmation, a tap that could only be refused.
func TestRefundPastTheYearIsNotRefundableWhateverTheAmount(t *testing.T) {
	for _, driver := range drivers(t) {
		for _, held := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/held=%v", driver, held), func(t *testing.T) {
				e := newEnv(t, envOptions{driver: driver, storeClock: true})
				a := replicaOn(t, e, &cutStore{Store: e.st, at: cutBeforeConsume})
				o := paidOrder(t, e, "oUser-refund-year-amount", 2) // 99.98 CNY
				toYearsEnd(e, o, 5*time.Minute)
				amount := "120.00"
				if held {
					cutConfirm(t, a, o, propose(t, e, o, 4999))
					amount = "10.00"
				}
				e.clock.Advance(6 * time.Minute)
				tc := call(t, newTools(e), caller(o.User), "request_refund", `{"order_no":"`+o.OrderNo+`","reason":"late","amount":"`+amount+`"}`)
				if tc.result["status"] != "not_refundable" || tc.result["order_status"] != "paid" || tc.action != nil {
					t.Errorf("asked %s a minute past the year: %s, action %s; want not_refundable of a paid order, no confirm button", amount, tc.out.Result, tc.out.Action)
				}
			})
		}
	}
}

// TestProposalListedToTheYearsLastSecond: a proposal is listed as
// confirmable (Confirmable) to the last second of the order's year as
// request_refund counts it (refundWindowEnds: the same date and time a
// year on in China Standard Time), past the 365 days of a year with a 29
// February, which WeChat Pay's documents name (支付成功时间+365天): the
// later end blocks no refund WeChat Pay takes. A second past it, it is
// not, and its tap is refused with nothing sent.
func TestProposalListedToTheYearsLastSecond(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	paid := time.Date(2027, 3, 1, 10, 0, 0, 0, cst)
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, storeClock: true})
			o := paidOrder(t, e, "oUser-refund-year-second", 1)
			o.PaidAt = paid
			if err := e.st.UpdateOrder(context.Background(), o, store.StatusPaid); err != nil {
				t.Fatal(err)
			}
			o = e.order(o.OrderNo)
			var p *store.RefundProposal
			for _, c := range []struct {
				at   time.Time
				want bool
			}{
				{paid.Add(365 * 24 * time.Hour), true},
				{paid.AddDate(1, 0, 0).Add(-time.Second), true}, // the clock runs on: not the very instant
				{paid.AddDate(1, 0, 0).Add(time.Second), false},
			} {
				if c.want { // a proposal open 5 minutes before, as confirm_ttl keeps it
					e.clock.Advance(c.at.Add(-5 * time.Minute).Sub(e.clock.Now()))
					p = propose(t, e, o, 0)
				}
				e.clock.Advance(c.at.Sub(e.clock.Now()))
				if got := e.svc.Confirmable(e.order(o.OrderNo), p); got != c.want {
					t.Errorf("at %s: confirmable %v; want %v", c.at, got, c.want)
				}
			}
			if _, err := e.svc.ConfirmRefund(context.Background(), "shop-bot", o.User, p.RefundID); !errors.Is(err, payments.ErrRefundWindowPassed) || e.sim.RefundCount(o.OrderNo) != 0 {
				t.Errorf("tap a second past the year: %v, %d refunds sent; want ErrRefundWindowPassed, none", err, e.sim.RefundCount(o.OrderNo))
			}
		})
	}
}
