package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/store"
)

// TestWrongAPIv3KeyPaymentFoundBySweep: paygate runs with an apiv3_key the
// merchant platform does not hold (backend wechatpay against the
// simulator). The payer pays; WeChat Pay's notification does not decrypt,
// is answered 500 FAIL (WeChat Pay retries it) with an ALERT naming
// apiv3_key and not the key, and counted decrypt_failed. The order is not
// left awaiting payment for good: the reconciler's sweep, whose query is
// signed with the merchant key and verified with WeChat Pay's public key
// (the APIv3 key plays no part), finds it paid.
func TestWrongAPIv3KeyPaymentFoundBySweep(t *testing.T) {
	const wrongKey = "WRONGapiv3key-0123456789abcdefgh"
	cs := newCrashSim(t)
	up := newScriptedProvider(t, moneyScript("create_order", func() string { return `{"sku":"premium-monthly"}` }))
	dir := t.TempDir()
	keyFile, pubFile := cs.writeKeys(t, dir)
	var h http.Handler
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(front.Close)
	cfg := wechatpayConfig(t, cs, dir, up.URL, keyFile, wrongKey, publicKeyYAML(cs, pubFile), front.URL)
	var ahead atomic.Int64 // how far the payments clock runs ahead
	logs := &logtest.Buffer{}
	a, err := newApp(cfg, logs, "", withPaymentsClock(func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	h = a.server.Handler()
	ctx := context.Background()

	ans := chatWith(t, front.URL, e2eClientKey, "oUser-apiv3-wrong", "premium please")
	no := ans.Get("paygate.actions.0.order.order_no").Str
	if no == "" {
		t.Fatalf("no order: %s", ans.Raw)
	}
	d, err := cs.Pay(ctx, no)
	if err != nil {
		t.Fatal(err)
	}
	if d.Acked || d.LastStatus != http.StatusInternalServerError {
		t.Errorf("the payment's notification: %+v; want it answered 500, not acknowledged", d)
	}
	if o, _ := a.store.GetOrder(ctx, no); o == nil || o.Status != store.StatusAwaitingPayment {
		t.Fatalf("order after the notification: %+v; want awaiting_payment", o)
	}
	var alert map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["alert"] == true && rec["reason"] == "decrypt_failed" {
			alert = rec
		}
	}
	if alert == nil || !strings.Contains(alert["msg"].(string), "apiv3_key") {
		t.Errorf("no ALERT naming apiv3_key for the notification; log:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), wrongKey) || strings.Contains(logs.String(), cs.APIv3Key()) {
		t.Errorf("the log holds an APIv3 key")
	}
	if n := metricSum(t, scrape(t, front.URL), "paygate_notifications_total", map[string]string{"reason": "decrypt_failed"}); n != 1 {
		t.Errorf("notifications counted decrypt_failed: %v; want 1", n)
	}

	ahead.Store(int64(time.Minute)) // past ActiveQueryAfter
	if _, err := a.payments.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if o, _ := a.store.GetOrder(ctx, no); o == nil || o.Status != store.StatusPaid {
		t.Errorf("order after a sweep: %+v; want paid", o)
	}
}

// wechatpayConfig is the config of a paygate selling premium-monthly
// through cs as WeChat Pay (backend wechatpay) for the provider at upURL,
// its store in dir, signing with keyFile, decrypting with apiv3Key,
// verifying with verify (lines under payments.wechatpay, each after the
// first indented by four spaces: publicKeyYAML, or platform_cert_files,
// with any other such as apiv3_previous_key), notified at notifyBase's
// /wechatpay/notify.
func wechatpayConfig(t *testing.T, cs *crashSim, dir, upURL, keyFile, apiv3Key, verify, notifyBase string) *config.Config {
	t.Helper()
	src := `
clients: [{name: bot, key: ` + e2eClientKey + `}]
store: {path: "` + filepath.Join(dir, "paygate.db") + `"}
providers: [{name: fake, base_url: "` + upURL + `/v1", api_key: sk-upstream-secret}]
models: [{name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}]
payments:
  backend: wechatpay
  wechatpay:
    api_base: "` + cs.URL + `"
    mch_id: "` + cs.MchID() + `"
    app_id: "` + cs.AppID() + `"
    mch_cert_serial: "` + cs.Keys().MerchantSerial + `"
    mch_private_key_file: "` + keyFile + `"
    apiv3_key: "` + apiv3Key + `"
    ` + verify + `
    notify_url: "` + notifyBase + `/wechatpay/notify"
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99"}
`
	cfg, err := config.Parse([]byte(src), "e2e.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// publicKeyYAML is wechatpayConfig's verify by cs's WeChat Pay public key,
// in pubFile.
func publicKeyYAML(cs *crashSim, pubFile string) string {
	return `public_key_id: "` + cs.Keys().PublicKeyID + `"
    public_key_file: "` + pubFile + `"`
}
