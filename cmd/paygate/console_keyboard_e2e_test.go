package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"
)

// unlabelledJS lists the form fields in the visible parts of the page with
// no label a screen reader announces: a <label> or aria-label(ledby). A
// placeholder is not one (it is gone once the field has text).
const unlabelledJS = `[...document.querySelectorAll("input, select, textarea")]
	.filter((el) => el.type !== "hidden" && el.getClientRects().length > 0)
	.filter((el) => el.labels.length === 0 && !el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby"))
	.map((el) => el.id || el.outerHTML.slice(0, 80)).join(" | ")`

// TestConsoleByKeyboard: a manager without a mouse (or with a screen reader)
// works the Orders view: every field has a label, Tab reaches an order of
// the list and Enter opens its detail (the rows answered clicks only, so
// the detail, its history, resolve and resend could not be reached), and
// each tab panel is named by its tab.
func TestConsoleByKeyboard(t *testing.T) {
	b := newBrowser(t)
	url, adminURL, a, _ := consoleApp(t)
	paid, _ := orderFor(t, url, "oUser-console-paid", "premium monthly please")
	if d, err := a.sim.Pay(context.Background(), paid); err != nil || !d.Acked {
		t.Fatalf("pay %s: %+v %v", paid, d, err)
	}
	held, _ := orderFor(t, url, "oUser-console-yes", "two years of premium please")

	b.do(t, "sign in", chromedp.Navigate(adminURL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.CSS(row("approvals", held))))
	b.do(t, "ask to reject", chromedp.Click(chromedp.CSS(`button[data-action="reject"][data-order-no="`+held+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`input[data-reason-for="`+held+`"]`)))
	if s := evalJS[string](t, b, unlabelledJS); s != "" {
		t.Errorf("approvals: fields without a label: %s", s)
	}

	b.do(t, "orders", chromedp.Click(chromedp.CSS(`#tabs [data-tab="orders"]`)), chromedp.WaitVisible(chromedp.CSS(row("orders", paid))))
	if s := evalJS[string](t, b, unlabelledJS); s != "" {
		t.Errorf("orders: fields without a label: %s", s)
	}
	// From the order-number field, Tab on until the focus is on the paid
	// order's row, then Enter.
	b.do(t, "focus the search", chromedp.Focus(chromedp.ID("orders-search")))
	focused := func() string {
		return evalJS[string](t, b, `document.activeElement?.closest("tr")?.dataset.orderNo ?? ""`)
	}
	for i := 0; focused() != paid; i++ {
		if i == 12 {
			t.Fatalf("12 presses of Tab from the order-number field never reached %s (focus on %s)", paid,
				evalJS[string](t, b, `document.activeElement?.outerHTML.slice(0, 120) ?? ""`))
		}
		b.do(t, "Tab", chromedp.KeyEvent("\t"))
	}
	b.do(t, "Enter", chromedp.KeyEvent("\r"),
		waitFor("the detail", `document.querySelector("#panel-orders .detail:not([hidden]) h3")?.textContent.includes(`+jsString(paid)+`)`))
	if s := evalJS[string](t, b, unlabelledJS); s != "" {
		t.Errorf("order detail: fields without a label: %s", s)
	}

	for _, tab := range []string{"approvals", "orders", "refunds", "webhooks", "audit", "cost"} {
		got := evalJS[string](t, b, fmt.Sprintf(`(() => { const p = document.getElementById("panel-%s");
			const by = p.getAttribute("aria-labelledby"); const tab = by && document.getElementById(by);
			return tab ? tab.dataset.tab + " " + tab.getAttribute("aria-controls") : "no tab names it"; })()`, tab))
		if want := tab + " panel-" + tab; got != want {
			t.Errorf("panel-%s: named by %q; want %q (its tab, which controls it)", tab, got, want)
		}
	}
	if f := b.pageFaults(); len(f) > 0 {
		t.Errorf("the page logged faults: %v", f)
	}
}
