package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/store"
)

// TestWrongMerchantKeySignError: paygate signs with a merchant private key
// that is not the one behind mch_cert_serial (backend wechatpay against the
// simulator), so WeChat Pay answers every call 401 SIGN_ERROR. A purchase
// sends one prepay (a refusal is final, not retried), its order is closed
// and nothing was charged; the model is told WeChat Pay refused the order,
// in words without WeChat Pay's code, message or a key; the bot gets no
// payment to open; the log's ALERT names SIGN_ERROR and what to check,
// without the key; the merchant errors counter counts it.
func TestWrongMerchantKeySignError(t *testing.T) {
	cs := newCrashSim(t)
	up := newScriptedProvider(t, moneyScript("create_order", func() string { return `{"sku":"premium-monthly"}` }))
	dir := t.TempDir()
	_, pubFile := cs.writeKeys(t, dir)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(other)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	keyFile := filepath.Join(dir, "other-key.pem")
	writeFile(t, keyFile, keyPEM)
	var h http.Handler
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(front.Close)
	cfg := wechatpayConfig(t, cs, dir, up.URL, keyFile, cs.APIv3Key(), publicKeyYAML(cs, pubFile), front.URL)
	logs := &logtest.Buffer{}
	a, err := newApp(cfg, logs, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	h = a.server.Handler()

	ans := chatWith(t, front.URL, e2eClientKey, "oUser-sign-error", "premium please")
	if n := len(ans.Get("paygate.actions").Array()); n != 0 {
		t.Errorf("the bot got %d actions for a refused order: %s", n, ans.Raw)
	}
	reqs := up.requests()
	if len(reqs) != 2 {
		t.Fatalf("provider saw %d requests; want 2", len(reqs))
	}
	result := gjson.Get(reqs[1], `messages.#(role=="tool").content`).Str
	r := gjson.Parse(result)
	if r.Get("status").Str != "failed" || r.Get("error").Str != "WeChat Pay refused the order" {
		t.Errorf("tool result %s; want failed, WeChat Pay refused the order", result)
	}
	for _, leak := range []string{"SIGN_ERROR", "401", "签名", "BEGIN", cs.Keys().MerchantSerial} {
		if strings.Contains(result, leak) {
			t.Errorf("tool result %s holds %q", result, leak)
		}
	}
	prepays := 0
	for _, req := range cs.Requests() {
		if strings.HasPrefix(req.Op, "prepay") {
			prepays++
		}
	}
	if prepays != 1 {
		t.Errorf("WeChat Pay saw %d prepays; want 1 (SIGN_ERROR is final)", prepays)
	}
	if o, err := a.store.GetOrder(context.Background(), r.Get("order_no").Str); err != nil || o.Status != store.StatusClosed {
		t.Errorf("the order: %+v, %v; want closed", o, err)
	}

	m := scrape(t, front.URL)
	if n := metricSum(t, m, "paygate_wechatpay_merchant_errors_total", map[string]string{"code": "SIGN_ERROR"}); n != 1 {
		t.Errorf("merchant errors SIGN_ERROR %v; want 1", n)
	}
	if n := metricSum(t, m, "paygate_wechatpay_requests_total", map[string]string{"op": "prepay", "outcome": "refused"}); n != 1 {
		t.Errorf("prepay calls refused %v; want 1", n)
	}
	var alerts []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["alert"] == true {
			alerts = append(alerts, rec)
		}
	}
	if len(alerts) != 1 || alerts[0]["code"] != "SIGN_ERROR" || !strings.Contains(alerts[0]["msg"].(string), "merchant key") {
		t.Errorf("alerts %v; want one SIGN_ERROR naming the merchant key", alerts)
	}
	b, _ := os.ReadFile(keyFile)
	body := strings.Join(strings.Split(strings.TrimSpace(string(b)), "\n")[1:3], "")
	if strings.Contains(logs.String(), "PRIVATE KEY") || strings.Contains(strings.ReplaceAll(logs.String(), "\\n", ""), body) {
		t.Errorf("the log holds the private key")
	}
}
