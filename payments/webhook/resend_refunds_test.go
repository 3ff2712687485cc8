package webhook_test

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestResendSendsEveryGivenUpRefund: a refund.succeeded tells of one
// refund (data.refund.amount_fen is that refund's, README), so a later one
// does not stand for an earlier one the merchant never got. A resend
// without force queues every given-up refund.succeeded of the order again,
// oldest first, each under its own id and with its own body: the merchant
// revokes each refund once, what it handled before it discards by id.
// Before, with two given up, only the one announcing the current state
// went out and the earlier one was cleared (the merchant revoked 500 of
// 1500 refunded); with the earlier one given up and the later one
// delivered, a new id carrying the total went out (it revoked 1500 on top
// of the 500 it had: 2000 of 1500).
func TestResendSendsEveryGivenUpRefund(t *testing.T) {
	for _, tc := range []struct {
		name string
		// second is what became of the second refund's event: "given up"
		// with the first, "delivered" (the endpoint was back), or
		// "retried" (still waiting when the resend comes).
		second string
	}{
		{"both given up", "given up"},
		{"the first given up, the second delivered", "delivered"},
		{"the first given up, the second still retried", "retried"},
	} {
		for _, driver := range drivers(t) {
			t.Run(tc.name+"/"+driver, func(t *testing.T) {
				clk := newClock()
				rc, up := downReceiver(t, clk.Now)
				st := testdrivers.Open(t, driver, nil)
				ob := orders{t, st}
				no := "PGRESENDREFUNDS" + strings.ReplaceAll(tc.second, " ", "") + driver
				up.Store(true)
				o := ob.create(no, store.StatusAwaitingPayment)
				ob.move(o, store.StatusPaid, "notification")
				r := newRelay(t, st, rc.URL, clk.Now, shortWindow)
				drain(t, r)
				refund := func(id string, amount int64) { ob.refund(o, id, amount) }
				up.Store(false)
				refund("rf_first", 1000)
				want := 2 // dead letters
				switch tc.second {
				case "given up":
					refund("rf_second", 500)
					runFor(t, r, clk, 14*time.Second)
				case "delivered":
					runFor(t, r, clk, 8*time.Second)
					up.Store(true)
					refund("rf_second", 500)
					drain(t, r)
					want = 1
				case "retried":
					runFor(t, r, clk, 8*time.Second)
					refund("rf_second", 500)
					drain(t, r) // refused once; retried in a second
					want = 1
				}
				up.Store(true)
				v := getAdminView(t, r)
				if len(v.DeadLetters) != want {
					t.Fatalf("dead letters %+v; want %d refund.succeeded", v.DeadLetters, want)
				}
				// The merchant's view: each refund id acted on once, with
				// that refund's amount.
				revoked := map[string]int64{}
				act := func(as []arrival) {
					for _, a := range as {
						if a.typ != webhook.TypeRefundSucceeded || a.status != http.StatusOK {
							continue
						}
						if _, ok := revoked[a.id]; !ok {
							revoked[a.id] = gjson.GetBytes(a.body, "data.refund.amount_fen").Int()
						}
					}
				}
				act(rc.arrivals())
				var dead []string
				for _, d := range v.DeadLetters {
					dead = append(dead, d.EventID)
				}
				givenUp := map[string][]byte{}
				for _, a := range rc.arrivals() {
					if a.typ == webhook.TypeRefundSucceeded && slices.Contains(dead, a.id) {
						givenUp[a.id] = a.body
					}
				}

				wantCode := http.StatusAccepted
				if tc.second == "retried" {
					wantCode = http.StatusOK // names the one waiting
					for _, a := range rc.arrivals() {
						if gjson.GetBytes(a.body, "data.refund.refund_id").Str == "rf_second" {
							givenUp[a.id] = a.body // not given up, but sent once more
						}
					}
				}
				if a := postResend(t, r, no, ""); a.code != wantCode || a.Type != webhook.TypeRefundSucceeded {
					t.Fatalf("resend: %+v; want %d with a refund.succeeded", a, wantCode)
				}
				before := len(rc.arrivals())
				runFor(t, r, clk, 2*time.Second)
				got := rc.arrivals()[before:]
				if len(got) != len(givenUp) {
					t.Errorf("after the resend: %d POSTs; want the %d given-up refund.succeeded", len(got), len(givenUp))
				}
				for _, a := range got {
					if body, ok := givenUp[a.id]; !ok || !bytes.Equal(body, a.body) {
						t.Errorf("resent %s %s; want only the given-up events, under their ids, bodies unchanged", a.id, a.body)
					}
				}
				act(got)
				var sum int64
				for _, amt := range revoked {
					sum += amt
				}
				if sum != 1500 || len(revoked) != 2 {
					t.Errorf("the merchant revoked %v (%d fen); want the two refunds, 1000 and 500, once each", revoked, sum)
				}
				if v := getAdminView(t, r); len(v.DeadLetters) != 0 {
					t.Errorf("dead letters after the resend: %+v; want none", v.DeadLetters)
				}
			})
		}
	}
}

// TestResendSendsGivenUpRefundsInTheirOrder: given-up refund.succeeded
// events go out again in the order of their refunds, whenever each was
// given up: one queued again by an earlier resend (its queue time is when
// that resend queued it) behind the later refund's event still being
// retried, then given up after it, went out after it once more, though it
// tells of the earlier refund, and the merchant's last word on the order
// was the earlier, smaller refunded total (1000, not 1500).
func TestResendSendsGivenUpRefundsInTheirOrder(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			rc, up := downReceiver(t, clk.Now)
			st := testdrivers.Open(t, driver, nil)
			ob := orders{t, st}
			no := "PGRESENDORDER" + driver
			up.Store(true)
			o := ob.create(no, store.StatusAwaitingPayment)
			ob.move(o, store.StatusPaid, "notification")
			r := newRelay(t, st, rc.URL, clk.Now, shortWindow)
			drain(t, r)
			refund := func(id string, amount int64) { ob.refund(o, id, amount) }
			up.Store(false)
			refund("rf_first", 1000)
			runFor(t, r, clk, 8*time.Second) // rf_first given up
			refund("rf_second", 500)
			drain(t, r) // refused once; retried
			if a := postResend(t, r, no, ""); a.code != http.StatusOK {
				t.Fatalf("resend while rf_second is retried: %+v; want 200 naming it", a)
			}
			runFor(t, r, clk, 20*time.Second) // both given up, rf_first queued behind rf_second
			if v := getAdminView(t, r); len(v.DeadLetters) != 2 {
				t.Fatalf("dead letters %+v; want both refund.succeeded", v.DeadLetters)
			}
			up.Store(true)
			if a := postResend(t, r, no, ""); a.code != http.StatusAccepted {
				t.Fatalf("resend: %+v; want 202", a)
			}
			before := len(rc.arrivals())
			runFor(t, r, clk, 2*time.Second)
			var got []string
			for _, a := range rc.arrivals()[before:] {
				got = append(got, gjson.GetBytes(a.body, "data.refund.refund_id").Str)
			}
			if !slices.Equal(got, []string{"rf_first", "rf_second"}) {
				t.Errorf("resent refunds %v; want rf_first then rf_second, in the order of the refunds", got)
			}
		})
	}
}

// TestResendEndsOnTheOrdersRefundedTotal: with the first refund's
// refund.succeeded given up and the second's still retried, a resend
// queued the first behind the second, so that once the merchant was back
// it got the second (1500 refunded) and then the first (1000): a merchant
// keeping the order as its events tell it (data.order, data.refund's
// refunded_fen) ended holding 1000 of 1500 refunded. The refunds' events
// now reach it in the order of the refunds, each once, the last telling
// the order's state.
func TestResendEndsOnTheOrdersRefundedTotal(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			rc, up := downReceiver(t, clk.Now)
			st := testdrivers.Open(t, driver, nil)
			ob := orders{t, st}
			no := "PGRESENDTOTAL" + driver
			up.Store(true)
			o := ob.create(no, store.StatusAwaitingPayment)
			ob.move(o, store.StatusPaid, "notification")
			r := newRelay(t, st, rc.URL, clk.Now, shortWindow)
			drain(t, r)
			up.Store(false)
			ob.refund(o, "rf_first", 1000)
			runFor(t, r, clk, 8*time.Second) // rf_first given up
			ob.refund(o, "rf_second", 500)
			drain(t, r) // rf_second refused once; retried
			if a := postResend(t, r, no, ""); a.code/100 != 2 || a.Type != webhook.TypeRefundSucceeded {
				t.Fatalf("resend while rf_second is retried: %+v; want it accepted", a)
			}
			up.Store(true)
			runFor(t, r, clk, 10*time.Second)
			var got []string
			var last arrival
			for _, a := range rc.accepted() {
				if a.typ == webhook.TypeRefundSucceeded {
					got = append(got, gjson.GetBytes(a.body, "data.refund.refund_id").Str)
					last = a
				}
			}
			if !slices.Equal(got, []string{"rf_first", "rf_second"}) {
				t.Errorf("the merchant accepted refunds %v; want rf_first then rf_second, once each", got)
			}
			if total := gjson.GetBytes(last.body, "data.order.refunded_fen").Int(); total != 1500 {
				t.Errorf("the merchant's last word on the order: %d fen refunded; want 1500", total)
			}
			if v := getAdminView(t, r); len(v.DeadLetters) != 0 || len(queuedFor(t, st, no)) != 0 {
				t.Errorf("after delivery: dead letters %+v, queued %v; want neither", v.DeadLetters, queuedFor(t, st, no))
			}
		})
	}
}

// TestResendAgainWhileTheRefundsWait: a resend asked again (a client's
// retry, a second console tab) while the refunds' events the first queued
// still wait is one resend: 200 naming the event at the head of the
// order's queue, nothing queued, no force offered. The first queues the
// earlier refund's given-up event ahead of the later one's (given up too,
// or set back behind it while still retried), so what waits at the head
// tells of the earlier refund, not of the order's state: the second was
// refused (409, "add ?force=true"), and a forced one sent a new id that a
// merchant revoking each refund once revoked the whole total again.
func TestResendAgainWhileTheRefundsWait(t *testing.T) {
	for _, second := range []string{"given up", "retried"} {
		for _, driver := range drivers(t) {
			t.Run(second+"/"+driver, func(t *testing.T) {
				clk := newClock()
				rc, up := downReceiver(t, clk.Now)
				st := testdrivers.Open(t, driver, nil)
				ob := orders{t, st}
				no := "PGRESENDAGAIN" + strings.ReplaceAll(second, " ", "") + driver
				up.Store(true)
				o := ob.create(no, store.StatusAwaitingPayment)
				ob.move(o, store.StatusPaid, "notification")
				r := newRelay(t, st, rc.URL, clk.Now, shortWindow)
				drain(t, r)
				up.Store(false)
				ob.refund(o, "rf_first", 1000)
				runFor(t, r, clk, 8*time.Second) // rf_first given up
				ob.refund(o, "rf_second", 500)
				if second == "given up" {
					runFor(t, r, clk, 8*time.Second)
				} else {
					drain(t, r) // refused once; retried
				}
				first := postResend(t, r, no, "")
				if first.code/100 != 2 {
					t.Fatalf("resend: %+v; want it accepted", first)
				}
				for _, moved := range []bool{false, true} {
					if moved {
						drain(t, r) // on to the delivery queue, refused once more
					}
					if a := postResend(t, r, no, ""); a.code != http.StatusOK || !a.AlreadyPending || a.CanForce {
						t.Fatalf("resend again (moved %v): %+v; want 200, already pending", moved, a)
					}
				}
				up.Store(true)
				runFor(t, r, clk, 20*time.Second)
				var got []string
				for _, a := range rc.accepted() {
					if a.typ == webhook.TypeRefundSucceeded {
						got = append(got, gjson.GetBytes(a.body, "data.refund.refund_id").Str)
					}
				}
				if !slices.Equal(got, []string{"rf_first", "rf_second"}) {
					t.Errorf("the merchant accepted refunds %v; want rf_first then rf_second, once each", got)
				}
				if v := getAdminView(t, r); len(v.DeadLetters) != 0 || len(queuedFor(t, st, no)) != 0 {
					t.Errorf("after delivery: dead letters %+v, queued %v; want neither", v.DeadLetters, queuedFor(t, st, no))
				}
			})
		}
	}
}
