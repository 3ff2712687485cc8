package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/paygate/paygate/store"
)

// TestConsoleBoundsEveryCall: behind a proxy whose upstream hangs (a
// stuck admin listener, a connection half-open after a phone changed
// networks), an answer may never come, and fetch waits for it for ever:
// the page stayed on "Loading…", and a decision stayed "on its way". Every
// call is bounded: a read that runs out says in the panel that paygate did
// not answer, as other failures are said, and Refresh, once paygate
// answers again, draws the panel. A decision whose answer never came is
// not reported as failed: the console asks paygate what became of the
// order. A rejection paygate made says it was made; an approval stuck on
// its way (the order still held) says it may still be made, not that
// nothing was decided; a resolution paygate made says the order is out of
// review.
func TestConsoleBoundsEveryCall(t *testing.T) {
	b := newBrowser(t)
	_, _, a, _ := consoleApp(t)
	ctx := context.Background()
	const rejected, stuck, resolved = "PGHUNGREJECT0001", "PGHUNGAPPROVE001", "PGHUNGRESOLVE001"
	for _, no := range []string{rejected, stuck} {
		if err := a.store.CreateOrder(ctx, &store.Order{OrderNo: no, Client: "bot", User: "oUser-" + no, SKU: "premium-yearly",
			Description: "Premium tier, 1 year", Quantity: 2, AmountFen: 99800, Currency: "CNY", PayMethod: "jsapi",
			Status: store.StatusApprovalRequired, ClaimKey: "k" + no, Generation: 1, CreatedAt: time.Now().Add(-time.Minute).Truncate(time.Second),
			ExpiresAt: time.Now().Add(time.Hour).Truncate(time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	reviewedOrder(t, a, resolved, "oUser-hung-resolve", "4200000000000000000000000097")

	// A proxy in front of the admin listener. While holdReads is set, the
	// approval queue's reads hang before reaching paygate; the approval of
	// stuck always does; the rejection of rejected and the resolution of
	// resolved reach paygate, which decides, and their answers hang. What
	// hangs is let go when the test ends.
	var holdReads atomic.Bool
	release := make(chan struct{})
	admin := a.adminHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case r.Method == http.MethodGet && p == "/admin/api/approvals" && holdReads.Load(),
			r.Method == http.MethodPost && strings.HasSuffix(p, "/"+stuck+"/approve"):
			<-release
			return
		case r.Method == http.MethodPost && (strings.HasSuffix(p, "/"+rejected+"/reject") || strings.HasSuffix(p, "/"+resolved+"/resolve")):
			admin.ServeHTTP(httptest.NewRecorder(), r)
			<-release
			return
		}
		admin.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // before srv.Close, which waits for the held handlers

	settled := waitFor("the page to settle", `!document.querySelector("[aria-busy]")`)
	b.do(t, "sign in", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.CSS(row("approvals", rejected))), chromedp.WaitVisible(chromedp.CSS(row("approvals", stuck))), settled)
	// The bounds, shortened: 30 s for a read, a minute for a decision.
	ectx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	shortened, err := chromedp.Run(ectx, chromedp.Evaluate[bool](`(async () => { const m = await import("/console/js/api.js");
		if (!m.timeouts) return false; m.timeouts.read = 2000; m.timeouts.change = 2000; return true; })()`, chromedp.EvalAwaitPromise))
	cancel()
	if err != nil {
		t.Fatalf("shortening the bounds: %v", err)
	}
	if !shortened {
		t.Log("the console has no bounds to shorten (api.js exports no timeouts)")
	}

	holdReads.Store(true)
	b.do(t, "refresh, paygate silent", chromedp.Click(chromedp.ID("refresh")),
		waitFor("the panel to give up", `!document.getElementById("panel-approvals").textContent.includes("Loading")`), settled)
	if s := b.text(t, "#panel-approvals"); !strings.Contains(s, "Could not load") || !strings.Contains(s, "did not answer within 2 s") || !strings.Contains(s, "Refresh") {
		t.Errorf("approvals panel %q after its read got no answer; want it said that paygate did not answer within 2 s, and that Refresh asks again", s)
	}
	holdReads.Store(false)
	b.do(t, "refresh, paygate back", chromedp.Click(chromedp.ID("refresh")),
		chromedp.WaitVisible(chromedp.CSS(row("approvals", rejected))), settled)

	decide := func(no, verb string) string {
		t.Helper()
		b.do(t, verb+" "+no, settled, chromedp.Click(chromedp.CSS(`button[data-action="`+verb+`"][data-order-no="`+no+`"]`)),
			chromedp.WaitVisible(chromedp.CSS(`button[data-action="confirm"][data-order-no="`+no+`"]`)),
			chromedp.Click(chromedp.CSS(`button[data-action="confirm"][data-order-no="`+no+`"]`)),
			waitFor("the notice", `!document.getElementById("notice").hidden && document.getElementById("notice").textContent.includes(`+jsString(no)+`)`),
			settled)
		return b.text(t, "#notice")
	}
	s := decide(rejected, "reject")
	if o, err := a.store.GetOrder(ctx, rejected); err != nil || o.Status != store.StatusRejected {
		t.Fatalf("%s after its rejection's answer hung: %v %v; want rejected (the test needs paygate to have decided)", rejected, o, err)
	}
	if strings.Contains(s, "Could not") || !strings.Contains(s, "did not answer within 2 s") || !strings.Contains(s, "it was made") || !strings.Contains(s, "rejected now") {
		t.Errorf("notice %q; want it said that no answer came within 2 s, but the rejection was made", s)
	}

	s = decide(stuck, "approve")
	if o, err := a.store.GetOrder(ctx, stuck); err != nil || o.Status != store.StatusApprovalRequired {
		t.Fatalf("%s after its approval hung on its way: %v %v; want it still held", stuck, o, err)
	}
	if strings.Contains(s, "Could not") || strings.Contains(s, "nothing was decided") || !strings.Contains(s, "still waiting for a decision") || !strings.Contains(s, "may still") {
		t.Errorf("notice %q; want it said that the order still waits and the approval may still be made, not that nothing was decided", s)
	}

	b.do(t, "resolve "+resolved, chromedp.Click(chromedp.CSS(`#tabs [data-tab="orders"]`)),
		chromedp.Click(chromedp.CSS(row("orders", resolved)+" button")), chromedp.WaitVisible(chromedp.ID("resolve-reason")),
		chromedp.SendKeys(chromedp.ID("resolve-reason"), "refunded on the merchant platform"),
		chromedp.Click(chromedp.CSS(`button[data-action="resolve"]`)),
		waitFor("the outcome", `document.getElementById("resolve-done") !== null || /^(Not|No answer)/.test(document.getElementById("resolve-result")?.textContent ?? "")`))
	if o, err := a.store.GetOrder(ctx, resolved); err != nil || o.Status != store.StatusClosed {
		t.Fatalf("%s after its resolution's answer hung: %v %v; want closed (the test needs paygate to have resolved it)", resolved, o, err)
	}
	got := evalJS[string](t, b, `document.getElementById("resolve-done")?.textContent ?? document.getElementById("resolve-result")?.textContent ?? ""`)
	if !strings.Contains(got, "did not answer within 2 s") || !strings.Contains(got, "out of review") || !strings.Contains(got, "closed now") {
		t.Errorf("outcome %q; want it said that no answer came within 2 s, but the order is out of review, closed now", got)
	}
	if f := b.pageFaults(); len(f) > 0 {
		t.Errorf("the page logged faults: %v", f)
	}
}
