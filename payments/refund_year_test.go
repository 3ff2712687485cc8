package payments_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestNoRefundProposedPastWeChatPaysYear: WeChat Pay takes no refund of an
// order paid more than a year ago (INVALID_REQUEST). Proposed all the same,
// the user was asked to confirm a refund that could only be refused, and
// heard "refused" after confirming. request_refund says why at once; an
// order within its year is proposed as before.
func TestNoRefundProposedPastWeChatPaysYear(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			within := paidOrder(t, e, "oUser-refund-year-a", 1)
			past := paidOrder(t, e, "oUser-refund-year-b", 1)

			e.clock.Advance(364 * 24 * time.Hour)
			tc := call(t, newTools(e), caller(within.User), "request_refund", `{"order_no":"`+within.OrderNo+`","reason":"late"}`)
			if tc.result["status"] != "awaiting_user_confirmation" {
				t.Fatalf("364 days after payment: %s; want a proposal", tc.out.Result)
			}

			e.clock.Advance(2 * 24 * time.Hour)
			tc = call(t, newTools(e), caller(past.User), "request_refund", `{"order_no":"`+past.OrderNo+`","reason":"late"}`)
			msg, _ := tc.result["error"].(string)
			if tc.result["status"] != "not_refundable" || !strings.Contains(msg, "year") || tc.action != nil {
				t.Errorf("366 days after payment: %s, action %s; want not_refundable saying it is past a year, no proposal", tc.out.Result, tc.out.Action)
			}
			if got := e.order(past.OrderNo); got.Status != store.StatusPaid || got.Version != past.Version {
				t.Errorf("order %s v%d; want paid, untouched", got.Status, got.Version)
			}
		})
	}
}

// TestRefundYearIsWeChatPaysCalendarYear: WeChat Pay's year (交易时间超过一年)
// runs from the payment's success time to the same date and time a year
// later on its own clock, China Standard Time. Counted as 365 days, an
// order paid in the year before a 29 February was answered "paid more than
// a year ago" on the last day of its year, and so was one paid on the
// evening of 28 February UTC (already 1 March in Beijing): the user was
// refused, and told an untruth, a refund WeChat Pay takes. Past the year,
// it is refused as before.
func TestRefundYearIsWeChatPaysCalendarYear(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	cases := []struct {
		name      string
		paid, ask time.Time
		want      string
	}{
		{"365 days into a year with a 29 February", time.Date(2027, 3, 1, 10, 0, 0, 0, cst), time.Date(2028, 2, 29, 15, 0, 0, 0, cst), "awaiting_user_confirmation"},
		{"a second past the year", time.Date(2027, 3, 1, 10, 0, 0, 0, cst), time.Date(2028, 3, 1, 10, 0, 1, 0, cst), "not_refundable"},
		{"1 March in Beijing, 28 February in UTC", time.Date(2027, 2, 28, 17, 0, 0, 0, time.UTC), time.Date(2028, 2, 29, 12, 0, 0, 0, time.UTC), "awaiting_user_confirmation"},
		{"past the year by Beijing's clock", time.Date(2027, 2, 28, 17, 0, 0, 0, time.UTC), time.Date(2028, 2, 29, 17, 0, 1, 0, time.UTC), "not_refundable"},
	}
	for _, driver := range drivers(t) {
		for _, tc := range cases {
			t.Run(driver+"/"+tc.name, func(t *testing.T) {
				e := newEnv(t, envOptions{driver: driver})
				o := paidOrder(t, e, "oUser-refund-calendar", 1)
				o.PaidAt = tc.paid
				if err := e.st.UpdateOrder(context.Background(), o, store.StatusPaid); err != nil {
					t.Fatal(err)
				}
				e.clock.Advance(tc.ask.Sub(e.clock.Now()))
				r := call(t, newTools(e), caller(o.User), "request_refund", `{"order_no":"`+o.OrderNo+`","reason":"late"}`)
				if r.result["status"] != tc.want {
					t.Errorf("paid %s, asked %s: %s; want %s", tc.paid, tc.ask, r.out.Result, tc.want)
				}
			})
		}
	}
}

// TestRefundConfirmedPastTheYearSendsNothing: a refund proposed in the last
// minutes of the order's year (a proposal lives up to 72 hours) and
// confirmed after it ends was sent to WeChat Pay, which takes no refund of
// an order paid more than a year ago: the user heard only "WeChat Pay
// refused the refund". The confirmation now refuses it itself, sends
// nothing, and says why; the order stays paid.
func TestRefundConfirmedPastTheYearSendsNothing(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			o := paidOrder(t, e, "oUser-refund-year-confirm", 1)
			end := o.PaidAt.In(cst).AddDate(1, 0, 0)
			e.clock.Advance(end.Add(-5 * time.Minute).Sub(e.clock.Now()))
			p := propose(t, e, o, 0)
			e.clock.Advance(6 * time.Minute)

			_, err := e.svc.ConfirmRefund(context.Background(), "shop-bot", o.User, p.RefundID)
			if !errors.Is(err, payments.ErrRefundWindowPassed) {
				t.Errorf("confirmed a minute past the year: %v; want ErrRefundWindowPassed", err)
			}
			for _, r := range e.sim.Requests() {
				if r.Op == "refund" {
					t.Errorf("a refund was sent to WeChat Pay past the order's year")
				}
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusPaid || got.RefundReservedBy != "" {
				t.Errorf("order %s reserved by %q; want paid, untouched", got.Status, got.RefundReservedBy)
			}
		})
	}
}
