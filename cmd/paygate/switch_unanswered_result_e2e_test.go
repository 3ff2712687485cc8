package main

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments/wxsim"
)

// TestSwitchUnansweredResultSaysWhy: the user has a JSAPI order open and
// asks to pay by QR code instead; WeChat Pay answers the close of the open
// order 429 FREQUENCY_LIMITED on every attempt, so no QR code is made and
// the open order stands as it was. The bot gets no action. The tool result
// the model reads says why, in words it can relay: it said only "pending"
// beside the order's number and amount, which reads as an order ready to
// pay, with no word that the QR code was never made or that asking again
// in a minute would make it.
func TestSwitchUnansweredResultSaysWhy(t *testing.T) {
	var asks atomic.Int32
	up := newScriptedProvider(t, moneyScript("create_order", func() string {
		if asks.Add(1) == 1 {
			return `{"sku":"premium-monthly","pay_method":"jsapi"}`
		}
		return `{"sku":"premium-monthly","pay_method":"native"}`
	}))
	url, a := paymentApp(t, up.URL, "")
	const user = "oUser-switch-unanswered"
	first := chatAs(t, url, user, "premium please")
	if first.Get(`paygate.actions.#(type=="order_created").request_payment`).Raw == "" {
		t.Fatalf("first turn: %s; want a payable JSAPI order", first.Raw)
	}
	a.sim.InjectFault(wxsim.Fault{Op: "close", Kind: wxsim.FaultFrequencyLimited, Times: 3})
	second := chatAs(t, url, user, "actually give me a QR code")
	if n := len(second.Get("paygate.actions").Array()); n != 0 {
		t.Errorf("the bot got %d actions; want none (no QR code was made): %s", n, second.Raw)
	}
	reqs := up.requests()
	if len(reqs) != 4 {
		t.Fatalf("provider saw %d requests; want 4", len(reqs))
	}
	result := gjson.Get(reqs[3], `messages.@reverse.0.content`).Str
	r := gjson.Parse(result)
	if r.Get("status").Str != "pending" {
		t.Fatalf("tool result %s; want pending", result)
	}
	msg := r.Get("message").Str
	for _, want := range []string{"WeChat Pay did not answer", "no new payment", "ask again in a minute"} {
		if !strings.Contains(msg, want) {
			t.Errorf("tool result %s: its message does not say %q", result, want)
		}
	}
	for _, leak := range []string{"FREQUENCY_LIMITED", "429", "wechatpay "} {
		if strings.Contains(result, leak) {
			t.Errorf("tool result %s holds %q", result, leak)
		}
	}
}
