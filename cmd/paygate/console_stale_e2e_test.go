package main

import (
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/paygate/paygate/proxy/console"
)

// TestConsoleApprovalsStayCurrent: a manager leaves the approvals tab open
// (on a phone, the browser in the background) while another manager decides
// and new orders come in. When the page is back in view, and at each of its
// periodic refreshes, the queue shows what waits now: the order decided
// elsewhere gone, the new one there (only the count in the badge changed,
// and the list kept the decided order's buttons and never showed the new
// one until Refresh was clicked). A confirmation the manager has open is
// not swept away under them.
func TestConsoleApprovalsStayCurrent(t *testing.T) {
	b := newBrowser(t)
	url, adminURL, _, _ := consoleApp(t)
	first, _ := orderFor(t, url, "oUser-console-one", "two years of premium please")
	b.do(t, "sign in", chromedp.Navigate(adminURL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.CSS(row("approvals", first))))

	// Behind the page's back: another manager approves the first, a user
	// asks for a second.
	resp, body := adminDo(t, http.MethodPost, adminURL+"/admin/api/approvals/"+first+"/approve",
		map[string]string{"Authorization": "Bearer " + consoleToken, console.CSRFHeader: "1"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("approve elsewhere: %d %s", resp.StatusCode, body)
	}
	second, _ := orderFor(t, url, "oUser-console-two", "two years of premium please")

	// The browser brings the page back into view.
	const backInView = `document.dispatchEvent(new Event("visibilitychange")); true`
	evalJS[bool](t, b, backInView)
	b.do(t, "the queue as it is now", chromedp.WaitVisible(chromedp.CSS(row("approvals", second))),
		chromedp.WaitNotPresent(chromedp.CSS(row("approvals", first))),
		waitFor("the badge", `document.getElementById("approvals-count").textContent === "1"`))

	// A confirmation open: a third order arrives; the badge counts it, the
	// open confirmation stays.
	b.do(t, "ask to approve", chromedp.Click(chromedp.CSS(`button[data-action="approve"][data-order-no="`+second+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr.confirm[data-confirm-for="`+second+`"]`)))
	third, _ := orderFor(t, url, "oUser-console-three", "two years of premium please")
	evalJS[bool](t, b, backInView)
	b.do(t, "the badge", waitFor("2", `document.getElementById("approvals-count").textContent === "2"`))
	if n := evalJS[int](t, b, `document.querySelectorAll('tr.confirm[data-confirm-for="`+second+`"]').length`); n != 1 {
		t.Fatalf("the open confirmation was swept away by a refresh (%d rows)", n)
	}
	// Cancelled, the next refresh shows the third.
	b.do(t, "cancel", chromedp.Click(chromedp.CSS(`tr.confirm button[data-action="cancel"]`)))
	evalJS[bool](t, b, backInView)
	b.do(t, "the third order", chromedp.WaitVisible(chromedp.CSS(row("approvals", third))), chromedp.WaitVisible(chromedp.CSS(row("approvals", second))))
	if f := b.pageFaults(); len(f) > 0 {
		t.Errorf("the page logged faults: %v", f)
	}
}
