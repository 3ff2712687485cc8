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
	"time"

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
// refund, and a purchase paid at once, with distinctive secrets, and scans
// every upstream request, every WeChat Pay request and answer, every log
// line (at debug), every response paygate gave for them and /metrics. The
// upstream requests and the log are scanned too for what only the user and
// WeChat Pay may hold: the user's OpenID, cookie and session, the merchant's
// id, serial and notify URL, the payment's prepay_id and paySign, and the
// refund's confirm URL; /metrics for the OpenID and the order numbers.
func TestNoSecretLeaks(t *testing.T) {
	const (
		providerKey = "sk-prov-SECRET-9f8e7d6c5b"
		clientKey   = "sk-client-SECRET-1a2b3c4d"
		adminToken  = "adm-SECRET-5c6d7e8f9a"
		apiv3Key    = "APIV3SECRETkey0123456789abcdefgh" // 32 bytes
		hookSecret  = "whsec-SECRET-0a1b2c3d4e"
		hashKey     = "hash-SECRET-6f7a8b9c0d"
		openID      = "oSECRET-openid-77aa88bb"
		mchID       = "1900123457"
		cookie      = "sid=COOKIE-SECRET-4d5e6f7a8b"
		session     = "sess-SECRET-3c4d5e6f"
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
		case last.Get("content").Str == "thanks":
			round = scriptRound{whole: `{"id":"chatcmpl-T","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"You are welcome."},"finish_reason":"stop"}]}`}
		case strings.Contains(body, "one month"):
			round = moneyScript("create_order", func() string { return `{"sku":"premium-monthly"}` })(body)
		case last.Get("role").Str == "user" && strings.Contains(last.Get("content").Str, "QR code"):
			// A payment call beside one of the bot's own: the payment
			// exchange is kept for the bot's next request (SPEC 3.7).
			round = callRound("chatcmpl-Q1", [3]string{"call_pay", "create_order", `{"sku":"team-monthly","pay_method":"native"}`},
				[3]string{"call_own", "lookup_team", `{}`})
		case last.Get("role").Str == "tool" && last.Get("tool_call_id").Str == "call_own":
			round = textRound("chatcmpl-Q2", "Scan the QR code to pay.")
		default:
			round = script(body)
		}
		if gjson.Get(body, "stream").Bool() {
			w.Header().Set("Content-Type", "text/event-stream")
			for _, c := range round.chunks {
				_, _ = io.WriteString(w, "data: "+c+"\n\n")
			}
			_, _ = io.WriteString(w, "data: [DONE]\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, round.whole)
	}))
	defer up.Close()
	events := &recorder{}
	refunded := make(chan struct{}, 8) // refund.succeeded, the flow's last event
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h := r.Header.Clone()
		h.Del("X-Paygate-Signature") // made with the secret, as it must be
		events.add(fmt.Sprintf("%v\n%s", h, b))
		w.WriteHeader(204)
		if gjson.GetBytes(b, "type").Str == "refund.succeeded" {
			refunded <- struct{}{}
		}
	}))
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
  wechatpay: {apiv3_key: ` + apiv3Key + `, mch_id: "` + mchID + `"}
  catalog:
    - {sku: premium-yearly, name: "Premium tier, 1 year", price: "499.00", max_quantity: 2}
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99"}
    - {sku: team-monthly, name: "Team tier, 1 month", price: "99.00"}
`
	base, a := serveConfig(t, src, logs, withWeChatPayTransport(recordingTransport{wechat}))
	admin := httptest.NewServer(a.adminHandler())
	defer admin.Close()

	responses := &recorder{}
	call := func(method, url, auth string, body string) gjson.Result {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+auth)
		req.Header.Set("X-WeChat-OpenID", openID)
		req.Header.Set("X-Paygate-Session", session)
		req.Header.Set("Cookie", cookie)
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
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			return gjson.Result{Type: gjson.String, Str: string(b)}
		}
		return gjson.ParseBytes(b)
	}
	chat := func(text string) gjson.Result {
		return call("POST", base+"/v1/chat/completions", clientKey, `{"model":"gpt-4o","user":"`+openID+`","metadata":{"wx":"wx:`+openID+`"},"messages":[{"role":"user","content":"`+text+`"}]}`)
	}
	// What paying takes, handed to the bot only: scanned for below.
	var paySecrets []string
	payment := func(rp gjson.Result) {
		prepay, sign := strings.TrimPrefix(rp.Get("package").Str, "prepay_id="), rp.Get("paySign").Str
		if prepay == "" || sign == "" {
			t.Fatalf("no payment parameters: %s", rp.Raw)
		}
		paySecrets = append(paySecrets, prepay, sign)
	}

	// A streamed turn: a Native payment beside the bot's own tool, and the
	// bot's next request with its tool's result, into which paygate puts
	// the payment exchange back.
	ownTool := `{"type":"function","function":{"name":"lookup_team","parameters":{"type":"object","properties":{}}}}`
	qrAsk := `{"role":"user","content":"a QR code for the team plan"}`
	var qr gjson.Result
	for _, line := range strings.Split(call("POST", base+"/v1/chat/completions", clientKey,
		`{"model":"gpt-4o","stream":true,"tools":[`+ownTool+`],"messages":[`+qrAsk+`]}`).Str, "\n") {
		if p := gjson.Get(strings.TrimPrefix(line, "data: "), "paygate"); p.Exists() {
			qr = p
		}
	}
	codeURL := qr.Get(`actions.#(type=="order_created").code_url`).Str
	if codeURL == "" {
		t.Fatalf("no code_url in the streamed turn: %s", qr.Raw)
	}
	paySecrets = append(paySecrets, codeURL)
	call("POST", base+"/v1/chat/completions", clientKey, `{"model":"gpt-4o","stream":true,"tools":[`+ownTool+`],"messages":[`+qrAsk+`,`+
		`{"role":"assistant","content":null,"tool_calls":[{"id":"call_own","type":"function","function":{"name":"lookup_team","arguments":"{}"}}]},`+
		`{"role":"tool","tool_call_id":"call_own","content":"team of 5"}]}`)

	month := chat("one month of premium")
	payment(month.Get(`paygate.actions.#(type=="order_created").request_payment`))
	monthNo := month.Get(`paygate.actions.#(type=="order_created").order.order_no`).Str
	if _, err := a.sim.Pay(context.Background(), monthNo); err != nil {
		t.Fatal(err)
	}

	no := chat("two years of premium").Get(`paygate.actions.#(type=="approval_required").order.order_no`).Str
	call("GET", admin.URL+"/admin/api/approvals", adminToken, "")
	call("POST", admin.URL+"/admin/api/approvals/"+no+"/approve", adminToken, "")
	payment(call("GET", base+"/v1/paygate/orders/"+no, clientKey, "").Get("request_payment"))
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
	// One more turn: the answers of the last are in the state it reads.
	chat("thanks")

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
	private := map[string]string{
		"OpenID": openID, "cookie": cookie, "session": session, "merchant id": mchID,
		"merchant serial": a.sim.Keys().MerchantSerial, "notify URL": "/wechatpay/notify",
		"refund confirm URL": confirm,
	}
	for i, s := range paySecrets {
		name := "code_url"
		if i > 0 {
			name = []string{"prepay_id", "paySign"}[(i-1)%2] + fmt.Sprint(" of payment ", (i+1)/2)
		}
		private[name] = s
	}
	scan("an upstream request", upstream.all(), private)
	scan("a WeChat Pay request or answer", wechat.all(), nil)
	// The merchant's backend gets the payer's OpenID and the refund's
	// confirm_url (README), but nothing a payment is signed with.
	payOnly := map[string]string{}
	for k, v := range private {
		if strings.HasPrefix(k, "prepay_id") || strings.HasPrefix(k, "paySign") {
			payOnly[k] = v
		}
	}
	select {
	case <-refunded:
	case <-time.After(10 * time.Second):
		t.Fatal("no refund.succeeded webhook: the events were not all delivered to scan")
	}
	scan("a merchant webhook", events.all(), payOnly)
	scan("a response", responses.all(), nil)
	logPrivate := map[string]string{"OpenID": openID, "cookie": cookie, "refund confirm URL": confirm}
	for k, v := range private {
		if strings.HasPrefix(k, "prepay_id") || strings.HasPrefix(k, "paySign") || k == "code_url" {
			logPrivate[k] = v
		}
	}
	scan("the log", strings.Split(logs.String(), "\n"), logPrivate)
	resp, err := http.Get(admin.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	scan("/metrics", strings.Split(string(metrics), "\n"), map[string]string{
		"OpenID": openID, "order number " + no: no, "order number " + monthNo: monthNo, "client key": clientKey,
	})
	restored := false
	for _, req := range upstream.all() {
		restored = restored || strings.Contains(req, `"tool_call_id":"call_pg_`) && strings.Contains(req, `"tool_call_id":"call_own"`)
	}
	if !restored {
		t.Error("no upstream request carried the payment exchange back beside the bot's tool result: the scan did not cover it")
	}
	wx := strings.Join(wechat.all(), "\n")
	if len(upstream.all()) < 4 || !strings.Contains(wx, "/v3/pay/transactions/jsapi") || !strings.Contains(wx, "/v3/refund/domestic/refunds") {
		t.Errorf("recorded %d upstream exchanges and WeChat Pay %q; the flow did not run", len(upstream.all()), wx)
	}
}
