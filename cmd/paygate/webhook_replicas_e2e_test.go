package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/internal/countwait"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/proxy/h1/h1test"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestWebhookPostedOnceAcrossReplicas: two replicas over one Redis relay the
// shared outbox, polling it every 10 ms. The merchant holds the first POST of
// each event until every replica has read the outbox a few times since it
// arrived (or until a second POST of the event arrives): a replica that sees
// an event another one is sending must not send it too, nor copy it into the
// delivery queue twice. Every order.paid is POSTed exactly once.
func TestWebhookPostedOnceAcrossReplicas(t *testing.T) {
	const replicas, orders, pollsDuringPost = 2, 3, 3
	polls := countwait.New(replicas)

	var mu sync.Mutex
	posts := map[string]int{}
	answered := map[string]bool{}       // events whose first POST the merchant answered
	again := map[string]chan struct{}{} // closed by an event's second POST
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id := gjson.GetBytes(body, "id").Str
		mu.Lock()
		posts[id]++
		n := posts[id]
		if again[id] == nil {
			again[id] = make(chan struct{})
		}
		ch := again[id]
		mu.Unlock()
		switch n {
		case 1:
			if !polls.AwaitMore(t, r.Context(), ch, pollsDuringPost, 20*time.Second) {
				t.Errorf("event %s: the replicas did not read the outbox %d times each while its POST was held", id, pollsDuringPost)
			}
		case 2:
			close(ch)
		}
		mu.Lock()
		answered[id] = true
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(merchant.Close)

	if !slices.Contains(testdrivers.Names(t), "redis") {
		t.Skip("needs Redis: replicas share the outbox through it")
	}
	storeYAML := webhookStoreYAML(t, "redis")
	up := newScriptedProvider(t, purchaseScript)
	var urls []string
	var apps []*app
	for i := range replicas {
		url, a := webhookReplica(t, storeYAML, up.URL, merchant.URL, func(o *webhook.Options) {
			o.PollInterval = 10 * time.Millisecond
			o.Store = pollCountingStore{Store: o.Store, polled: func() { polls.Add(i) }}
		})
		urls, apps = append(urls, url), append(apps, a)
	}

	var nos []string
	for i := range orders {
		no, _ := orderFor(t, urls[0], "oReplicaHook"+strconv.Itoa(i), "premium please")
		if d, err := apps[0].sim.Pay(context.Background(), no); err != nil || !d.Acked {
			t.Fatalf("pay %s: %+v %v", no, d, err)
		}
		nos = append(nos, no)
	}

	// Drained is every event's first POST answered and nothing pending. A
	// POST merely started does not do: OutboxStats reads the index, then the
	// heads of the keys it names, so an event moved meanwhile from its
	// order's queue to the delivery queue counts nowhere, and Pending read
	// 0 with that event's POST still held (then cut by the cleanup).
	ctx := context.Background()
	awaitCondition(t, "every order.paid delivered and the outbox drained", 30*time.Second, func() bool {
		st, err := apps[0].store.OutboxStats(ctx)
		mu.Lock()
		defer mu.Unlock()
		return err == nil && st.Pending == 0 && len(answered) >= orders
	})
	// A POST a replica started from a read made before the outbox drained
	// would arrive now: let every replica read the outbox twice more.
	if !polls.AwaitMore(t, ctx, nil, 2, 20*time.Second) {
		t.FailNow() // what was POSTed is not yet all there is
	}

	mu.Lock()
	defer mu.Unlock()
	for id, n := range posts {
		if n != 1 {
			t.Errorf("event %s POSTed %d times by %d replicas; want once", id, n, replicas)
		}
	}
	if len(posts) != orders {
		t.Errorf("%d events POSTed for %d paid orders (%v); want one order.paid each", len(posts), orders, nos)
	}
}

// webhookReplica starts one replica: the binary's application with payments
// on its own simulator, the store of storeYAML (shared by the replicas) and
// webhooks to merchantURL, its relay adjusted by tweak.
func webhookReplica(t *testing.T, storeYAML, providerURL, merchantURL string, tweak func(*webhook.Options)) (string, *app) {
	t.Helper()
	srv := h1test.NewUnstartedServer()
	src := `
clients: [{name: bot, key: ` + e2eClientKey + `}]
` + storeYAML + `
providers:
  - {name: fake, base_url: "` + providerURL + `/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
webhooks: {url: "` + merchantURL + `", secret: ` + testWebhookSecret + `}
admin: {token: ` + testAdminToken + `}
`
	cfg, err := config.Parse([]byte(src), "replica.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(cfg, io.Discard, "http://"+srv.Listener.Addr().String()+"/wechatpay/notify", withWebhookOptions(tweak))
	if err != nil {
		t.Fatal(err)
	}
	srv.Start(a.server.Handler())
	t.Cleanup(func() {
		srv.Close()
		a.close()
	})
	return srv.URL, a
}

// pollCountingStore reports each outbox read of a relay.
type pollCountingStore struct {
	webhook.Store
	polled func()
}

func (s pollCountingStore) ClaimEvents(ctx context.Context, kind string, now time.Time, lease time.Duration, limit int) ([]store.Event, error) {
	defer s.polled()
	// Asserted rather than called directly, so that the test also builds
	// against a relay that reads DueEvents only.
	c := s.Store.(interface {
		ClaimEvents(context.Context, string, time.Time, time.Duration, int) ([]store.Event, error)
	})
	return c.ClaimEvents(ctx, kind, now, lease, limit)
}

func (s pollCountingStore) DueEvents(ctx context.Context, now time.Time, limit int, kinds ...string) ([]store.Event, error) {
	defer s.polled()
	return s.Store.DueEvents(ctx, now, limit, kinds...)
}

// awaitCondition polls cond until it holds, failing the test after d.
func awaitCondition(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		<-tick.C
	}
}
