package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/proxy/console"
)

// Text from outside that the console shows an operator: each would run a
// script if the console ever put it into the page as markup.
const (
	hostileRefundReason = `<img src=x onerror=window.__pwned='refund'></script><script>window.__pwned='refund'</script>`
	hostileMerchantBody = `<html><body><img src=x onerror=window.__pwned='webhook'><script>window.__pwned='webhook'</script></body></html>`
	hostileRejectReason = `"><svg onload=window.__pwned='reject'><a href=javascript:window.__pwned='reject'>x</a>`
)

// TestConsoleShowsHostileTextAsText plants, through the paths they really
// take, text written by outsiders: a refund reason the model wrote (from
// the user's words), the HTML error page of a merchant's webhook endpoint
// (quoted in the delivery's last error), and a reason typed with a
// rejection (in the audit chain). The console shows each as text in its
// tab, and none of it runs, is refused by the page's policy or adds an
// element: the console builds the page with textContent only, and its
// Content-Security-Policy runs no inline script.
func TestConsoleShowsHostileTextAsText(t *testing.T) {
	b := newBrowser(t)
	script := func(body string) scriptRound {
		r := consoleScript(body)
		r.whole = strings.Replace(r.whole, "not what I expected", strings.ReplaceAll(hostileRefundReason, "'", `\u0027`), 1)
		return r
	}
	url, adminURL, a, outcomes := consoleAppWith(t, script, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, hostileMerchantBody)
	})
	ctx := context.Background()
	user := "oUser-console-hostile"
	paid, _ := orderFor(t, url, user, "premium monthly please")
	if d, err := a.sim.Pay(ctx, paid); err != nil || !d.Acked {
		t.Fatalf("pay %s: %+v %v", paid, d, err)
	}
	act := chatAs(t, url, user, "refund "+paid+" please").Get(`paygate.actions.#(type=="refund_proposed")`)
	if act.Get("refund.refund_id").Str == "" {
		t.Fatalf("no refund proposed: %s", act.Raw)
	}
	if status, c := httpCall(t, http.MethodPost, url+act.Get("refund.confirm_url").Str, "Bearer "+e2eClientKey, user); status != http.StatusOK {
		t.Fatalf("confirm refund: %d %s", status, c.Raw)
	}
	held, kind := orderFor(t, url, "oUser-console-hostile-held", "two years of premium please")
	if kind != "approval_required" {
		t.Fatalf("action %s; want approval_required", kind)
	}
	req, err := http.NewRequest(http.MethodPost, adminURL+"/admin/api/approvals/"+held+"/reject",
		strings.NewReader(`{"reason": `+jsonQuote(hostileRejectReason)+`}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+consoleToken)
	req.Header.Set(console.CSRFHeader, "1")
	if resp, body := doRead(t, req); resp.StatusCode != http.StatusOK {
		t.Fatalf("reject: %d %s", resp.StatusCode, body)
	}
	// The merchant's endpoint has refused an event, with its HTML.
	deadline := time.After(15 * time.Second)
	for refused := false; !refused; {
		select {
		case r := <-outcomes:
			refused = r.Outcome == webhook.OutcomeFailed
		case <-deadline:
			t.Fatal("no refused webhook")
		}
	}

	// The rejection reaches the audit chain through the audit worker, after
	// the answer to the reject: the audit tab shows the chain as it is when
	// opened, so it is opened once the chain holds the rejection.
	awaitCondition(t, "the rejection in the audit chain", 15*time.Second, func() bool {
		_, page := httpCall(t, http.MethodGet, adminURL+"/admin/api/audit?limit=50", "Bearer "+consoleToken, "")
		return holdsString(page, hostileRejectReason)
	})

	b.do(t, "sign in", chromedp.Navigate(adminURL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		waitFor("the console", `!document.getElementById("app").hidden`))
	for _, tc := range []struct{ tab, text string }{
		{"refunds", "<img src=x onerror=window.__pwned='refund'></script><script>"}, // cut to WeChat Pay's 80 bytes
		{"webhooks", "window.__pwned='webhook'"},
		{"audit", hostileRejectReason},
		{"orders", paid},
		{"approvals", ""},
		{"cost", ""},
	} {
		b.do(t, "the "+tc.tab+" tab", chromedp.Click(chromedp.ID("tab-"+tc.tab)),
			waitFor(tc.tab+" shown", `!document.getElementById("panel-`+tc.tab+`").hidden && document.getElementById("panel-`+tc.tab+`").textContent.includes(`+jsonQuote(tc.text)+`)`))
		if got := evalJS[string](t, b, `String(window.__pwned) + " " + document.querySelectorAll("#app img, #app script, #app iframe, #app svg:not(.chart), #app a[href]").length`); got != "undefined 0" {
			t.Errorf("%s tab: window.__pwned and planted elements = %s; want undefined 0", tc.tab, got)
		}
	}
	if f := b.pageFaults(); len(f) > 0 {
		t.Errorf("page faults: %v", f)
	}
}

// jsonQuote is s as a JSON (and JavaScript) string literal.
func jsonQuote(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// holdsString reports whether a string anywhere in r contains s.
func holdsString(r gjson.Result, s string) bool {
	if r.Type == gjson.String {
		return strings.Contains(r.Str, s)
	}
	found := false
	if r.IsObject() || r.IsArray() {
		r.ForEach(func(_, v gjson.Result) bool {
			found = holdsString(v, s)
			return !found
		})
	}
	return found
}
