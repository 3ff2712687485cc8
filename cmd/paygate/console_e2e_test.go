package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/proxy/console"
	"github.com/paygate/paygate/proxy/h1/h1test"
	"github.com/paygate/paygate/store"
)

const consoleToken = "adm-console-3b8e51d0c2"

var consoleOrderNo = regexp.MustCompile(`PG[0-9A-Za-z]+`)

// consoleScript answers "two years" with create_order for premium-yearly × 2
// (998.00: above the approval threshold), "refund PG…" with request_refund of
// that order, anything else with premium-monthly × 1, and a tool result with
// a line of text; every round reports usage, so the ledger has a cost to
// show.
func consoleScript(body string) scriptRound {
	const usage = `"usage":{"prompt_tokens":1200,"completion_tokens":300,"total_tokens":1500}`
	if gjson.Get(body, "messages.@reverse.0.role").Str == "tool" {
		return scriptRound{whole: `{"id":"chatcmpl-C2","object":"chat.completion","created":1,"model":"openai/gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"Done."},"finish_reason":"stop"}],` + usage + `}`}
	}
	tool, args := "create_order", `{\"sku\":\"premium-monthly\",\"quantity\":1}`
	switch said := gjson.Get(body, "messages.@reverse.0.content").Str; {
	case strings.Contains(said, "two years"):
		args = `{\"sku\":\"premium-yearly\",\"quantity\":2}`
	case strings.Contains(said, "refund"):
		tool, args = "request_refund", `{\"order_no\":\"`+consoleOrderNo.FindString(said)+`\",\"reason\":\"not what I expected\"}`
	}
	return scriptRound{whole: `{"id":"chatcmpl-C1","object":"chat.completion","created":1,"model":"openai/gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"","tool_calls":[{"id":"call_c1","type":"function","function":{"name":"` + tool + `","arguments":"` + args + `"}}]},"finish_reason":"tool_calls"}],` + usage + `}`}
}

// consoleReviewUser's merchant webhooks are refused (503), so the console has
// an undelivered webhook to show.
const consoleReviewUser = "oUser-console-review"

// consoleApp is the binary's application on the WeChat Pay simulator with a
// priced provider (so GET /admin/api/stats has a cost), an admin token, the
// admin listener, and merchant webhooks to an endpoint that acknowledges
// every event but consoleReviewUser's. It returns the main and admin URLs and
// the relay's outcomes.
func consoleApp(t *testing.T, opts ...appOption) (string, string, *app, <-chan webhook.Result) {
	t.Helper()
	return consoleAppWith(t, consoleScript, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), consoleReviewUser) {
			http.Error(w, "merchant backend down", http.StatusServiceUnavailable)
		}
	}, opts...)
}

// consoleAppWith is consoleApp with the provider's script and the
// merchant's webhook endpoint given; opts go to the application.
func consoleAppWith(t *testing.T, script func(body string) scriptRound, endpoint http.HandlerFunc, opts ...appOption) (string, string, *app, <-chan webhook.Result) {
	t.Helper()
	up := newScriptedProvider(t, script)
	merchant := httptest.NewServer(endpoint)
	t.Cleanup(merchant.Close)
	outcomes := make(chan webhook.Result, 100)
	srv := h1test.NewUnstartedServer()
	src := `
clients: [{name: bot, key: ` + e2eClientKey + `}]
admin: {token: ` + consoleToken + `}
webhooks: {url: "` + merchant.URL + `/hooks", secret: ` + testWebhookSecret + `}
store: {path: "` + filepath.Join(t.TempDir(), "paygate.db") + `"}
providers:
  - name: fake
    base_url: "` + up.URL + `/v1"
    api_key: sk-upstream-secret
    prices: {"openai/gpt-4o": {input: "2.50", output: "10.00"}}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
    - {sku: premium-yearly, name: "Premium tier, 1 year", price: "499.00", max_quantity: 2}
`
	cfg, err := config.Parse([]byte(src), "console.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(cfg, io.Discard, "http://"+srv.Listener.Addr().String()+"/wechatpay/notify", append([]appOption{
		withWebhookOptions(func(o *webhook.Options) {
			o.RetryBase = time.Hour // a refused webhook stays pending while the test looks at it
			o.Observe = func(r webhook.Result) {
				select {
				case outcomes <- r:
				default:
				}
			}
		})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	srv.Start(a.server.Handler())
	t.Cleanup(srv.Close)
	admin := httptest.NewServer(a.adminHandler())
	t.Cleanup(admin.Close)
	return srv.URL, admin.URL, a, outcomes
}

// orderFor makes user's order through a chat turn and returns its number and
// the action type paygate reported.
func orderFor(t *testing.T, url, user, content string) (string, string) {
	t.Helper()
	act := chatAs(t, url, user, content).Get("paygate.actions.0")
	no := act.Get("order.order_no").Str
	if no == "" {
		t.Fatalf("%s: no order in %s", user, act.Raw)
	}
	return no, act.Get("type").Str
}

// chromium returns the browser the console test drives: $PAYGATE_CHROMIUM or
// Debian's /usr/bin/chromium. Missing, it fails the test in CI (scripts/
// test.sh installs it) and skips it elsewhere.
func chromium(t *testing.T) string {
	t.Helper()
	p := os.Getenv("PAYGATE_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("headless Chromium is required in CI and %s is missing (scripts/test.sh installs Debian's chromium): %v", p, err)
		}
		t.Skipf("no Chromium at %s (set PAYGATE_CHROMIUM, or apt-get install chromium); CI fails here instead", p)
	}
	return p
}

// browserSession is a headless Chromium tab in a browser context of its own
// (its own cookies, storage and cache, as a fresh profile has), and the
// console messages it logged.
type browserSession struct {
	ctx  context.Context
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

// sharedChromium is the one Chromium process the browser tests open their
// tabs in: starting one takes seconds on a loaded CI host (8 s measured), and
// every console test paid for it. closeSharedChromium (TestMain) ends it.
var sharedChromium struct {
	once   sync.Once
	ctx    context.Context // the browser's first tab, never driven by a test
	err    error
	cancel func()
}

func startSharedChromium(exe string) {
	profile, err := os.MkdirTemp("", "paygate-chromium-")
	if err != nil {
		sharedChromium.err = err
		return
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 1000),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	sharedChromium.ctx = ctx
	sharedChromium.cancel = func() { cancel(); cancelAlloc(); _ = os.RemoveAll(profile) }
	if err := chromedp.Do(ctx); err != nil { // starts the browser, without a timeout (it would end the browser)
		sharedChromium.err = fmt.Errorf("starting %s: %w", exe, err)
	}
}

// closeSharedChromium ends the shared browser, if a test started it.
func closeSharedChromium() {
	if sharedChromium.cancel != nil {
		sharedChromium.cancel()
	}
}

// newBrowser opens a tab for t in the shared Chromium, in a new browser
// context (an incognito-like profile: nothing another test stored is seen),
// closed with both when t ends.
func newBrowser(t *testing.T) *browserSession {
	t.Helper()
	exe := chromium(t)
	sharedChromium.once.Do(func() { startSharedChromium(exe) })
	if sharedChromium.err != nil {
		t.Fatal(sharedChromium.err)
	}
	ctx, cancel := chromedp.NewContext(sharedChromium.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	b := &browserSession{ctx: ctx}
	if err := chromedp.Do(ctx); err != nil { // opens the tab, without a timeout (it would close the tab)
		t.Fatalf("opening a tab in %s: %v", exe, err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.msgs = append(b.msgs, m)
			b.mu.Unlock()
		}
	}()
	return b
}

// do runs steps with a deadline; what names them in the failure.
func (b *browserSession) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v\npage console: %v", what, err, b.console())
	}
}

func (b *browserSession) text(t *testing.T, sel string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func evalJS[T any](t *testing.T, b *browserSession, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// browserWait bounds how long a console test waits on the browser: a step,
// a page's text or script, a predicate polled. Only a failing test waits
// it out; it is generous because CI runs the package's browser tests beside
// every other package's under -race on 2 shared cores, where a slow host
// once took more than 15 s to show the console's first page of 500 orders
// (TestConsoleKeepsWhatItLoadedWhenAnOlderPageFails, which passes in 5 s
// on its own).
const browserWait = 60 * time.Second

// waitFor polls a JavaScript predicate in the page (the browser is the
// external process being waited on).
func waitFor(what, js string) chromedp.Action[chromedp.Void] {
	a := chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(browserWait))
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if _, err := a(ctx, t); err != nil {
			return chromedp.Void{}, fmt.Errorf("waiting for %s: %w", what, err)
		}
		return chromedp.Void{}, nil
	}
}

func (b *browserSession) console() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, 0, len(b.msgs))
	for _, m := range b.msgs {
		out = append(out, m.Source+" "+m.String())
	}
	return out
}

// pageFaults are what the page must never log: an uncaught exception, a
// console.error, a refusal by the Content-Security-Policy. (Refused API
// calls, 401 and 403, are logged as network errors; those are expected.)
func (b *browserSession) pageFaults() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.msgs {
		if m.IsException() || (m.Type == chromedp.ConsoleError && m.Source != "network") || m.Source == "security" {
			out = append(out, m.String())
		}
	}
	return out
}

func (b *browserSession) screenshot(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("PAYGATE_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "paygate-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", p, len(png))
}

func row(panel, no string) string {
	return `#panel-` + panel + ` tr[data-order-no="` + no + `"]`
}

// TestConsoleInBrowser drives the admin console in headless Chromium against
// the binary's application on the WeChat Pay simulator: a cross-site form
// cannot approve, a wrong token is refused, the right one signs in; the
// console lists the two orders waiting for approval, approves one (the
// simulator receives its prepay and the order awaits payment) and rejects the
// other with a reason (no prepay; the chain records the reason); the order
// list highlights the order that needs review, finds an order by number and
// shows its history from the audit chain, with who decided; the chain head
// and the cost chart are there; the token is never in the page.
func TestConsoleInBrowser(t *testing.T) {
	b := newBrowser(t)
	url, adminURL, a, outcomes := consoleApp(t)
	ctx := context.Background()

	// A paid order (cost per transaction), one that needs review (WeChat Pay
	// reports its payment in another app), and two of 998.00 waiting for a
	// manager.
	paid, _ := orderFor(t, url, "oUser-console-paid", "premium monthly please")
	if d, err := a.sim.Pay(ctx, paid); err != nil || !d.Acked {
		t.Fatalf("pay %s: %+v %v", paid, d, err)
	}
	// The paid order's refund, confirmed by its user: in flight at WeChat Pay.
	act := chatAs(t, url, "oUser-console-paid", "refund "+paid+" please").Get(`paygate.actions.#(type=="refund_proposed")`)
	refundID := act.Get("refund.refund_id").Str
	if refundID == "" {
		t.Fatalf("no refund proposed: %s", act.Raw)
	}
	if status, c := httpCall(t, http.MethodPost, url+act.Get("refund.confirm_url").Str, "Bearer "+e2eClientKey, "oUser-console-paid"); status != http.StatusOK {
		t.Fatalf("confirm refund: %d %s", status, c.Raw)
	}
	if n := a.sim.RefundCount(paid); n != 1 {
		t.Fatalf("refunds at the simulator %d; want 1", n)
	}
	review, _ := orderFor(t, url, consoleReviewUser, "premium monthly please")
	tx, _ := a.sim.Order(review)
	tx.AppID = "wx0000000000other"
	tx.TradeState, tx.TradeStateDesc, tx.TransactionID = "SUCCESS", "支付成功", "4200000000000000000000000077"
	tx.SuccessTime = time.Now().Format(time.RFC3339)
	n, err := a.sim.BuildNotification(wxsim.NotificationSpec{EventType: "TRANSACTION.SUCCESS", Summary: "支付成功", OriginalType: "transaction", Resource: tx})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := a.sim.Deliver(ctx, url+"/wechatpay/notify", n); err != nil || code/100 != 2 {
		t.Fatalf("deliver: %d %v", code, err)
	}
	if o, err := a.store.GetOrder(ctx, review); err != nil || o.Status != store.StatusNeedsReview {
		t.Fatalf("order %s: %+v %v; want needs_review", review, o, err)
	}
	// The merchant refused order.needs_review: it waits, with its error.
	deadline := time.After(15 * time.Second)
	for refused := false; !refused; {
		select {
		case r := <-outcomes:
			refused = r.OrderNo == review && r.Outcome == webhook.OutcomeFailed
		case <-deadline:
			t.Fatalf("no refused webhook for %s", review)
		}
	}
	approveNo, kind1 := orderFor(t, url, "oUser-console-yes", "two years of premium please")
	rejectNo, kind2 := orderFor(t, url, "oUser-console-no", "two years of premium please")
	if kind1 != "approval_required" || kind2 != "approval_required" {
		t.Fatalf("actions %s, %s; want approval_required for 998.00", kind1, kind2)
	}
	if _, err := a.audit.worker.Drain(ctx); err != nil {
		t.Fatal(err)
	}

	// A page on another site posts a form to the approve endpoint: refused
	// before the token is even looked at, and nothing is approved.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s/admin/api/approvals/%s/approve"><input name="x" value="1"></form><script>document.getElementById("f").submit()</script>`, adminURL, approveNo)
	}))
	t.Cleanup(evil.Close)
	b.do(t, "cross-site form", chromedp.Navigate(evil.URL),
		waitFor("the admin listener's answer", `location.href.startsWith(`+jsString(adminURL)+`) && document.body && document.body.innerText.includes("X-Paygate-CSRF")`))
	if o, err := a.store.GetOrder(ctx, approveNo); err != nil || o.Status != store.StatusApprovalRequired || a.sim.Prepays(approveNo) != 0 {
		t.Fatalf("after the cross-site form: %+v %v, %d prepays; want approval_required and none", o, err, a.sim.Prepays(approveNo))
	}

	// A wrong token is refused and not kept.
	b.do(t, "open the console", chromedp.Navigate(adminURL+"/"), chromedp.WaitVisible(chromedp.ID("token")))
	if typ := evalJS[string](t, b, `document.getElementById("token").type`); typ != "password" {
		t.Errorf("token input type %q; want password", typ)
	}
	b.do(t, "wrong token", chromedp.SendKeys(chromedp.ID("token"), consoleToken+"-wrong"), chromedp.Click(chromedp.ID("signin-submit")),
		waitFor("the refusal", `document.getElementById("signin-error").textContent.includes("refused")`))
	if got := evalJS[string](t, b, `JSON.stringify([sessionStorage.getItem("paygate.admin.token"), document.getElementById("app").hidden, document.getElementById("token").value])`); got != `[null,true,""]` {
		t.Errorf("after a wrong token: [stored token, app hidden, input] = %s; want nothing stored, the app hidden, the input cleared", got)
	}

	// The right token signs in; both orders wait for approval.
	b.do(t, "sign in", chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.CSS(row("approvals", approveNo))), chromedp.WaitVisible(chromedp.CSS(row("approvals", rejectNo))),
		waitFor("the summary", `document.querySelector("#sum-approvals .v")?.textContent === "2" && document.querySelector("#sum-review .v")?.textContent === "1"`))
	if s := b.text(t, row("approvals", approveNo)); !strings.Contains(s, "998.00 CNY") || !strings.Contains(s, "oUser-console-yes") {
		t.Errorf("approval row %q; want 998.00 CNY for oUser-console-yes", s)
	}
	if s := b.text(t, "#approvals-count"); s != "2" {
		t.Errorf("approvals badge %q; want 2", s)
	}
	// The manager sees until when the order waits: its approval deadline,
	// as the API has it (in the page's time zone, as every time shown).
	_, held := httpCall(t, http.MethodGet, adminURL+"/admin/api/approvals", "Bearer "+consoleToken, "")
	heldUntil := held.Get(`approvals.#(order_no=="` + approveNo + `").expires_at`).Str
	want := evalJS[string](t, b, `(() => { const d = new Date(`+jsString(heldUntil)+`); const p = (x) => String(x).padStart(2, "0");
		return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds()); })()`)
	if s := evalJS[string](t, b, `document.querySelector(`+jsString(row("approvals", approveNo)+` [data-deadline]`)+`)?.textContent ?? ""`); heldUntil == "" || s != want {
		t.Errorf("approval row deadline %q; want %q (expires_at %q)", s, want, heldUntil)
	}
	b.screenshot(t, "console-approvals.png")

	// Approve: two clicks; WeChat Pay receives the prepay at once.
	b.do(t, "approve", chromedp.Click(chromedp.CSS(`button[data-action="approve"][data-order-no="`+approveNo+`"]`)),
		chromedp.Click(chromedp.CSS(`button[data-action="confirm"][data-order-no="`+approveNo+`"]`)),
		waitFor("the approval notice", `document.querySelector("#notice.ok")?.textContent.includes(`+jsString(approveNo)+`)`),
		chromedp.WaitNotPresent(chromedp.CSS(row("approvals", approveNo))))
	if s := b.text(t, "#notice"); !strings.Contains(s, "Approved") || !strings.Contains(s, "awaiting payment") {
		t.Errorf("notice %q; want approved, awaiting payment", s)
	}
	if got := a.sim.Prepays(approveNo); got != 1 {
		t.Errorf("prepays of the approved order %d; want 1", got)
	}
	if o, err := a.store.GetOrder(ctx, approveNo); err != nil || o.Status != store.StatusAwaitingPayment {
		t.Errorf("approved order %+v %v; want awaiting_payment", o, err)
	}

	// Reject the other, with a reason: no prepay, and the reason is audited.
	const why = "bought twice by mistake"
	b.do(t, "reject", chromedp.Click(chromedp.CSS(`button[data-action="reject"][data-order-no="`+rejectNo+`"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[data-reason-for="`+rejectNo+`"]`), why),
		chromedp.Click(chromedp.CSS(`button[data-action="confirm"][data-order-no="`+rejectNo+`"]`)),
		waitFor("the rejection notice", `document.querySelector("#notice.ok")?.textContent.includes(`+jsString(rejectNo)+` + ": the order is now rejected")`),
		chromedp.WaitNotPresent(chromedp.CSS(row("approvals", rejectNo))),
		waitFor("the emptied queue", `document.querySelector("#panel-approvals").textContent.includes("Nothing waits for approval")`))
	if got := a.sim.Prepays(rejectNo); got != 0 {
		t.Errorf("prepays of the rejected order %d; want 0", got)
	}
	if o, err := a.store.GetOrder(ctx, rejectNo); err != nil || o.Status != store.StatusRejected {
		t.Errorf("rejected order %+v %v; want rejected", o, err)
	}
	if _, err := a.audit.worker.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	// The merchant acknowledged the rejection's order.closed, and the relay
	// recorded it (until then a resend finds it pending, below).
	for closed := false; !closed; {
		select {
		case r := <-outcomes:
			closed = r.OrderNo == rejectNo && r.Type == webhook.TypeOrderClosed && r.Outcome == webhook.OutcomeDelivered
		case <-time.After(15 * time.Second):
			t.Fatalf("no delivered order.closed for %s", rejectNo)
		}
	}
	if act := auditRecord(t, a, outcomes, rejectNo, "order.rejected").Get("actor"); act.Get("kind").Str != "admin" || act.Get("reason").Str != why {
		t.Errorf("the rejection's audit actor %s; want kind admin with the reason typed", act.Raw)
	}

	// Orders: the states as they now are, needs_review highlighted.
	b.do(t, "orders", chromedp.Click(chromedp.CSS(`#tabs [data-tab="orders"]`)),
		chromedp.WaitVisible(chromedp.CSS(row("orders", approveNo)+`[data-status="awaiting_payment"]`)),
		chromedp.WaitVisible(chromedp.CSS(row("orders", rejectNo)+`[data-status="rejected"]`)),
		chromedp.WaitVisible(chromedp.CSS(row("orders", paid)+`[data-status="refunding"]`)),
		chromedp.WaitVisible(chromedp.CSS(row("orders", review)+`.needs-review[data-status="needs_review"]`)))
	if s := b.text(t, row("orders", review)); !strings.Contains(s, "appid_mismatch") {
		t.Errorf("needs_review row %q; want its reason (appid_mismatch)", s)
	}
	if n := evalJS[int](t, b, `document.querySelectorAll("#panel-orders tr.needs-review").length`); n != 1 {
		t.Errorf("%d highlighted rows; want 1 (only the order that needs review)", n)
	}
	b.screenshot(t, "console-orders.png")

	// Search by order number, then the order's history from the audit chain.
	b.do(t, "search", chromedp.SendKeys(chromedp.ID("orders-search"), approveNo), chromedp.Click(chromedp.ID("orders-apply")),
		waitFor("one row", `document.querySelectorAll("#panel-orders tbody tr").length === 1`),
		chromedp.WaitVisible(chromedp.CSS(row("orders", approveNo))),
		chromedp.Click(chromedp.CSS(row("orders", approveNo))),
		waitFor("the history", `document.querySelector("#order-history")?.textContent.includes("Searched the whole chain")`))
	hist := b.text(t, "#order-history")
	for _, want := range []string{"order.created", "order.approved", "approval_required →", "awaiting_payment", "admin req_"} {
		if !strings.Contains(hist, want) {
			t.Errorf("history %q lacks %q", hist, want)
		}
	}
	if strings.Contains(hist, rejectNo) || strings.Contains(hist, paid) {
		t.Errorf("history %q names other orders", hist)
	}
	b.screenshot(t, "console-order-history.png")

	// Send an order's state to the merchant again: refused for an order
	// awaiting payment (no event describes it); for the rejected one, whose
	// events the merchant acknowledged, refused with the reason (nothing was
	// lost) and then, sent anyway with the button that refusal brings up,
	// queued as a new event and delivered.
	b.do(t, "resend refused", chromedp.Click(chromedp.CSS(`button[data-action="resend"][data-order-no="`+approveNo+`"]`)),
		waitFor("the refusal", `document.querySelector("#resend-result")?.textContent.startsWith("Not sent:")`))
	if s := b.text(t, "#resend-result"); !strings.Contains(s, "no merchant event describes") {
		t.Errorf("resend of an order awaiting payment: %q; want the reason it was not sent", s)
	}
	if n := evalJS[int](t, b, `document.querySelectorAll('button[data-action="resend-force"]:not([hidden])').length`); n != 0 {
		t.Errorf("%d send-anyway buttons after a refusal force cannot overcome; want none", n)
	}
	b.do(t, "search the rejected order", chromedp.SetValue(chromedp.ID("orders-search"), rejectNo), chromedp.Click(chromedp.ID("orders-apply")),
		chromedp.WaitVisible(chromedp.CSS(row("orders", rejectNo))))
	b.do(t, "open it", chromedp.Click(chromedp.CSS(row("orders", rejectNo))),
		chromedp.WaitVisible(chromedp.CSS(`button[data-action="resend"][data-order-no="`+rejectNo+`"]`)))
	if n := evalJS[int](t, b, `document.querySelectorAll('button[data-action="resend-force"]:not([hidden])').length`); n != 0 {
		t.Errorf("%d send-anyway buttons shown before any refusal; want none", n)
	}
	b.do(t, "resend refused: nothing lost", chromedp.Click(chromedp.CSS(`button[data-action="resend"][data-order-no="`+rejectNo+`"]`)),
		waitFor("the refusal", `document.querySelector("#resend-result")?.textContent.startsWith("Not sent:")`),
		chromedp.WaitVisible(chromedp.CSS(`button[data-action="resend-force"][data-order-no="`+rejectNo+`"]`)))
	if s := b.text(t, "#resend-result"); !strings.Contains(s, "the event announcing the order's current state was not given up") {
		t.Errorf("resend of a delivered order: %q; want the reason it was not sent", s)
	}
	b.screenshot(t, "console-order-resend-refused.png")
	b.do(t, "send anyway", chromedp.Click(chromedp.CSS(`button[data-action="resend-force"][data-order-no="`+rejectNo+`"]`)),
		waitFor("the queued event", `document.querySelector("#resend-result")?.textContent.startsWith("Queued order.closed as evt_")`))
	resent := strings.Fields(strings.TrimPrefix(b.text(t, "#resend-result"), "Queued order.closed as "))[0]
	resent = strings.TrimSuffix(resent, ";")
	for delivered := false; !delivered; {
		select {
		case r := <-outcomes:
			delivered = r.EventID == resent && r.Outcome == webhook.OutcomeDelivered && r.OrderNo == rejectNo
		case <-time.After(15 * time.Second):
			t.Fatalf("the resent event %s was not delivered", resent)
		}
	}
	b.screenshot(t, "console-order-resend.png")

	// The audit chain's head, as the API has it. The resend's record
	// (webhook.resent) is queued behind its event and appended by the
	// audit worker once the relay moved the event, not before the delivery
	// the test saw: read at once, the head could still be the one before
	// it, and the tab, opened a moment later, showed the next.
	if _, err := a.audit.worker.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, head := httpCall(t, http.MethodGet, adminURL+"/admin/api/audit/head", "Bearer "+consoleToken, "")
	b.do(t, "audit", chromedp.Click(chromedp.CSS(`#tabs [data-tab="audit"]`)), chromedp.WaitVisible(chromedp.ID("audit-hash")))
	if seq, hash := b.text(t, "#audit-seq"), b.text(t, "#audit-hash"); seq != head.Get("seq").String() || hash != head.Get("hash").Str || hash == "" {
		t.Errorf("console head %s %s; want %s %s", seq, hash, head.Get("seq"), head.Get("hash").Str)
	}
	if s := b.text(t, "#panel-audit"); !strings.Contains(s, "link up") {
		t.Errorf("audit panel %q; want the linkage check", s)
	}

	// The refund in flight, and webhook delivery: the refused one waits.
	b.do(t, "refunds", chromedp.Click(chromedp.CSS(`#tabs [data-tab="refunds"]`)),
		chromedp.WaitVisible(chromedp.CSS(row("refunds", paid))))
	if s := b.text(t, row("refunds", paid)); !strings.Contains(s, "refunding") || !strings.Contains(s, "49.99 CNY") ||
		!strings.Contains(s, payments.OutRefundNo(refundID)) || !strings.Contains(s, "not what I expected") {
		t.Errorf("refund row %q; want the order refunding, 49.99 CNY in flight as %s with its reason", s, payments.OutRefundNo(refundID))
	}
	b.screenshot(t, "console-refunds.png")
	b.do(t, "webhooks", chromedp.Click(chromedp.CSS(`#tabs [data-tab="webhooks"]`)),
		chromedp.WaitVisible(chromedp.CSS(row("webhooks", review))))
	if s := b.text(t, row("webhooks", review)); !strings.Contains(s, "order.needs_review") || !strings.Contains(s, "status 503") || !strings.Contains(s, "merchant backend down") {
		t.Errorf("undelivered webhook row %q; want order.needs_review refused with 503", s)
	}
	if s := b.text(t, "#panel-webhooks"); !strings.Contains(s, "/hooks") || strings.Contains(s, testWebhookSecret) {
		t.Errorf("webhooks panel %q; want the endpoint, never the secret", s)
	}
	// Only that one was refused (another may still be on its way, unrefused).
	if n := evalJS[int](t, b, `document.querySelectorAll("#panel-webhooks tbody tr td .error").length`); n != 1 {
		t.Errorf("%d refused webhooks shown; want 1 (the merchant acknowledged every other event)", n)
	}
	b.screenshot(t, "console-webhooks.png")

	// Cost: the chart has the hour of the paid order (once the ledger's
	// writer has counted it: the notification does not wait for that).
	a.ledger.Flush()
	_, stats := httpCall(t, http.MethodGet, adminURL+"/admin/api/stats", "Bearer "+consoleToken, "")
	cpt := stats.Get("cost_per_transaction").Str
	if cpt == "" {
		t.Fatalf("stats %s; want a cost per transaction after a paid order", stats.Raw)
	}
	b.do(t, "cost", chromedp.Click(chromedp.CSS(`#tabs [data-tab="cost"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#cost-chart svg circle`)))
	if s := b.text(t, "#panel-cost"); !strings.Contains(s, cpt) || !strings.Contains(s, "openai/gpt-4o") {
		t.Errorf("cost panel %q; want %s and the model", s, cpt)
	}
	if s := b.text(t, "#sum-cost .v"); s != cpt {
		t.Errorf("summary cost per transaction %q; want %s", s, cpt)
	}
	b.screenshot(t, "console-cost.png")

	// The token is in sessionStorage only: not in the page, the URL or a cookie.
	leak := evalJS[string](t, b, `[document.documentElement.outerHTML, location.href, document.cookie, document.getElementById("token").value].join("\n")`)
	if strings.Contains(leak, consoleToken) {
		t.Errorf("the admin token is in the page, its URL or a cookie")
	}
	if got := evalJS[string](t, b, `sessionStorage.getItem("paygate.admin.token")`); got != consoleToken {
		t.Errorf("sessionStorage token %q; want the signed-in token", got)
	}
	// Signing out forgets it and empties the panels.
	b.do(t, "sign out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("token")))
	if got := evalJS[string](t, b, `JSON.stringify([sessionStorage.getItem("paygate.admin.token"), document.querySelector("#panel-orders").textContent])`); got != `[null,""]` {
		t.Errorf("after sign out: %s; want no token and empty panels", got)
	}
	if f := b.pageFaults(); len(f) > 0 {
		t.Errorf("the page logged faults: %v", f)
	}
}

// TestConsoleReadsEveryPage: the approval queue and the refunds are paged
// (next_before). The console counts and lists every held order, past the
// first page of 1000, the oldest (the nearest its deadline) included, counts
// every order in review past the first page too, and
// offers the refunds behind the first page of 200, where a refund still in
// flight behind newer finished ones lies.
func TestConsoleReadsEveryPage(t *testing.T) {
	b := newBrowser(t)
	_, adminURL, a, _ := consoleApp(t, withoutStoreSync(), // thousands of orders, not their durability
		// The refund in flight below has no refund at WeChat Pay: a sweep
		// after the one at start sent it to review, in a run that took
		// past the default minute (needs review 1002, no refunding row).
		withConfig(func(c *config.Config) { c.Payments.Reconcile.SweepInterval = config.Duration(24 * time.Hour) }))
	ctx := context.Background()
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	mk := func(no string, st store.OrderStatus, at time.Time, refunded int64) {
		o := &store.Order{OrderNo: no, Client: "bot", User: "oUser-" + no, SKU: "premium-yearly", Description: "Premium tier, 1 year",
			Quantity: 2, AmountFen: 99800, Currency: "CNY", PayMethod: "jsapi", Status: st, RefundedFen: refunded,
			ClaimKey: "k" + no, Generation: 1, CreatedAt: at, ExpiresAt: base.Add(48 * time.Hour)}
		if err := a.store.CreateOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	const held, refunded = 1001, 201
	for i := range held {
		mk(fmt.Sprintf("PGHELDMANY%04d", i), store.StatusApprovalRequired, base.Add(time.Duration(i)*time.Millisecond), 0)
	}
	mk("PGRFNDMANYFLY", store.StatusRefunding, base, 0) // the oldest
	for i := range refunded - 1 {
		mk(fmt.Sprintf("PGRFNDMANY%04d", i), store.StatusRefunded, base.Add(time.Duration(i+1)*time.Millisecond), 99800)
	}
	// As many orders in review, for the summary's count of them.
	for i := range held {
		mk(fmt.Sprintf("PGREVWMANY%04d", i), store.StatusNeedsReview, base.Add(time.Duration(i)*time.Millisecond), 0)
	}
	oldest := "PGHELDMANY0000"

	b.do(t, "sign in", chromedp.Navigate(adminURL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.CSS(row("approvals", oldest))),
		waitFor("the summary", `document.querySelector("#sum-approvals .v")?.textContent === "`+fmt.Sprint(held)+`"`))
	if s := b.text(t, "#sum-review .v"); s != fmt.Sprint(held) {
		t.Errorf("needs review card %q; want %d", s, held)
	}
	if n := evalJS[int](t, b, `document.querySelectorAll("#panel-approvals tbody tr").length`); n != held {
		t.Errorf("%d held orders listed; want all %d", n, held)
	}
	if s := b.text(t, "#approvals-count"); s != fmt.Sprint(held) {
		t.Errorf("approvals badge %q; want %d", s, held)
	}

	b.do(t, "refunds", chromedp.Click(chromedp.CSS(`#tabs [data-tab="refunds"]`)),
		chromedp.WaitVisible(chromedp.CSS(row("refunds", "PGRFNDMANY0199"))), chromedp.WaitVisible(chromedp.ID("refunds-older")))
	if n := evalJS[int](t, b, `document.querySelectorAll("#panel-refunds tbody tr").length`); n != 200 {
		t.Errorf("%d refunds on the first page; want 200", n)
	}
	b.do(t, "older refunds", chromedp.Click(chromedp.ID("refunds-older")),
		chromedp.WaitVisible(chromedp.CSS(row("refunds", "PGRFNDMANYFLY"))), chromedp.WaitNotPresent(chromedp.ID("refunds-older")))
	if n := evalJS[int](t, b, `document.querySelectorAll("#panel-refunds tbody tr").length`); n != refunded {
		t.Errorf("%d refunds after loading the older ones; want all %d", n, refunded)
	}
	if s := b.text(t, row("refunds", "PGRFNDMANYFLY")); !strings.Contains(s, "refunding") {
		t.Errorf("the refund in flight: %q; want it refunding", s)
	}
	if f := b.pageFaults(); len(f) > 0 {
		t.Errorf("the page logged faults: %v", f)
	}
}

func jsString(s string) string { return fmt.Sprintf("%q", s) }

// TestConsoleRefusesWrongTokenAndCrossSite: through the admin listener, a
// wrong token gets 401; a state-changing call without the CSRF header, from
// another origin, or that the browser marks cross-site gets 403 and changes
// nothing; the console's own call (header, own origin) goes through. The page
// itself is served without a token and holds no data.
func TestConsoleRefusesWrongTokenAndCrossSite(t *testing.T) {
	url, adminURL, a, _ := consoleApp(t)
	no, kind := orderFor(t, url, "oUser-console-csrf", "two years of premium please")
	if kind != "approval_required" {
		t.Fatalf("action %s; want approval_required", kind)
	}
	approve := "/admin/api/approvals/" + no + "/approve"
	tests := []struct {
		name, method, path, token string
		headers                   map[string]string
		want                      int
	}{
		{name: "wrong token, read", method: "GET", path: "/admin/api/approvals", token: consoleToken + "x", want: 401},
		{name: "wrong token, with the CSRF header", method: "POST", path: approve, token: "wrong", headers: map[string]string{console.CSRFHeader: "1"}, want: 401},
		{name: "no CSRF header", method: "POST", path: approve, token: consoleToken, want: 403},
		{name: "no CSRF header, own origin", method: "POST", path: approve, token: consoleToken, headers: map[string]string{"Origin": adminURL}, want: 403},
		{name: "another site's origin", method: "POST", path: approve, token: consoleToken, headers: map[string]string{console.CSRFHeader: "1", "Origin": "https://evil.example"}, want: 403},
		{name: "another port of this host", method: "POST", path: approve, token: consoleToken, headers: map[string]string{console.CSRFHeader: "1", "Origin": strings.Replace(adminURL, "127.0.0.1:", "127.0.0.1:1", 1)}, want: 403},
		{name: "browser says cross-site", method: "POST", path: approve, token: consoleToken, headers: map[string]string{console.CSRFHeader: "1", "Sec-Fetch-Site": "cross-site"}, want: 403},
		{name: "reject, no CSRF header", method: "POST", path: "/admin/api/approvals/" + no + "/reject", token: consoleToken, want: 403},
		{name: "erase texts, no CSRF header", method: "DELETE", path: "/admin/api/audit/texts/oUser-console-csrf", token: consoleToken, want: 403},
		{name: "erase texts from another site", method: "DELETE", path: "/admin/api/audit/texts/oUser-console-csrf", token: consoleToken, headers: map[string]string{console.CSRFHeader: "1", "Origin": "https://evil.example"}, want: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{"Authorization": "Bearer " + tt.token}
			maps.Copy(h, tt.headers)
			resp, body := adminDo(t, tt.method, adminURL+tt.path, h)
			if resp.StatusCode != tt.want || gjson.GetBytes(body, "error").Str == "" {
				t.Errorf("%s %s: %d %s; want %d with an error", tt.method, tt.path, resp.StatusCode, body, tt.want)
			}
			if o, err := a.store.GetOrder(context.Background(), no); err != nil || o.Status != store.StatusApprovalRequired || a.sim.Prepays(no) != 0 {
				t.Fatalf("order after a refused call: %+v %v, %d prepays; want approval_required, none", o, err, a.sim.Prepays(no))
			}
		})
	}

	// The page needs no token and carries no data; its API calls do.
	resp, err := http.Get(adminURL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), `type="password"`) || strings.Contains(string(page), no) {
		t.Errorf("GET /: %d; want the sign-in page without order data", resp.StatusCode)
	}
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("GET / CSP %q; want framing refused", resp.Header.Get("Content-Security-Policy"))
	}

	// The console's own call: header and own origin, as the browser sends it.
	req, _ := http.NewRequest(http.MethodPost, adminURL+approve, nil)
	req.Header.Set("Authorization", "Bearer "+consoleToken)
	req.Header.Set(console.CSRFHeader, "1")
	req.Header.Set("Origin", adminURL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || gjson.GetBytes(body, "order.status").Str != "awaiting_payment" || a.sim.Prepays(no) != 1 {
		t.Errorf("same-origin approve: %d %s, %d prepays; want 200 awaiting_payment and one prepay", resp.StatusCode, body, a.sim.Prepays(no))
	}
}
