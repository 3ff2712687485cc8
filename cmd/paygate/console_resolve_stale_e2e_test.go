package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/paygate/paygate/proxy/console"
	"github.com/paygate/paygate/store"
)

// TestConsoleSaysWhatAResolutionFound: an operator has an order in review
// open in the console while another operator resolves it. Resolving it
// here says that it was already taken out of review, what it is now and
// that nothing changed (it said "Not resolved: order is not in review: PG…
// is closed"), and the detail and the list show the order as it now is,
// not as still in review with a Resolve button.
func TestConsoleSaysWhatAResolutionFound(t *testing.T) {
	b := newBrowser(t)
	_, adminURL, a, _ := consoleApp(t)
	const no = "PGREVIEWSTALE01"
	reviewedOrder(t, a, no, "oUser-stale", "4200000000000000000000000099")
	b.do(t, "sign in", chromedp.Navigate(adminURL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.ID("app")))
	b.do(t, "open the order", chromedp.Click(chromedp.CSS(`#tabs [data-tab="orders"]`)),
		chromedp.Click(chromedp.CSS(row("orders", no)+" button")), chromedp.WaitVisible(chromedp.ID("resolve-reason")))

	// Another operator resolves it meanwhile.
	req, _ := http.NewRequest(http.MethodPost, adminURL+"/admin/api/orders/"+no+"/resolve", strings.NewReader(`{"status":"closed","reason":"refunded on the merchant platform"}`))
	req.Header.Set("Authorization", "Bearer "+consoleToken)
	req.Header.Set(console.CSRFHeader, "1")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("resolve elsewhere: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	b.do(t, "resolve here", chromedp.SendKeys(chromedp.ID("resolve-reason"), "paid in another app"),
		chromedp.Click(chromedp.CSS(`button[data-action="resolve"]`)),
		waitFor("the outcome", `document.getElementById("resolve-done") !== null || document.getElementById("resolve-result")?.textContent.startsWith("Not resolved")`))
	got := evalJS[string](t, b, `document.getElementById("resolve-done")?.textContent ?? document.getElementById("resolve-result")?.textContent ?? ""`)
	for _, w := range []string{"already", "closed now", "nothing changed"} {
		if !strings.Contains(got, w) {
			t.Errorf("outcome %q lacks %q", got, w)
		}
	}
	if strings.Contains(got, "not in review:") {
		t.Errorf("outcome %q is the API's words, not what happened", got)
	}
	b.do(t, "the order as it is", waitFor("closed in the list", `document.querySelector(`+jsString(row("orders", no))+`)?.dataset.status === "closed"`),
		chromedp.WaitNotPresent(chromedp.CSS(`button[data-action="resolve"]`)))
	if o, err := a.store.GetOrder(context.Background(), no); err != nil || o.Status != store.StatusClosed {
		t.Errorf("order %+v %v; want closed (by the first resolution)", o, err)
	}
	if f := b.pageFaults(); len(f) > 0 {
		t.Errorf("the page logged faults: %v", f)
	}
}

// reviewedOrder puts an order of user's in review in a's store, as WeChat
// Pay's report of its payment (transaction) to another app leaves one: for
// a test that resolves it in the console.
func reviewedOrder(t *testing.T, a *app, no, user, transaction string) {
	t.Helper()
	at := time.Now().Add(-time.Minute).Truncate(time.Second)
	if err := a.store.CreateOrder(context.Background(), &store.Order{OrderNo: no, Client: "bot", User: user, SKU: "premium-monthly",
		Description: "Premium tier, 1 month", Quantity: 1, AmountFen: 4999, Currency: "CNY", PayMethod: "jsapi", Status: store.StatusNeedsReview,
		TransactionID: transaction, ReviewReason: "appid_mismatch: wechat pay says appid wx0000000000other",
		ClaimKey: "k" + no, Generation: 1, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
}
