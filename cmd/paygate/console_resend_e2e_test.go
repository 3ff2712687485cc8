package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
)

// TestConsoleResendSaysWhatItQueued: a refunded order whose first refund's
// refund.succeeded was given up while its second refund's is still being
// retried (the merchant refuses this user's events). The console's resend
// queues the given-up event again and sets the waiting one back behind it,
// which the API answers 200 naming the waiting one (already_pending); the
// console said "Already queued … not queued twice", as if nothing had been
// queued. It must name the event it queued and the one that now goes after
// it. The resend carries the name the manager signed in with (operator),
// which the audit records with it.
func TestConsoleResendSaysWhatItQueued(t *testing.T) {
	b := newBrowser(t)
	_, _, a, outcomes := consoleApp(t)
	ctx := context.Background()
	const no = "PGRESENDSETBACK"
	now := time.Now().Add(-time.Hour).Truncate(time.Second)
	o := &store.Order{OrderNo: no, Client: "bot", User: consoleReviewUser, SKU: "premium-monthly", Description: "Premium tier, 1 month",
		Quantity: 1, AmountFen: 4999, Currency: "CNY", PayMethod: "jsapi", Status: store.StatusRefunded, RefundedFen: 4999,
		ClaimKey: "k" + no, Generation: 1, CreatedAt: now, ExpiresAt: now.Add(48 * time.Hour)}
	if err := a.store.CreateOrder(ctx, o); err != nil {
		t.Fatal(err)
	}
	o, err := a.store.GetOrder(ctx, no)
	if err != nil {
		t.Fatal(err)
	}
	first := *o
	first.Status, first.RefundedFen = store.StatusPartiallyRefunded, 2000
	given := webhook.NewEvent(webhook.TypeRefundSucceeded, &first, map[string]any{"order_no": no, "status": "succeeded",
		"refund_id": "rf_first", "amount_fen": 2000, "refunded_fen": 2000, "currency": "CNY"}, now)
	given.Key = webhook.DeadPrefix + no + "/" + given.ID
	given.NextAt, given.FailedAt, given.Attempts, given.LastError = time.Date(9999, time.January, 1, 0, 0, 0, 0, time.UTC), now, 12, "status 503"
	waiting := webhook.NewEvent(webhook.TypeRefundSucceeded, o, map[string]any{"order_no": no, "status": "succeeded",
		"refund_id": "rf_second", "amount_fen": 2999, "refunded_fen": 4999, "currency": "CNY"}, now)
	if err := a.store.EnqueueEvents(ctx, given, waiting); err != nil {
		t.Fatal(err)
	}
	// The second refund's event is refused once, and retried in an hour.
	deadline := time.After(15 * time.Second)
	for refused := false; !refused; {
		select {
		case r := <-outcomes:
			refused = r.EventID == waiting.ID && r.Outcome == webhook.OutcomeFailed
		case <-deadline:
			t.Fatalf("no refused webhook for %s", waiting.ID)
		}
	}

	button := `#panel-webhooks button[data-action="resend"][data-order-no="` + no + `"]`
	said := `document.querySelector(` + jsString(button) + `)?.parentElement.querySelector(".legend")?.textContent || ""`
	adminURL, operators := sentPosts(t, a)
	const who = "Wang Fang"
	b.do(t, "sign in", chromedp.Navigate(adminURL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("signin-operator"), who), chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.ID("signout")))
	b.do(t, "webhooks", chromedp.Click(chromedp.CSS(`#tabs [data-tab="webhooks"]`)), chromedp.WaitVisible(chromedp.CSS(button)))
	// Each time in the tables, the given-up and the waiting event's, shows
	// itself in UTC on hover, as every table's does.
	if got := evalJS[string](t, b, `[...document.querySelectorAll('#panel-webhooks td[data-label="Created"], #panel-webhooks td[data-label="Given up"], #panel-webhooks td[data-label="Next try"]')]
		.map((td) => td.dataset.label + ":" + (td.querySelector("[title]")?.title.endsWith(" UTC") ? "UTC" : "none")).join(",")`); got != "Created:UTC,Given up:UTC,Created:UTC,Next try:UTC" {
		t.Errorf("webhooks tables' times on hover: %s; want each in UTC", got)
	}
	b.do(t, "resend", chromedp.Click(chromedp.CSS(button)),
		waitFor("the answer", `(`+said+`) !== "" && !(`+said+`).startsWith("Sending")`))
	s := evalJS[string](t, b, said)
	if !strings.Contains(s, "Queued refund.succeeded as "+given.ID) {
		t.Errorf("resend said %q; want it to name the given-up %s it queued again", s, given.ID)
	}
	if !strings.Contains(s, waiting.ID) || !strings.Contains(s, "after") {
		t.Errorf("resend said %q; want it to say %s, which waited, now goes after it", s, waiting.ID)
	}
	if strings.HasPrefix(s, "Already queued") {
		t.Errorf("resend said %q; events were queued", s)
	}
	if got := operators("/admin/api/orders/" + no + "/webhook"); !slices.Equal(got, []string{who}) {
		t.Errorf("the resends sent operators %q; want one, %q", got, who)
	}
	b.screenshot(t, "console-resend-set-back.png")
	if f := b.pageFaults(); len(f) > 0 {
		t.Errorf("the page logged faults: %v", f)
	}
}
