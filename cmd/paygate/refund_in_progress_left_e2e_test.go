package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestStaleRefundTappedWhileAnotherRunsIsToldWhatWillBeLeft: the model
// proposed everything left of a paid 99.98 order, then, asked, 10.00
// instead; the user confirmed the 10.00, and while WeChat Pay has it taps
// the first button (on Redis, through a second replica). The 409 told them
// "try again when it is done"; tapped again once it was done, the refund
// was refused as more than the 89.98 left. The 409 says what the refund
// in flight leaves and that this one cannot go through then. Once the 10.00
// went through, the tap is refused as more than is left, as foretold, and
// GET /v1/paygate/orders/{no} says refunded_fen 1000, partially_refunded.
func TestStaleRefundTappedWhileAnotherRunsIsToldWhatWillBeLeft(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			up := newScriptedProvider(t, directedScript)
			src := premiumConfig(t, driver, up.URL, "")
			url, a := serveConfig(t, src, io.Discard)
			tapURL := url
			if driver == "redis" { // the stale tap reaches another replica
				tapURL, _ = serveConfig(t, src, io.Discard)
			}
			ctx := context.Background()
			const user = "oUser-stale-tap"
			no, proposed := paidPremiumOrder(t, url, a, user)
			all, part := proposed(``), proposed(`,"amount":"10.00"`)
			confirm := func(base, id string) (int, gjson.Result) {
				return httpCall(t, http.MethodPost, base+"/v1/paygate/refunds/"+id+"/confirm", "Bearer "+e2eClientKey, user)
			}
			if status, b := confirm(url, part); status/100 != 2 {
				t.Fatalf("confirm 10.00: %d %s", status, b.Raw)
			}
			status, b := confirm(tapURL, all)
			msg := b.Get("error.message").Str
			if status != http.StatusConflict || b.Get("error.code").Str != "refund_in_progress" ||
				!strings.Contains(msg, "10.00 CNY") || !strings.Contains(msg, "89.98 CNY is left") || !strings.Contains(msg, "99.98 CNY") {
				t.Errorf("tap of 99.98 while 10.00 runs: %d %s; want 409 refund_in_progress saying 10.00 in flight leaves 89.98, less than 99.98", status, b.Raw)
			}
			if d, err := a.sim.CompleteRefund(ctx, payments.OutRefundNo(part)); err != nil || !d.Acked {
				t.Fatalf("10.00 succeeded: %+v %v", d, err)
			}
			if status, b := confirm(tapURL, all); status != http.StatusConflict || b.Get("error.code").Str != "refund_not_possible" {
				t.Errorf("tap of 99.98 after 10.00 went: %d %s; want 409 refund_not_possible", status, b.Raw)
			}
			_, o := httpCall(t, http.MethodGet, url+"/v1/paygate/orders/"+no, "Bearer "+e2eClientKey, user)
			if o.Get("status").Str != "partially_refunded" || o.Get("refunded_fen").Int() != 1000 {
				t.Errorf("order after: %s; want partially_refunded, refunded_fen 1000", o.Raw)
			}
			if n := a.sim.RefundCount(no); n != 1 {
				t.Errorf("%d refunds at WeChat Pay; want the 10.00 alone", n)
			}
		})
	}
}

// TestStaleRefundTappedThatNeverFitsIsNotPromisedOnFailure: a paid 99.98
// order; everything left (99.98) proposed, then 10.00 instead, confirmed
// and succeeded, then 20.00, confirmed and with WeChat Pay when the user
// taps the first button. 99.98 is more than the 89.98 left now: whatever
// the 20.00 ends as, the tap cannot go through. The 409 said "should it
// fail instead, this one can be confirmed then", and once WeChat Pay
// closed the 20.00 the tap was refused as more than is left. The 409 says
// it cannot be confirmed either way, and the tap after the close is
// refused so.
func TestStaleRefundTappedThatNeverFitsIsNotPromisedOnFailure(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			up := newScriptedProvider(t, directedScript)
			src := premiumConfig(t, driver, up.URL, "")
			url, a := serveConfig(t, src, io.Discard)
			ctx := context.Background()
			const user = "oUser-stale-never"
			no, proposed := paidPremiumOrder(t, url, a, user)
			confirm := func(id string) (int, gjson.Result) {
				return httpCall(t, http.MethodPost, url+"/v1/paygate/refunds/"+id+"/confirm", "Bearer "+e2eClientKey, user)
			}
			all, first := proposed(``), proposed(`,"amount":"10.00"`)
			if status, b := confirm(first); status/100 != 2 {
				t.Fatalf("confirm 10.00: %d %s", status, b.Raw)
			}
			if d, err := a.sim.CompleteRefund(ctx, payments.OutRefundNo(first)); err != nil || !d.Acked {
				t.Fatalf("10.00 succeeded: %+v %v", d, err)
			}
			second := proposed(`,"amount":"20.00"`)
			if status, b := confirm(second); status/100 != 2 {
				t.Fatalf("confirm 20.00: %d %s", status, b.Raw)
			}
			status, b := confirm(all)
			msg := b.Get("error.message").Str
			if status != http.StatusConflict || b.Get("error.code").Str != "refund_in_progress" ||
				strings.Contains(msg, "can be confirmed then") || !strings.Contains(msg, "89.98 CNY left now") {
				t.Errorf("tap of 99.98 while 20.00 runs, 89.98 left: %d %s; want 409 refund_in_progress saying it cannot go through whatever the 20.00 ends as (more than the 89.98 CNY left now)", status, b.Raw)
			}
			if d, err := a.sim.CloseRefund(ctx, payments.OutRefundNo(second)); err != nil || !d.Acked {
				t.Fatalf("20.00 closed: %+v %v", d, err)
			}
			if status, b := confirm(all); status != http.StatusConflict || b.Get("error.code").Str != "refund_not_possible" {
				t.Errorf("tap of 99.98 after the 20.00 closed: %d %s; want 409 refund_not_possible", status, b.Raw)
			}
			if n := a.sim.RefundCount(no); n != 2 {
				t.Errorf("%d refunds at WeChat Pay; want the 10.00 and the 20.00", n)
			}
		})
	}
}

// paidPremiumOrder is user's paid 99.98 order (2 x premium-monthly), made
// and paid through url, and a function proposing a refund of it with the
// request_refund arguments args adds after its reason (`,"amount":"10.00"`;
// none for everything left), returning the proposal's id.
func paidPremiumOrder(t *testing.T, url string, a *app, user string) (string, func(args string) string) {
	t.Helper()
	no := chatAs(t, url, user, `call create_order {"sku":"premium-monthly","quantity":2}`).Get(`paygate.actions.#(type=="order_created").order.order_no`).Str
	if d, err := a.sim.Pay(context.Background(), no); no == "" || err != nil || !d.Acked {
		t.Fatalf("pay %q: %+v %v", no, d, err)
	}
	return no, func(args string) string {
		t.Helper()
		id := chatAs(t, url, user, `call request_refund {"order_no":"`+no+`","reason":"unused"`+args+`}`).Get(`paygate.actions.#(type=="refund_proposed").refund.refund_id`).Str
		if id == "" {
			t.Fatalf("request_refund %s proposed nothing", args)
		}
		return id
	}
}
