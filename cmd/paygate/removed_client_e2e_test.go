package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
)

// TestRemovedClientOrdersStillSettle: a client removed from the config (a
// bot retired, a merchant's mini-program closed) while its users' orders
// are open. README (clients[].name): its bot can no longer read or refund
// them; but a payment WeChat Pay takes for one after the restart is still
// the merchant's money: the order is paid, the order.paid webhook goes out
// naming the client the order was made through, and the same OpenID at
// the client that remains sees nothing of it.
func TestRemovedClientOrdersStillSettle(t *testing.T) {
	cs := newCrashSim(t) // a WeChat Pay that outlives both paygates
	m := newMerchant(t, nil)
	up := newScriptedProvider(t, moneyScript("create_order", func() string { return `{"sku":"premium-monthly"}` }))
	dir := t.TempDir()
	keyFile, pubFile := cs.writeKeys(t, dir)

	// One address for both processes, as a restarted deployment keeps its
	// notify_url: the simulator delivers to the paygate now running.
	var current atomic.Pointer[http.Handler]
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*current.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	start := func(clients string) *app {
		t.Helper()
		src := clients + `
store: {path: "` + filepath.Join(dir, "paygate.db") + `"}
providers:
  - {name: fake, base_url: "` + up.URL + `/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
webhooks: {url: "` + m.URL + `", secret: ` + testWebhookSecret + `}
payments:
  backend: wechatpay
  wechatpay:
    api_base: "` + cs.URL + `"
    mch_id: "` + cs.MchID() + `"
    app_id: "` + cs.AppID() + `"
    mch_cert_serial: "` + cs.Keys().MerchantSerial + `"
    mch_private_key_file: "` + keyFile + `"
    apiv3_key: "` + cs.APIv3Key() + `"
    public_key_id: "` + cs.Keys().PublicKeyID + `"
    public_key_file: "` + pubFile + `"
    notify_url: "` + front.URL + `/wechatpay/notify"
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
`
		cfg, err := config.Parse([]byte(src), "e2e.yaml", func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		a, err := newApp(cfg, io.Discard, "")
		if err != nil {
			t.Fatal(err)
		}
		h := a.server.Handler()
		current.Store(&h)
		return a
	}

	const shared = "oShared-openid-removed" // the same OpenID at both clients
	first := start(`
clients:
  - {name: shop-a, key: sk-client-a-0123456789}
  - {name: shop-b, key: sk-client-b-0123456789}
`)
	ans := chatWith(t, front.URL, "sk-client-b-0123456789", shared, "premium please")
	noB := ans.Get("paygate.actions.0.order.order_no").Str
	if ans.Get("paygate.actions.0.type").Str != "order_created" || noB == "" {
		t.Fatalf("shop-b's order: %s", ans.Raw)
	}
	first.close()

	second := start(`
clients:
  - {name: shop-a, key: sk-client-a-0123456789}
`)
	t.Cleanup(second.close)
	if status, _ := httpCall(t, http.MethodGet, front.URL+"/v1/paygate/orders", "Bearer sk-client-b-0123456789", shared); status != http.StatusUnauthorized {
		t.Errorf("the removed client's key after the restart: %d; want 401", status)
	}
	if d, err := cs.Pay(context.Background(), noB); err != nil || !d.Acked {
		t.Fatalf("pay %s after shop-b was removed: %+v %v; want the notification acknowledged", noB, d, err)
	}
	paid := m.await(t, "order.paid", func(h hookArrival) bool { return h.env.Type == webhook.TypeOrderPaid })
	if paid.env.Data.Order["order_no"] != noB || paid.env.Data.Client != "shop-b" || paid.env.Data.OpenID != shared || paid.verifyErr != nil {
		t.Errorf("order.paid %+v (verify: %v); want %s via shop-b for %s", paid.env.Data, paid.verifyErr, noB, shared)
	}
	if o, err := second.store.GetOrder(context.Background(), noB); err != nil || o.Status != store.StatusPaid || o.Client != "shop-b" {
		t.Errorf("the removed client's order after its payment: %+v %v; want paid, still shop-b's", o, err)
	}
	status, list := httpCall(t, http.MethodGet, front.URL+"/v1/paygate/orders", "Bearer sk-client-a-0123456789", shared)
	if status != http.StatusOK || list.Get("data.#").Int() != 0 {
		t.Errorf("the same OpenID at shop-a lists %d %s; want none of shop-b's orders", status, list.Raw)
	}
	if status, _ := httpCall(t, http.MethodGet, front.URL+"/v1/paygate/orders/"+noB, "Bearer sk-client-a-0123456789", shared); status != http.StatusNotFound {
		t.Errorf("shop-a reads shop-b's order %s: %d; want 404", noB, status)
	}
}
