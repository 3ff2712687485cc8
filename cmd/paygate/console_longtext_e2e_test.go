package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/paygate/paygate/store"
)

// TestConsoleKeepsLongTextInItsColumn: a product name of 500 characters
// with no space to break at (a catalog's long SKU line, a URL, emoji run
// together) and a user id as long. On a desktop's screen the approvals
// table grew as wide as the text and pushed the order's Approve and Reject
// buttons off the right edge, behind a sideways scroll of the panel; the
// text wraps within its column and the buttons stay on the screen, in the
// queue, the orders list and the order's detail. A user id with a
// right-to-left override in it (U+202E) turned the rest of the rejection's
// confirmation around ("?doog rof desolc si redro ehT"): it is isolated.
func TestConsoleKeepsLongTextInItsColumn(t *testing.T) {
	b := newBrowser(t)
	_, adminURL, a, _ := consoleApp(t)
	long := strings.Repeat("Premium😀", 50) + strings.Repeat("x", 100) // 500 characters, no space
	user := "oUser-" + strings.Repeat("l", 120)
	const no = "PGLONGTEXTHELD01"
	if err := a.store.CreateOrder(context.Background(), &store.Order{OrderNo: no, Client: "bot", User: user, SKU: "premium-yearly",
		Description: long, Quantity: 2, AmountFen: 100000001, Currency: "CNY", PayMethod: "jsapi",
		Status: store.StatusApprovalRequired, ClaimKey: "k" + no, Generation: 1, CreatedAt: time.Now().Add(-time.Minute).Truncate(time.Second),
		ExpiresAt: time.Now().Add(time.Hour).Truncate(time.Second)}); err != nil {
		t.Fatal(err)
	}
	const rtl = "PGRIGHTTOLEFT001"
	if err := a.store.CreateOrder(context.Background(), &store.Order{OrderNo: rtl, Client: "bot", User: "oUser-\u202eevil", SKU: "premium-yearly",
		Description: "Premium tier, 1 year", Quantity: 2, AmountFen: 7, Currency: "CNY", PayMethod: "jsapi",
		Status: store.StatusApprovalRequired, ClaimKey: "k" + rtl, Generation: 1, CreatedAt: time.Now().Add(-2 * time.Minute).Truncate(time.Second),
		ExpiresAt: time.Now().Add(time.Hour).Truncate(time.Second)}); err != nil {
		t.Fatal(err)
	}
	b.do(t, "a desktop's screen", chromedp.EmulateViewport(1280, 800))
	b.do(t, "sign in", chromedp.Navigate(adminURL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.CSS(row("approvals", no))))
	// onScreen is what of sel lies past the right edge of the screen or
	// of its panel's visible width (a panel scrolls sideways), in pixels.
	onScreen := func(sel string) float64 {
		t.Helper()
		return evalJS[float64](t, b, `(() => { const e = document.querySelector(`+jsString(sel)+`); if (!e) return -1;
			const p = e.closest(".panel").getBoundingClientRect(); const r = e.getBoundingClientRect();
			return Math.max(0, r.right - Math.min(innerWidth, p.right)); })()`)
	}
	for _, sel := range []string{`button[data-action="approve"][data-order-no="` + no + `"]`, `button[data-action="reject"][data-order-no="` + no + `"]`} {
		if px := onScreen(sel); px != 0 {
			t.Errorf("%s: %v px past the right edge; want it on the screen", sel, px)
		}
	}
	if s := b.text(t, row("approvals", no)); !strings.Contains(s, "1000000.01 CNY") {
		t.Errorf("row %q; want the amount, 1000000.01 CNY", s)
	}
	b.do(t, "reject "+rtl, chromedp.Click(chromedp.CSS(`button[data-action="reject"][data-order-no="`+rtl+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr.confirm[data-confirm-for="`+rtl+`"]`)))
	// The words after the user id run left to right: "c" of "closed" left of its "d".
	if ltr := evalJS[bool](t, b, `(() => {
		const row = document.querySelector('tr.confirm[data-confirm-for="`+rtl+`"]');
		const w = document.createTreeWalker(row, NodeFilter.SHOW_TEXT);
		for (let n; (n = w.nextNode());) {
			const i = n.data.indexOf("closed for good"); if (i < 0) continue;
			const at = (k) => { const r = document.createRange(); r.setStart(n, k); r.setEnd(n, k + 1); return r.getBoundingClientRect().left; };
			return at(i) < at(i + 5);
		}
		return false; })()`); !ltr {
		t.Errorf("confirmation %q: the words after the user id are turned around", b.text(t, `tr.confirm[data-confirm-for="`+rtl+`"]`))
	}
	if s := b.text(t, `tr.confirm[data-confirm-for="`+rtl+`"]`); !strings.Contains(s, "for 0.07 CNY") {
		t.Errorf("confirmation %q; want the amount, 0.07 CNY", s)
	}
	b.do(t, "cancel", chromedp.Click(chromedp.CSS(`tr.confirm button[data-action="cancel"]`)))
	b.do(t, "orders", chromedp.Click(chromedp.CSS(`#tabs [data-tab="orders"]`)),
		chromedp.WaitVisible(chromedp.CSS(row("orders", no))))
	if px := onScreen(row("orders", no) + ` td[data-label="Updated"]`); px != 0 {
		t.Errorf("orders list: the last column %v px past the right edge; want it on the screen", px)
	}
	b.do(t, "open it", chromedp.Click(chromedp.CSS(row("orders", no)+" button")),
		waitFor("the detail", `document.querySelector("#panel-orders .detail:not([hidden]) h3")?.textContent.includes(`+jsString(no)+`)`))
	if w := evalJS[float64](t, b, `(() => { const p = document.getElementById("panel-orders"); return p.scrollWidth - p.clientWidth; })()`); w > 0 {
		t.Errorf("orders panel %v px wider than it shows; want no sideways scroll", w)
	}
}
