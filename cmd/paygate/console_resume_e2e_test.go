package main

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
)

// TestConsoleSendNowEndsTheWait: the merchant's endpoint answered 429 with
// a Retry-After of ten minutes and is back. The Webhooks tab's pause notice
// offers Send now; it asks first (Cancel sends nothing), and once
// confirmed ends the wait: the order.paid held behind the throttled one
// goes out now, the page says so, and the notice is gone.
func TestConsoleSendNowEndsTheWait(t *testing.T) {
	b := newBrowser(t)
	var answered atomic.Int32
	const noA, noB = "PGSENDNOW00000A", "PGSENDNOW00000B"
	held := holdSignal(webhook.QueuePrefix + noB)
	_, adminURL, a, outcomes := consoleAppWith(t, consoleScript, func(w http.ResponseWriter, r *http.Request) {
		if answered.Add(1) == 1 {
			w.Header().Set("Retry-After", "600")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		}
	}, held.option())
	ctx := context.Background()
	now := time.Now().Add(-time.Minute).Truncate(time.Second)
	paid := func(no, tx string) store.Event {
		t.Helper()
		o := &store.Order{OrderNo: no, Client: "bot", User: "oUser-sendnow", SKU: "premium-monthly", Description: "Premium tier, 1 month",
			Quantity: 1, AmountFen: 4999, Currency: "CNY", PayMethod: "jsapi", Status: store.StatusPaid, TransactionID: tx,
			ClaimKey: "k" + no, Generation: 1, CreatedAt: now, PaidAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := a.store.CreateOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
		ev := webhook.NewEvent(webhook.TypeOrderPaid, o, nil, now)
		if err := a.store.EnqueueEvents(ctx, ev); err != nil {
			t.Fatal(err)
		}
		a.webhooks.relay.Wake()
		return ev
	}
	wait := func(ev store.Event, want string) {
		t.Helper()
		deadline := time.After(15 * time.Second)
		for {
			select {
			case r := <-outcomes:
				if r.EventID == ev.ID && r.Outcome == want {
					return
				}
			case <-deadline:
				t.Fatalf("no %s outcome for %s", want, ev.ID)
			}
		}
	}
	wait(paid(noA, "4200000000000000000000000099"), webhook.OutcomeFailed)
	evB := paid(noB, "4200000000000000000000000100")
	select {
	case <-held.c:
	case <-time.After(15 * time.Second):
		t.Fatal("B's order.paid not held for the wait")
	}
	b.do(t, "the webhooks tab", chromedp.Navigate(adminURL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
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
	wait(evB, webhook.OutcomeDelivered)
	got := evalJS[string](t, b, `document.getElementById("notice").textContent`)
	if !strings.Contains(got, "1 held event") {
		t.Errorf("the page says %q; want it to say 1 held event goes to the merchant now", got)
	}
	if gone := evalJS[bool](t, b, `document.getElementById("webhooks-paused") === null`); !gone {
		t.Errorf("the pause notice is still shown after the wait ended")
	}
	if f := b.pageFaults(); len(f) > 0 {
		t.Errorf("the page logged faults: %v", f)
	}
}
