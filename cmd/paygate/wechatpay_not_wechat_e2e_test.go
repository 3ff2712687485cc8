package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments/wxsim"
)

// TestPrepayAnsweredByNotWeChatPay: a create_order's prepay is answered
// 200 with an HTML page and none of WeChat Pay's signature headers (an
// egress proxy's or captive portal's page, an api_base naming another
// host): not WeChat Pay's answer, and every prepay, query, close and
// refund meets the same until someone fixes the route. The order stands
// for the reconciler and the model is told it cannot be paid yet; the log
// raises an ALERT naming the route, without a secret, and the merchant
// errors counter the README's alert rule reads counts it, as it counts a
// 404 without WeChat Pay's code. It went as an unverified answer with no
// ALERT and no count: a route answering for WeChat Pay failed every order
// past the alert an operator was told to set.
func TestPrepayAnsweredByNotWeChatPay(t *testing.T) {
	up := newScriptedProvider(t, moneyScript("create_order", func() string { return `{"sku":"premium-monthly"}` }))
	logs := &logtest.Buffer{}
	src := `
clients: [{name: bot, key: ` + e2eClientKey + `}]
store: {path: "` + filepath.Join(t.TempDir(), "paygate.db") + `"}
providers:
  - {name: fake, base_url: "` + up.URL + `/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99"}
`
	url, a := serveConfig(t, src, logs)
	a.sim.InjectFault(wxsim.Fault{Op: "prepay", Kind: wxsim.FaultNotWeChatPay, Times: 100})

	ans := chatAs(t, url, "oUser-not-wechat-pay", "premium please")
	if n := len(ans.Get(`paygate.actions.#(type=="order_created")#`).Array()); n != 0 {
		t.Fatalf("the bot got %d order_created on an answer that was not WeChat Pay's: %s", n, ans.Raw)
	}
	reqs := up.requests()
	if len(reqs) != 2 {
		t.Fatalf("provider saw %d requests; want 2", len(reqs))
	}
	r := gjson.Parse(gjson.Get(reqs[1], `messages.#(role=="tool").content`).Str)
	if r.Get("status").Str != "pending" || !strings.Contains(r.Get("message").Str, "cannot be paid yet") {
		t.Fatalf("tool result %s; want pending, not payable yet", r.Raw)
	}

	m := scrape(t, url)
	if n := metricSum(t, m, "paygate_wechatpay_merchant_errors_total", nil); n != 1 {
		t.Errorf("paygate_wechatpay_merchant_errors_total sums to %v; want 1", n)
	}
	var alerts []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["alert"] == true {
			alerts = append(alerts, rec)
		}
	}
	if len(alerts) != 1 || !strings.Contains(alerts[0]["msg"].(string), "api_base") || alerts[0]["op"] != "prepay" {
		t.Errorf("alerts %v; want one naming api_base for the prepay", alerts)
	}
	for _, secret := range []string{a.sim.APIv3Key(), "sk-upstream-secret", e2eClientKey} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds a secret %q", secret)
		}
	}
}
