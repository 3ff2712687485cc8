package main

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

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

// TestConsoleApprovalsNotRedrawnFromBeforeADecision: on a slow link a
// periodic refresh read the queue, then the manager approved an order from
// it before that answer came. The late answer, older than the decision,
// must not put the approved order back in the queue with its Approve and
// Reject buttons (it did, and stayed until the next refresh 20 s later: a
// decided order offered for a decision again, and a badge counting it).
func TestConsoleApprovalsNotRedrawnFromBeforeADecision(t *testing.T) {
	b := newBrowser(t)
	url, _, a, _ := consoleApp(t)
	no, _ := orderFor(t, url, "oUser-console-late-queue", "two years of premium please")

	// The admin listener; once armed, the next read of the queue is
	// answered as it stood when it was read, but only when released.
	var (
		mu      sync.Mutex
		armed   bool
		held    = make(chan struct{}, 1)
		release = make(chan struct{})
	)
	admin := a.adminHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hold := armed && r.URL.Path == "/admin/api/approvals"
		if hold {
			armed = false
		}
		mu.Unlock()
		if !hold {
			admin.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		admin.ServeHTTP(rec, r) // read now, answered late
		held <- struct{}{}
		<-release
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})

	b.do(t, "sign in", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.CSS(row("approvals", no))))
	evalJS[bool](t, b, trackFetchJS)

	// A refresh reads the queue (the order in it); its answer is slow.
	mu.Lock()
	armed = true
	mu.Unlock()
	evalJS[bool](t, b, `document.dispatchEvent(new Event("visibilitychange")); true`)
	select {
	case <-held:
	case <-time.After(15 * time.Second):
		t.Fatal("the refresh never read the queue")
	}

	// Meanwhile the manager approves it.
	b.do(t, "approve", chromedp.Click(chromedp.CSS(`button[data-action="approve"][data-order-no="`+no+`"]`)),
		chromedp.Click(chromedp.CSS(`button[data-action="confirm"][data-order-no="`+no+`"]`)),
		waitFor("the notice", `document.getElementById("notice").textContent.includes("Approved `+no+`")`),
		chromedp.WaitNotPresent(chromedp.CSS(row("approvals", no))),
		waitFor("only the held read in flight", `window.__inflight === 1`))

	// The refresh's answer, from before the approval, comes.
	close(release)
	b.do(t, "every answer acted on", waitFor("no call in flight", `window.__inflight === 0`))
	if n := evalJS[int](t, b, `document.querySelectorAll('`+row("approvals", no)+`').length`); n != 0 {
		t.Errorf("the approved order is back in the queue: a refresh's answer read before the approval was drawn after it")
	}
	if got := evalJS[string](t, b, `document.getElementById("approvals-count").textContent`); got != "" {
		t.Errorf("badge = %q after the only held order was approved; want none", got)
	}
	if f := b.pageFaults(); len(f) > 0 {
		t.Errorf("the page logged faults: %v", f)
	}
}

// TestConsolePeriodicRefreshOutlivesAHungRead: a read of the summary that
// never answers (a phone's or laptop's network changed under a kept-alive
// connection: fetch has no timeout, and the browser waits on the dead
// connection for minutes) must not stop the periodic refresh. It did: the
// refresh started no read while one was in flight, so a new order waiting
// for approval never showed, nor the badge counting it, until the manager
// clicked something. The page's 20 s period is shortened to 100 ms here
// (setInterval wrapped before sign-in), so the refreshes come at once.
func TestConsolePeriodicRefreshOutlivesAHungRead(t *testing.T) {
	b := newBrowser(t)
	url, _, a, _ := consoleApp(t)
	first, _ := orderFor(t, url, "oUser-console-hung-one", "two years of premium please")

	// The admin listener; once armed, the next read of the queue never
	// answers (until the test ends).
	var (
		mu      sync.Mutex
		armed   bool
		held    = make(chan struct{}, 1)
		release = make(chan struct{})
	)
	admin := a.adminHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hold := armed && r.URL.Path == "/admin/api/approvals"
		if hold {
			armed = false
		}
		mu.Unlock()
		if hold {
			held <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		admin.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	b.do(t, "open", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("token")))
	evalJS[bool](t, b, `(() => {
		const si = window.setInterval;
		window.setInterval = (f, ms, ...rest) => si(f, ms === 20000 ? 100 : ms, ...rest);
		return true;
	})()`)
	b.do(t, "sign in", chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.CSS(row("approvals", first))))

	// A periodic refresh's read of the queue hangs.
	mu.Lock()
	armed = true
	mu.Unlock()
	select {
	case <-held:
	case <-time.After(15 * time.Second):
		t.Fatal("no periodic refresh read the queue")
	}

	// A user asks for a second order: the refreshes that follow show it.
	second, _ := orderFor(t, url, "oUser-console-hung-two", "two years of premium please")
	b.do(t, "the new order shown by a later refresh", chromedp.WaitVisible(chromedp.CSS(row("approvals", second))),
		waitFor("the badge", `document.getElementById("approvals-count").textContent === "2"`))
	if f := b.pageFaults(); len(f) > 0 {
		t.Errorf("the page logged faults: %v", f)
	}
}
