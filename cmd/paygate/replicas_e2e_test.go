package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/store/testdrivers"
)

// redisReplica starts one replica of the binary's application on the
// shared Redis store of storeYAML, with an admin listener; it returns the
// main and the admin URL.
func redisReplica(t *testing.T, storeYAML, providerURL string) (string, string, *app) {
	t.Helper()
	src := `
clients: [{name: bot, key: ` + e2eClientKey + `}]
` + storeYAML + `
admin: {token: ` + testAdminToken + `}
providers:
  - {name: fake, base_url: "` + providerURL + `/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
    - {sku: premium-yearly, name: "Premium tier, 1 year", price: "499.00", max_quantity: 2}
`
	url, a := serveConfig(t, src, io.Discard)
	admin := httptest.NewServer(a.adminHandler())
	t.Cleanup(admin.Close)
	return url, admin.URL, a
}

// TestReplicasShareApprovalsAndAnnouncements: three replicas on one real
// Redis behind a load balancer, a user's turns and an operator's decision
// landing on different ones. An order held for approval at one replica
// is in every replica's approval queue; approved at a second, the user's
// next turn at a third announces it with its payment parameters, once: the
// turn after, at the first replica, does not announce it again. Paid (WeChat
// Pay notifying the second), the payment is announced at the first, once.
// The audit chain, appended to by the replicas that made each step,
// verifies whole and holds the order's creation, approval and payment once
// each.
func TestReplicasShareApprovalsAndAnnouncements(t *testing.T) {
	if !slices.Contains(testdrivers.Names(t), "redis") {
		t.Skip("needs Redis: replicas share the store through it")
	}
	up := newScriptedProvider(t, func(body string) scriptRound {
		last := gjson.Get(body, "messages.@reverse.0")
		if last.Get("role").Str == "user" && strings.Contains(last.Get("content").Str, "two years") {
			return moneyScript("create_order", func() string { return `{"sku":"premium-yearly","quantity":2}` })(body)
		}
		if last.Get("role").Str == "tool" {
			return moneyScript("", nil)(body)
		}
		return scriptRound{whole: `{"id":"chatcmpl-N","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Here you go."},"finish_reason":"stop"}]}`}
	})
	storeYAML := webhookStoreYAML(t, "redis")
	var urls, admins []string
	var apps []*app
	for range 3 {
		u, ad, a := redisReplica(t, storeYAML, up.URL)
		urls, admins, apps = append(urls, u), append(admins, ad), append(apps, a)
	}
	const user = "oUser-replicas-approval"
	bearer := "Bearer " + testAdminToken

	no := chatAs(t, urls[0], user, "two years of premium please").Get("paygate.actions.0.order.order_no").Str
	if no == "" {
		t.Fatal("no order held for approval")
	}
	for i, ad := range admins {
		status, q := httpCall(t, http.MethodGet, ad+"/admin/api/approvals", bearer, "")
		if status != http.StatusOK || !strings.Contains(q.Get("approvals.#.order_no").Raw, no) {
			t.Errorf("replica %d's approval queue: %d %s; want %s", i, status, q.Raw, no)
		}
	}
	if status, d := httpCall(t, http.MethodPost, admins[1]+"/admin/api/approvals/"+no+"/approve", bearer, ""); status != http.StatusOK {
		t.Fatalf("approve at replica 1: %d %s", status, d.Raw)
	}
	for i, ad := range admins {
		if status, d := httpCall(t, http.MethodPost, ad+"/admin/api/approvals/"+no+"/reject", bearer, ""); status == http.StatusOK {
			t.Errorf("reject at replica %d after the approval at replica 1: %d %s; want it refused", i, status, d.Raw)
		}
	}

	ans := chatAs(t, urls[2], user, "any news?")
	created := ans.Get(`paygate.actions.#(type=="order_created")`)
	if created.Get("order.order_no").Str != no || created.Get("request_payment.paySign").Str == "" {
		t.Fatalf("turn at replica 2 after the approval at replica 1: %s; want order_created with payment parameters for %s", ans.Get("paygate").Raw, no)
	}
	if again := chatAs(t, urls[0], user, "and now?"); again.Get(`paygate.actions.#(type=="order_created")`).Exists() {
		t.Errorf("order_created announced again at replica 0: %s", again.Get("paygate").Raw)
	}
	st, o := httpCall(t, http.MethodGet, urls[0]+"/v1/paygate/orders/"+no, "Bearer "+e2eClientKey, user)
	if st != http.StatusOK || o.Get("status").Str != "awaiting_payment" || o.Get("request_payment.paySign").Str == "" {
		t.Errorf("GET the order at replica 0: %d %s; want it payable", st, o.Raw)
	}

	ctx := context.Background()
	// WeChat Pay notifies the replica whose simulator took the prepay (the
	// one that approved); the user's next turn, at another, announces the
	// payment once.
	if d, err := apps[1].sim.Pay(ctx, no); err != nil || !d.Acked {
		t.Fatalf("pay %s: %+v %v", no, d, err)
	}
	paid := chatAs(t, urls[0], user, "did it go through?")
	if c := paid.Get(`paygate.actions.#(type=="payment_confirmed")`); c.Get("order.order_no").Str != no {
		t.Errorf("turn at replica 0 after the payment at replica 1: %s; want payment_confirmed for %s", paid.Get("paygate").Raw, no)
	}
	if again := chatAs(t, urls[2], user, "thanks"); again.Get(`paygate.actions.#(type=="payment_confirmed")`).Exists() {
		t.Errorf("payment_confirmed announced again at replica 2: %s", again.Get("paygate").Raw)
	}

	// The payment's record is appended by a replica's audit worker after
	// the notification was answered: the chain is read once it holds all
	// three steps (a count of records let it be read with the creation,
	// the approval and the awaiting_payment that follows it, before the
	// payment).
	want := []string{"order.created", "order.approved", "order.paid"}
	var entries []gjson.Result
	awaitCondition(t, "the creation, the approval and the payment in the audit chain", 20*time.Second, func() bool {
		for _, a := range apps {
			a.audit.worker.Wake()
		}
		var b strings.Builder
		if _, err := audit.Export(ctx, apps[0].store, &b, audit.ExportOptions{}); err != nil {
			return false
		}
		entries = entries[:0]
		held := map[string]bool{}
		for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
			if e := gjson.Parse(l); e.Get("body.order_no").Str == no {
				entries = append(entries, e)
				held[e.Get("body.action").Str] = true
			}
		}
		for _, w := range want {
			if !held[w] {
				return false
			}
		}
		return true
	})
	if _, err := audit.Verify(ctx, apps[2].store, audit.VerifyOptions{}); err != nil {
		t.Errorf("audit chain appended by three replicas: %v", err)
	}
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Get("body.action").Str)
	}
	for _, w := range want {
		if n := strings.Count(strings.Join(actions, " "), w); n != 1 {
			t.Errorf("audit actions of %s: %v; want %s once", no, actions, w)
		}
	}
}
