package main

import (
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments/wxsim"
)

// TestWeChatPayHungCountsUnavailable: WeChat Pay takes a create_order's
// prepay and never answers it, on every attempt (a route that black-holes,
// a WeChat Pay that hangs). The order stands for the reconciler, the model
// is told it cannot be paid yet, and the call counts in
// paygate_wechatpay_requests_total as outcome unavailable, the series the
// README has an operator alert on for "WeChat Pay not answering
// (timeouts, ...)": the client's three 5 s attempts outlast the service's
// 15 s prepay deadline, which cut the third, and the call was counted
// canceled ("the caller gave up"), so a WeChat Pay that hangs on every call
// never raised that alert. The prepay deadline is 1 s here, below a single
// 5 s attempt: the caller's deadline still ends the call before the
// client's attempts do, as the 15 s one does, in a second instead of 15.
func TestWeChatPayHungCountsUnavailable(t *testing.T) {
	up := newScriptedProvider(t, moneyScript("create_order", func() string { return `{"sku":"premium-monthly"}` }))
	url, a := paymentApp(t, up.URL, "", withPrepayTimeout(time.Second))
	a.sim.InjectFault(wxsim.Fault{Op: "prepay", Kind: wxsim.FaultTimeout, Times: 100})

	ans := chatAs(t, url, "oUser-wechatpay-hung", "premium please")
	if n := len(ans.Get(`paygate.actions.#(type=="order_created")#`).Array()); n != 0 {
		t.Fatalf("the bot got %d order_created for an order WeChat Pay never answered: %s", n, ans.Raw)
	}
	reqs := up.requests()
	if len(reqs) != 2 {
		t.Fatalf("provider saw %d requests; want 2", len(reqs))
	}
	r := gjson.Parse(gjson.Get(reqs[1], `messages.#(role=="tool").content`).Str)
	if r.Get("status").Str != "pending" || r.Get("order_no").Str == "" {
		t.Fatalf("tool result %s; want pending with the order's number", r.Raw)
	}
	m := scrape(t, url)
	unavailable := metricSum(t, m, "paygate_wechatpay_requests_total", map[string]string{"op": "prepay", "outcome": "unavailable"})
	canceled := metricSum(t, m, "paygate_wechatpay_requests_total", map[string]string{"op": "prepay", "outcome": "canceled"})
	if unavailable != 1 || canceled != 0 {
		t.Errorf("prepay calls counted unavailable %v, canceled %v; want 1 and 0: WeChat Pay did not answer, nobody gave up", unavailable, canceled)
	}
}
