package main

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments/wxsim"
)

// TestPrepayUnansweredResultSaysNotPayableYet: WeChat Pay answers a
// create_order's prepay with 500 SYSTEM_ERROR. The order stands (creating,
// the reconciler asks again) and the bot gets no order_created, so the user
// has nothing to pay with yet. The tool result the model reads next says
// so: it said only "pending" beside the order's number and amount, which
// the model read as an order ready to pay and told the user to pay it.
func TestPrepayUnansweredResultSaysNotPayableYet(t *testing.T) {
	up := newScriptedProvider(t, moneyScript("create_order", func() string { return `{"sku":"premium-monthly"}` }))
	url, a := paymentApp(t, up.URL, "")
	a.sim.InjectFault(wxsim.Fault{Op: "prepay", Kind: wxsim.FaultSystemError, Times: 100})

	ans := chatAs(t, url, "oUser-prepay-unanswered", "premium please")
	if n := len(ans.Get(`paygate.actions.#(type=="order_created")#`).Array()); n != 0 {
		t.Fatalf("the bot got %d order_created for an order WeChat Pay did not open: %s", n, ans.Raw)
	}
	reqs := up.requests()
	if len(reqs) != 2 {
		t.Fatalf("provider saw %d requests; want 2 (the call's round, then its result)", len(reqs))
	}
	result := gjson.Get(reqs[1], `messages.#(role=="tool").content`).Str
	r := gjson.Parse(result)
	if r.Get("status").Str != "pending" || r.Get("order_no").Str == "" {
		t.Fatalf("tool result %s; want status pending with the order's number", result)
	}
	msg := r.Get("message").Str
	for _, want := range []string{"cannot be paid yet", "nothing was charged", "do not tell the user to pay"} {
		if !strings.Contains(msg, want) {
			t.Errorf("tool result %s: its message does not say %q", result, want)
		}
	}
}
