package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/proxy/console"
	"github.com/paygate/paygate/proxy/h1/h1test"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

const testWebhookSecret = "whsec_e2e_4b1d9c"

// webhookStoreYAML is the store section of a driver, at a place that
// outlives one app (a file, a key prefix), so a second app is a restart.
func webhookStoreYAML(t *testing.T, driver string) string {
	return placeYAML(testdrivers.NewPlace(t, driver, nil))
}

// premiumConfig is the config most purchase tests on every store driver
// share: one bot client, driver's store (webhookStoreYAML), one provider
// "fake" at providerURL serving gpt-4o, and premium-monthly (49.99, up to
// 12) in the catalog. morePayments goes on under payments: as written
// (indented two spaces, each line ended), "" for none. It exists so a test
// names only what it sets apart (a rule, a reconcile gap), where seven
// copies of these nine lines hid that difference at their end.
func premiumConfig(t *testing.T, driver, providerURL, morePayments string) string {
	t.Helper()
	return `
clients: [{name: bot, key: ` + e2eClientKey + `}]
` + webhookStoreYAML(t, driver) + `
providers:
  - {name: fake, base_url: "` + providerURL + `/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
` + morePayments
}

// placeYAML is the store section for the place p.
func placeYAML(p *testdrivers.Place) string {
	if p.Driver == "embedded" {
		return `store: {path: "` + p.Path + `"}`
	}
	return `store: {driver: redis, redis: {addrs: ["` + testdrivers.RedisAddr() + `"], key_prefix: "` + p.Prefix + `"}}`
}

// hookArrival is one POST the merchant's endpoint got.
type hookArrival struct {
	env       webhook.Envelope
	body      []byte
	status    int
	verifyErr error
}

// merchant is the merchant's backend: it verifies the signature with
// webhook.Verify, answers what fail says (nil or false: 204), deduplicates
// by event id and reports every arrival on ch.
type merchant struct {
	*httptest.Server
	mu   sync.Mutex
	all  []hookArrival
	ch   chan hookArrival
	fail func(a hookArrival, nth int) bool
}

func newMerchant(t *testing.T, fail func(a hookArrival, nth int) bool) *merchant {
	m := &merchant{ch: make(chan hookArrival, 1024), fail: fail}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		a := hookArrival{body: body, status: http.StatusNoContent}
		a.verifyErr = webhook.Verify(testWebhookSecret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), 5*time.Minute)
		if err := json.Unmarshal(body, &a.env); err != nil && a.verifyErr == nil {
			a.verifyErr = err
		}
		m.mu.Lock()
		nth := 0
		for _, p := range m.all {
			if p.env.ID == a.env.ID {
				nth++
			}
		}
		switch {
		case a.verifyErr != nil:
			a.status = http.StatusBadRequest
		case m.fail != nil && m.fail(a, nth):
			a.status = http.StatusServiceUnavailable
		}
		m.all = append(m.all, a)
		m.mu.Unlock()
		w.WriteHeader(a.status)
		m.ch <- a
	}))
	t.Cleanup(m.Close)
	return m
}

func (m *merchant) arrivals() []hookArrival {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]hookArrival(nil), m.all...)
}

// processed is what a deduplicating merchant acts on: the first 2xx of each
// event id, in arrival order.
func (m *merchant) processed() []hookArrival {
	seen := map[string]bool{}
	var out []hookArrival
	for _, a := range m.arrivals() {
		if a.status/100 == 2 && !seen[a.env.ID] {
			seen[a.env.ID] = true
			out = append(out, a)
		}
	}
	return out
}

// await reads arrivals until cond holds for one, or fails after 20s.
func (m *merchant) await(t *testing.T, what string, cond func(hookArrival) bool) hookArrival {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case a := <-m.ch:
			if cond(a) {
				return a
			}
		case <-timeout:
			t.Fatalf("no %s within 20s; arrivals: %d", what, len(m.arrivals()))
		}
	}
}

// nextResult waits for the relay's next recorded outcome, or fails after
// 20s with what was awaited: a bare receive hung a test whose outcome never
// came until the package's timeout (15 min in CI), whose panic ends every
// test of the package still to run.
func nextResult(t *testing.T, results <-chan webhook.Result, what string) webhook.Result {
	t.Helper()
	select {
	case r := <-results:
		return r
	case <-time.After(20 * time.Second):
		t.Fatalf("no webhook outcome (%s) within 20s", what)
		return webhook.Result{}
	}
}

// hookApp serves the binary's application with payments on the simulator,
// webhooks to merchantURL and a retry schedule in milliseconds. close ends
// it (also at cleanup; closing twice is harmless).
func hookApp(t *testing.T, storeYAML, providerURL, merchantURL, extra string, observe func(webhook.Result), opts ...appOption) (url string, a *app, closeApp func()) {
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
    - {sku: premium-yearly, name: "Premium tier, 1 year", price: "499.00", max_quantity: 2}
webhooks: {url: "` + merchantURL + `", secret: ` + testWebhookSecret + `}
admin: {token: ` + testAdminToken + `}
` + extra
	cfg, err := config.Parse([]byte(src), "e2e.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	a, err = newApp(cfg, io.Discard, "http://"+srv.Listener.Addr().String()+"/wechatpay/notify",
		append([]appOption{withWebhookOptions(func(o *webhook.Options) {
			o.RetryBase, o.MaxDelay, o.PollInterval = 20*time.Millisecond, 80*time.Millisecond, 10*time.Millisecond
			o.Observe = observe
		})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start(a.server.Handler())
	var once sync.Once
	closeApp = func() {
		once.Do(func() {
			srv.Close()
			a.close()
		})
	}
	t.Cleanup(closeApp)
	return srv.URL, a, closeApp
}

// TestWebhookRetriedAcrossRestart: a purchase paid at the simulator becomes
// an order.paid the merchant refuses at first; paygate is closed between the
// failure and the retry and a new one on the same store (file or Redis
// prefix) delivers it: same id, a signature that verifies, processed once.
func TestWebhookRetriedAcrossRestart(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			var mu sync.Mutex
			refusing := true
			m := newMerchant(t, func(hookArrival, int) bool {
				mu.Lock()
				defer mu.Unlock()
				return refusing
			})
			up := newScriptedProvider(t, purchaseScript)
			storeYAML := webhookStoreYAML(t, driver)
			url, a, closeFirst := hookApp(t, storeYAML, up.URL, m.URL, "", nil)
			no, _ := orderFor(t, url, testOpenID, "premium please")
			if d, err := a.sim.Pay(context.Background(), no); err != nil || !d.Acked {
				t.Fatalf("pay: %+v %v", d, err)
			}
			first := m.await(t, "refused order.paid", func(a hookArrival) bool { return a.env.Type == webhook.TypeOrderPaid })
			if first.status != http.StatusServiceUnavailable || first.verifyErr != nil {
				t.Fatalf("first delivery: status %d, signature %v; want a refused, validly signed delivery", first.status, first.verifyErr)
			}
			closeFirst()
			mu.Lock()
			refusing = false
			mu.Unlock()
			before := len(m.arrivals())

			_, _, _ = hookApp(t, storeYAML, up.URL, m.URL, "", nil)
			got := m.await(t, "order.paid after the restart", func(a hookArrival) bool { return a.status/100 == 2 })
			if got.env.ID != first.env.ID || string(got.body) != string(first.body) || got.verifyErr != nil {
				t.Errorf("after the restart: id %s body %s (signature %v); want the refused event again, id %s", got.env.ID, got.body, got.verifyErr, first.env.ID)
			}
			if len(m.arrivals()) <= before {
				t.Fatal("nothing arrived after the restart")
			}
			p := m.processed()
			if len(p) != 1 || p[0].env.Type != webhook.TypeOrderPaid {
				t.Fatalf("processed %d events; want exactly one order.paid", len(p))
			}
			d := p[0].env.Data
			if d.Order["order_no"] != no || d.Order["status"] != "paid" || d.Order["amount_fen"] != float64(4999) ||
				d.Order["paid_at"] == nil || d.OpenID != testOpenID || d.Client != "bot" || d.TransactionID == "" {
				t.Errorf("order.paid data %+v; want order %s paid 4999 fen for %s via bot", d, no, testOpenID)
			}
			if !strings.HasPrefix(p[0].env.ID, "evt_") {
				t.Errorf("event id %q; want evt_…", p[0].env.ID)
			}
			if _, err := time.Parse(time.RFC3339, p[0].env.CreatedAt); err != nil {
				t.Errorf("created_at %q: %v", p[0].env.CreatedAt, err)
			}
		})
	}
}

// TestWebhookApprovalBeforePaid: an order above approval_above is announced
// with order.approval_required, which the merchant refuses three times;
// an operator approves it and the user pays meanwhile, yet order.paid only
// leaves after order.approval_required was acknowledged.
func TestWebhookApprovalBeforePaid(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			released := false // set under m.mu: approval_required is refused until then
			m := newMerchant(t, func(a hookArrival, nth int) bool {
				if a.env.Type != webhook.TypeOrderApprovalRequired {
					return false
				}
				if nth < 3 {
					return true
				}
				return !released
			})
			up := newScriptedProvider(t, moneyScript("create_order", func() string { return `{"sku":"premium-yearly","quantity":2}` }))
			results := make(chan webhook.Result, 1024)
			url, a, _ := hookApp(t, webhookStoreYAML(t, driver), up.URL, m.URL, "", func(r webhook.Result) {
				select {
				case results <- r:
				default: // Observe must not block; only the first results are awaited
				}
			})
			admin := httptest.NewServer(a.adminHandler())
			t.Cleanup(admin.Close)

			ans := chatAs(t, url, "oUser-approve-hook", "two years please")
			no := ans.Get("paygate.actions.0.order.order_no").Str
			if ans.Get("paygate.actions.0.type").Str != "approval_required" {
				t.Fatalf("action %s; want approval_required", ans.Get("paygate.actions").Raw)
			}
			for i := range 3 { // each refusal recorded in the outbox
				r := nextResult(t, results, fmt.Sprintf("order.approval_required attempt %d", i+1))
				if r.Type != webhook.TypeOrderApprovalRequired || r.Outcome != webhook.OutcomeFailed || r.Attempt != i+1 || r.Status != http.StatusServiceUnavailable {
					t.Fatalf("attempt %d: %+v; want approval_required refused with 503", i+1, r)
				}
			}
			status, d := httpCall(t, http.MethodPost, admin.URL+"/admin/api/approvals/"+no+"/approve", "Bearer "+testAdminToken, "")
			if status != http.StatusOK {
				t.Fatalf("approve: %d %s", status, d.Raw)
			}
			if dl, err := a.sim.Pay(context.Background(), no); err != nil || !dl.Acked {
				t.Fatalf("pay: %+v %v", dl, err)
			}
			// The order is paid in the store and its order.paid queued behind
			// the refused head: two more refusals, and order.paid still waits.
			for fails := 0; fails < 2; {
				r := nextResult(t, results, "order.approval_required refused behind order.paid")
				if r.Type == webhook.TypeOrderPaid {
					t.Fatalf("order.paid %s while order.approval_required was still refused", r.Outcome)
				}
				if r.Type == webhook.TypeOrderApprovalRequired && r.Outcome == webhook.OutcomeFailed {
					fails++
				}
			}
			status, st := httpCall(t, http.MethodGet, admin.URL+"/admin/api/webhooks", "Bearer "+testAdminToken, "")
			if status != http.StatusOK || st.Get("pending_orders").Int() != 1 || st.Get("heads.0.type").Str != webhook.TypeOrderApprovalRequired || st.Get("heads.0.attempts").Int() < 5 {
				t.Errorf("admin webhooks: %d %s; want the approval_required head with at least 5 attempts", status, st.Raw)
			}
			for _, x := range m.arrivals() {
				if x.env.Type == webhook.TypeOrderPaid {
					t.Fatalf("order.paid arrived while order.approval_required was still refused")
				}
			}
			func() { // let approval_required through
				m.mu.Lock()
				released = true
				m.mu.Unlock()
			}()
			m.await(t, "order.paid", func(a hookArrival) bool { return a.env.Type == webhook.TypeOrderPaid && a.status/100 == 2 })
			var types []string
			for _, p := range m.processed() {
				types = append(types, p.env.Type)
			}
			if fmt.Sprint(types) != fmt.Sprint([]string{webhook.TypeOrderApprovalRequired, webhook.TypeOrderPaid}) {
				t.Errorf("processed %v; want approval_required, then paid", types)
			}
			for _, x := range m.arrivals() {
				if x.verifyErr != nil {
					t.Errorf("arrival %s: %v", x.env.ID, x.verifyErr)
				}
			}
		})
	}
}

// TestWebhookAdminAndMetrics: the delivery state is behind the admin token
// and in /metrics.
func TestWebhookAdminAndMetrics(t *testing.T) {
	m := newMerchant(t, nil)
	up := newScriptedProvider(t, purchaseScript)
	results := make(chan webhook.Result, 16)
	url, a, _ := hookApp(t, webhookStoreYAML(t, "embedded"), up.URL, m.URL, "", func(r webhook.Result) { results <- r })
	admin := httptest.NewServer(a.adminHandler())
	t.Cleanup(admin.Close)
	ans := chatAs(t, url, testOpenID, "premium please")
	no := ans.Get("paygate.actions.0.order.order_no").Str
	if d, err := a.sim.Pay(context.Background(), no); err != nil || !d.Acked {
		t.Fatalf("pay: %+v %v", d, err)
	}
	if r := nextResult(t, results, "order.paid"); r.Outcome != webhook.OutcomeDelivered || r.Type != webhook.TypeOrderPaid || r.OrderNo != no {
		t.Fatalf("first outcome %+v; want order.paid of %s delivered", r, no)
	}

	tests := []struct {
		name, auth string
		want       int
	}{
		{name: "no token", want: http.StatusUnauthorized},
		{name: "client key", auth: "Bearer " + e2eClientKey, want: http.StatusUnauthorized},
		{name: "admin token", auth: "Bearer " + testAdminToken, want: http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := httpCall(t, http.MethodGet, admin.URL+"/admin/api/webhooks", tc.auth, "")
			if status != tc.want {
				t.Fatalf("status %d %s; want %d", status, body.Raw, tc.want)
			}
			if status == http.StatusOK && (!body.Get("enabled").Bool() || body.Get("delivered").Int() != 1 || body.Get("url").Str != m.URL) {
				t.Errorf("state %s; want enabled, 1 delivered, the merchant URL", body.Raw)
			}
		})
	}
	resp, err := http.Get(admin.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`paygate_webhook_deliveries_total{outcome="delivered",type="order.paid"} 1`,
		`paygate_webhook_pending_orders`, `paygate_webhook_oldest_pending_seconds`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(string(b), testWebhookSecret) {
		t.Error("/metrics shows the webhook secret")
	}
}

// TestWebhooksOff: without webhooks.url nothing is enqueued for merchants and
// the admin endpoint says so.
func TestWebhooksOff(t *testing.T) {
	up := newScriptedProvider(t, purchaseScript)
	_, adminURL, a := moneyApp(t, up.URL, "")
	status, body := httpCall(t, http.MethodGet, adminURL+"/admin/api/webhooks", "Bearer "+testAdminToken, "")
	if status != http.StatusOK || body.Get("enabled").Bool() || !body.Get("enabled").Exists() {
		t.Errorf("admin webhooks with webhooks off: %d %s; want {\"enabled\":false}", status, body.Raw)
	}
	if a.webhooks != nil {
		t.Error("a relay runs without webhooks.url")
	}
}

// twoAppsConfig binds two clients to two WeChat apps.
const twoAppsConfig = `
clients:
  - {name: shop-a, key: sk-client-a, app_id: wxa1111111111111a1}
  - {name: shop-b, key: sk-client-b, app_id: wxb2222222222222b2}
payments:
  wechatpay: {app_id: wxdefault000000000}
`

// chatWith sends a non-stream chat turn with a client key.
func chatWith(t *testing.T, url, key, user, content string) gjson.Result {
	t.Helper()
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":` + fmt.Sprintf("%q", content) + `}]}`
	return postChat(t, url, key, user, body)
}

// TestTwoMiniPrograms: two clients bound to two app_ids. Each order is
// prepaid under its client's appid and its request-payment parameters carry
// it; the same OpenID string under the other client sees none of its
// orders; a notification naming the other app is not accepted as payment;
// the webhooks name each order's app.
func TestTwoMiniPrograms(t *testing.T) {
	m := newMerchant(t, nil)
	up := newScriptedProvider(t, moneyScript("create_order", func() string { return `{"sku":"premium-monthly"}` }))
	src := strings.Replace(twoAppsConfig, "payments:\n", "payments:\n  catalog: [{sku: premium-monthly, name: \"Premium\", price: \"49.99\", max_quantity: 12}]\n", 1)
	url, a := twoAppsApp(t, up.URL, m.URL, src)
	const shared = "oShared-openid-0001" // the same string in both apps: still two users
	clients := []struct{ key, name, appID string }{
		{"sk-client-a", "shop-a", "wxa1111111111111a1"},
		{"sk-client-b", "shop-b", "wxb2222222222222b2"},
	}
	orderOf := map[string]string{}
	for _, c := range clients {
		ans := chatWith(t, url, c.key, shared, "premium please")
		act := ans.Get("paygate.actions.0")
		no := act.Get("order.order_no").Str
		if act.Get("type").Str != "order_created" || no == "" {
			t.Fatalf("%s: action %s", c.name, act.Raw)
		}
		orderOf[c.name] = no
		if got := act.Get("request_payment.appId").Str; got != c.appID {
			t.Errorf("%s: request_payment.appId %q; want %q", c.name, got, c.appID)
		}
		tx, ok := a.sim.Order(no)
		if !ok || tx.AppID != c.appID || tx.Payer == nil || tx.Payer.OpenID != shared {
			t.Errorf("%s: the simulator's prepay %+v; want appid %s for %s", c.name, tx, c.appID, shared)
		}
		status, one := httpCall(t, http.MethodGet, url+"/v1/paygate/orders/"+no, "Bearer "+c.key, shared)
		if status != http.StatusOK || one.Get("request_payment.appId").Str != c.appID {
			t.Errorf("%s: GET order: %d %s; want request_payment for %s", c.name, status, one.Raw, c.appID)
		}
	}
	if orderOf["shop-a"] == orderOf["shop-b"] {
		t.Fatalf("both clients got order %s", orderOf["shop-a"])
	}
	// OpenID scoping: each client's user sees only its own order.
	for i, c := range clients {
		other := clients[1-i]
		status, list := httpCall(t, http.MethodGet, url+"/v1/paygate/orders", "Bearer "+c.key, shared)
		if status != http.StatusOK || list.Get("data.#").Int() != 1 || list.Get("data.0.order_no").Str != orderOf[c.name] {
			t.Errorf("%s lists %d %s; want only %s", c.name, status, list.Raw, orderOf[c.name])
		}
		if status, _ := httpCall(t, http.MethodGet, url+"/v1/paygate/orders/"+orderOf[other.name], "Bearer "+c.key, shared); status != http.StatusNotFound {
			t.Errorf("%s reads %s's order: %d; want 404", c.name, other.name, status)
		}
	}

	// A verified notification that pays shop-a's order in shop-b's app
	// disagrees with the record: needs_review, not paid.
	noA := orderOf["shop-a"]
	tx, _ := a.sim.Order(noA)
	tx.AppID = clients[1].appID
	tx.TradeState, tx.TradeStateDesc, tx.TransactionID = "SUCCESS", "支付成功", "4200000000000000000000000001"
	tx.SuccessTime = time.Now().Format(time.RFC3339)
	n, err := a.sim.BuildNotification(wxsim.NotificationSpec{EventType: "TRANSACTION.SUCCESS", Summary: "支付成功", OriginalType: "transaction", Resource: tx})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := a.sim.Deliver(context.Background(), url+"/wechatpay/notify", n); err != nil || code/100 != 2 {
		t.Fatalf("deliver: %d %v", code, err)
	}
	review := m.await(t, "order.needs_review", func(h hookArrival) bool { return h.env.Type == webhook.TypeOrderNeedsReview })
	if review.env.Data.Order["order_no"] != noA || !strings.HasPrefix(review.env.Data.ReviewReason, "appid_mismatch") || review.env.Data.AppID != clients[0].appID {
		t.Errorf("needs_review %+v; want %s flagged appid_mismatch, the order's app %s", review.env.Data, noA, clients[0].appID)
	}
	// The real payment of shop-b's order, in its own app, is applied.
	noB := orderOf["shop-b"]
	if d, err := a.sim.Pay(context.Background(), noB); err != nil || !d.Acked {
		t.Fatalf("pay %s: %+v %v", noB, d, err)
	}
	paid := m.await(t, "order.paid", func(h hookArrival) bool { return h.env.Type == webhook.TypeOrderPaid })
	if paid.env.Data.Order["order_no"] != noB || paid.env.Data.AppID != clients[1].appID || paid.env.Data.Client != "shop-b" || paid.env.Data.OpenID != shared {
		t.Errorf("order.paid data %+v; want %s in %s via shop-b", paid.env.Data, noB, clients[1].appID)
	}
	for _, x := range m.arrivals() {
		if x.verifyErr != nil {
			t.Errorf("%s: %v", x.env.ID, x.verifyErr)
		}
	}
}

// twoAppsApp is hookApp with its own clients and payments sections.
func twoAppsApp(t *testing.T, providerURL, merchantURL, clientsAndPayments string) (string, *app) {
	t.Helper()
	srv := h1test.NewUnstartedServer()
	src := clientsAndPayments + `
store: {path: "` + filepath.Join(t.TempDir(), "paygate.db") + `"}
providers:
  - {name: fake, base_url: "` + providerURL + `/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
webhooks: {url: "` + merchantURL + `", secret: ` + testWebhookSecret + `}
`
	cfg, err := config.Parse([]byte(src), "e2e.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(cfg, io.Discard, "http://"+srv.Listener.Addr().String()+"/wechatpay/notify",
		withWebhookOptions(func(o *webhook.Options) { o.RetryBase, o.PollInterval = 20*time.Millisecond, 10*time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	srv.Start(a.server.Handler())
	t.Cleanup(func() { srv.Close(); a.close() })
	return srv.URL, a
}

// TestWebhookResend: an operator asks for a paid order's state to be sent
// again. Its order.paid was acknowledged (and the relay recorded it: until
// then the event still waits, and a resend names it as already pending)
// and nothing was given up, so the plain resend is refused (409: a merchant deduplicating by id would deliver
// the goods twice) and sends nothing; with force=true (the merchant lost
// its records) the merchant receives a second order.paid with a new id, the
// order's current data and a valid signature. An unknown order is 404, an
// order awaiting payment 409, and the route needs the admin token and the
// console's CSRF header.
func TestWebhookResend(t *testing.T) {
	m := newMerchant(t, func(hookArrival, int) bool { return false })
	up := newScriptedProvider(t, purchaseScript)
	results := make(chan webhook.Result, 64)
	url, a, _ := hookApp(t, webhookStoreYAML(t, "embedded"), up.URL, m.URL, "", func(r webhook.Result) { results <- r })
	admin := httptest.NewServer(a.adminHandler())
	t.Cleanup(admin.Close)
	resend := func(no string) string { return admin.URL + "/admin/api/orders/" + no + "/webhook" }

	no, _ := orderFor(t, url, testOpenID, "premium please")

	// Awaiting payment: nothing describes that state.
	if status, body := httpCall(t, http.MethodPost, resend(no), "Bearer "+testAdminToken, ""); status != http.StatusConflict {
		t.Fatalf("resend while awaiting payment: %d %s; want 409", status, body.Raw)
	}
	if d, err := a.sim.Pay(context.Background(), no); err != nil || !d.Acked {
		t.Fatalf("pay: %+v %v", d, err)
	}
	first := m.await(t, "order.paid", func(a hookArrival) bool { return a.env.Type == webhook.TypeOrderPaid })
	for recorded := false; !recorded; {
		select {
		case r := <-results:
			recorded = r.EventID == first.env.ID && r.Outcome == webhook.OutcomeDelivered
		case <-time.After(20 * time.Second):
			t.Fatal("the order.paid's delivery was not recorded")
		}
	}

	for _, tc := range []struct {
		name, auth string
		csrf       bool
		want       int
	}{
		{"no token", "", true, http.StatusUnauthorized},
		{"wrong token", "Bearer nope", true, http.StatusUnauthorized},
		{"no CSRF header", "Bearer " + testAdminToken, false, http.StatusForbidden},
	} {
		r, _ := http.NewRequest(http.MethodPost, resend(no), nil)
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		if tc.csrf {
			r.Header.Set(console.CSRFHeader, "1")
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d; want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	if status, body := httpCall(t, http.MethodPost, resend("PGNOSUCHORDER"), "Bearer "+testAdminToken, ""); status != http.StatusNotFound {
		t.Errorf("unknown order: %d %s; want 404", status, body.Raw)
	}
	if n := len(m.arrivals()); n != 1 {
		t.Fatalf("%d arrivals before the resend; want 1 (refused resends send nothing)", n)
	}

	status, body := httpCall(t, http.MethodPost, resend(no), "Bearer "+testAdminToken, "")
	if status != http.StatusConflict || !strings.Contains(body.Get("error").Str, "force=true") || !body.Get("can_force").Bool() {
		t.Fatalf("resend of a delivered order: %d %s; want 409 naming force=true", status, body.Raw)
	}
	if n := len(m.arrivals()); n != 1 {
		t.Fatalf("%d arrivals after the refused resend; want 1", n)
	}

	status, body = httpCall(t, http.MethodPost, resend(no)+"?force=true", "Bearer "+testAdminToken, "")
	if status != http.StatusAccepted || body.Get("type").Str != webhook.TypeOrderPaid || !strings.HasPrefix(body.Get("event_id").Str, "evt_") {
		t.Fatalf("forced resend: %d %s; want 202 with an order.paid event id", status, body.Raw)
	}
	again := m.await(t, "the resent order.paid", func(a hookArrival) bool { return a.env.ID == body.Get("event_id").Str })
	if again.verifyErr != nil || again.env.Type != webhook.TypeOrderPaid || again.env.ID == first.env.ID {
		t.Fatalf("resent event %s (%s), signature %v; want a new, validly signed order.paid", again.env.ID, again.env.Type, again.verifyErr)
	}
	if d := again.env.Data; d.Order["order_no"] != no || d.Order["status"] != "paid" || d.OpenID != testOpenID || d.TransactionID == "" {
		t.Errorf("resent data %+v; want order %s paid for %s", d, no, testOpenID)
	}
	if n := len(m.processed()); n != 2 {
		t.Errorf("the merchant processed %d events; want 2 (the resend has its own id)", n)
	}
}

// looseEnqueueFails is a store whose EnqueueEvents (a write of events tied
// to no order or proposal write) fails while fail is set, as a Redis blip
// or a crash between two writes would lose it.
type looseEnqueueFails struct {
	store.Store
	fail *atomic.Bool
}

func (s looseEnqueueFails) EnqueueEvents(ctx context.Context, events ...store.Event) error {
	if s.fail.Load() {
		return fmt.Errorf("enqueue: %w", store.ErrUnavailable)
	}
	return s.Store.EnqueueEvents(ctx, events...)
}

// TestRefundProposedWebhookRidesTheProposal: the refund.proposed event is
// written in the proposal's own atomic step, as the order events ride
// their transitions (SPEC 2.6: a durable outbox, none lost). It was
// enqueued by a second write after the proposal, so a store that failed
// that write (or a crash between the two) left the merchant never told of
// a refund the user could confirm, with only an alert in the log.
func TestRefundProposedWebhookRidesTheProposal(t *testing.T) {
	var orderNo string
	up := refundProvider(t, &orderNo, "it broke")
	m := newMerchant(t, nil)
	var fail atomic.Bool
	url, a, _ := hookApp(t, webhookStoreYAML(t, "embedded"), up.URL, m.URL, "", nil,
		withStoreWrap(func(st store.Store) store.Store { return looseEnqueueFails{st, &fail} }))
	const user = "oUser-hook-proposed"
	orderNo = paidByChat(t, url, a, user)
	m.await(t, "order.paid", func(h hookArrival) bool { return h.env.Type == webhook.TypeOrderPaid })
	fail.Store(true)
	act := chatAs(t, url, user, "I want a refund").Get(`paygate.actions.#(type=="refund_proposed")`)
	fail.Store(false)
	id := act.Get("refund.refund_id").Str
	if id == "" {
		t.Fatalf("no refund proposed: %s", act.Raw)
	}
	got := m.await(t, "refund.proposed", func(h hookArrival) bool { return h.env.Type == webhook.TypeRefundProposed })
	if got.verifyErr != nil || got.env.Data.Refund["refund_id"] != id || got.env.Data.Order["order_no"] != orderNo {
		t.Errorf("refund.proposed %s (verify: %v); want refund %s of order %s", got.body, got.verifyErr, id, orderNo)
	}
	// The refund object names when the user's button lapses, the same
	// instant as the refund_proposed action (stamped before either was
	// written, and kept by the store), not the zero time of a proposal
	// not yet written.
	if _, err := time.Parse(time.RFC3339, act.Get("refund.expires_at").Str); err != nil || got.env.Data.Refund["expires_at"] != act.Get("refund.expires_at").Str {
		t.Errorf("refund.proposed's refund.expires_at %v; want the action's %s (%v)", got.env.Data.Refund["expires_at"], act.Get("refund.expires_at").Str, err)
	}
	// In order with the order's own events: order.paid came first.
	types := []string{}
	for _, h := range m.processed() {
		types = append(types, h.env.Type)
	}
	if len(types) != 2 || types[0] != webhook.TypeOrderPaid || types[1] != webhook.TypeRefundProposed {
		t.Errorf("merchant processed %v; want order.paid then refund.proposed", types)
	}
}

// TestWebhookNotHeldBehindItsAuditRecord: a paid order's order.paid,
// queued behind the payment's audit record, reaches the merchant with the
// relay's poll an hour: the audit worker's appending the record wakes the
// relay. It waited for the relay's next poll (a second by default), and
// each of an order's later events (a refund's) for the next one, so an
// order's events went out a poll or more apart. The payment is written
// as paygate writes it but without its commit's wake-ups, and only the
// audit worker is woken: paid through the service, the relay woken on
// commit raced the worker and took order.paid itself when the worker won,
// so the test passed about half the time without the wiring it names.
func TestWebhookNotHeldBehindItsAuditRecord(t *testing.T) {
	m := newMerchant(t, func(hookArrival, int) bool { return false })
	up := newScriptedProvider(t, purchaseScript)
	url, a, _ := hookApp(t, webhookStoreYAML(t, "embedded"), up.URL, m.URL, "", nil,
		withWebhookOptions(func(o *webhook.Options) { o.PollInterval = time.Hour }))
	no, _ := orderFor(t, url, testOpenID, "premium please")
	ctx := context.Background()
	before, err := a.store.GetOrder(ctx, no)
	if err != nil {
		t.Fatal(err)
	}
	paid := *before
	paid.Status, paid.UpdatedAt = store.StatusPaid, time.Now()
	paid.PaidAt, paid.TransactionID = paid.UpdatedAt, "4200"+no
	tr := payments.Transition{Before: *before, After: paid, Cause: "notification"}
	if err := a.store.UpdateOrder(ctx, &paid, before.Status, append(audit.TransitionEvents(tr), webhook.Events(tr)...)...); err != nil {
		t.Fatal(err)
	}
	a.audit.worker.Wake()
	got := m.await(t, "order.paid without a relay poll", func(a hookArrival) bool { return a.env.Type == webhook.TypeOrderPaid })
	if got.env.Data.Order["order_no"] != no {
		t.Fatalf("order.paid of %v; want %s", got.env.Data.Order["order_no"], no)
	}
}
