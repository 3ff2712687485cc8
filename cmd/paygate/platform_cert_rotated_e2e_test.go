package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestPlatformCertificateRotatedMidRun: paygate verifies WeChat Pay with
// its platform certificate only (platform_cert_files), and WeChat Pay
// moves to a new certificate while paygate runs, putting the new serial in
// Wechatpay-Serial. The payer pays: the notification, signed under a
// serial paygate does not know, is refused (401, WeChat Pay retries it) and
// counted unknown_serial; the sweep's query answers under the new serial
// too and is not trusted: an ALERT names the WeChat Pay public key or
// platform certificates, bad_signature is counted, and the order is left
// awaiting payment, not expired past its deadline on an answer paygate
// could not read. Restarted with the new certificate added, the sweep finds
// the order paid. No payment is lost, none is made up.
func TestPlatformCertificateRotatedMidRun(t *testing.T) {
	cs := newCrashSim(t)
	cs.SetSigningMode(wxsim.SignCertificate)
	up := newScriptedProvider(t, moneyScript("create_order", func() string { return `{"sku":"premium-monthly"}` }))
	dir := t.TempDir()
	keyFile, _ := cs.writeKeys(t, dir)
	oldCert := filepath.Join(dir, "platform-old.pem")
	writeFile(t, oldCert, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cs.Keys().PlatformCert.Raw})))
	next, err := wxsim.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	newCert := filepath.Join(dir, "platform-new.pem")
	writeFile(t, newCert, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: next.PlatformCert.Raw})))

	var h atomic.Pointer[http.Handler]
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*h.Load()).ServeHTTP(w, r) }))
	t.Cleanup(front.Close)
	var ahead atomic.Int64
	start := func(certs string, logOut io.Writer) *app {
		t.Helper()
		cfg := wechatpayConfig(t, cs, dir, up.URL, keyFile, cs.APIv3Key(), "platform_cert_files: ["+certs+"]", front.URL)
		a, err := newApp(cfg, logOut, "", withPaymentsClock(func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }))
		if err != nil {
			t.Fatal(err)
		}
		hh := a.server.Handler()
		h.Store(&hh)
		return a
	}
	ctx := context.Background()
	logs := &logtest.Buffer{}
	first := start(`"`+oldCert+`"`, logs)
	ans := chatWith(t, front.URL, e2eClientKey, "oUser-platform-rotated", "premium please")
	no := ans.Get("paygate.actions.0.order.order_no").Str
	if no == "" {
		first.close()
		t.Fatalf("no order: %s", ans.Raw)
	}

	cs.RotatePlatformCertificate(next.PlatformKey, next.PlatformCert)
	d, err := cs.Pay(ctx, no)
	if err != nil {
		t.Fatal(err)
	}
	if d.Acked || d.LastStatus != http.StatusUnauthorized {
		t.Errorf("the payment's notification under the new certificate: %+v; want it refused 401", d)
	}
	m := scrape(t, front.URL)
	if n := metricSum(t, m, "paygate_notifications_total", map[string]string{"reason": "unknown_serial"}); n != 1 {
		t.Errorf("notifications refused unknown_serial %v; want 1", n)
	}
	ahead.Store(int64(3 * time.Hour)) // past the order's 2 h deadline
	if _, err := first.payments.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if o, _ := first.store.GetOrder(ctx, no); o == nil || o.Status != store.StatusAwaitingPayment {
		t.Errorf("order after a sweep whose query did not verify: %+v; want awaiting_payment", o)
	}
	m = scrape(t, front.URL)
	if n := metricSum(t, m, "paygate_wechatpay_merchant_errors_total", map[string]string{"code": "bad_signature"}); n != 1 {
		t.Errorf("merchant errors bad_signature %v; want 1", n)
	}
	alerted := false
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["alert"] == true && strings.Contains(rec["msg"].(string), "platform certificates") {
			alerted = true
		}
	}
	if !alerted {
		t.Errorf("no ALERT naming the platform certificates; log:\n%s", logs.String())
	}
	first.close()

	second := start(`"`+oldCert+`", "`+newCert+`"`, io.Discard)
	t.Cleanup(second.close)
	if _, err := second.payments.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if o, _ := second.store.GetOrder(ctx, no); o == nil || o.Status != store.StatusPaid {
		t.Errorf("order after a sweep with the new certificate: %+v; want paid", o)
	}
}
