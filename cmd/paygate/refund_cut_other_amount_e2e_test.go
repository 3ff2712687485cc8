package main

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/store"
)

// cutConfirmation fails the next ConsumeRefundProposal once cut is set, as
// a replica that dies after a confirmation reserved the order and before it
// spent the user's word: nothing goes to WeChat Pay.
type cutConfirmation struct {
	store.Store
	cut *atomic.Bool
}

func (c cutConfirmation) ConsumeRefundProposal(ctx context.Context, id, user string, events ...store.Event) (*store.RefundProposal, error) {
	if c.cut.CompareAndSwap(true, false) {
		return nil, fmt.Errorf("the replica died: %w", store.ErrUnavailable)
	}
	return c.Store.ConsumeRefundProposal(ctx, id, user, events...)
}

// callScript calls the tool the user's last message names, "CALL <tool>
// <arguments>", and answers the round after its result in words.
func callScript(body string) scriptRound {
	if gjson.Get(body, "messages.@reverse.0.role").Str == "tool" {
		return scriptRound{whole: `{"id":"chatcmpl-C2","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Done."},"finish_reason":"stop"}]}`}
	}
	last := gjson.Get(body, `messages.#(role=="user")#.content|@reverse|0`).Str
	parts := strings.SplitN(last, " ", 3)
	if len(parts) != 3 || parts[0] != "CALL" {
		return scriptRound{whole: `{"id":"chatcmpl-C0","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"OK."},"finish_reason":"stop"}]}`}
	}
	args := strings.ReplaceAll(parts[2], `"`, `\"`)
	return scriptRound{whole: `{"id":"chatcmpl-C1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"","tool_calls":[{"id":"call_c1","type":"function","function":{"name":"` + parts[1] + `","arguments":"` + args + `"}}]},"finish_reason":"tool_calls"}]}`}
}

// TestRefundOfAnotherAmountAfterACutConfirmation: the user confirmed a
// refund of the whole order and the confirmation was cut short after it
// reserved the order: nothing went to WeChat Pay, and the proposal is still
// open. The user, who saw nothing happen, asks for a refund of part of it.
// The order's reservation stands, so no second proposal is made, but the
// tool result must not tell the model a refund is being processed: it said
// "a refund of this order is already being processed; tell the user to
// wait for it", and the user waited for a refund nobody had sent.
func TestRefundOfAnotherAmountAfterACutConfirmation(t *testing.T) {
	var cut atomic.Bool
	up := newScriptedProvider(t, callScript)
	url, a := paymentApp(t, up.URL, "", withStoreWrap(func(st store.Store) store.Store { return cutConfirmation{st, &cut} }))
	const user = "oUser-cut-other-amount"
	no := chatAs(t, url, user, `CALL create_order {"sku":"premium-monthly"}`).Get("paygate.actions.0.order.order_no").Str
	if _, err := a.sim.Pay(context.Background(), no); err != nil {
		t.Fatal(err)
	}
	ans := chatAs(t, url, user, `CALL request_refund {"order_no":"`+no+`","reason":"not needed"}`)
	confirm := ans.Get(`paygate.actions.#(type=="refund_proposed").refund.confirm_url`).Str
	if confirm == "" {
		t.Fatalf("no refund proposal: %s", ans.Raw)
	}
	cut.Store(true)
	if status, body := httpCall(t, "POST", url+confirm, "Bearer "+e2eClientKey, user); status < 500 {
		t.Fatalf("cut confirmation: %d %s; want it to fail", status, body.Raw)
	}
	if n := a.sim.RefundCount(no); n != 0 {
		t.Fatalf("%d refunds at WeChat Pay after the cut confirmation; want none", n)
	}

	chatAs(t, url, user, `CALL request_refund {"order_no":"`+no+`","reason":"only part of it","amount":"10.00"}`)
	reqs := up.requests()
	result := gjson.Get(reqs[len(reqs)-1], `messages.#(role=="tool").content`).Str
	if result == "" {
		t.Fatalf("no tool result in the last upstream request: %s", reqs[len(reqs)-1])
	}
	for _, lie := range []string{"being processed", "wait for it"} {
		if strings.Contains(result, lie) {
			t.Errorf("tool result %s says %q; nothing was sent to WeChat Pay", result, lie)
		}
	}
	for _, want := range []string{"nothing has been sent for the refund proposed earlier", "waiting for the user's confirmation"} {
		if !strings.Contains(result, want) {
			t.Errorf("tool result %s does not say %q", result, want)
		}
	}
}
