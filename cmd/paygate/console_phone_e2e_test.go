package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// phoneWidth is the CSS width of a common phone's screen (390 px).
const phoneWidth = 390

// minTouchTarget is the least height, in CSS px, of a button a finger taps
// without hitting its neighbour (WCAG 2.2's minimum is 24 px, with spacing;
// phone guidelines ask 44 to 48).
const minTouchTarget = 40

// TestConsoleOnAPhone: a store manager opens the console on a phone. Every
// tab fits the screen's width (the tab bar spilled past it, so the whole
// page was wider than the phone and panned sideways), and an order waiting
// for approval shows its amount and its Approve and Reject buttons on the
// screen, without scrolling a table sideways to find them.
func TestConsoleOnAPhone(t *testing.T) {
	b := newBrowser(t)
	url, adminURL, a, _ := consoleApp(t)
	paid, _ := orderFor(t, url, "oUser-console-paid", "premium monthly please")
	if d, err := a.sim.Pay(context.Background(), paid); err != nil || !d.Acked {
		t.Fatalf("pay %s: %+v %v", paid, d, err)
	}
	held, kind := orderFor(t, url, "oUser-console-yes", "two years of premium please")
	if kind != "approval_required" {
		t.Fatalf("action %s; want approval_required", kind)
	}

	b.do(t, "a phone's screen", chromedp.EmulateViewport(phoneWidth, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	b.do(t, "sign in", chromedp.Navigate(adminURL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.CSS(row("approvals", held))))
	b.screenshot(t, "console-phone-approvals.png")

	// On the screen: inside its width, whatever the page's scroll.
	onScreen := func(sel string) string {
		return `(() => { const r = document.querySelector(` + jsString(sel) + `)?.getBoundingClientRect();
			return r ? [r.left >= 0, r.right <= ` + fmt.Sprint(phoneWidth) + `, r.width > 0].join() : "missing"; })()`
	}
	for _, sel := range []string{
		row("approvals", held) + ` button[data-action="approve"]`,
		row("approvals", held) + ` button[data-action="reject"]`,
		row("approvals", held) + ` strong`, // the amount
	} {
		if got := evalJS[string](t, b, onScreen(sel)); got != "true,true,true" {
			t.Errorf("%s: [left edge on screen, right edge on screen, drawn] = %s; want all true", sel, got)
		}
	}
	if s := b.text(t, row("approvals", held)+` strong`); s != "998.00 CNY" {
		t.Errorf("amount %q; want 998.00 CNY", s)
	}
	// A decision's buttons are a finger's size (the small desktop ones were
	// 22 px tall, Reject 6 px from Approve), with the confirmation open too.
	b.do(t, "ask to approve", chromedp.Click(chromedp.CSS(row("approvals", held)+` button[data-action="approve"]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[data-action="confirm"][data-order-no="`+held+`"]`)))
	if got := evalJS[string](t, b, `[...document.querySelectorAll("#panel-approvals button")].filter((e) => e.getBoundingClientRect().height < `+fmt.Sprint(minTouchTarget)+`)
		.map((e) => e.textContent + " " + Math.round(e.getBoundingClientRect().height) + "px").join(", ")`); got != "" {
		t.Errorf("buttons smaller than a finger (%d px): %s", minTouchTarget, got)
	}
	b.do(t, "cancel", chromedp.Click(chromedp.CSS(`tr.confirm button[data-action="cancel"]`)))
	for _, tab := range []string{"approvals", "orders", "refunds", "webhooks", "audit", "cost"} {
		b.do(t, tab, chromedp.Click(chromedp.CSS(`#tabs [data-tab="`+tab+`"]`)),
			waitFor("the panel", `!document.querySelector("#panel-`+tab+`").hidden && !document.querySelector("#panel-`+tab+`").textContent.startsWith("Loading")`))
		if w := evalJS[int](t, b, `document.documentElement.scrollWidth`); w > phoneWidth {
			t.Errorf("%s tab: the page is %d px wide on a %d px screen", tab, w, phoneWidth)
		}
		if got := evalJS[string](t, b, onScreen(`#tabs [data-tab="`+tab+`"]`)); got != "true,true,true" {
			t.Errorf("%s tab button: %s; want on the screen", tab, got)
		}
	}
	b.screenshot(t, "console-phone-orders.png")
	if got := evalJS[string](t, b, onScreen(`#refresh`)); got != "true,true,true" {
		t.Errorf("refresh button: %s; want on the screen", got)
	}
	if f := b.pageFaults(); len(f) > 0 {
		t.Errorf("the page logged faults: %v", strings.Join(f, "; "))
	}
}
