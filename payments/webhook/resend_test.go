package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

func TestStateEvent(t *testing.T) {
	at := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		status store.OrderStatus
		want   string // "" : nothing to resend
	}{
		{store.StatusCreating, ""},
		{store.StatusAwaitingPayment, ""},
		{store.StatusRefunding, ""},
		{store.StatusPaid, webhook.TypeOrderPaid},
		{store.StatusApprovalRequired, webhook.TypeOrderApprovalRequired},
		{store.StatusClosed, webhook.TypeOrderClosed},
		{store.StatusExpired, webhook.TypeOrderClosed},
		{store.StatusRejected, webhook.TypeOrderClosed},
		{store.StatusNeedsReview, webhook.TypeOrderNeedsReview},
		{store.StatusRefunded, webhook.TypeRefundSucceeded},
		{store.StatusPartiallyRefunded, webhook.TypeRefundSucceeded},
	} {
		t.Run(string(tc.status), func(t *testing.T) {
			o := &store.Order{OrderNo: "PG1", Status: tc.status, AmountFen: 4999, RefundedFen: 1000, Client: "bot", User: "oU", ReviewReason: "amount"}
			ev, err := webhook.StateEvent(o, at)
			if tc.want == "" {
				if !errors.Is(err, webhook.ErrNothingToResend) {
					t.Fatalf("err %v; want ErrNothingToResend", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var env webhook.Envelope
			if err := json.Unmarshal(ev.Payload, &env); err != nil {
				t.Fatal(err)
			}
			if env.Type != tc.want || env.ID != ev.ID || ev.Key != "PG1" || ev.Kind != webhook.Kind || env.CreatedAt != "2026-11-30T08:00:00Z" {
				t.Fatalf("event %+v envelope %+v; want %s on PG1", ev, env, tc.want)
			}
			if env.Data.Order["status"] != string(tc.status) || env.Data.OpenID != "oU" {
				t.Errorf("data %+v", env.Data)
			}
			if tc.want == webhook.TypeRefundSucceeded && (env.Data.Refund["refunded_fen"] != float64(1000) || env.Data.Refund["status"] != "succeeded") {
				t.Errorf("refund object %+v; want 1000 fen refunded", env.Data.Refund)
			}
			if (tc.status == store.StatusNeedsReview) != (env.Data.ReviewReason != "") {
				t.Errorf("review reason %q for %s", env.Data.ReviewReason, tc.status)
			}
		})
	}
}

// resendAnswer is what POST /admin/api/orders/{order_no}/webhook answered.
type resendAnswer struct {
	code           int
	EventID        string `json:"event_id"`
	Type           string `json:"type"`
	AlreadyPending bool   `json:"already_pending"`
	Error          string `json:"error"`
	CanForce       bool   `json:"can_force"`
}

// postResend calls r's resend route for order orderNo, with query (e.g.
// "?force=true") appended, as the admin mux mounts it.
func postResend(t testing.TB, r *webhook.Relay, orderNo, query string) resendAnswer {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("POST /admin/api/orders/{order_no}/webhook", r.ResendHandler())
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/admin/api/orders/"+orderNo+"/webhook"+query, nil))
	a := resendAnswer{code: rec.Code}
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
		t.Fatalf("resend %s%s: %d %q is not JSON: %v", orderNo, query, rec.Code, rec.Body, err)
	}
	return a
}

// queuedFor reports the ids of the events waiting at the head of order
// orderNo's intake and delivery queues.
func queuedFor(t testing.TB, st store.Store, orderNo string) []string {
	t.Helper()
	var ids []string
	for _, key := range []string{orderNo, webhook.QueuePrefix + orderNo} {
		if h, ok := head(t, st, key); ok {
			ids = append(ids, h.ID)
		}
	}
	return ids
}

// delivered is an order whose order.paid the merchant acknowledged, with
// the store, relay and receiver that saw it through.
type delivered struct {
	st      store.Store
	r       *webhook.Relay
	rc      *receiver
	o       *store.Order
	firstID string // the order.paid's id
}

// paidAndDelivered commits paid order no on driver and has a receiver that
// acknowledges everything receive its order.paid.
func paidAndDelivered(t *testing.T, driver, no string) delivered {
	t.Helper()
	clk := newClock()
	d := delivered{rc: newReceiver(t, clk.Now, nil), st: testdrivers.Open(t, driver, nil)}
	d.r = newRelay(t, d.st, d.rc.URL, clk.Now, nil)
	ob := orders{t, d.st}
	d.o = ob.create(no, store.StatusAwaitingPayment)
	ob.move(d.o, store.StatusPaid, "notification")
	drain(t, d.r)
	acc := d.rc.accepted()
	if len(acc) != 1 || acc[0].typ != webhook.TypeOrderPaid || acc[0].orderNo != no {
		t.Fatalf("accepted %+v; want the order.paid of %s", acc, no)
	}
	d.firstID = acc[0].id
	return d
}

// TestResendDeliveredOrderRefused: the merchant acknowledged the order's
// order.paid and nothing was given up, so a resend without force=true is
// refused with 409 and a reason (the README's receiver would deliver the
// goods again for a new id), enqueues nothing and sends nothing.
func TestResendDeliveredOrderRefused(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			d := paidAndDelivered(t, driver, "PGRESENDDONE"+driver)
			st, r, rc, o := d.st, d.r, d.rc, d.o

			for range 3 { // an operator who clicks again, a client's retry
				a := postResend(t, r, o.OrderNo, "")
				if a.code != http.StatusConflict || !strings.Contains(a.Error, "force=true") || !a.CanForce || a.EventID != "" {
					t.Fatalf("resend of a delivered order: %+v; want 409 naming force=true", a)
				}
			}
			if q := queuedFor(t, st, o.OrderNo); len(q) != 0 {
				t.Fatalf("queued for %s after refused resends: %v; want nothing", o.OrderNo, q)
			}
			drain(t, r)
			if n := len(rc.arrivals()); n != 1 {
				t.Errorf("%d deliveries; want 1 (the original order.paid only)", n)
			}
		})
	}
}

// TestConcurrentResendsCollapse: the order's order.paid was given up; two
// operators, two console tabs and a client's retry resend it at once. One
// event is queued; every caller is told its id (202 for the one that queued
// it, 200 for the others); the merchant, back, receives it exactly once;
// the dead letter is gone; and once it is delivered a further resend is
// refused: nothing is lost any more.
func TestConcurrentResendsCollapse(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			rc, up := downReceiver(t, clk.Now)
			o, r := paidAndGivenUp(t, testdrivers.Open(t, driver, nil), rc, clk, "PGRESENDRACE"+driver)
			before := len(rc.arrivals())

			const n = 8
			answers := make([]resendAnswer, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					<-start
					answers[i] = postResend(t, r, o.OrderNo, "")
				})
			}
			close(start)
			wg.Wait()
			queued := 0
			for _, a := range answers {
				switch {
				case a.code == http.StatusAccepted && !a.AlreadyPending:
					queued++
				case a.code == http.StatusOK && a.AlreadyPending:
				default:
					t.Fatalf("answer %+v; want 202, or 200 naming the pending event", a)
				}
				if a.EventID != answers[0].EventID || a.Type != webhook.TypeOrderPaid {
					t.Fatalf("answers %+v; want one order.paid event id for all", answers)
				}
			}
			if queued != 1 {
				t.Fatalf("%d of %d resends queued an event; want 1: %+v", queued, n, answers)
			}
			// Asked again while it waits: the same event, nothing queued.
			if a := postResend(t, r, o.OrderNo, ""); a.code != http.StatusOK || a.EventID != answers[0].EventID {
				t.Fatalf("resend while the resent event waits: %+v; want 200 with %s", a, answers[0].EventID)
			}
			if v := getAdminView(t, r); len(v.DeadLetters) != 0 {
				t.Errorf("dead letters after the resend: %+v; want none", v.DeadLetters)
			}

			up.Store(true)
			drain(t, r)
			got := rc.arrivals()[before:]
			if len(got) != 1 || got[0].id != answers[0].EventID || got[0].typ != webhook.TypeOrderPaid || got[0].status != http.StatusOK {
				var ids []string
				for _, x := range got {
					ids = append(ids, x.typ+" "+x.id)
				}
				t.Fatalf("delivered after %d concurrent resends: %v; want %s once", n, ids, answers[0].EventID)
			}
			if a := postResend(t, r, o.OrderNo, ""); a.code != http.StatusConflict {
				t.Errorf("resend after the resent event was delivered: %+v; want 409", a)
			}
		})
	}
}

// TestResendForce: force=true is for a merchant that lost its own records:
// a delivered order's state is queued again, each time as a new event with
// a new id, which the merchant processes; a malformed force is a 400.
func TestResendForce(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			d := paidAndDelivered(t, driver, "PGRESENDFORCE"+driver)
			r, rc, o, first := d.r, d.rc, d.o, d.firstID

			if a := postResend(t, r, o.OrderNo, "?force=maybe"); a.code != http.StatusBadRequest || a.Error == "" {
				t.Errorf("force=maybe: %+v; want 400", a)
			}
			ids := map[string]bool{first: true}
			for range 2 {
				a := postResend(t, r, o.OrderNo, "?force=true")
				if a.code != http.StatusAccepted || a.Type != webhook.TypeOrderPaid || ids[a.EventID] {
					t.Fatalf("forced resend: %+v; want 202 with a new order.paid id (not one of %v)", a, ids)
				}
				ids[a.EventID] = true
			}
			drain(t, r)
			var acc []string
			for _, x := range rc.accepted() {
				acc = append(acc, x.typ+" "+x.id)
			}
			if len(acc) != 3 {
				t.Errorf("accepted %v; want the original and the two forced order.paid events", acc)
			}
		})
	}
}

// TestResendAfterAnotherDeadLetterRefused: the merchant acknowledged
// order.paid (and delivered the goods); a later refund.failed was given up
// while it was down. A resend without force must not announce the paid
// order again under a new id (a merchant deduplicating by id would deliver
// twice): what was lost is not the current state's announcement.
func TestResendAfterAnotherDeadLetterRefused(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			rc, up := downReceiver(t, clk.Now)
			up.Store(true)
			st := testdrivers.Open(t, driver, nil)
			r := newRelay(t, st, rc.URL, clk.Now, shortWindow)
			ob := orders{t, st}
			o := ob.create("PGOTHERDEAD"+driver, store.StatusAwaitingPayment)
			ob.move(o, store.StatusPaid, "notification")
			drain(t, r)
			up.Store(false)
			ob.move(o, store.StatusRefunding, "refund")
			ob.move(o, store.StatusPaid, "refund")
			runFor(t, r, clk, 8*time.Second)
			v := getAdminView(t, r)
			if len(v.DeadLetters) != 1 || v.DeadLetters[0].Type != webhook.TypeRefundFailed {
				t.Fatalf("dead letters %+v; want the refund.failed", v.DeadLetters)
			}
			up.Store(true)
			if a := postResend(t, r, o.OrderNo, ""); a.code != http.StatusConflict {
				t.Errorf("resend without force: %+v; want 409 (order.paid was delivered)", a)
			}
			drain(t, r)
			paid := 0
			for _, acc := range rc.accepted() {
				if acc.typ == webhook.TypeOrderPaid {
					paid++
				}
			}
			if paid != 1 {
				t.Errorf("the merchant accepted %d order.paid events for one payment; want 1", paid)
			}
		})
	}
}

// TestResendReusesTheGivenUpEventsID: "given up" means no 2xx came back,
// not that the merchant did not act: one that processes each event id
// once (as the README asks) but whose answer is lost (a proxy in front
// answers 502, or it answers after the timeout) already acted on the event
// the relay gave up. A resend without force queues that dead letter again,
// under its own id and with its own body, so the merchant discards it
// rather than act twice (order.paid: deliver the goods twice). Of several
// dead letters of the type, the one announcing the current state is taken.
func TestResendReusesTheGivenUpEventsID(t *testing.T) {
	for _, tc := range []struct {
		name  string
		typ   string
		setup func(t *testing.T, ob orders, no string) *store.Order
		runs  time.Duration // of the test clock, until every event is given up
		dead  int           // dead letters then
	}{
		{"order.paid", webhook.TypeOrderPaid, func(t *testing.T, ob orders, no string) *store.Order {
			o := ob.create(no, store.StatusAwaitingPayment)
			ob.move(o, store.StatusPaid, "notification")
			return o
		}, 6 * time.Second, 1},
		{"the latest of two order.needs_review", webhook.TypeOrderNeedsReview, func(t *testing.T, ob orders, no string) *store.Order {
			o := ob.create(no, store.StatusAwaitingPayment)
			o.ReviewReason = "amount"
			ob.move(o, store.StatusNeedsReview, "notification")
			// WeChat Pay's word on the order in review: announced again.
			before := *o
			o.TransactionID, o.UpdatedAt = "4200"+no, time.Now()
			tr := payments.Transition{Before: before, After: *o, Cause: "notification"}
			if err := ob.st.UpdateOrder(context.Background(), o, before.Status, webhook.Events(tr)...); err != nil {
				t.Fatal(err)
			}
			return o
		}, 14 * time.Second, 2},
		// A refund's refund.succeeded names its refund (refund_id, reason,
		// this refund's amount), which the order alone does not tell: the
		// given-up event still announces the order's current state. (The
		// order.paid before it was acknowledged: a given-up one goes out
		// ahead, TestResendSendsTheGivenUpOrderPaidOfARefundedOrder.)
		{"refund.succeeded", webhook.TypeRefundSucceeded, func(t *testing.T, ob orders, no string) *store.Order {
			o := ob.create(no, store.StatusAwaitingPayment)
			ob.move(o, store.StatusPaid, "notification")
			p := &store.RefundProposal{RefundID: "rf_" + no, OrderNo: no, AmountFen: 1000, Reason: "not as described"}
			for _, to := range []store.OrderStatus{store.StatusRefunding, store.StatusPartiallyRefunded} {
				before := *o
				o.Status, o.UpdatedAt = to, time.Now()
				if to == store.StatusPartiallyRefunded {
					o.RefundedFen = p.AmountFen
				}
				tr := payments.Transition{Before: before, After: *o, Cause: "refund", Refund: p}
				if err := ob.st.UpdateOrder(context.Background(), o, before.Status, webhook.Events(tr)...); err != nil {
					t.Fatal(err)
				}
			}
			return o
		}, 14 * time.Second, 1},
	} {
		for _, driver := range drivers(t) {
			t.Run(tc.name+"/"+driver, func(t *testing.T) {
				clk := newClock()
				var up atomic.Bool
				acted := map[string]int{} // event type -> ids the merchant acted on (under rc's lock)
				rc := newReceiver(t, clk.Now, func(a arrival, nth int) int {
					if nth == 0 {
						acted[a.typ]++ // the first sighting of an id: the merchant acts
					}
					if up.Load() || a.typ == webhook.TypeOrderPaid && tc.typ == webhook.TypeRefundSucceeded {
						return http.StatusOK
					}
					return http.StatusBadGateway // its answer is lost on the way back
				})
				st := testdrivers.Open(t, driver, nil)
				o := tc.setup(t, orders{t, st}, "PGRESENDSAME"+strings.ReplaceAll(tc.name, " ", "")+driver)
				r := newRelay(t, st, rc.URL, clk.Now, shortWindow)
				runFor(t, r, clk, tc.runs)
				v := getAdminView(t, r)
				if len(v.DeadLetters) != tc.dead {
					t.Fatalf("dead letters %+v; want %d", v.DeadLetters, tc.dead)
				}
				var lost arrival // the last event POSTed: the one announcing the current state
				for _, a := range rc.arrivals() {
					if a.typ == tc.typ {
						lost = a
					}
				}

				up.Store(true)
				a := postResend(t, r, o.OrderNo, "")
				if a.code != http.StatusAccepted || a.EventID != lost.id || a.Type != tc.typ {
					t.Fatalf("resend: %+v; want 202 naming the given-up %s %s", a, tc.typ, lost.id)
				}
				if a := postResend(t, r, o.OrderNo, ""); a.code != http.StatusOK || !a.AlreadyPending || a.EventID != lost.id {
					t.Fatalf("resend while it waits: %+v; want 200 naming %s", a, lost.id)
				}
				before := len(rc.arrivals())
				runFor(t, r, clk, 2*time.Second)
				got := rc.arrivals()[before:]
				if len(got) != 1 || got[0].id != lost.id || got[0].status != http.StatusOK || !bytes.Equal(got[0].body, lost.body) {
					t.Fatalf("after the resend: %d POSTs (first %+v); want the given-up event %s once, body unchanged", len(got), got, lost.id)
				}
				want := 0 // one act per given-up id of the type; the resend adds none
				for _, d := range v.DeadLetters {
					if d.Type == tc.typ {
						want++
					}
				}
				if acted[tc.typ] != want {
					t.Errorf("the merchant acted on %d %s ids; want %d (the resend is one of them)", acted[tc.typ], tc.typ, want)
				}
				if a := postResend(t, r, o.OrderNo, ""); a.code != http.StatusConflict {
					t.Errorf("resend once it was acknowledged: %+v; want 409", a)
				}
			})
		}
	}
}

// TestResendWhileTheEventIsRetried: the order.paid is still being retried
// (not given up) when an operator resends: that event is the announcement,
// so the answer names it (200, already pending), nothing is queued, and no
// force is offered that would make the merchant act on a second id once it
// is back.
func TestResendWhileTheEventIsRetried(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			rc, up := downReceiver(t, clk.Now)
			st := testdrivers.Open(t, driver, nil)
			ob := orders{t, st}
			o := ob.create("PGRESENDRETRIED"+driver, store.StatusAwaitingPayment)
			ob.move(o, store.StatusPaid, "notification")
			r := newRelay(t, st, rc.URL, clk.Now, nil)
			runFor(t, r, clk, 2*time.Second)
			retried := rc.arrivals()
			if len(retried) == 0 {
				t.Fatal("the order.paid was not tried")
			}
			for range 2 {
				a := postResend(t, r, o.OrderNo, "")
				if a.code != http.StatusOK || !a.AlreadyPending || a.EventID != retried[0].id || a.CanForce {
					t.Fatalf("resend while the order.paid is retried: %+v; want 200 naming %s", a, retried[0].id)
				}
			}
			if q := queuedFor(t, st, o.OrderNo); len(q) != 1 || q[0] != retried[0].id {
				t.Fatalf("queued for %s: %v; want only the retried %s", o.OrderNo, q, retried[0].id)
			}
			up.Store(true)
			clk.Advance(time.Minute)
			drain(t, r)
			if acc := rc.accepted(); len(acc) != 1 || acc[0].id != retried[0].id {
				t.Errorf("accepted %+v; want the order.paid %s once", acc, retried[0].id)
			}
		})
	}
}

// TestResendRefusesAmbiguousQuery: force given twice, or a parameter the
// resend does not take, is a 400 that queues and sends nothing, as the
// admin API's other routes refuse them: ?force=true&force=false forced a
// new event to a merchant that had acknowledged the order, the second
// value unread, and a misspelt ?Force=true was answered as if unforced.
// A query that does not parse is refused too: ?force=true&dry_run=1;
// read as ?force=true alone and forced a new event.
func TestResendRefusesAmbiguousQuery(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			d := paidAndDelivered(t, driver, "PGRESENDQUERY"+driver)
			for _, q := range []string{"?force=true&force=false", "?force=false&force=true", "?Force=true", "?force=true&dry_run=1", "?force=true&dry_run=1;", "?force=true&dry%_run=1"} {
				a := postResend(t, d.r, d.o.OrderNo, q)
				if a.code != http.StatusBadRequest || a.Error == "" || a.EventID != "" {
					t.Fatalf("resend%s: %+v; want 400 with an error, nothing queued", q, a)
				}
			}
			if q := queuedFor(t, d.st, d.o.OrderNo); len(q) != 0 {
				t.Fatalf("queued for %s after refused resends: %v; want nothing", d.o.OrderNo, q)
			}
			drain(t, d.r)
			if n := len(d.rc.arrivals()); n != 1 {
				t.Errorf("%d deliveries; want 1 (the original order.paid only)", n)
			}
		})
	}
}
