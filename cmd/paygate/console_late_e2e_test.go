package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/paygate/paygate/store"
)

// trackFetchJS wraps the page's fetch so the test can wait until every call
// the page made has been answered and the page has acted on the answer:
// __inflight drops only in a task queued once the body was read, after the
// promise jobs that continue the caller (api(), then the view) have run.
const trackFetchJS = `(() => {
	window.__inflight = 0;
	const f = window.fetch;
	window.fetch = async (...args) => {
		window.__inflight++;
		let res;
		try { res = await f(...args); } catch (e) { setTimeout(() => window.__inflight--, 0); throw e; }
		const json = res.json.bind(res);
		res.json = async () => { try { return await json(); } finally { setTimeout(() => window.__inflight--, 0); } };
		return res;
	};
	return true;
})()`

// TestConsoleLateAnswersDoNotMixLists: on a slow link (a phone), a list
// shows only what the manager last asked for. Orders filtered by "needs
// review", then, before that answer came, by "paid": the late answer is
// dropped, not appended to the paid orders under the "paid" filter. "Load
// older refunds" clicked twice (a double tap) loads the older page once,
// not its refunds twice.
func TestConsoleLateAnswersDoNotMixLists(t *testing.T) {
	b := newBrowser(t)
	_, _, a, _ := consoleApp(t, withoutStoreSync()) // thousands of orders, not their durability
	ctx := context.Background()
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	mk := func(no string, st store.OrderStatus, at time.Time, refunded int64) {
		t.Helper()
		o := &store.Order{OrderNo: no, Client: "bot", User: "oUser-" + no, SKU: "premium-monthly", Description: "Premium tier, 1 month",
			Quantity: 1, AmountFen: 4999, Currency: "CNY", PayMethod: "jsapi", Status: st, RefundedFen: refunded,
			ClaimKey: "k" + no, Generation: 1, CreatedAt: at, ExpiresAt: base.Add(48 * time.Hour)}
		if err := a.store.CreateOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	mk("PGLATEPAID0001", store.StatusPaid, base, 0)
	mk("PGLATEREVW0001", store.StatusNeedsReview, base, 0)
	const refunds = 201 // one more than the console's page of refunds
	for i := range refunds {
		mk(fmt.Sprintf("PGLATERFND%04d", i), store.StatusRefunded, base.Add(time.Duration(i)*time.Millisecond), 4999)
	}

	// The admin listener, with the "needs review" list held until released.
	var mu sync.Mutex
	held := make(chan struct{}, 1)
	release := make(chan struct{})
	admin := a.adminHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/admin/api/orders" && r.URL.Query().Get("status") == "needs_review" && r.URL.Query().Get("limit") != "1000" {
			mu.Lock() // one at a time
			held <- struct{}{}
			<-release
			mu.Unlock()
		}
		admin.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})

	b.do(t, "sign in", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.ID("app")))
	b.do(t, "orders", chromedp.Click(chromedp.CSS(`#tabs [data-tab="orders"]`)), chromedp.WaitVisible(chromedp.CSS(row("orders", "PGLATEREVW0001"))))
	evalJS[bool](t, b, trackFetchJS)
	filter := func(status string) {
		t.Helper()
		evalJS[bool](t, b, `(() => { const s = document.getElementById("orders-status"); s.value = `+jsString(status)+`; s.dispatchEvent(new Event("change")); return true; })()`)
	}
	filter("needs_review")
	select {
	case <-held:
	case <-time.After(15 * time.Second):
		t.Fatal("the page never asked for the orders in review")
	}
	filter("paid")
	b.do(t, "the paid orders", chromedp.WaitVisible(chromedp.CSS(row("orders", "PGLATEPAID0001"))))
	close(release)
	b.do(t, "every answer acted on", waitFor("no call in flight", `window.__inflight === 0`))
	got := evalJS[string](t, b, `JSON.stringify([document.getElementById("orders-status").value,
		[...document.querySelectorAll("#panel-orders tbody tr[data-order-no]")].map((r) => r.dataset.status)])`)
	if want := `["paid",["paid"]]`; got != want {
		t.Errorf("[filter, statuses listed] = %s; want %s: the late answer for another filter mixed into the list", got, want)
	}

	b.do(t, "refunds", chromedp.Click(chromedp.CSS(`#tabs [data-tab="refunds"]`)), chromedp.WaitVisible(chromedp.ID("refunds-older")))
	// Two clicks in one go: the first answer cannot come in between.
	evalJS[bool](t, b, `(() => { const o = document.getElementById("refunds-older"); o.click(); o.click(); return true; })()`)
	b.do(t, "the older refunds", chromedp.WaitVisible(chromedp.CSS(row("refunds", "PGLATERFND0000"))),
		waitFor("no call in flight", `window.__inflight === 0`))
	if got := evalJS[string](t, b, `(() => { const rows = [...document.querySelectorAll("#panel-refunds tbody tr[data-order-no]")].map((r) => r.dataset.orderNo);
		return rows.length + " rows, " + new Set(rows).size + " orders"; })()`); got != fmt.Sprintf("%d rows, %d orders", refunds, refunds) {
		t.Errorf("refunds after a double click on Load older: %s; want each of the %d once", got, refunds)
	}
	if f := b.pageFaults(); len(f) > 0 {
		t.Errorf("the page logged faults: %v", f)
	}
}
