package main

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/paygate/paygate/store"
)

// TestConsoleSaysWhatBecameOfAnUnansweredDecision: a manager rejects an
// order and the connection drops before paygate's answer arrives (a phone
// changing networks, a proxy giving up). paygate rejected it all the same;
// the console said "Could not reject PG…: paygate did not answer", of an
// order that then left the queue. It asks paygate for the order and says
// the rejection was made; a decision that never reached paygate says the
// order still waits, and its row stays. A resolution of an order in review
// whose answer is lost said "Not resolved: paygate did not answer" of an
// order paygate had closed: it says the order is out of review, and shows it.
func TestConsoleSaysWhatBecameOfAnUnansweredDecision(t *testing.T) {
	b := newBrowser(t)
	_, adminURL, a, _ := consoleApp(t)
	ctx := context.Background()
	const lostAnswer, lostAsk, slow, twice = "PGLOSTANSWER0001", "PGLOSTASKING0001", "PGSLOWANSWER0001", "PGDOUBLECLICK001"
	for _, no := range []string{lostAnswer, lostAsk, slow, twice} {
		if err := a.store.CreateOrder(ctx, &store.Order{OrderNo: no, Client: "bot", User: "oUser-" + no, SKU: "premium-yearly",
			Description: "Premium tier, 1 year", Quantity: 2, AmountFen: 99800, Currency: "CNY", PayMethod: "jsapi",
			Status: store.StatusApprovalRequired, ClaimKey: "k" + no, Generation: 1, CreatedAt: time.Now().Add(-time.Minute).Truncate(time.Second),
			ExpiresAt: time.Now().Add(time.Hour).Truncate(time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	const reviewed = "PGLOSTRESOLVE001"
	reviewedOrder(t, a, reviewed, "oUser-lost-resolve", "4200000000000000000000000098")
	// The rejection of lostAnswer reaches paygate, and its answer is
	// dropped; that of lostAsk is dropped on its way to paygate.
	b.do(t, "drop the connections", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{
			{URLPattern: "*/" + lostAnswer + "/reject", RequestStage: fetch.RequestStageResponse},
			{URLPattern: "*/" + lostAsk + "/reject", RequestStage: fetch.RequestStageRequest},
			{URLPattern: "*/" + reviewed + "/resolve", RequestStage: fetch.RequestStageResponse},
			{URLPattern: "*/" + slow + "/reject", RequestStage: fetch.RequestStageRequest},
			{URLPattern: "*/" + twice + "/reject", RequestStage: fetch.RequestStageRequest},
		}})
		return err
	}))
	held := make(chan fetch.RequestID, 1) // the rejection of slow, held on its way
	var sentTwice atomic.Int32            // the rejections of twice sent
	go func() {
		for ev, err := range chromedp.Events(b.ctx, fetch.RequestPaused) {
			if err != nil {
				return
			}
			if strings.Contains(ev.Request.URL, twice) {
				sentTwice.Add(1)
				_, _ = chromedp.Call(b.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
				continue
			}
			if strings.Contains(ev.Request.URL, slow) {
				held <- ev.RequestID
				continue
			}
			_, _ = chromedp.Call(b.ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonConnectionReset})
		}
	}()

	settled := waitFor("the page to settle", `!document.querySelector("[aria-busy]")`)
	b.do(t, "sign in", chromedp.Navigate(adminURL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.CSS(row("approvals", lostAnswer))), chromedp.WaitVisible(chromedp.CSS(row("approvals", lostAsk))))
	reject := func(no string) string {
		t.Helper()
		b.do(t, "reject "+no, settled, chromedp.Click(chromedp.CSS(`button[data-action="reject"][data-order-no="`+no+`"]`)),
			chromedp.WaitVisible(chromedp.CSS(`button[data-action="confirm"][data-order-no="`+no+`"]`)),
			chromedp.Click(chromedp.CSS(`button[data-action="confirm"][data-order-no="`+no+`"]`)),
			waitFor("the notice", `!document.getElementById("notice").hidden && document.getElementById("notice").textContent.includes(`+jsString(no)+`)`),
			settled)
		return b.text(t, "#notice")
	}

	s := reject(lostAnswer)
	if o, err := a.store.GetOrder(ctx, lostAnswer); err != nil || o.Status != store.StatusRejected {
		t.Fatalf("%s after its rejection lost its answer: %v %v; want rejected (the test needs paygate to have decided)", lostAnswer, o, err)
	}
	if strings.Contains(s, "Could not") || !strings.Contains(s, "it was made") || !strings.Contains(s, "rejected now") {
		t.Errorf("notice %q; want it said that the rejection was made, and the order is rejected now", s)
	}
	b.do(t, "the row leaves", chromedp.WaitNotPresent(chromedp.CSS(row("approvals", lostAnswer))))

	s = reject(lostAsk)
	if o, err := a.store.GetOrder(ctx, lostAsk); err != nil || o.Status != store.StatusApprovalRequired {
		t.Fatalf("%s after its rejection was dropped: %v %v; want it still held", lostAsk, o, err)
	}
	if !strings.Contains(s, "still waiting for a decision") || !strings.Contains(s, "nothing was decided") {
		t.Errorf("notice %q; want it said that the order still waits and nothing was decided", s)
	}
	b.do(t, "the row stays", settled, chromedp.WaitVisible(chromedp.CSS(row("approvals", lostAsk))))

	// A slow answer: while it is on its way, the confirmation says it waits
	// (its buttons only greyed out, as if the page had stopped).
	b.do(t, "reject "+slow, settled, chromedp.Click(chromedp.CSS(`button[data-action="reject"][data-order-no="`+slow+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[data-action="confirm"][data-order-no="`+slow+`"]`)),
		chromedp.Click(chromedp.CSS(`button[data-action="confirm"][data-order-no="`+slow+`"]`)))
	var id fetch.RequestID
	select {
	case id = <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("the rejection of " + slow + " was not sent")
	}
	if s := b.text(t, `tr.confirm[data-confirm-for="`+slow+`"]`); !strings.Contains(s, "Rejecting: waiting for paygate") {
		t.Errorf("while the rejection is on its way, the confirmation says %q; want it said that it waits", s)
	}
	b.do(t, "the answer comes", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: id})
		return err
	}), waitFor("the notice", `document.getElementById("notice").textContent.startsWith("Rejected `+slow+`")`),
		chromedp.WaitNotPresent(chromedp.CSS(row("approvals", slow))))

	// A double click on Confirm sends one rejection, which the notice tells
	// (a second would find the order rejected "by an earlier click").
	b.do(t, "reject "+twice, settled, chromedp.Click(chromedp.CSS(`button[data-action="reject"][data-order-no="`+twice+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[data-action="confirm"][data-order-no="`+twice+`"]`)))
	evalJS[bool](t, b, `(() => { const c = document.querySelector('button[data-action="confirm"][data-order-no="`+twice+`"]'); c.click(); c.click(); return true; })()`)
	b.do(t, "the rejection", waitFor("the notice", `document.getElementById("notice").textContent.includes(`+jsString(twice)+`)`),
		chromedp.WaitNotPresent(chromedp.CSS(row("approvals", twice))), settled)
	if n, s := sentTwice.Load(), b.text(t, "#notice"); n != 1 || !strings.HasPrefix(s, "Rejected "+twice) {
		t.Errorf("a double click on Confirm: %d rejections sent, notice %q; want one, and it said rejected", n, s)
	}

	b.do(t, "resolve "+reviewed, chromedp.Click(chromedp.CSS(`#tabs [data-tab="orders"]`)),
		chromedp.Click(chromedp.CSS(row("orders", reviewed)+" button")), chromedp.WaitVisible(chromedp.ID("resolve-reason")),
		chromedp.SendKeys(chromedp.ID("resolve-reason"), "refunded on the merchant platform"),
		chromedp.Click(chromedp.CSS(`button[data-action="resolve"]`)),
		waitFor("the outcome", `document.getElementById("resolve-done") !== null || /^(Not|No answer)/.test(document.getElementById("resolve-result")?.textContent ?? "")`))
	if o, err := a.store.GetOrder(ctx, reviewed); err != nil || o.Status != store.StatusClosed {
		t.Fatalf("%s after its resolution lost its answer: %v %v; want closed (the test needs paygate to have resolved it)", reviewed, o, err)
	}
	got := evalJS[string](t, b, `document.getElementById("resolve-done")?.textContent ?? document.getElementById("resolve-result")?.textContent ?? ""`)
	if strings.HasPrefix(got, "Not resolved") || !strings.Contains(got, "closed now") {
		t.Errorf("outcome %q; want it said that the order is out of review, closed now", got)
	}
	b.do(t, "the order as it is", waitFor("closed in the list", `document.querySelector(`+jsString(row("orders", reviewed))+`)?.dataset.status === "closed"`),
		chromedp.WaitNotPresent(chromedp.CSS(`button[data-action="resolve"]`)))
}
