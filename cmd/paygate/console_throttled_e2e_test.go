package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestConsoleSaysTheMerchantAskedToWait: the merchant's endpoint answers
// 429 with a Retry-After of ten minutes. paygate sends it nothing until
// then; the Webhooks tab says so, naming the answer, rather than leave the
// operator to read "Next try" on every order as paygate's own backoff.
func TestConsoleSaysTheMerchantAskedToWait(t *testing.T) {
	b := newBrowser(t)
	_, adminURL, a, outcomes := consoleAppWith(t, consoleScript, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "600")
		http.Error(w, "slow down", http.StatusTooManyRequests)
	})
	const no = "PGTHROTTLED0001"
	ev := paidOrder(t, a, "oUser-throttled", no, "4200000000000000000000000096", time.Now().Add(-time.Minute).Truncate(time.Second))
	deadline := time.After(15 * time.Second)
	for refused := false; !refused; {
		select {
		case r := <-outcomes:
			refused = r.EventID == ev.ID && r.Status == http.StatusTooManyRequests
		case <-deadline:
			t.Fatalf("no throttled webhook for %s", ev.ID)
		}
	}
	b.do(t, "the webhooks tab", chromedp.Navigate(adminURL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.ID("app")), chromedp.Click(chromedp.CSS(`#tabs [data-tab="webhooks"]`)),
		chromedp.WaitVisible(chromedp.CSS(row("webhooks", no))))
	got := evalJS[string](t, b, `document.getElementById("webhooks-paused")?.textContent ?? ""`)
	if !strings.Contains(got, "asked paygate to wait") || !strings.Contains(got, "429") || !strings.Contains(got, "until") {
		t.Errorf("webhooks tab says %q of the pause; want it said that the endpoint asked to wait (429), and until when", got)
	}
	if f := b.pageFaults(); len(f) > 0 {
		t.Errorf("the page logged faults: %v", f)
	}
}
