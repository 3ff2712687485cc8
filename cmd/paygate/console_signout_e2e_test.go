package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestConsoleSignOutKeepsNoLateAnswer: signing out empties the page of
// everything read with the token ("Nothing read with the old token stays in
// the page"), but a read already on its way when the operator signed out
// (the approval queue, on a slow link) was drawn when it answered: the
// held order, its user's OpenID and what they bought were back in the
// signed-out page, hidden, for whoever used the browser next to read from
// its DOM. An answer to a read made before a sign-out is now dropped.
func TestConsoleSignOutKeepsNoLateAnswer(t *testing.T) {
	mainURL, _, a, _ := consoleApp(t)
	user := "oUser-console-signout-late"
	no, kind := orderFor(t, mainURL, user, "two years please")
	if kind != "approval_required" {
		t.Fatalf("action %s; want approval_required for 998.00", kind)
	}
	// The queue's reads wait at the gate until the operator has signed out.
	gate, seen := make(chan struct{}), make(chan struct{}, 1)
	var open sync.Once
	release := func() { open.Do(func() { close(gate) }) }
	t.Cleanup(release)
	inner := a.adminHandler()
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/admin/api/approvals" {
			select {
			case seen <- struct{}{}:
			default:
			}
			<-gate
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(admin.Close)

	b := newBrowser(t)
	b.do(t, "sign in", chromedp.Navigate(admin.URL+"/"),
		waitFor("the sign-in form", `!document.getElementById("signin").hidden`),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		waitFor("the console", `!document.getElementById("app").hidden`))
	select {
	case <-seen:
	case <-time.After(20 * time.Second):
		t.Fatal("the console did not read the approval queue")
	}
	b.do(t, "sign out", waitFor("the queue's read under way", `document.getElementById("panel-approvals").hasAttribute("aria-busy")`),
		chromedp.Click(chromedp.ID("signout")), waitFor("the sign-in form", `!document.getElementById("signin").hidden`))
	release()
	b.do(t, "the late answer", waitFor("the queue's read answered", `!document.getElementById("panel-approvals").hasAttribute("aria-busy")`))
	if got := evalJS[string](t, b, `document.getElementById("app").textContent`); strings.Contains(got, no) || strings.Contains(got, user) {
		t.Errorf("signed out, the page holds the held order read before: %q", got)
	}
	if f := b.pageFaults(); len(f) > 0 {
		t.Errorf("page faults: %v", f)
	}
}
