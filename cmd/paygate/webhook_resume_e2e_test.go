package main

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/proxy/console"
	"github.com/paygate/paygate/store"
)

// TestAdminWebhooksResume: the merchant's endpoint answered 429 with a
// Retry-After of ten minutes, and came back at once. POST
// /admin/api/webhooks/resume on the admin listener (the admin token, the
// CSRF header, an optional {"operator","reason"} body) ends the pause: the
// order.paid held behind it goes out now, not ten minutes on, and GET
// /admin/api/webhooks shows no pause in force. A query parameter, an
// unknown member of the body or a missing token ends nothing.
func TestAdminWebhooksResume(t *testing.T) {
	p := startPausedRelay(t, "oUser-resume", "PGRESUME000000A", "4200000000000000000000000097", "PGRESUME000000B", "4200000000000000000000000098")
	adminURL := p.adminURL
	call := func(method, path, body string, auth bool) (int, gjson.Result) {
		t.Helper()
		req, err := http.NewRequest(method, adminURL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if auth {
			req.Header.Set("Authorization", "Bearer "+consoleToken)
		}
		req.Header.Set(console.CSRFHeader, "1")
		resp, b := doRead(t, req)
		return resp.StatusCode, gjson.ParseBytes(b)
	}
	paused := func() bool {
		t.Helper()
		status, st := call("GET", "/admin/api/webhooks", "", true)
		if status != http.StatusOK {
			t.Fatalf("GET /admin/api/webhooks: %d %s", status, st.Raw)
		}
		until := st.Get("paused_until").Time()
		return until.After(time.Now())
	}
	if !paused() {
		t.Fatal("no pause in force after the 429 with Retry-After: 600")
	}
	for _, tc := range []struct {
		path, body string
		auth       bool
		want       int
	}{
		{"/admin/api/webhooks/resume?dry_run=1", "", true, http.StatusBadRequest},
		{"/admin/api/webhooks/resume", `{"operator": "ann", "reason": "CDN blip", "force": true}`, true, http.StatusBadRequest},
		{"/admin/api/webhooks/resume", `{"Operator": "ann"}`, true, http.StatusBadRequest},
		{"/admin/api/webhooks/resume", "", false, http.StatusUnauthorized},
	} {
		if status, body := call("POST", tc.path, tc.body, tc.auth); status != tc.want || body.Get("error").Str == "" {
			t.Errorf("POST %s %s: %d %s; want %d with an error", tc.path, tc.body, status, body.Raw, tc.want)
		}
	}
	if !paused() || p.answered.Load() != 1 {
		t.Fatalf("after refused resumes: paused %v, %d POSTs; want the pause on and only the throttled POST", paused(), p.answered.Load())
	}
	status, body := call("POST", "/admin/api/webhooks/resume", `{"operator": "ann", "reason": "CDN blip"}`, true)
	if status != http.StatusOK || body.Get("paused_until").Time().Before(time.Now().Add(5*time.Minute)) || body.Get("released").Int() != 1 {
		t.Fatalf("resume: %d %s; want 200 naming the pause it ended (about 10 minutes on) and 1 event released", status, body.Raw)
	}
	waitOutcome(t, p.outcomes, p.evB, webhook.OutcomeDelivered)
	if paused() {
		t.Errorf("GET /admin/api/webhooks still shows a pause in force after the resume")
	}
}

// pausedRelay is an app whose merchant endpoint answered its first POST,
// order noA's order.paid, 429 with a Retry-After of ten minutes, and every
// later one 200: A's order.paid failed and keeps its own retry (an hour
// on, the app's first retry, later than the wait asked for); noB's,
// queued after, is held for the wait, no attempt made.
type pausedRelay struct {
	adminURL string
	app      *app
	outcomes <-chan webhook.Result
	evB      store.Event  // noB's order.paid, held
	answered atomic.Int32 // POSTs the endpoint answered
}

func startPausedRelay(t *testing.T, user, noA, txA, noB, txB string) *pausedRelay {
	t.Helper()
	p := &pausedRelay{}
	held := holdSignal(webhook.QueuePrefix + noB)
	_, p.adminURL, p.app, p.outcomes = consoleAppWith(t, consoleScript, func(w http.ResponseWriter, r *http.Request) {
		if p.answered.Add(1) == 1 {
			w.Header().Set("Retry-After", "600")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		}
	}, held.option())
	now := time.Now().Add(-time.Minute).Truncate(time.Second)
	waitOutcome(t, p.outcomes, paidOrder(t, p.app, user, noA, txA, now), webhook.OutcomeFailed)
	p.evB = paidOrder(t, p.app, user, noB, txB, now)
	select {
	case <-held.c:
	case <-time.After(15 * time.Second):
		t.Fatal("B's order.paid not held for the wait")
	}
	return p
}

// paidOrder stores order no of user, paid at now by transaction tx, and
// queues its order.paid, which it returns, waking a's relay.
func paidOrder(t *testing.T, a *app, user, no, tx string, now time.Time) store.Event {
	t.Helper()
	ctx := context.Background()
	o := &store.Order{OrderNo: no, Client: "bot", User: user, SKU: "premium-monthly", Description: "Premium tier, 1 month",
		Quantity: 1, AmountFen: 4999, Currency: "CNY", PayMethod: "jsapi", Status: store.StatusPaid, TransactionID: tx,
		ClaimKey: "k" + no, Generation: 1, CreatedAt: now, PaidAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := a.store.CreateOrder(ctx, o); err != nil {
		t.Fatal(err)
	}
	ev := webhook.NewEvent(webhook.TypeOrderPaid, o, nil, now)
	if err := a.store.EnqueueEvents(ctx, ev); err != nil {
		t.Fatal(err)
	}
	a.webhooks.relay.Wake()
	return ev
}

// waitOutcome waits up to 15 s for the relay's outcome want of ev.
func waitOutcome(t *testing.T, outcomes <-chan webhook.Result, ev store.Event, want string) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case r := <-outcomes:
			if r.EventID == ev.ID && r.Outcome == want {
				return
			}
		case <-deadline:
			t.Fatalf("no %s outcome for %s", want, ev.ID)
		}
	}
}

// heldSignal is a relay's store that closes c once the relay held key's
// event back for a pause (a RetryEvent, written, to more than five minutes
// on): the moment a test may end the pause, which the relay logs at debug
// only.
type heldSignal struct {
	webhook.Store
	key  string
	c    chan struct{}
	once sync.Once
}

func holdSignal(key string) *heldSignal { return &heldSignal{key: key, c: make(chan struct{})} }

// option puts the signal between the relay and its store.
func (h *heldSignal) option() appOption {
	return withWebhookOptions(func(o *webhook.Options) {
		h.Store = o.Store
		o.Store = h
	})
}

func (h *heldSignal) RetryEvent(ctx context.Context, key, id string, nextAt time.Time, attempts int, lastErr string) error {
	err := h.Store.RetryEvent(ctx, key, id, nextAt, attempts, lastErr)
	if err == nil && key == h.key && nextAt.After(time.Now().Add(5*time.Minute)) {
		h.once.Do(func() { close(h.c) })
	}
	return err
}
