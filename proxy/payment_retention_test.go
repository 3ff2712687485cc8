package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"
	bolt "go.etcd.io/bbolt"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/embedded"
	redisstore "github.com/paygate/paygate/store/redis"
	"github.com/paygate/paygate/store/testdrivers"
)

// retainedForGood are the kinds of Redis key paygate keeps without expiry,
// as the README documents ("orders, refunds and the audit chain are kept
// for good"): an order's record and outbox version, the user's copies of
// their orders (what makes LoadUserState one round trip) and the
// cross-order indexes, the audit chain and each user's erasure mark, and
// the store's own markers. Every other key must expire.
var retainedForGood = []*regexp.Regexp{
	regexp.MustCompile(`^\{o:[^}]+\}:(rec|obv)$`),
	regexp.MustCompile(`^\{u:[^}]+\}:(o|v|r|u)$`),
	regexp.MustCompile(`^\{idx\}:`),
	regexp.MustCompile(`^\{audit\}:(head|rec|retain|tce:.*)$`), // retain: the retention last applied to the texts kept
	regexp.MustCompile(`^\{meta:[^}]+\}`),
	regexp.MustCompile(`^\{gen:[^}]+\}$`), // the generation counter a money write raises
	regexp.MustCompile(`^\{s:[^}]+\}$`),   // process secrets (the user hash key)
}

// embeddedKeptForGood are the buckets of the embedded file whose records
// are kept for good (README): the orders and their indexes, the audit
// chain, the secrets, and the one-record marker of the transaction that
// last kept the indexes (indexes_kept, overwritten by every write).
var embeddedKeptForGood = map[string]bool{
	"orders": true, "user_orders": true, "user_updated": true, "status_orders": true, "all_orders": true,
	"client_orders": true, "client_status_orders": true, "audit": true, "audit_meta": true, "secrets": true,
	"indexes_kept": true,
}

// TestPaymentTurnsLeaveOnlyRetainedOrExpiringKeys: a year at a busy
// merchant must not grow Redis per turn. Realistic turns of several users
// on real Redis under a key prefix of their own (a purchase, its payment
// notification and confirmation, a refund proposed and confirmed with its
// notification, one proposed and cancelled, a clarification, a round with
// both a payment call and the bot's own tool whose exchange is kept for
// the bot's follow-up, a failover to a second provider), the audit
// worker appending their records, the payment sweep: every key left
// either carries a TTL or is of a kind kept for good (retainedForGood).
// A turn that writes a per-request or per-order key without expiry (an
// idempotency mark, a lease, a token, a window) fails here, naming it. On
// the embedded file, a sweep past every expiry leaves records only in the
// buckets kept for good.
func TestPaymentTurnsLeaveOnlyRetainedOrExpiringKeys(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) { testPaymentTurnsRetention(t, driver) })
	}
}

func testPaymentTurnsRetention(t *testing.T, driver string) {
	ctx := context.Background()
	var skew atomic.Int64
	place := testdrivers.NewPlace(t, driver, func() time.Time { return time.Now().Add(time.Duration(skew.Load())) })
	st := place.Open()

	// WeChat Pay: the simulator, its notifications to the service's route.
	keys, err := simKeys()
	if err != nil {
		t.Fatal(err)
	}
	sim, err := wxsim.New(wxsim.Options{Keys: keys, NotifyAttempts: 3, NotifyRetry: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(sim)
	var notify http.Handler = http.NotFoundHandler()
	notifySrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { notify.ServeHTTP(w, r) }))
	t.Cleanup(func() { notifySrv.Close(); api.Close(); _ = sim.Close() })
	wcfg := sim.ClientConfig(api.URL, notifySrv.URL+payments.NotifyPath)
	wcfg.AttemptTimeout = 5 * time.Second
	client, err := wechatpay.New(ctx, wcfg)
	if err != nil {
		t.Fatal(err)
	}
	catalog, err := payments.NewCatalog([]payments.CatalogItem{{SKU: "premium-monthly", Name: "Premium", Price: "49.99", MaxQuantity: 12}})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := payments.New(payments.Options{Store: st, Backend: client, Notify: client.NotifyVerifier(), Catalog: catalog,
		MchID: sim.MchID(), AppID: sim.AppID(), Registerer: prometheus.NewRegistry(), ActiveQueryAfter: time.Nanosecond,
		Events: func(tr payments.Transition) []store.Event {
			return append(audit.TransitionEvents(tr), webhook.Events(tr)...)
		},
		ProposalEvents: func(ctx context.Context, step payments.ProposalStep, p store.RefundProposal, o *store.Order) []store.Event {
			return append(audit.ProposalEvents(ctx, step, p, o), webhook.ProposalEvents(ctx, step, p, o)...)
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	notify = svc.NotifyHandler()
	worker, err := audit.NewWorker(audit.WorkerOptions{Store: st, RetainText: 4320 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// The merchant's webhook endpoint takes every event.
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(merchant.Close)
	// The relay's clock runs a minute on with each reading, so that an
	// event it moved to its order's delivery queue is due at its next pass.
	var minutes atomic.Int64
	relay, err := webhook.New(webhook.Options{Store: st, URL: merchant.URL, Secret: "whsec-retention-test-0123456789",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:    func() time.Time { return time.Now().Add(time.Duration(minutes.Add(1)) * time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}

	// The model: by the user's last words; words once a tool result is in.
	up := func(w http.ResponseWriter, r *http.Request) {
		b := readAll(t, r.Body)
		last := gjson.Get(b, "messages.@reverse.0")
		if last.Get("role").Str == "tool" {
			textRound(false, "Done.")(w, r)
			return
		}
		said := last.Get("content").Str
		call := func(name, args string) string {
			return `{"index":0,"id":"call_` + name + `","type":"function","function":{"name":"` + name + `","arguments":` + strconv.Quote(args) + `}}`
		}
		switch {
		case strings.HasPrefix(said, "buy"):
			callsRound(false, "["+call("create_order", `{"sku":"premium-monthly","quantity":1}`)+"]")(w, r)
		case strings.HasPrefix(said, "unsure"):
			callsRound(false, "["+call("create_order", `{"sku":"no-such-thing","quantity":1}`)+"]")(w, r)
		case strings.HasPrefix(said, "refund "):
			callsRound(false, "["+call("request_refund", `{"order_no":"`+strings.TrimPrefix(said, "refund ")+`","reason":"not needed"}`)+"]")(w, r)
		case strings.HasPrefix(said, "mixed "):
			q := call("query_order", `{"order_no":"`+strings.TrimPrefix(said, "mixed ")+`"}`)
			own := `{"index":1,"id":"call_weather","type":"function","function":{"name":"get_weather","arguments":"{}"}}`
			callsRound(false, "["+q+","+own+"]")(w, r)
		default:
			textRound(false, "Hello.")(w, r)
		}
	}
	primary := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		b := readAll(t, r.Body)
		if strings.Contains(b, "failover") {
			http.Error(w, `{"error":{"message":"overloaded","type":"server_error"}}`, http.StatusServiceUnavailable)
			return
		}
		r.Body = io.NopCloser(strings.NewReader(b))
		up(w, r)
	})
	backup := newFakeProvider(t, up)
	src := `
clients:
  - {name: shop-bot, key: ` + testClientKey + `}
providers:
  - {name: primary, base_url: ` + primary.URL + `/v1, api_key: ` + testProviderKey + `, prices: {m: {input: 2.5, output: 10}}}
  - {name: backup, base_url: ` + backup.URL + `/v1, api_key: ` + testProviderKey + `, prices: {m: {input: 2.5, output: 10}}}
models:
  - name: gpt-test
    targets: [{provider: primary, model: m}, {provider: backup, model: m}]
privacy:
  hash_key: ` + testHashKey + `
`
	cfg, err := config.Parse([]byte(src), "test.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	srv, ledger := ledgerServer(t, cfg, st, Options{Tools: simTools(svc), Reconciler: svc, UserPayments: svc})

	turn := func(user, body string) string {
		t.Helper()
		resp := post(t, srv.URL, "/v1/chat/completions", body, map[string]string{"X-WeChat-OpenID": user})
		b := readAll(t, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("turn of %s: %d %s", user, resp.StatusCode, b)
		}
		return b
	}
	say := func(user, words string) string {
		return turn(user, `{"model":"gpt-test","messages":[{"role":"user","content":`+strconv.Quote(words)+`}]}`)
	}

	const users = 4
	for u := range users {
		user := fmt.Sprintf("o-buyer-%02d-0123456789abcdefghij", u)
		b := say(user, "buy premium")
		no := gjson.Get(b, `paygate.actions.#(type=="order_created").order.order_no`).Str
		if no == "" {
			t.Fatalf("purchase turn: no order_created in %s", b)
		}
		if _, err := sim.Pay(ctx, no); err != nil {
			t.Fatal(err)
		}
		say(user, "did it go through?") // payment_confirmed, once
		say(user, "thanks")
		say(user, "unsure what to buy") // a clarification
		if u%2 == 0 {
			say(user, "failover please")
		}
		mixed := `{"model":"gpt-test","tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],` +
			`"messages":[{"role":"user","content":"mixed ` + no + `"}]}`
		b = turn(user, mixed)
		if gjson.Get(b, "choices.0.finish_reason").Str != "tool_calls" {
			t.Fatalf("mixed turn: %s", b)
		}
		turn(user, `{"model":"gpt-test","tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],`+
			`"messages":[{"role":"user","content":"mixed `+no+`"},`+
			`{"role":"assistant","tool_calls":[{"id":"call_weather","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},`+
			`{"role":"tool","tool_call_id":"call_weather","content":"sunny"}]}`)
		b = say(user, "refund "+no)
		id := gjson.Get(b, `paygate.actions.#(type=="refund_proposed").refund.refund_id`).Str
		if id == "" {
			t.Fatalf("refund turn: no refund_proposed in %s", b)
		}
		if u == users-1 {
			if _, err := svc.CancelRefund(ctx, "shop-bot", user, id); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := svc.ConfirmRefund(ctx, "shop-bot", user, id); err != nil {
			t.Fatal(err)
		}
		p, _, err := st.RefundProposalState(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sim.CompleteRefund(ctx, p.OutRefundNo); err != nil {
			t.Fatal(err)
		}
		say(user, "is my money back?") // the refund's outcome, once
	}
	if _, err := svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	// The audit records and the webhooks of an order leave its queue one
	// at a time, each consumer's in turn.
	for range 100 {
		sent := relay.RunOnce(ctx)
		appended, err := worker.Drain(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if sent == 0 && appended == 0 {
			break
		}
	}
	if ob, err := st.OutboxStats(ctx); err != nil || ob.Pending != 0 {
		t.Fatalf("outbox after delivery: %d events pending (%v); want every event delivered", ob.Pending, err)
	}
	ledger.Flush()

	if driver == "embedded" {
		// Past every expiry (a claim's generation: 30 days after the
		// claim; conversation texts: audit.retain_text; a refund's record:
		// 400 days, longer than WeChat Pay keeps a refund open), one sweep
		// leaves the records kept for good only.
		skew.Store(int64(420 * 24 * time.Hour))
		if _, err := st.(*embedded.DB).Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		db, err := bolt.Open(place.Path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var lines []string
		err = db.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
				n := b.Stats().KeyN
				lines = append(lines, fmt.Sprintf("%5d %s", n, name))
				if n > 0 && !embeddedKeptForGood[string(name)] {
					t.Errorf("bucket %s holds %d records past every expiry; want none", name, n)
				}
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("records 420 days after the turns of %d users, swept:\n%s", users, strings.Join(lines, "\n"))
		return
	}
	rc := st.(*redisstore.Store)
	kinds := map[string]int{}
	var leaks []string
	for _, k := range prefixKeys(t, rc, place.Prefix) {
		name := strings.TrimPrefix(k, place.Prefix)
		ttl, err := rc.Client().PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		kept := ttl < 0
		kind := keyKind(name)
		if kept {
			kind += " (no TTL)"
		}
		kinds[kind]++
		if !kept {
			continue
		}
		retained := false
		for _, re := range retainedForGood {
			retained = retained || re.MatchString(name)
		}
		if !retained {
			leaks = append(leaks, name)
		}
	}
	var lines []string
	for k, n := range kinds {
		lines = append(lines, fmt.Sprintf("%4d %s", n, k))
	}
	sort.Strings(lines)
	t.Logf("keys after the turns of %d users:\n%s", users, strings.Join(lines, "\n"))
	sort.Strings(leaks)
	for _, k := range leaks {
		t.Errorf("key %q has no TTL and is of no kind kept for good", k)
	}
}

// keyKind is a key's name with its ids blanked: {o:*}:rec for every
// order's record.
func keyKind(name string) string {
	name = regexp.MustCompile(`\{([a-z]+):[^}]*\}`).ReplaceAllString(name, "{$1:*}")
	return regexp.MustCompile(`:[^:{}]*[0-9][^:{}]*$`).ReplaceAllString(name, ":*")
}
