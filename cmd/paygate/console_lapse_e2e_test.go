package main

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/paygate/paygate/store"
)

// TestConsoleMarksLapsedApprovals: a held order's approval deadline passes
// while the manager has the queue open (or before the sweep has expired
// it). Its row says the deadline passed and it can no longer be approved,
// at once and as the deadline passes, instead of looking like any other
// order waiting for a decision until a click is refused.
func TestConsoleMarksLapsedApprovals(t *testing.T) {
	b := newBrowser(t)
	// The payments clock runs an hour behind: the sweep, whose first pass
	// runs as the app starts, would otherwise expire the lapsed order when
	// a loaded machine runs that pass after the order is written, and the
	// row under test would be gone (what the console shows then is
	// TestConsoleSaysWhatADecisionFound's). The browser's clock is the one
	// the row's mark reads.
	_, adminURL, a, _ := consoleApp(t, withPaymentsClock(func() time.Time { return time.Now().Add(-time.Hour) }))
	now := time.Now()
	held := func(no string, deadline time.Time) {
		t.Helper()
		if err := a.store.CreateOrder(context.Background(), &store.Order{OrderNo: no, Client: "bot", User: "oUser-" + no, SKU: "premium-yearly",
			Description: "Premium tier, 1 year", Quantity: 2, AmountFen: 99800, Currency: "CNY", PayMethod: "jsapi",
			Status: store.StatusApprovalRequired, ClaimKey: "k" + no, Generation: 1, CreatedAt: now.Add(-time.Hour), ExpiresAt: deadline}); err != nil {
			t.Fatal(err)
		}
	}
	const lapsed, lapsing, waiting = "PGHELDLAPSED001", "PGHELDLAPSING01", "PGHELDWAITING01"
	held(lapsed, now.Add(-time.Second))
	lapsesAt := now.Add(4 * time.Second)
	held(lapsing, lapsesAt)
	held(waiting, now.Add(time.Hour))

	b.do(t, "sign in", chromedp.Navigate(adminURL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.CSS(row("approvals", waiting))))
	marked := func(no string) string {
		return `document.querySelector(` + jsString(row("approvals", no)+` [data-deadline]`) + `)?.textContent.includes("can no longer be approved")`
	}
	if !evalJS[bool](t, b, marked(lapsed)) {
		t.Errorf("%s, past its deadline: its row does not say so", lapsed)
	}
	if evalJS[bool](t, b, marked(lapsing)) && time.Now().Before(lapsesAt) {
		t.Errorf("%s is marked before its deadline", lapsing)
	}
	// The deadline passes with the page open (the browser's clock is the
	// external condition polled).
	b.do(t, "the deadline passing", waitFor(lapsing+" marked", marked(lapsing)))
	if evalJS[bool](t, b, marked(waiting)) {
		t.Errorf("%s, an hour from its deadline, is marked", waiting)
	}
	if f := b.pageFaults(); len(f) > 0 {
		t.Errorf("the page logged faults: %v", f)
	}
}
