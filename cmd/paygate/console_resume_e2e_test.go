package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/paygate/paygate/payments/webhook"
)

// TestConsoleSendNowEndsTheWait: the merchant's endpoint answered 429 with
// a Retry-After of ten minutes and is back. The Webhooks tab's pause notice
// offers Send now; it asks first (Cancel sends nothing), and once
// confirmed ends the wait: the order.paid held behind the throttled one
// goes out now, the page says so, and the notice is gone. The resume
// carries the name the manager signed in with (operator), which its log
// line records.
func TestConsoleSendNowEndsTheWait(t *testing.T) {
	b := newBrowser(t)
	const noA, noB = "PGSENDNOW00000A", "PGSENDNOW00000B"
	p := startPausedRelay(t, "oUser-sendnow", noA, "4200000000000000000000000099", noB, "4200000000000000000000000100")
	a, ctx := p.app, context.Background()
	adminURL, operators := sentPosts(t, a)
	const who = "Wang Fang"
	b.do(t, "the webhooks tab", chromedp.Navigate(adminURL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("signin-operator"), who), chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.ID("app")), chromedp.Click(chromedp.CSS(`#tabs [data-tab="webhooks"]`)),
		chromedp.WaitVisible(chromedp.CSS(row("webhooks", noB))),
		chromedp.Click(chromedp.CSS(`#webhooks-paused [data-action="resume"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#webhooks-paused [data-action="resume-cancel"]`)),
		chromedp.Click(chromedp.CSS(`#webhooks-paused [data-action="resume-cancel"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#webhooks-paused [data-action="resume"]`)))
	if h, err := a.store.OutboxHeads(ctx, webhook.QueuePrefix+noB); err != nil || len(h) != 1 || !h[0].NextAt.After(time.Now().Add(5*time.Minute)) {
		t.Fatalf("after Cancel, B's head %+v (%v); want it still held for the wait", h, err)
	}
	b.do(t, "send now, confirmed",
		chromedp.Click(chromedp.CSS(`#webhooks-paused [data-action="resume"]`)),
		chromedp.Click(chromedp.CSS(`#webhooks-paused [data-action="resume-confirm"]`)),
		waitFor("the outcome said", `!document.getElementById("notice").hidden && document.getElementById("notice").textContent.includes("wait ended")`))
	waitOutcome(t, p.outcomes, p.evB, webhook.OutcomeDelivered)
	got := evalJS[string](t, b, `document.getElementById("notice").textContent`)
	if !strings.Contains(got, "1 held event") {
		t.Errorf("the page says %q; want it to say 1 held event goes to the merchant now", got)
	}
	if got := operators("/admin/api/webhooks/resume"); !slices.Equal(got, []string{who}) {
		t.Errorf("the resumes sent operators %q; want one, %q", got, who)
	}
	if gone := evalJS[bool](t, b, `document.getElementById("webhooks-paused") === null`); !gone {
		t.Errorf("the pause notice is still shown after the wait ended")
	}
	if f := b.pageFaults(); len(f) > 0 {
		t.Errorf("the page logged faults: %v", f)
	}
}
