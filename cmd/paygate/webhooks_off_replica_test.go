package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
	"github.com/paygate/paygate/store/testdrivers"
)

// sharedStores opens two handles on one store, as two replicas have: two
// clients of one Redis (a key prefix of the test's own, deleted
// afterwards), or, for the embedded file that one process owns, the same
// handle twice.
func sharedStores(t *testing.T, driver string) (store.Store, store.Store) {
	t.Helper()
	p := testdrivers.NewPlace(t, driver, nil) // Redis: a prefix of its own, required under CI
	if driver == "embedded" {
		st := p.Open()
		return st, st
	}
	a, b := p.Open(), p.Open()
	return a, b
}

// merchantEndpoint records the event ids it accepted; while down it answers
// 503.
type merchantEndpoint struct {
	*httptest.Server
	down     atomic.Bool
	mu       sync.Mutex
	accepted map[string]string // event id -> type
}

func newMerchantEndpoint(t *testing.T) *merchantEndpoint {
	m := &merchantEndpoint{accepted: map[string]string{}}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if m.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		m.mu.Lock()
		m.accepted[gjson.GetBytes(body, "id").Str] = gjson.GetBytes(body, "type").Str
		m.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(m.Close)
	return m
}

func (m *merchantEndpoint) got(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.accepted[id]
	return ok
}

// paidTransition commits order no as paid on st with its audit and webhook
// events, as a replica with webhooks on does, and returns the order.paid
// event. at is the transition's time (the events' CreatedAt).
func paidTransition(t *testing.T, st store.Store, no string, at time.Time) store.Event {
	t.Helper()
	ctx := context.Background()
	o := storetest.NewOrder(no, "bot", "oA", at)
	if err := st.CreateOrder(ctx, o); err != nil {
		t.Fatal(err)
	}
	before := *o
	o.Status, o.PaidAt, o.TransactionID, o.UpdatedAt = store.StatusPaid, at, "tx-"+no, at
	tr := payments.Transition{Before: before, After: *o, Cause: "notification"}
	hooks := webhook.Events(tr)
	if len(hooks) != 1 {
		t.Fatalf("webhook events of the payment: %+v", hooks)
	}
	if err := st.UpdateOrder(ctx, o, before.Status, append(audit.TransitionEvents(tr), hooks...)...); err != nil {
		t.Fatal(err)
	}
	return hooks[0]
}

// TestWebhooksOffReplicaLeavesWebhooksAlone: replicas share one store; one
// of them runs with webhooks.url empty (a rolling deploy that turns
// webhooks on, a misconfigured replica). Its audit worker must not take
// the other replicas' webhook events away: every order.paid committed with
// webhooks on reaches the merchant, whether the off replica's worker passes
// before the relay took the event, or while its delivery waits for a retry.
// The off replica still appends the audit records, and a webhook event left
// behind by a run with webhooks on holds them back no longer, and is kept.
func TestWebhooksOffReplicaLeavesWebhooksAlone(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			// Each driver's cases on stores, merchants and relays of
			// their own; the embedded file's fsyncs beside Redis's
			// round trips.
			t.Parallel()
			t.Run("before the relay's pass", func(t *testing.T) {
				ctx := context.Background()
				r := newWebhooksOffReplicas(t, driver)
				ev := paidTransition(t, r.on, "PGOFF1"+driver, time.Now())
				r.drainOff()
				r.relayUntil("delivered the order.paid the off replica's worker saw first", func() bool { return r.merchant.got(ev.ID) })
				r.drainOff()
				if res, err := audit.Verify(ctx, r.off, audit.VerifyOptions{}); err != nil || res.Records != 1 {
					t.Errorf("chain: %+v, %v; want the payment's record", res, err)
				}
			})
			t.Run("while its delivery waits for a retry", func(t *testing.T) {
				ctx := context.Background()
				r := newWebhooksOffReplicas(t, driver)
				r.merchant.down.Store(true)
				ev := paidTransition(t, r.on, "PGOFF2"+driver, time.Now())
				r.relayUntil("tried the order.paid", func() bool {
					st, err := r.on.OutboxStats(ctx)
					if err != nil {
						t.Fatal(err)
					}
					return st.LastError != ""
				})
				time.Sleep(5 * time.Millisecond) // the retry is due
				for range 3 {
					r.drainOff()
				}
				r.merchant.down.Store(false)
				r.relayUntil("delivered the order.paid whose retry the off replica's worker saw due", func() bool { return r.merchant.got(ev.ID) })
				r.drainOff()
				if res, err := audit.Verify(ctx, r.off, audit.VerifyOptions{}); err != nil || res.Records != 1 {
					t.Errorf("chain: %+v, %v; want the payment's record", res, err)
				}
			})
			t.Run("left by a run with webhooks on", func(t *testing.T) {
				// No relay took it for an hour (webhooks were turned off
				// meanwhile): the off replica sets it aside so that it holds
				// back no audit record of its order, and keeps it for the
				// relay that runs once webhooks are on again.
				ctx := context.Background()
				r := newWebhooksOffReplicas(t, driver)
				ev := paidTransition(t, r.on, "PGOFF3"+driver, time.Now().Add(-time.Hour))
				rec, err := audit.ActionEvent(audit.Action{Name: "refund.succeeded", OrderNo: "PGOFF3" + driver, User: "oA"}, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := r.on.EnqueueEvents(ctx, rec); err != nil {
					t.Fatal(err)
				}
				r.drainOff()
				if res, err := audit.Verify(ctx, r.off, audit.VerifyOptions{}); err != nil || res.Records != 2 {
					t.Errorf("chain: %+v, %v; want the payment's and the refund's records", res, err)
				}
				r.relayUntil("delivered the order.paid the off replica set aside", func() bool { return r.merchant.got(ev.ID) })
			})
		})
	}
}

// webhooksOffReplicas are two replicas over one store, as newAuditing
// builds their audit workers: on with webhooks.url set, which runs the
// relay too, and off with webhooks.url empty.
type webhooksOffReplicas struct {
	t        *testing.T
	on, off  store.Store
	merchant *merchantEndpoint
	relay    *webhook.Relay
	onAudit  *auditing
	offAudit *auditing
}

func newWebhooksOffReplicas(t *testing.T, driver string) *webhooksOffReplicas {
	t.Helper()
	r := &webhooksOffReplicas{t: t, merchant: newMerchantEndpoint(t)}
	r.on, r.off = sharedStores(t, driver)
	var err error
	r.relay, err = webhook.New(webhook.Options{Store: r.on, URL: r.merchant.URL, Secret: "whsec-test-0123456789",
		RetryBase: time.Millisecond, MaxDelay: time.Millisecond, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	const clients = "clients: [{name: bot, key: sk-paygate-test-0123456789}]\n"
	for _, c := range []struct {
		yaml string
		st   store.Store
		au   **auditing
	}{
		{clients + "webhooks: {url: " + r.merchant.URL + ", secret: whsec-test-0123456789}\n", r.on, &r.onAudit},
		{clients, r.off, &r.offAudit},
	} {
		cfg, err := config.Parse([]byte(c.yaml), "replica.yaml", func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		if (cfg.Webhooks.URL == "") != (c.st == r.off && c.au == &r.offAudit) {
			t.Fatalf("webhooks.url %q for the wrong replica", cfg.Webhooks.URL)
		}
		if *c.au, err = newAuditing(cfg, c.st, prometheus.NewRegistry(), slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// drainOff makes a pass of the off replica's audit worker.
func (r *webhooksOffReplicas) drainOff() {
	r.t.Helper()
	if _, err := r.offAudit.worker.Drain(context.Background()); err != nil {
		r.t.Fatal(err)
	}
}

// relayUntil runs the on replica (its audit worker, which takes the
// payment's audit event ahead of its webhook, and its relay) until done.
func (r *webhooksOffReplicas) relayUntil(what string, done func() bool) {
	r.t.Helper()
	for range 50 {
		if _, err := r.onAudit.worker.Drain(context.Background()); err != nil {
			r.t.Fatal(err)
		}
		r.relay.RunOnce(context.Background())
		if done() {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	r.t.Fatalf("the webhooks-on replica's relay never %s", what)
}
