package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// drivers lists the store drivers to run against (Redis required under CI).
var drivers = testdrivers.Names

const testSecret = "whsec_relay_test"

// clock is a settable clock for the relay.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// arrival is one POST the receiver got.
type arrival struct {
	id, typ, orderNo string
	sig              string
	body             []byte
	status           int
	verifyErr        error
}

// receiver is the merchant's endpoint: status decides each answer (nil: 204),
// and every arrival is recorded and sent on ch.
type receiver struct {
	*httptest.Server
	clock func() time.Time
	mu    sync.Mutex
	all   []arrival
	seen  map[string]bool // ids acknowledged with a 2xx: the receiver's dedupe
	ch    chan arrival
	// status decides the answer to the n-th arrival (0-based) of an id.
	status func(a arrival, nth int) int
}

func newReceiver(t testing.TB, now func() time.Time, status func(a arrival, nth int) int) *receiver {
	rc := &receiver{clock: now, seen: map[string]bool{}, ch: make(chan arrival, 4096), status: status}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		env := struct {
			ID   string `json:"id"`
			Type string `json:"type"`
			Data struct {
				Order struct {
					OrderNo string `json:"order_no"`
				} `json:"order"`
			} `json:"data"`
		}{}
		_ = json.Unmarshal(body, &env)
		a := arrival{id: env.ID, typ: env.Type, orderNo: env.Data.Order.OrderNo, sig: r.Header.Get(webhook.SignatureHeader), body: body}
		a.verifyErr = webhook.Verify(testSecret, a.sig, body, rc.clock(), 0)
		if r.Header.Get("X-Paygate-Event-Id") != env.ID || r.Header.Get("Content-Type") != "application/json" {
			a.verifyErr = fmt.Errorf("headers %v do not name event %s", r.Header, env.ID)
		}
		rc.mu.Lock()
		nth := 0
		for _, p := range rc.all {
			if p.id == a.id {
				nth++
			}
		}
		a.status = http.StatusNoContent
		if rc.status != nil {
			a.status = rc.status(a, nth)
		}
		if a.verifyErr != nil {
			a.status = http.StatusBadRequest
		}
		if a.status/100 == 2 {
			rc.seen[a.id] = true
		}
		rc.all = append(rc.all, a)
		rc.mu.Unlock()
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, "receiver says "+http.StatusText(a.status))
		rc.ch <- a
	}))
	t.Cleanup(rc.Close)
	return rc
}

// downReceiver is a merchant endpoint that answers 502 until up is set,
// then 200: down past the retry window, then back.
func downReceiver(t testing.TB, now func() time.Time) (rc *receiver, up *atomic.Bool) {
	up = new(atomic.Bool)
	rc = newReceiver(t, now, func(arrival, int) int {
		if up.Load() {
			return http.StatusOK
		}
		return http.StatusBadGateway
	})
	return rc, up
}

func (rc *receiver) arrivals() []arrival {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]arrival(nil), rc.all...)
}

// accepted returns, in arrival order, the ids the receiver acknowledged
// first (what a deduplicating receiver processes).
func (rc *receiver) accepted() []arrival {
	seen := map[string]bool{}
	var out []arrival
	for _, a := range rc.arrivals() {
		if a.status/100 == 2 && !seen[a.id] {
			seen[a.id] = true
			out = append(out, a)
		}
	}
	return out
}

// orders commits order transitions with their webhook events, as payments
// does: the events ride on the order write.
type orders struct {
	t  testing.TB
	st store.Store
}

func (o orders) create(no string, status store.OrderStatus) *store.Order {
	o.t.Helper()
	now := time.Now()
	ord := &store.Order{
		OrderNo: no, Client: "shop-bot", AppID: "wxapp1", User: "oUser-" + no, SKU: "premium-monthly",
		Description: "Premium", Quantity: 1, AmountFen: 4999, Currency: "CNY", PayMethod: "jsapi",
		Status: status, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(30 * time.Minute).Truncate(time.Second),
	}
	tr := payments.Transition{After: *ord, Cause: "create"}
	if err := o.st.CreateOrder(context.Background(), ord, webhook.Events(tr)...); err != nil {
		o.t.Fatalf("create %s: %v", no, err)
	}
	return ord
}

func (o orders) move(ord *store.Order, to store.OrderStatus, cause string) {
	o.t.Helper()
	before := *ord
	ord.Status = to
	ord.UpdatedAt = time.Now()
	if to == store.StatusPaid && ord.PaidAt.IsZero() {
		ord.PaidAt = ord.UpdatedAt
		ord.TransactionID = "4200" + ord.OrderNo
	}
	tr := payments.Transition{Before: before, After: *ord, Cause: cause}
	if err := o.st.UpdateOrder(context.Background(), ord, before.Status, webhook.Events(tr)...); err != nil {
		o.t.Fatalf("move %s %s -> %s: %v", ord.OrderNo, before.Status, to, err)
	}
}

// pending returns the pending events of key (heads only are visible through
// DueEvents; OutboxStats gives every key's head).
func head(t testing.TB, st store.Store, key string) (store.Event, bool) {
	t.Helper()
	s, err := st.OutboxStats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range s.Heads {
		if h.Key == key {
			return h, true
		}
	}
	return store.Event{}, false
}

func newRelay(t testing.TB, st store.Store, url string, now func() time.Time, tweak func(*webhook.Options)) *webhook.Relay {
	t.Helper()
	o := webhook.Options{Store: st, URL: url, Secret: testSecret, Now: now, RetryBase: time.Second, MaxDelay: 8 * time.Second, RetryFor: time.Minute}
	if tweak != nil {
		tweak(&o)
	}
	r, err := webhook.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// drainPasses drains the relay n times, the clock a minute on after each,
// so events held back for a later pass (behind another queue) go out.
func drainPasses(t testing.TB, r *webhook.Relay, clk *clock, n int) {
	t.Helper()
	for range n {
		drain(t, r)
		clk.Advance(time.Minute)
	}
}

// acceptedTypes lists the types of the events rc accepted, in order.
func (rc *receiver) acceptedTypes() []string {
	var got []string
	for _, a := range rc.accepted() {
		got = append(got, a.typ)
	}
	return got
}

// drain runs the relay until a pass handles nothing.
func drain(t testing.TB, r *webhook.Relay) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if r.RunOnce(context.Background()) == 0 {
			return
		}
	}
	t.Fatal("relay keeps finding work")
}

// refund records a refund of amount on ord as payments does, refunding and
// then partially refunded, each transition with its webhook events.
func (o orders) refund(ord *store.Order, id string, amount int64) {
	o.t.Helper()
	p := &store.RefundProposal{RefundID: id, OrderNo: ord.OrderNo, AmountFen: amount, Reason: "damaged"}
	for _, to := range []store.OrderStatus{store.StatusRefunding, store.StatusPartiallyRefunded} {
		before := *ord
		ord.Status, ord.UpdatedAt = to, time.Now()
		if to == store.StatusPartiallyRefunded {
			ord.RefundedFen += amount
		}
		tr := payments.Transition{Before: before, After: *ord, Cause: "refund", Refund: p}
		if err := o.st.UpdateOrder(context.Background(), ord, before.Status, webhook.Events(tr)...); err != nil {
			o.t.Fatal(err)
		}
	}
}

// paidThenDown commits order no created and paid, has r deliver its
// order.paid to the merchant behind up (up while it does), and then takes
// the merchant down: the setting of the refund races.
func paidThenDown(ob orders, r *webhook.Relay, up *atomic.Bool, no string) *store.Order {
	ob.t.Helper()
	up.Store(true)
	o := ob.create(no, store.StatusAwaitingPayment)
	ob.move(o, store.StatusPaid, "notification")
	drain(ob.t, r)
	up.Store(false)
	return o
}

// secondRefundWaiting is paidThenDown, then the refund rf_first of 1000
// fen, whose refund.succeeded r gives up (8 s of retries on clk, the
// merchant down), then the refund rf_second of 500 fen, its
// refund.succeeded left on the order's queue.
func secondRefundWaiting(ob orders, r *webhook.Relay, clk *clock, up *atomic.Bool, no string) {
	ob.t.Helper()
	o := paidThenDown(ob, r, up, no)
	ob.refund(o, "rf_first", 1000)
	runFor(ob.t, r, clk, 8*time.Second)
	ob.refund(o, "rf_second", 500)
}

// refundsAccepted lists the refund ids of the refund.succeeded events rc
// accepted (first 2xx of each id, in arrival order), and the last one's
// body.
func refundsAccepted(rc *receiver) (ids []string, last []byte) {
	for _, a := range rc.accepted() {
		if a.typ == webhook.TypeRefundSucceeded {
			ids = append(ids, gjson.GetBytes(a.body, "data.refund.refund_id").Str)
			last = a.body
		}
	}
	return ids, last
}
