package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// adminView is what GET /admin/api/webhooks says about given-up events,
// decoded from the JSON the console and operators read.
type adminView struct {
	GivenUp       int64 `json:"given_up"`
	PendingOrders int   `json:"pending_orders"`
	OutboxPending int   `json:"outbox_pending_events"`
	DeadLetters   []struct {
		OrderNo   string    `json:"order_no"`
		EventID   string    `json:"event_id"`
		Type      string    `json:"type"`
		Attempts  int       `json:"attempts"`
		LastError string    `json:"last_error"`
		CreatedAt time.Time `json:"created_at"`
		GivenUpAt time.Time `json:"given_up_at"`
	} `json:"dead_letters"`
	Heads []webhook.Head `json:"heads"`
}

func getAdminView(t testing.TB, r *webhook.Relay) adminView {
	t.Helper()
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/admin/api/webhooks", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /admin/api/webhooks: %d %s", rec.Code, rec.Body)
	}
	var v adminView
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %s: %v", rec.Body, err)
	}
	return v
}

// shortWindow gives up after 4 attempts (0s, 1s, 3s, 5s).
func shortWindow(o *webhook.Options) {
	o.RetryBase, o.MaxDelay, o.RetryFor = time.Second, 2*time.Second, 5*time.Second
	o.Registerer = prometheus.NewRegistry()
}

// runFor drives r for d of the test clock, half a second at a time.
func runFor(t testing.TB, r *webhook.Relay, clk *clock, d time.Duration) {
	t.Helper()
	for end := clk.Now().Add(d); clk.Now().Before(end); clk.Advance(500 * time.Millisecond) {
		drain(t, r)
	}
}

// paidAndGivenUp commits paid order no on st and runs a relay (shortWindow)
// against rc, which must refuse it, until its order.paid is a dead letter.
func paidAndGivenUp(t *testing.T, st store.Store, rc *receiver, clk *clock, no string) (*store.Order, *webhook.Relay) {
	t.Helper()
	ob := orders{t, st}
	o := ob.create(no, store.StatusAwaitingPayment)
	ob.move(o, store.StatusPaid, "notification")
	r := newRelay(t, st, rc.URL, clk.Now, shortWindow)
	runFor(t, r, clk, 6*time.Second)
	if v := getAdminView(t, r); len(v.DeadLetters) != 1 || v.DeadLetters[0].Type != webhook.TypeOrderPaid {
		t.Fatalf("dead letters %+v; want the order.paid", v.DeadLetters)
	}
	return o, r
}

// TestGivenUpWebhookStaysListed: an order.paid the merchant never
// acknowledged is the one event an operator must not miss (the goods were
// never delivered). Once the relay gives up on it, the admin API names the
// order, the event and why it failed, and still does after a restart; the
// relay does not post it again on its own.
func TestGivenUpWebhookStaysListed(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			rc := newReceiver(t, clk.Now, func(arrival, int) int { return http.StatusBadGateway })
			place := testdrivers.NewPlace(t, driver, nil)
			st := place.Open()
			ob := orders{t, st}
			o := ob.create("PGLOST"+driver, store.StatusAwaitingPayment)
			ob.move(o, store.StatusPaid, "notification")
			r := newRelay(t, st, rc.URL, clk.Now, shortWindow)
			runFor(t, r, clk, 6*time.Second)
			posts := len(rc.arrivals())
			if posts != r.MaxAttempts() {
				t.Fatalf("%d posts; want %d before giving up", posts, r.MaxAttempts())
			}
			paid := rc.arrivals()[0]

			check := func(when string, v adminView) {
				t.Helper()
				if v.GivenUp != 1 || len(v.DeadLetters) != 1 {
					t.Errorf("%s: given_up=%d dead_letters=%+v; want the order.paid of %s listed", when, v.GivenUp, v.DeadLetters, o.OrderNo)
					return
				}
				d := v.DeadLetters[0]
				if d.OrderNo != o.OrderNo || d.EventID != paid.id || d.Type != webhook.TypeOrderPaid ||
					d.Attempts != r.MaxAttempts() || !strings.Contains(d.LastError, "502") || d.CreatedAt.IsZero() || d.GivenUpAt.IsZero() {
					t.Errorf("%s: dead letter %+v; want %s's order.paid %s, %d attempts, the 502", when, d, o.OrderNo, paid.id, r.MaxAttempts())
				}
				if v.PendingOrders != 0 || len(v.Heads) != 0 {
					t.Errorf("%s: %d orders pending, heads %+v; a dead letter is not pending delivery", when, v.PendingOrders, v.Heads)
				}
			}
			check("before the restart", getAdminView(t, r))

			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			st2 := place.Open()
			r2 := newRelay(t, st2, rc.URL, clk.Now, shortWindow)
			check("after the restart", getAdminView(t, r2))
			// Days later the relay has still not posted it on its own.
			clk.Advance(72 * time.Hour)
			runFor(t, r2, clk, 2*time.Second)
			if n := len(rc.arrivals()); n != posts {
				t.Errorf("%d posts; want %d: a dead letter waits for an operator", n, posts)
			}
			check("days later", getAdminView(t, r2))
		})
	}
}

// crashBeforeAck is a store that fails the first take-off (AckEvent or
// AckEventAt) on one delivery queue: the process dying after a given-up
// event was kept as a dead letter and before it left its queue.
type crashBeforeAck struct {
	store.Store
	key   string
	armed atomic.Bool
}

func (s *crashBeforeAck) AckEvent(ctx context.Context, key, id string) error {
	if key == s.key && s.armed.CompareAndSwap(true, false) {
		return errors.New("crashed")
	}
	return s.Store.AckEvent(ctx, key, id)
}

func (s *crashBeforeAck) AckEventAt(ctx context.Context, key, id string, createdAt time.Time) error {
	if key == s.key && s.armed.CompareAndSwap(true, false) {
		return errors.New("crashed")
	}
	return s.Store.AckEventAt(ctx, key, id, createdAt)
}

// TestResendClearsDeadLetters: POST /admin/api/orders/{order_no}/webhook
// queues the given-up order.paid again and clears that order's dead letters
// (one buried twice, a crash having left it queued, included), and only
// that order's; the event is delivered once the merchant is back, under its
// own id (TestResendReusesTheGivenUpEventsID).
func TestResendClearsDeadLetters(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			clk := newClock()
			rc, up := downReceiver(t, clk.Now)
			base := testdrivers.Open(t, driver, nil)
			ob := orders{t, base}
			a := ob.create("PGDEADA"+driver, store.StatusAwaitingPayment)
			ob.move(a, store.StatusPaid, "notification")
			b := ob.create("PGDEADB"+driver, store.StatusApprovalRequired)
			st := &crashBeforeAck{Store: base, key: webhook.QueuePrefix + a.OrderNo}
			st.armed.Store(true)
			r := newRelay(t, st, rc.URL, clk.Now, shortWindow)
			runFor(t, r, clk, 6*time.Second)
			if st.armed.Load() {
				t.Fatalf("the relay took nothing off %s's delivery queue: the crash was not simulated", a.OrderNo)
			}
			// The "crash" left a's order.paid queued, leased: once the lease
			// runs out it is posted once more, and buried again.
			clk.Advance(webhook.LeaseOf(r))
			drain(t, r)
			paidID := ""
			for _, x := range rc.arrivals() {
				if x.orderNo == a.OrderNo && x.typ == webhook.TypeOrderPaid {
					paidID = x.id
				}
			}

			v := getAdminView(t, r)
			listed := map[string]string{}
			for _, d := range v.DeadLetters {
				listed[d.OrderNo] = d.Type
			}
			if v.GivenUp != 2 || len(v.DeadLetters) != 2 || listed[a.OrderNo] != webhook.TypeOrderPaid || listed[b.OrderNo] != webhook.TypeOrderApprovalRequired {
				t.Fatalf("given_up=%d dead letters %+v; want %s's order.paid listed once (buried twice) and %s's approval_required",
					v.GivenUp, v.DeadLetters, a.OrderNo, b.OrderNo)
			}
			if os, _ := base.OutboxStats(ctx); os.Pending != 2 {
				t.Fatalf("outbox holds %d events; want 2 (one dead letter of %s, kept once, one of %s)", os.Pending, a.OrderNo, b.OrderNo)
			}

			mux := http.NewServeMux()
			mux.Handle("POST /admin/api/orders/{order_no}/webhook", r.ResendHandler())
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/admin/api/orders/"+a.OrderNo+"/webhook", nil))
			if rec.Code != http.StatusAccepted {
				t.Fatalf("resend: %d %s", rec.Code, rec.Body)
			}
			v = getAdminView(t, r)
			if v.GivenUp != 1 || len(v.DeadLetters) != 1 || v.DeadLetters[0].OrderNo != b.OrderNo {
				t.Errorf("after the resend: given_up=%d dead letters %+v; want only %s's", v.GivenUp, v.DeadLetters, b.OrderNo)
			}
			os, err := base.OutboxStats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range os.Heads {
				if strings.HasPrefix(h.Key, webhook.DeadPrefix+a.OrderNo) {
					t.Errorf("a dead letter of %s is left: %s on %s", a.OrderNo, h.ID, h.Key)
				}
			}

			up.Store(true)
			drain(t, r)
			var again []string
			for _, x := range rc.accepted() {
				if x.orderNo == a.OrderNo {
					again = append(again, x.typ+" "+x.id)
				}
			}
			if len(again) != 1 || again[0] != webhook.TypeOrderPaid+" "+paidID {
				t.Errorf("accepted for %s: %v; want the given-up order.paid %s once", a.OrderNo, again, paidID)
			}
		})
	}
}

// TestDeadLettersHoldBackNoOne: a dead letter shares the outbox with the
// order's later events and the audit records, and holds none of them back:
// the order's next webhook is delivered, the audit worker appends the
// order's record, and neither consumer (not even an audit worker that sets
// aside webhook events no relay took, as when webhooks are off) takes the
// dead letter away.
func TestDeadLettersHoldBackNoOne(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			clk := newClock()
			rc := newReceiver(t, clk.Now, func(x arrival, _ int) int {
				if x.typ == webhook.TypeOrderPaid {
					return http.StatusBadGateway
				}
				return http.StatusOK
			})
			st := testdrivers.Open(t, driver, nil)
			ob := orders{t, st}
			o, r := paidAndGivenUp(t, st, rc, clk, "PGDEADNEXT"+driver)

			// The order moves on: its next webhook and an audit record, on the
			// order's own key.
			ob.move(o, store.StatusRefunding, "refund")
			before := *o
			o.Status, o.RefundedFen, o.UpdatedAt = store.StatusRefunded, o.AmountFen, time.Now()
			tr := payments.Transition{Before: before, After: *o, Cause: "refund"}
			if err := st.UpdateOrder(ctx, o, before.Status, webhook.Events(tr)...); err != nil {
				t.Fatal(err)
			}
			rec, err := audit.ActionEvent(audit.Action{Name: "refund.succeeded", OrderNo: o.OrderNo, User: o.User}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.EnqueueEvents(ctx, rec); err != nil {
				t.Fatal(err)
			}

			drain(t, r)
			acc := rc.accepted()
			if len(acc) != 1 || acc[0].typ != webhook.TypeRefundSucceeded {
				t.Errorf("accepted %+v; want the order's refund.succeeded", acc)
			}
			for _, aside := range []func(context.Context, store.Event) (bool, error){nil, webhook.SetAside(st, 0, clk.Now)} {
				w, err := audit.NewWorker(audit.WorkerOptions{Store: st, SetAside: aside, Now: clk.Now})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := w.Drain(ctx); err != nil {
					t.Fatalf("audit drain (set aside %v): %v", aside != nil, err)
				}
			}
			if head, err := st.AuditHead(ctx); err != nil || head.Seq != 1 {
				t.Errorf("audit head %+v %v; want the order's record appended", head, err)
			}
			due, err := st.DueEvents(ctx, clk.Now().Add(100*365*24*time.Hour), 100)
			if err != nil || len(due) != 0 {
				t.Errorf("due a century on: %+v %v; want nothing", due, err)
			}
			if v := getAdminView(t, r); len(v.DeadLetters) != 1 || v.DeadLetters[0].Type != webhook.TypeOrderPaid || v.PendingOrders != 0 {
				t.Errorf("dead letters %+v, %d orders pending; want the order.paid still listed, nothing pending", v.DeadLetters, v.PendingOrders)
			}
		})
	}
}

// TestDeadLettersBeyondListLimit: after an outage that gave up more orders'
// webhooks than one outbox listing holds (store.MaxListLimit), every dead
// letter is counted and each order can still be resent: the resend is told
// by the order's own dead letter, not by whether it made a capped list (it
// said "delivered" of a lost order.paid, and the operator did not resend).
func TestDeadLettersBeyondListLimit(t *testing.T) {
	const n = store.MaxListLimit + 5
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			rc, _ := downReceiver(t, clk.Now)
			st := testdrivers.Open(t, driver, nil)
			paidOrders(t, st, "PGCAP"+driver, n)
			// Given up at the second attempt, a second after the first.
			r := newRelay(t, st, rc.URL, clk.Now, func(o *webhook.Options) {
				shortWindow(o)
				o.RetryFor, o.Concurrency, o.Batch = time.Nanosecond, 64, 4*n
			})
			runFor(t, r, clk, 2*time.Second)
			if v := getAdminView(t, r); v.GivenUp != n || v.PendingOrders != 0 {
				t.Fatalf("given_up %d, pending orders %d after %d POSTs; want every one of %d order.paid given up",
					v.GivenUp, v.PendingOrders, len(rc.arrivals()), n)
			}
			mux := http.NewServeMux()
			mux.Handle("POST /admin/api/orders/{order_no}/webhook", r.ResendHandler())
			for _, i := range []int{0, n / 2, n - 1} {
				no := fmt.Sprintf("PGCAP%s%05d", driver, i)
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/admin/api/orders/"+no+"/webhook", nil))
				if rec.Code != http.StatusAccepted {
					t.Errorf("resend of %s, whose order.paid was given up: %d %s; want 202", no, rec.Code, rec.Body)
				}
			}
			if v := getAdminView(t, r); v.GivenUp != n-3 {
				t.Errorf("given_up %d after three resends; want %d", v.GivenUp, n-3)
			}
		})
	}
}

// paidOrders commits n orders numbered prefix00000… as paid on st, each
// with its order.paid webhook queued, in that order.
func paidOrders(t *testing.T, st store.Store, prefix string, n int) {
	t.Helper()
	ob := orders{t, st}
	for i := range n {
		o := ob.create(fmt.Sprintf("%s%05d", prefix, i), store.StatusAwaitingPayment)
		ob.move(o, store.StatusPaid, "notification")
	}
}

// TestPendingOrdersBeyondListLimit: during a merchant outage more orders
// can wait for their webhook than the store's capped list of outbox heads
// holds (store.MaxListLimit; bbolt takes the first in key order). The
// admin view and the gauges an operator's alert reads count every one, and
// the oldest is the oldest of all, not of the first thousand: here the
// first order paid has the last order number in key order.
func TestPendingOrdersBeyondListLimit(t *testing.T) {
	const n = store.MaxListLimit + 5
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			rc, _ := downReceiver(t, clk.Now)
			st := testdrivers.Open(t, driver, nil)
			ob := orders{t, st}
			first := ob.create("PGPENDzzzz", store.StatusAwaitingPayment)
			ob.move(first, store.StatusPaid, "notification")
			paidOrders(t, st, "PGPEND", n-1)
			r := newRelay(t, st, rc.URL, clk.Now, func(o *webhook.Options) { o.Registerer = prometheus.NewRegistry() })
			st0, err := r.Stats(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if st0.PendingOrders != n {
				t.Errorf("pending_orders %d; want every order waiting for its webhook, %d", st0.PendingOrders, n)
			}
			if len(st0.Heads) > store.MaxListLimit {
				t.Errorf("%d heads listed; want at most %d", len(st0.Heads), store.MaxListLimit)
			}
			oldest, err := st.OutboxHeads(context.Background(), first.OrderNo)
			if err != nil || len(oldest) != 1 {
				t.Fatalf("the first order's head: %v, %v", oldest, err)
			}
			if !st0.Oldest.Equal(oldest[0].CreatedAt) {
				t.Errorf("oldest_pending_at %v; want the first order's %v", st0.Oldest, oldest[0].CreatedAt)
			}
		})
	}
}
