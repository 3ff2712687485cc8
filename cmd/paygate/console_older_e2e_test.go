package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/paygate/paygate/store"
)

// TestConsoleKeepsWhatItLoadedWhenAnOlderPageFails: an operator has paged
// back through the orders (and the refunds) when the network blips on the
// next older page. The list was replaced by "Could not load: paygate did
// not answer", the pages already read gone, and only Refresh, back at the
// first page, brought orders back. The loaded rows stay, the failure is
// said under them, and the button loads the older page once it answers.
func TestConsoleKeepsWhatItLoadedWhenAnOlderPageFails(t *testing.T) {
	b := newBrowser(t)
	_, adminURL, a, _ := consoleApp(t, withoutStoreSync()) // thousands of orders, not their durability
	ctx := context.Background()
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	mk := func(no string, st store.OrderStatus, at time.Time, refunded int64) {
		t.Helper()
		if err := a.store.CreateOrder(ctx, &store.Order{OrderNo: no, Client: "bot", User: "oUser-" + no, SKU: "premium-monthly",
			Description: "Premium tier, 1 month", Quantity: 1, AmountFen: 4999, Currency: "CNY", PayMethod: "jsapi", Status: st,
			RefundedFen: refunded, ClaimKey: "k" + no, Generation: 1, CreatedAt: at, ExpiresAt: base.Add(48 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	const refunds, orders = 201, 501 // one more than the console's page of each
	for i := range refunds {
		mk(fmt.Sprintf("PGOLDERRFND%04d", i), store.StatusRefunded, base.Add(time.Duration(i)*time.Millisecond), 4999)
	}
	for i := range orders - refunds {
		mk(fmt.Sprintf("PGOLDERPAID%04d", i), store.StatusPaid, base.Add(time.Second+time.Duration(i)*time.Millisecond), 0)
	}

	// The first read of an older page of each list fails as a dropped
	// connection does; the next one goes through.
	b.do(t, "a flaky network", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: "*before=*"}}})
		return err
	}))
	var mu sync.Mutex
	failed := map[string]bool{}
	go func() {
		for ev, err := range chromedp.Events(b.ctx, fetch.RequestPaused) {
			if err != nil {
				return
			}
			path, _, _ := strings.Cut(ev.Request.URL, "?")
			mu.Lock()
			first := !failed[path]
			failed[path] = true
			mu.Unlock()
			if first {
				_, _ = chromedp.Call(b.ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonInternetDisconnected})
			} else {
				_, _ = chromedp.Call(b.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
			}
		}
	}()

	b.do(t, "sign in", chromedp.Navigate(adminURL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.ID("app")))
	rows := func(panel string) string {
		return `document.querySelectorAll("#panel-` + panel + ` tbody tr[data-order-no]").length`
	}
	older := func(panel, what string) string { // clicks the panel's Load older button
		return `(() => { const b = [...document.querySelectorAll("#panel-` + panel + ` button")].find((b) => b.textContent === "Load older ` + what + `");
			if (!b) return false; b.click(); return true; })()`
	}
	for _, tc := range []struct {
		tab, what  string
		first, all int
		oldest     string
	}{
		{tab: "orders", what: "orders", first: 500, all: orders, oldest: "PGOLDERRFND0000"},
		{tab: "refunds", what: "refunds", first: 200, all: refunds, oldest: "PGOLDERRFND0000"},
	} {
		b.do(t, tc.tab, chromedp.Click(chromedp.CSS(`#tabs [data-tab="`+tc.tab+`"]`)),
			waitFor("the first page", rows(tc.tab)+` === `+fmt.Sprint(tc.first)))
		if !evalJS[bool](t, b, older(tc.tab, tc.what)) {
			t.Fatalf("%s: no Load older button", tc.tab)
		}
		b.do(t, tc.tab+": the older page fails", waitFor("the failure said", `document.querySelector("#panel-`+tc.tab+` .error") !== null`))
		if n := evalJS[int](t, b, rows(tc.tab)); n != tc.first {
			t.Errorf("%s after an older page failed: %d rows (%q); want the %d loaded still there", tc.tab, n, b.text(t, "#panel-"+tc.tab+" .error"), tc.first)
		}
		if !evalJS[bool](t, b, older(tc.tab, tc.what)) {
			t.Fatalf("%s after an older page failed: no Load older button to try again", tc.tab)
		}
		b.do(t, tc.tab+": the older page", waitFor("every row", rows(tc.tab)+` === `+fmt.Sprint(tc.all)),
			chromedp.WaitVisible(chromedp.CSS(row(tc.tab, tc.oldest))))
		if got := evalJS[int](t, b, `new Set([...document.querySelectorAll("#panel-`+tc.tab+` tbody tr[data-order-no]")].map((r) => r.dataset.orderNo)).size`); got != tc.all {
			t.Errorf("%s: %d orders once the older page came; want each of the %d once", tc.tab, got, tc.all)
		}
	}
}
