package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/paygate/paygate/logging/logtest"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
)

// recorder keeps the raw text of every HTTP exchange it sees.
type recorder struct {
	mu   sync.Mutex
	text []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.text = append(r.text, s)
	r.mu.Unlock()
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.text...)
}

// recordingTransport records requests and responses to WeChat Pay.
type recordingTransport struct{ rec *recorder }

func (t recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	t.rec.add(fmt.Sprintf("%s %s\n%v\n%s", req.Method, req.URL, req.Header, body))
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	t.rec.add(fmt.Sprintf("%v\n%s", resp.Header, b))
	return resp, nil
}

// TestNoSecretLeaks plays a purchase that needs approval, its payment and a
// refund with distinctive secrets, and scans every upstream request, every
// WeChat Pay request and answer, every log line and every response paygate
// gave for them — and the upstream requests for the user's OpenID.
func TestNoSecretLeaks(t *testing.T) {
	const (
		providerKey = "sk-prov-SECRET-9f8e7d6c5b"
		clientKey   = "sk-client-SECRET-1a2b3c4d"
		adminToken  = "adm-SECRET-5c6d7e8f9a"
		apiv3Key    = "APIV3SECRETkey0123456789abcdefgh" // 32 bytes
		hookSecret  = "whsec-SECRET-0a1b2c3d4e"
		hashKey     = "hash-SECRET-6f7a8b9c0d"
		openID      = "oSECRET-openid-77aa88bb"
	)
	upstream := &recorder{}
	script := moneyScript("create_order", func() string { return `{"sku":"premium-yearly","quantity":2}` })
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h := r.Header.Clone()
		if h.Get("Authorization") != "Bearer "+providerKey {
			t.Errorf("upstream Authorization %q; want the provider's own key", h.Get("Authorization"))
		}
		h.Del("Authorization") // the provider's own key belongs here, and only here
		upstream.add(fmt.Sprintf("%v\n%s", h, b))
		body := string(b)
		var round scriptRound
		switch last := gjson.Get(body, "messages.@reverse.0"); {
		case last.Get("role").Str == "user" && strings.Contains(last.Get("content").Str, "refund"):
			no := orderNoIn(body)
			round = moneyScript("request_refund", func() string { return `{"order_no":"` + no + `","reason":"not needed"}` })(body)
		default:
			round = script(body)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, round.whole)
	}))
	defer up.Close()
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer hooks.Close()

	wechat := &recorder{}
	logs := &logtest.Buffer{}
	src := `
log: {level: debug}
clients: [{name: bot, key: ` + clientKey + `}]
admin: {token: ` + adminToken + `}
store: {path: "` + t.TempDir() + `/p.db"}
providers: [{name: fake, base_url: "` + up.URL + `/v1", api_key: ` + providerKey + `}]
models: [{name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}]
privacy: {hash_key: ` + hashKey + `}
webhooks: {url: "` + hooks.URL + `", secret: ` + hookSecret + `}
payments:
  wechatpay: {apiv3_key: ` + apiv3Key + `}
  catalog:
    - {sku: premium-yearly, name: "Premium tier, 1 year", price: "499.00", max_quantity: 2}
`
	base, a := serveConfig(t, src, logs, withWeChatPayTransport(recordingTransport{wechat}))
	admin := httptest.NewServer(a.adminHandler())
	defer admin.Close()

	responses := &recorder{}
	call := func(method, url, auth string, body string) gjson.Result {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+auth)
		req.Header.Set("X-WeChat-OpenID", openID)
		req.Header.Set("X-Paygate-CSRF", "1")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		responses.add(fmt.Sprintf("%v\n%s", resp.Header, b))
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
		}
		return gjson.ParseBytes(b)
	}
	chat := func(text string) gjson.Result {
		return call("POST", base+"/v1/chat/completions", clientKey, `{"model":"gpt-4o","user":"`+openID+`","messages":[{"role":"user","content":"`+text+`"}]}`)
	}

	no := chat("two years of premium").Get("paygate.actions.0.order.order_no").Str
	call("GET", admin.URL+"/admin/api/approvals", adminToken, "")
	call("POST", admin.URL+"/admin/api/approvals/"+no+"/approve", adminToken, "")
	call("GET", base+"/v1/paygate/orders/"+no, clientKey, "")
	if _, err := a.sim.Pay(context.Background(), no); err != nil {
		t.Fatal(err)
	}
	ans := chat("I want a refund please")
	confirm := ans.Get(`paygate.actions.#(type=="refund_proposed").refund.confirm_url`).Str
	if confirm == "" {
		t.Fatalf("no refund proposal: %s", ans.Raw)
	}
	cr := call("POST", base+confirm, clientKey, "")
	if _, err := a.sim.CompleteRefund(context.Background(), payments.OutRefundNo(cr.Get("refund.refund_id").Str)); err != nil {
		t.Fatal(err)
	}
	call("GET", admin.URL+"/admin/api/audit?from=1&text=1", adminToken, "")
	call("GET", admin.URL+"/admin/api/orders", adminToken, "")

	der, err := x509.MarshalPKCS8PrivateKey(a.sim.Keys().MerchantKey)
	if err != nil {
		t.Fatal(err)
	}
	merchantKey := base64.StdEncoding.EncodeToString(der)[64:128] // a stretch of the PEM body
	secrets := map[string]string{
		"provider key": providerKey, "client key": clientKey, "admin token": adminToken,
		"APIv3 key": apiv3Key, "webhook secret": hookSecret, "hash key": hashKey, "merchant private key": merchantKey,
	}
	scan := func(where string, texts []string, extra map[string]string) {
		if len(texts) == 0 {
			t.Errorf("nothing recorded in %s: the scan would prove nothing", where)
		}
		for _, txt := range texts {
			for name, s := range secrets {
				if strings.Contains(txt, s) {
					t.Errorf("%s contains the %s", where, name)
				}
			}
			for name, s := range extra {
				if strings.Contains(txt, s) {
					t.Errorf("%s contains the %s", where, name)
				}
			}
		}
	}
	scan("an upstream request", upstream.all(), map[string]string{"OpenID": openID})
	scan("a WeChat Pay request or answer", wechat.all(), nil)
	scan("a response", responses.all(), nil)
	scan("the log", strings.Split(logs.String(), "\n"), nil)
	wx := strings.Join(wechat.all(), "\n")
	if len(upstream.all()) < 4 || !strings.Contains(wx, "/v3/pay/transactions/jsapi") || !strings.Contains(wx, "/v3/refund/domestic/refunds") {
		t.Errorf("recorded %d upstream exchanges and WeChat Pay %q; the flow did not run", len(upstream.all()), wx)
	}
}
