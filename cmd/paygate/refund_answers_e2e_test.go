package main

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestRefundAnswersBoundAndOnce: a refund proposal is answered only by the
// user of the client it was made for (the same OpenID string at a client
// bound to another app is someone else: 404, as for their order); confirms
// and cancels tapped at once move money at most once, and never after a
// cancel won; and a cancel of a proposal already confirmed says the refund
// is on its way (409 refund_already_confirmed, not retried), not 410
// "already used, cancelled or expired; ask again in the chat", which a bot
// read as the refund not happening while WeChat Pay was returning the money.
// A cancel repeated is answered "cancelled" again, not 410, which read as
// the proposal having expired.
func TestRefundAnswersBoundAndOnce(t *testing.T) {
	m := newMerchant(t, nil)
	up := newScriptedProvider(t, directedScript)
	src := strings.Replace(twoAppsConfig, "payments:\n", "payments:\n  catalog: [{sku: premium-monthly, name: \"Premium\", price: \"49.99\", max_quantity: 12}]\n", 1)
	url, a := twoAppsApp(t, up.URL, m.URL, src)
	ctx := context.Background()
	const shared = "oShared-openid-refunds"
	mine, theirs := "Bearer sk-client-a", "Bearer sk-client-b"
	buy := func(qty string) string {
		t.Helper()
		no := chatWith(t, url, "sk-client-a", shared, `call create_order {"sku":"premium-monthly","quantity":`+qty+`}`).
			Get(`paygate.actions.#(type=="order_created").order.order_no`).Str
		if d, err := a.sim.Pay(ctx, no); no == "" || err != nil || !d.Acked {
			t.Fatalf("pay %q: %+v %v", no, d, err)
		}
		return no
	}
	propose := func(no string) string {
		t.Helper()
		p, _, err := a.payments.ProposeRefund(ctx, payments.RefundRequest{Client: "shop-a", User: shared, OrderNo: no, Reason: "test"})
		if err != nil {
			t.Fatal(err)
		}
		return p.RefundID
	}
	answer := func(auth, id, verb string) (int, string) {
		t.Helper()
		status, b := httpCall(t, http.MethodPost, url+"/v1/paygate/refunds/"+id+"/"+verb, auth, shared)
		return status, b.Get("error.code").Str
	}

	raced := buy("1")
	id := propose(raced)
	if status, _ := httpCall(t, http.MethodGet, url+"/v1/paygate/orders/"+raced, theirs, shared); status != http.StatusNotFound {
		t.Errorf("the order read by the same OpenID at the other app's client: %d; want 404", status)
	}
	for _, verb := range []string{"confirm", "cancel"} {
		if status, code := answer(theirs, id, verb); status != http.StatusNotFound || code != "refund_not_found" {
			t.Errorf("%s by the same OpenID at the other app's client: %d %s; want 404 refund_not_found", verb, status, code)
		}
	}

	// Confirms and cancels of one proposal at once.
	const n = 16
	codes := map[string]map[int]int{"confirm": {}, "cancel": {}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		verb := []string{"confirm", "cancel"}[i%2]
		wg.Go(func() {
			<-start
			status, _ := answer(mine, id, verb)
			mu.Lock()
			codes[verb][status]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	// Every tap is told what happened to the proposal: the winner's answer,
	// the confirmation's state, or that the cancel stands.
	switch refunds := a.sim.RefundCount(raced); {
	case refunds > 1:
		t.Fatalf("%d refunds of one proposal; want at most 1 (answers %v)", refunds, codes)
	case refunds == 1:
		if codes["confirm"][http.StatusOK] != 1 || codes["confirm"][http.StatusAccepted] != n/2-1 || codes["cancel"][http.StatusConflict] != n/2 {
			t.Errorf("the confirm won: answers %v; want one confirm 200, the others 202, every cancel 409", codes)
		}
	default:
		if codes["cancel"][http.StatusOK] != n/2 || codes["confirm"][http.StatusGone] != n/2 {
			t.Errorf("the cancel won: answers %v; want every cancel 200 and every confirm 410", codes)
		}
	}

	// A cancel after the confirm: the refund goes on, and the bot is told so.
	confirmed := buy("2")
	id = propose(confirmed)
	if status, code := answer(mine, id, "confirm"); status != http.StatusOK {
		t.Fatalf("confirm: %d %s", status, code)
	}
	status, b := httpCall(t, http.MethodPost, url+"/v1/paygate/refunds/"+id+"/cancel", mine, shared)
	if status != http.StatusConflict || b.Get("error.code").Str != "refund_already_confirmed" || !strings.Contains(b.Get("error.message").Str, "pending") {
		t.Errorf("cancel after the confirm: %d %s; want 409 refund_already_confirmed saying the refund is pending", status, b.Raw)
	}
	if got, err := a.store.GetOrder(ctx, confirmed); err != nil || got.Status != store.StatusRefunding || a.sim.RefundCount(confirmed) != 1 {
		t.Errorf("after the cancel: %+v %v, %d refunds; want the refund going on", got, err, a.sim.RefundCount(confirmed))
	}
	if _, err := a.sim.CompleteRefund(ctx, payments.OutRefundNo(id)); err != nil {
		t.Fatal(err)
	}
	if status, b := httpCall(t, http.MethodPost, url+"/v1/paygate/refunds/"+id+"/cancel", mine, shared); status != http.StatusConflict ||
		!strings.Contains(b.Get("error.message").Str, "succeeded") {
		t.Errorf("cancel after the refund succeeded: %d %s; want 409 saying it succeeded", status, b.Raw)
	}
	if status, code := answer(theirs, id, "cancel"); status != http.StatusNotFound {
		t.Errorf("cancel of a used proposal by the other app's client: %d %s; want 404", status, code)
	}

	// A cancel sent again (an SDK's retry of one whose answer was lost) is
	// answered as the first was: the proposal is cancelled, not "expired";
	// a confirm after it is still 410, and the other client's tap 404.
	id = propose(buy("3"))
	for i := range 2 {
		if status, b := httpCall(t, http.MethodPost, url+"/v1/paygate/refunds/"+id+"/cancel", mine, shared); status != http.StatusOK ||
			b.Get("refund.status").Str != "cancelled" || b.Get("refund.refund_id").Str != id {
			t.Errorf("cancel %d: %d %s; want 200 cancelled", i+1, status, b.Raw)
		}
	}
	if status, code := answer(mine, id, "confirm"); status != http.StatusGone || code != "refund_gone" {
		t.Errorf("confirm after the cancel: %d %s; want 410 refund_gone", status, code)
	}
	if status, code := answer(theirs, id, "cancel"); status != http.StatusNotFound {
		t.Errorf("cancel of a cancelled proposal by the other app's client: %d %s; want 404", status, code)
	}
}
