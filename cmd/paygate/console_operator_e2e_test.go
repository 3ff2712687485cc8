package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
)

// TestConsoleDecisionsNameTheOperator: with one admin token shared by the
// shop's managers, a decision made in the console was audited with its
// request id and remote address only (behind a TLS proxy, the proxy's), so
// who approved an order could not be read from the chain. The console asks
// for the manager's name at sign-in, keeps it in the browser
// (localStorage), shows it in the bar and lets it be changed, and sends it
// as the operator of each approval and rejection: the chain, read through
// GET /admin/api/audit, names the manager of each, the name as it was when
// the decision was made. A name that holds markup and a right-to-left
// override, and is longer than the API takes, is cut to the API's 128
// characters and shown as text, in the bar and in the audit tab, isolated.
// Signed in without a name, the bar flags it and an approval's confirmation
// asks for it, and keeps it (a tab pasted into it made a space, which the
// API takes); a resolution carries it as a decision does.
func TestConsoleDecisionsNameTheOperator(t *testing.T) {
	b := newBrowser(t)
	url, adminURL, a, _ := consoleApp(t)
	approveNo, _ := orderFor(t, url, "oUser-console-yes", "two years of premium please")
	rejectNo, _ := orderFor(t, url, "oUser-console-no", "two years of premium please")
	laterNo, _ := orderFor(t, url, "oUser-console-later", "two years of premium please")
	const first = "Li Wei"
	second := "Zhang Min \u202e<img src=x onerror=window.__pwned=1>" + strings.Repeat("m", 200)
	secondKept := string([]rune(second)[:128]) // the API's bound, in characters
	const why = "bought twice by mistake"
	const third = "Chen Jie"
	// An order in review, which the third manager resolves.
	const reviewNo = "PGREVIEWNAMED01"
	reviewedOrder(t, a, reviewNo, "oUser-console-review-named", "4200000000000000000000000096")

	b.do(t, "sign in with a name", chromedp.Navigate(adminURL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("signin-operator"), first),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.CSS(row("approvals", approveNo))), chromedp.WaitVisible(chromedp.CSS(row("approvals", rejectNo))))
	shown := `[document.getElementById("operator-name").textContent, localStorage.getItem("paygate.console.operator")]`
	if got := evalJS[[]string](t, b, shown); !slices.Equal(got, []string{first, first}) {
		t.Errorf("after sign-in: [bar, stored] = %q; want %q in both", got, first)
	}

	b.screenshot(t, "console-operator.png")

	b.do(t, "approve", chromedp.Click(chromedp.CSS(`button[data-action="approve"][data-order-no="`+approveNo+`"]`)),
		chromedp.Click(chromedp.CSS(`button[data-action="confirm"][data-order-no="`+approveNo+`"]`)),
		waitFor("the approval notice", `document.querySelector("#notice.ok")?.textContent.includes(`+jsString(approveNo)+`)`),
		chromedp.WaitNotPresent(chromedp.CSS(row("approvals", approveNo))))
	// A name is shown isolated (<bdi>) wherever it is: a right-to-left
	// override in one turned the rest of the sentence around.
	isolated := `[...document.querySelectorAll("#notice bdi")].map((e) => e.textContent)`
	if s, got := b.text(t, "#notice"), evalJS[[]string](t, b, isolated); !strings.Contains(s, "records it as "+first+"'s decision") || !slices.Equal(got, []string{first}) {
		t.Errorf("approval notice %q, isolated %q; want it to say it is recorded as %q's", s, got, first)
	}

	// Another manager takes the seat: the name is changed in the bar.
	b.do(t, "change the name", chromedp.Click(chromedp.ID("operator-change")), chromedp.WaitVisible(chromedp.ID("operator-input")),
		chromedp.SetValue(chromedp.ID("operator-input"), second), chromedp.Click(chromedp.ID("operator-save")),
		chromedp.WaitNotVisible(chromedp.ID("operator-input")))
	if got := evalJS[[]string](t, b, shown); !slices.Equal(got, []string{secondKept, secondKept}) {
		t.Errorf("after the change: [bar, stored] = %q; want the new name cut to 128 characters, %q, in both", got, secondKept)
	}
	if got := evalJS[[]string](t, b, isolated); !slices.Equal(got, []string{secondKept}) {
		t.Errorf("the change's notice isolates %q; want the new name, %q", got, secondKept)
	}
	b.do(t, "ask to reject", chromedp.Click(chromedp.CSS(`button[data-action="reject"][data-order-no="`+rejectNo+`"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[data-reason-for="`+rejectNo+`"]`), why))
	// The name changed in the bar while the confirmation is open: it says
	// whose decision it records as the bar now has it, and asks for the
	// name while none is kept, rather than promise the name it opened with.
	confirmSays := `[document.querySelector('tr[data-confirm-for="` + rejectNo + `"]').innerText,
		String(document.querySelector('input[data-operator-for="` + rejectNo + `"]').checkVisibility())]`
	for _, name := range []string{"", first, second} {
		b.do(t, "change the name, the confirmation open", chromedp.Click(chromedp.ID("operator-change")), chromedp.WaitVisible(chromedp.ID("operator-input")))
		evalJS[string](t, b, `document.getElementById("operator-input").value = `+jsString(name))
		b.do(t, "save it", chromedp.Click(chromedp.ID("operator-save")), chromedp.WaitNotVisible(chromedp.ID("operator-input")))
		got := evalJS[[]string](t, b, confirmSays)
		says, asks := strings.Contains(got[0], "Recorded as"), got[1] == "true"
		if name == "" && (says || !asks) || name != "" && (!strings.Contains(got[0], "Recorded as "+string([]rune(name)[:min(128, len([]rune(name)))])+"'s decision") || asks) {
			t.Errorf("the name set to %q in the bar, the open confirmation says %q, asking for the name: %v; want it to say whose decision it records as the bar has it, and ask for the name only while none is kept", name, got[0], asks)
		}
	}
	b.screenshot(t, "console-operator-confirm.png")
	b.do(t, "reject",
		chromedp.Click(chromedp.CSS(`button[data-action="confirm"][data-order-no="`+rejectNo+`"]`)),
		waitFor("the rejection notice", `document.querySelector("#notice.ok")?.textContent.includes(`+jsString(rejectNo)+` + ": the order is now rejected")`),
		chromedp.WaitNotPresent(chromedp.CSS(row("approvals", rejectNo))))

	// Signed out, the sign-in form offers the name kept, to be kept or
	// changed; signed in without one, the bar flags it, and a decision's
	// confirmation asks for it and keeps it.
	b.do(t, "sign out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("token")))
	if got := evalJS[string](t, b, `document.getElementById("signin-operator").value`); got != secondKept {
		t.Errorf("sign-in form's name %q; want the name kept, %q", got, secondKept)
	}
	evalJS[string](t, b, `document.getElementById("signin-operator").value = ""`)
	b.do(t, "sign in without a name", chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.CSS(row("approvals", laterNo))))
	if got := evalJS[string](t, b, `JSON.stringify([document.getElementById("operator").className, document.getElementById("operator").textContent.replace(/\s+/g, " ").trim(), localStorage.getItem("paygate.console.operator")])`); got != `["operator attn","no name set Set your name",null]` {
		t.Errorf("signed in without a name: [bar's class, bar, stored] = %s; want it flagged, and nothing stored", got)
	}
	b.do(t, "approve, naming oneself", chromedp.Click(chromedp.CSS(`button[data-action="approve"][data-order-no="`+laterNo+`"]`)),
		// Pasted from a spreadsheet: a tab, which the API refuses in a
		// name, and white space around it; sent as the name on one line.
		chromedp.SetValue(chromedp.CSS(`input[data-operator-for="`+laterNo+`"]`), " Chen\tJie\u00a0"),
		chromedp.Click(chromedp.CSS(`button[data-action="confirm"][data-order-no="`+laterNo+`"]`)),
		waitFor("the approval notice", `document.querySelector("#notice.ok")?.textContent.includes(`+jsString(laterNo)+`)`),
		chromedp.WaitNotPresent(chromedp.CSS(row("approvals", laterNo))))
	if got := evalJS[[]string](t, b, shown); !slices.Equal(got, []string{third, third}) {
		t.Errorf("after naming oneself in a confirmation: [bar, stored] = %q; want %q in both", got, third)
	}

	// A resolution carries the name too.
	const settled = "refunded on the merchant platform"
	b.do(t, "resolve", chromedp.Click(chromedp.CSS(`#tabs [data-tab="orders"]`)),
		chromedp.Click(chromedp.CSS(row("orders", reviewNo)+" button")), chromedp.WaitVisible(chromedp.ID("resolve-reason")),
		chromedp.SendKeys(chromedp.ID("resolve-reason"), settled), chromedp.Click(chromedp.CSS(`button[data-action="resolve"]`)),
		chromedp.WaitVisible(chromedp.ID("resolve-done")))

	// The chain, as the admin API serves it, names who made each decision.
	if _, err := a.audit.worker.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	status, page := httpCall(t, http.MethodGet, adminURL+"/admin/api/audit?limit=100", "Bearer "+consoleToken, "")
	if status != http.StatusOK {
		t.Fatalf("GET /admin/api/audit: %d %s", status, page.Raw)
	}
	for _, tc := range []struct{ no, action, operator, reason string }{
		{approveNo, "order.approved", first, ""},
		{rejectNo, "order.rejected", secondKept, why},
		{laterNo, "order.approved", third, ""},
		{reviewNo, "order.closed", third, settled},
	} {
		var actor gjson.Result
		for _, r := range page.Get("records").Array() {
			if r.Get("body.order_no").Str == tc.no && r.Get("body.action").Str == tc.action {
				actor = r.Get("body.actor")
			}
		}
		if actor.Get("kind").Str != "admin" || actor.Get("operator").Str != tc.operator || actor.Get("reason").Str != tc.reason ||
			!strings.HasPrefix(actor.Get("request_id").Str, "req_") {
			t.Errorf("%s of %s: actor %s; want kind admin, operator %q, reason %q and the request's id", tc.action, tc.no, actor.Raw, tc.operator, tc.reason)
		}
	}

	// The audit tab shows who decided, as text.
	b.do(t, "audit", chromedp.Click(chromedp.CSS(`#tabs [data-tab="audit"]`)),
		waitFor("the decisions", `document.getElementById("panel-audit").textContent.includes(`+jsString(rejectNo)+`)`))
	by := evalJS[[]string](t, b, `[...new Set([...document.querySelectorAll('#panel-audit td[data-label="By"] bdi')].map((e) => e.textContent))].sort()`)
	if want := []string{third, first, secondKept}; !slices.Equal(by, want) {
		t.Errorf("audit tab's operators, isolated: %q; want %q", by, want)
	}
	if got := evalJS[string](t, b, `String(window.__pwned) + " " + document.querySelectorAll("body img").length`); got != "undefined 0" {
		t.Errorf("window.__pwned and planted images = %s; want undefined 0", got)
	}

	// What outlives the tab is the name alone, never the token.
	if got := evalJS[string](t, b, `JSON.stringify(Object.entries(localStorage))`); strings.Contains(got, consoleToken) {
		t.Errorf("localStorage holds the admin token: %s", got)
	}
	if f := b.pageFaults(); len(f) > 0 {
		t.Errorf("the page logged faults: %v", f)
	}
}

// TestConsoleDecisionsAskTheNameWhenNoneIsKept: signed in without a name,
// a decision's confirmation asks for it (README, GET /). The approval's
// did; a webhook resume, a resend (and the send anyway a refusal brings
// up) and a resolution (an order in review settled: a money decision) went
// out with no operator, and asked nothing. Each asks, as the approval
// does: the field has the focus where a confirmation opens, and the name
// typed in it is sent on one line, cut to 128 characters, and kept (the
// bar shows it). Cleared in the bar, the name is asked for again, by a
// form already open too, in a field left empty (the name sent before is
// not offered to go out again), and a name typed in a field, then given in
// the bar instead, is not sent: the bar's is.
func TestConsoleDecisionsAskTheNameWhenNoneIsKept(t *testing.T) {
	b := newBrowser(t)
	const noA, noB, reviewNo = "PGASKNAME00000A", "PGASKNAME00000B", "PGASKNAMEREVIEW"
	p := startPausedRelay(t, "oUser-askname", noA, "4200000000000000000000000101", noB, "4200000000000000000000000102")
	reviewedOrder(t, p.app, reviewNo, "oUser-askname-review", "4200000000000000000000000103")
	adminURL, operators := sentPosts(t, p.app)
	const first, second = "Chen Jie", "Wang Fang"
	third := "Zhao Lei " + strings.Repeat("z", 200)
	thirdKept := string([]rune(third)[:128])

	// ask types name into the field asking for it for key, when one asks.
	ask := func(key, name string) {
		t.Helper()
		sel := `input[data-operator-for="` + key + `"]`
		if !evalJS[bool](t, b, `document.querySelector(`+jsString(sel)+`)?.checkVisibility() ?? false`) {
			t.Errorf("%s: no name kept, and nothing asks for it", key)
			return
		}
		b.do(t, "name oneself for "+key, chromedp.SetValue(chromedp.CSS(sel), name))
	}
	kept := func(what, want string) {
		t.Helper()
		got := evalJS[[]string](t, b, `[document.getElementById("operator-name").textContent, localStorage.getItem("paygate.console.operator") ?? ""]`)
		if !slices.Equal(got, []string{want, want}) {
			t.Errorf("after %s: [bar, stored] = %q; want %q in both", what, got, want)
		}
	}
	// inBar gives name in the bar ("": clears it).
	inBar := func(name string) {
		t.Helper()
		b.do(t, "change the name in the bar", chromedp.Click(chromedp.ID("operator-change")), chromedp.WaitVisible(chromedp.ID("operator-input")))
		evalJS[string](t, b, `document.getElementById("operator-input").value = `+jsString(name))
		b.do(t, "save it", chromedp.Click(chromedp.ID("operator-save")), chromedp.WaitNotVisible(chromedp.ID("operator-input")))
		kept("giving "+jsString(name)+" in the bar", name)
	}
	forget := func() { t.Helper(); inBar("") }

	b.do(t, "sign in without a name", chromedp.Navigate(adminURL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.ID("app")), chromedp.Click(chromedp.CSS(`#tabs [data-tab="webhooks"]`)),
		chromedp.WaitVisible(chromedp.CSS(row("webhooks", noB))),
		chromedp.Click(chromedp.CSS(`#webhooks-paused [data-action="resume"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#webhooks-paused [data-action="resume-confirm"]`)))
	if got := evalJS[string](t, b, `document.activeElement?.dataset.operatorFor ?? document.activeElement?.tagName ?? ""`); got != "resume" {
		t.Errorf("the resume's confirmation has the focus on %q; want it on the field asking for the name", got)
	}
	// Pasted from a spreadsheet: a tab and white space around it.
	ask("resume", " Chen\tJie\u00a0")
	b.do(t, "send now", chromedp.Click(chromedp.CSS(`#webhooks-paused [data-action="resume-confirm"]`)),
		waitFor("the wait ended", `document.getElementById("notice").textContent.includes("wait ended")`))
	waitOutcome(t, p.outcomes, p.evB, webhook.OutcomeDelivered)
	if got := operators("/admin/api/webhooks/resume"); !slices.Equal(got, []string{first}) {
		t.Errorf("the resumes sent operators %q; want one, %q", got, first)
	}
	kept("naming oneself in the resume's confirmation", first)

	// B's order.paid was delivered: a resend is refused (nothing lost), and
	// sending anyway is asked for again once the name is cleared.
	forget()
	resend := `button[data-action="resend"][data-order-no="` + noB + `"]`
	force := `button[data-action="resend-force"][data-order-no="` + noB + `"]`
	b.do(t, "open B", chromedp.Click(chromedp.CSS(`#tabs [data-tab="orders"]`)),
		chromedp.Click(chromedp.CSS(row("orders", noB)+" button")), chromedp.WaitVisible(chromedp.CSS(resend)))
	ask("resend "+noB, second)
	b.do(t, "resend", chromedp.Click(chromedp.CSS(resend)), chromedp.WaitVisible(chromedp.CSS(force)))
	kept("naming oneself for a resend", second)
	forget()
	// The field asks afresh: the name sent before, which the bar no longer
	// keeps, is not left in it to go out again with a click.
	if v := evalJS[string](t, b, `document.querySelector('input[data-operator-for="resend `+noB+`"]').value`); v != "" {
		t.Errorf("the name cleared in the bar, the resend's field offers %q; want it empty", v)
	}
	ask("resend "+noB, third)
	b.do(t, "send anyway", chromedp.Click(chromedp.CSS(force)),
		waitFor("the queued event", `document.querySelector("#resend-result")?.textContent.startsWith("Queued order.paid as evt_")`))
	if got := operators("/admin/api/orders/" + noB + "/webhook"); !slices.Equal(got, []string{second, thirdKept}) {
		t.Errorf("the resends sent operators %q; want %q, then %q", got, second, thirdKept)
	}
	kept("naming oneself to send anyway", thirdKept)

	// The resolution: the form, open before the name was cleared, asks.
	b.do(t, "open the order in review", chromedp.SetValue(chromedp.ID("orders-search"), reviewNo), chromedp.Click(chromedp.ID("orders-apply")),
		chromedp.Click(chromedp.CSS(row("orders", reviewNo)+" button")), chromedp.WaitVisible(chromedp.ID("resolve-reason")))
	if evalJS[bool](t, b, `document.querySelector('input[data-operator-for="resolve `+reviewNo+`"]').checkVisibility()`) {
		t.Errorf("opened with a name kept, the resolve form asks for one")
	}
	forget()
	ask("resolve "+reviewNo, first)
	b.do(t, "resolve", chromedp.SendKeys(chromedp.ID("resolve-reason"), "refunded on the merchant platform"),
		chromedp.Click(chromedp.CSS(`button[data-action="resolve"]`)), chromedp.WaitVisible(chromedp.ID("resolve-done")))
	if got := operators("/admin/api/orders/" + reviewNo + "/resolve"); !slices.Equal(got, []string{first}) {
		t.Errorf("the resolutions sent operators %q; want one, %q", got, first)
	}
	kept("naming oneself for a resolution", first)

	// A name typed in a field, then given in the bar instead (which hides
	// the field): the decision goes out with the bar's, not the one left
	// in the field.
	forget()
	ask("resend "+reviewNo, "Zhao Lei")
	inBar(second)
	resendReview := `button[data-action="resend"][data-order-no="` + reviewNo + `"]`
	if evalJS[bool](t, b, `document.querySelector('input[data-operator-for="resend `+reviewNo+`"]').checkVisibility()`) {
		t.Errorf("a name kept in the bar, the resend still asks for one")
	}
	b.do(t, "resend, named in the bar", chromedp.Click(chromedp.CSS(resendReview)),
		waitFor("the answer", `!["", "Sending…"].includes(document.querySelector("#resend-result")?.textContent ?? "")`))
	if got := operators("/admin/api/orders/" + reviewNo + "/webhook"); !slices.Equal(got, []string{second}) {
		t.Errorf("named in the bar after typing another name in the field, the resends sent operators %q; want the bar's, %q", got, second)
	}
	kept("a resend named in the bar", second)
	if s := evalJS[string](t, b, unlabelledJS); s != "" {
		t.Errorf("fields without a label: %s", s)
	}
	if f := b.pageFaults(); len(f) > 0 {
		t.Errorf("the page logged faults: %v", f)
	}
}

// TestConsoleDecisionsSendTheNameTypedWhereNothingIsKept: in a browser
// that keeps nothing (storage blocked, a full quota), a rejection, a
// webhook resume, a resolution and a resend each go out with the name
// typed in the field asking for it, not with the none kept, and ask for it
// again. The resend alone had a test of it: each other sending the name
// kept instead survived the tests (mutants of the rejection's, the
// resume's and the resolution's: the operators sent [""]).
func TestConsoleDecisionsSendTheNameTypedWhereNothingIsKept(t *testing.T) {
	b := newBrowser(t)
	const noA, noB, reviewNo = "PGNOKEEP000000A", "PGNOKEEP000000B", "PGNOKEEPREVIEW0"
	p := startPausedRelay(t, "oUser-nokeep", noA, "4200000000000000000000000104", noB, "4200000000000000000000000105")
	reviewedOrder(t, p.app, reviewNo, "oUser-nokeep-review", "4200000000000000000000000106")
	res, err := p.app.payments.CreateOrder(context.Background(), payments.CreateRequest{Client: "bot", User: "oUser-nokeep-held", SKU: "premium-yearly", Quantity: 2})
	if err != nil || res.Order.Status != store.StatusApprovalRequired {
		t.Fatalf("create: %+v %v; want approval_required", res, err)
	}
	held := res.Order.OrderNo
	adminURL, operators := sentPosts(t, p.app)
	b.do(t, "sign in without a name", chromedp.Navigate(adminURL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.CSS(row("approvals", held))))
	evalJS[bool](t, b, `Storage.prototype.setItem = () => { throw new DOMException("refused", "QuotaExceededError"); }; true`)

	answered := `!["", "Sending…"].includes(document.querySelector("#resend-result")?.textContent ?? "")`
	for _, tc := range []struct {
		what, key, name, path string
		open, decide          []chromedp.Action[chromedp.Void]
	}{
		{what: "rejection", key: held, name: "Li Wei", path: "/admin/api/approvals/" + held + "/reject",
			open: []chromedp.Action[chromedp.Void]{chromedp.Click(chromedp.CSS(`button[data-action="reject"][data-order-no="` + held + `"]`))},
			decide: []chromedp.Action[chromedp.Void]{chromedp.Click(chromedp.CSS(`button[data-action="confirm"][data-order-no="` + held + `"]`)),
				waitFor("the rejection", `document.querySelector("#notice.ok")?.textContent.includes(`+jsString(held)+`)`)}},
		{what: "resume", key: "resume", name: "Chen Jie", path: "/admin/api/webhooks/resume",
			open: []chromedp.Action[chromedp.Void]{chromedp.Click(chromedp.CSS(`#tabs [data-tab="webhooks"]`)),
				chromedp.Click(chromedp.CSS(`#webhooks-paused [data-action="resume"]`))},
			decide: []chromedp.Action[chromedp.Void]{chromedp.Click(chromedp.CSS(`#webhooks-paused [data-action="resume-confirm"]`)),
				waitFor("the wait ended", `document.getElementById("notice").textContent.includes("wait ended")`)}},
		{what: "resolution", key: "resolve " + reviewNo, name: "Zhang Min", path: "/admin/api/orders/" + reviewNo + "/resolve",
			open: []chromedp.Action[chromedp.Void]{chromedp.Click(chromedp.CSS(`#tabs [data-tab="orders"]`)),
				chromedp.Click(chromedp.CSS(row("orders", reviewNo) + " button")), chromedp.WaitVisible(chromedp.ID("resolve-reason"))},
			decide: []chromedp.Action[chromedp.Void]{chromedp.SendKeys(chromedp.ID("resolve-reason"), "refunded on the merchant platform"),
				chromedp.Click(chromedp.CSS(`button[data-action="resolve"]`)), chromedp.WaitVisible(chromedp.ID("resolve-done"))}},
		{what: "resend", key: "resend " + reviewNo, name: "Wang Fang", path: "/admin/api/orders/" + reviewNo + "/webhook",
			decide: []chromedp.Action[chromedp.Void]{chromedp.Click(chromedp.CSS(`button[data-action="resend"][data-order-no="` + reviewNo + `"]`)),
				waitFor("the answer", answered)}},
	} {
		field := `input[data-operator-for="` + tc.key + `"]`
		b.do(t, "open the "+tc.what, append(tc.open, chromedp.WaitVisible(chromedp.CSS(field)), chromedp.SetValue(chromedp.CSS(field), tc.name))...)
		b.do(t, tc.what, tc.decide...)
		if got := operators(tc.path); !slices.Equal(got, []string{tc.name}) {
			t.Errorf("with storage refused, the %s sent operators %q; want the name typed, %q", tc.what, got, tc.name)
		}
		got := evalJS[[]string](t, b, `[document.getElementById("operator-name").textContent, localStorage.getItem("paygate.console.operator") ?? ""]`)
		if !slices.Equal(got, []string{"", ""}) {
			t.Errorf("after the %s: [bar, stored] = %q; want nothing kept", tc.what, got)
		}
	}
	if !evalJS[bool](t, b, `document.querySelector('input[data-operator-for="resend `+reviewNo+`"]')?.checkVisibility() ?? false`) {
		t.Errorf("with storage refused, no name is kept, and the resend no longer asks for it")
	}
	if f := b.pageFaults(); len(f) > 0 {
		t.Errorf("the page logged faults: %v", f)
	}
}

// sentPosts serves a's admin listener as consoleApp's does and keeps the
// body of each POST that reaches it, by path: what the console sent with a
// call whose operator nothing else shows (a webhook resume is only logged,
// and a resend's record waits behind the order's webhooks).
func sentPosts(t *testing.T, a *app) (string, func(path string) []string) {
	t.Helper()
	var mu sync.Mutex
	bodies := map[string][]string{}
	admin := a.adminHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(b))
			mu.Lock()
			bodies[r.URL.Path] = append(bodies[r.URL.Path], string(b))
			mu.Unlock()
		}
		admin.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	// operators lists the operator each POST to path named, "" for none.
	operators := func(path string) []string {
		mu.Lock()
		defer mu.Unlock()
		out := []string{}
		for _, b := range bodies[path] {
			out = append(out, gjson.Get(b, "operator").Str)
		}
		return out
	}
	return srv.URL, operators
}
