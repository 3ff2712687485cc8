package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/proxy/console"
	"github.com/paygate/paygate/store"
)

// TestAdminResolvesOrdersInReview: needs_review has no way out but a
// person's (payments/state.go). Through the admin API an operator settles
// an order paid in full under another app id of the merchant as paid, not
// one paid short,
// (the merchant hears order.paid; the audit records who and why) and closes
// an orphan payment once refunded on the merchant platform (it cannot be
// settled as paid: paygate has nothing to deliver). A retry or a second
// operator gets 409 with the order as it stands; of two resolutions at once
// (a double click) exactly one is made; a body that is not a resolution is a 400 that
// changes nothing.
func TestAdminResolvesOrdersInReview(t *testing.T) {
	mainURL, adminURL, a, outcomes := consoleApp(t)
	ctx := context.Background()
	resolve := func(no, body string) (int, gjson.Result) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, adminURL+"/admin/api/orders/"+no+"/resolve", strings.NewReader(body))
		if err != nil {
			t.Error(err)
			return 0, gjson.Result{}
		}
		req.Header.Set("Authorization", "Bearer "+consoleToken)
		req.Header.Set(console.CSRFHeader, "1")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0, gjson.Result{}
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, gjson.ParseBytes(b)
	}
	// pay reports a payment of total fen for out_trade_no no by payer.
	pay := func(no, payer, txid, appID string, total int64) {
		t.Helper()
		tx := wxsim.Transaction{AppID: appID, MchID: a.sim.MchID(), OutTradeNo: no, TransactionID: txid,
			TradeType: "JSAPI", TradeState: "SUCCESS", TradeStateDesc: "支付成功", BankType: "OTHERS",
			SuccessTime: time.Now().Format(time.RFC3339), Payer: &wxsim.Payer{OpenID: payer},
			Amount: wxsim.Amount{Total: total, PayerTotal: total, Currency: "CNY", PayerCurrency: "CNY"}}
		n, err := a.sim.BuildNotification(wxsim.NotificationSpec{EventType: "TRANSACTION.SUCCESS", Summary: "支付成功", OriginalType: "transaction", Resource: tx})
		if err != nil {
			t.Fatal(err)
		}
		if code, err := a.sim.Deliver(ctx, mainURL+"/wechatpay/notify", n); err != nil || code/100 != 2 {
			t.Fatalf("deliver: %d %v", code, err)
		}
		if o, err := a.store.GetOrder(ctx, no); err != nil || o.Status != store.StatusNeedsReview {
			t.Fatalf("after the payment: %+v %v; want needs_review", o, err)
		}
	}
	status := func(no string) store.OrderStatus {
		t.Helper()
		o, err := a.store.GetOrder(ctx, no)
		if err != nil {
			t.Fatal(err)
		}
		return o.Status
	}

	create := func(user string) *store.Order {
		t.Helper()
		res, err := a.payments.CreateOrder(ctx, payments.CreateRequest{Client: "bot", User: user, SKU: "premium-monthly", Quantity: 1})
		if err != nil || res.Order.Status != store.StatusAwaitingPayment {
			t.Fatalf("create: %+v %v", res, err)
		}
		return res.Order
	}

	// Paid with another amount than its price: not to be settled as paid
	// (its amount would say a price was paid that was not).
	short := create("oUser-resolve-short")
	pay(short.OrderNo, short.User, "4200001234"+strings.Repeat("6", 18), a.sim.AppID(), short.AmountFen-1)
	if st, body := resolve(short.OrderNo, `{"status":"paid","reason":"close enough"}`); st != http.StatusConflict ||
		!strings.Contains(body.Get("error").Str, "amount_mismatch") || body.Get("order.status").Str != "needs_review" {
		t.Errorf("settle a short payment as paid: %d %s; want 409 naming amount_mismatch, the order in review", st, body.Raw)
	}

	// Paid in full, under another app id of this merchant.
	o := create("oUser-resolve-appid")
	no := o.OrderNo
	if st, body := resolve(no, `{"status":"paid","reason":"x"}`); st != http.StatusConflict || body.Get("order.status").Str != "awaiting_payment" {
		t.Errorf("resolve an order not in review: %d %s; want 409 with it awaiting_payment", st, body.Raw)
	}
	pay(no, o.User, "4200001234"+strings.Repeat("7", 18), "wx0000000000other", o.AmountFen)
	for _, tc := range []struct{ name, body string }{
		{"no body", ``},
		{"no reason", `{"status":"paid"}`},
		{"a blank reason", `{"status":"paid","reason":"  "}`},
		{"another status", `{"status":"refunded","reason":"refunded on the platform"}`},
		{"no status", `{"reason":"ok"}`},
		{"an unknown member", `{"status":"paid","reason":"ok","force":true}`},
		{"not JSON", `{"status":`},
	} {
		if st, body := resolve(no, tc.body); st != http.StatusBadRequest || body.Get("error").Str == "" {
			t.Errorf("%s: %d %s; want 400 with the reason", tc.name, st, body.Raw)
		}
	}
	if got := status(no); got != store.StatusNeedsReview {
		t.Fatalf("after refused resolutions: %s; want needs_review", got)
	}
	st, body := resolve(no, `{"status":"paid","operator":"alice","reason":"our mini program's second app id"}`)
	if st != http.StatusOK || body.Get("order.status").Str != "paid" || body.Get("order.order_no").Str != no {
		t.Fatalf("settle as paid: %d %s; want 200 with the order paid", st, body.Raw)
	}
	for _, again := range []string{"paid", "closed"} {
		if st, body := resolve(no, `{"status":"`+again+`","reason":"again"}`); st != http.StatusConflict || body.Get("order.status").Str != "paid" {
			t.Errorf("resolve again as %s: %d %s; want 409 with the order paid", again, st, body.Raw)
		}
	}
	rec := auditRecord(t, a, outcomes, no, "order.paid")
	if act := rec.Get("actor"); act.Get("kind").Str != "admin" || act.Get("operator").Str != "alice" || !strings.Contains(act.Get("reason").Str, "second app id") {
		t.Errorf("audit of the settlement %s; want it with the admin actor alice and the reason", rec.Raw)
	}

	// An orphan payment: nothing to deliver, so not paid; closed once refunded.
	const ghost, payer = "PGghostResolve000001", "oUser-resolve-orphan"
	pay(ghost, payer, "4200001234"+strings.Repeat("8", 18), a.sim.AppID(), 777)
	if st, body := resolve(ghost, `{"status":"paid","reason":"looks fine"}`); st != http.StatusConflict || body.Get("order.status").Str != "needs_review" {
		t.Errorf("settle an orphan as paid: %d %s; want 409 with it in review", st, body.Raw)
	}
	// Two closes at once (a double click): one is made, the other is told
	// the outcome.
	var wg sync.WaitGroup
	codes := make([]int, 2)
	finals := make([]string, 2)
	for i := range 2 {
		wg.Go(func() {
			st, body := resolve(ghost, `{"status":"closed","reason":"refunded on the merchant platform"}`)
			codes[i], finals[i] = st, body.Get("order.status").Str
		})
	}
	wg.Wait()
	if codes[0]+codes[1] != http.StatusOK+http.StatusConflict || finals[0] != "closed" || finals[1] != "closed" {
		t.Errorf("two closes at once: %v %v; want one 200 and one 409, both showing it closed", codes, finals)
	}
	if got := status(ghost); got != store.StatusClosed {
		t.Errorf("orphan after resolving: %s; want closed", got)
	}
	if st, _ := resolve("PGnosuchorder0000001", `{"status":"closed","reason":"x"}`); st != http.StatusNotFound {
		t.Errorf("unknown order: %d; want 404", st)
	}
}

// TestConsoleResolvesOrdersInReview: in the console an operator opens an
// orphan payment in review from the order list, is told why settling it as
// paid is refused, and closes it with a reason; the detail and the list then
// show it closed, as the API has it, and the audit records the reason.
func TestConsoleResolvesOrdersInReview(t *testing.T) {
	b := newBrowser(t)
	mainURL, adminURL, a, outcomes := consoleApp(t)
	ctx := context.Background()
	const ghost, payer = "PGghostConsole000001", "oUser-console-orphan"
	tx := wxsim.Transaction{AppID: a.sim.AppID(), MchID: a.sim.MchID(), OutTradeNo: ghost, TransactionID: "4200001234" + strings.Repeat("9", 18),
		TradeType: "JSAPI", TradeState: "SUCCESS", TradeStateDesc: "支付成功", BankType: "OTHERS",
		SuccessTime: time.Now().Format(time.RFC3339), Payer: &wxsim.Payer{OpenID: payer},
		Amount: wxsim.Amount{Total: 777, PayerTotal: 777, Currency: "CNY", PayerCurrency: "CNY"}}
	n, err := a.sim.BuildNotification(wxsim.NotificationSpec{EventType: "TRANSACTION.SUCCESS", Summary: "支付成功", OriginalType: "transaction", Resource: tx})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := a.sim.Deliver(ctx, mainURL+"/wechatpay/notify", n); err != nil || code/100 != 2 {
		t.Fatalf("deliver: %d %v", code, err)
	}

	b.do(t, "sign in", chromedp.Navigate(adminURL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		waitFor("the summary", `document.querySelector("#sum-review .v")?.textContent === "1"`))
	b.do(t, "the order", chromedp.Click(chromedp.CSS(`#tabs [data-tab="orders"]`)),
		chromedp.WaitVisible(chromedp.CSS(row("orders", ghost)+`[data-status="needs_review"]`)),
		chromedp.Click(chromedp.CSS(row("orders", ghost))),
		chromedp.WaitVisible(chromedp.CSS(`button[data-action="resolve"][data-order-no="`+ghost+`"]`)))
	if v := evalJS[string](t, b, `document.querySelector("#resolve-status").value = "paid"`); v != "paid" {
		t.Fatalf("select %q", v)
	}
	b.do(t, "settle as paid", chromedp.SendKeys(chromedp.ID("resolve-reason"), "looks fine"),
		chromedp.Click(chromedp.CSS(`button[data-action="resolve"]`)),
		waitFor("the refusal", `document.querySelector("#resolve-result")?.textContent.startsWith("Not resolved:")`))
	if s := b.text(t, "#resolve-result"); !strings.Contains(s, "no order of") || !strings.Contains(s, "the order is needs review") {
		t.Errorf("refusal %q; want why, with the order still in review", s)
	}
	evalJS[string](t, b, `document.querySelector("#resolve-status").value = "closed"`)
	b.do(t, "close", chromedp.Click(chromedp.CSS(`button[data-action="resolve"]`)),
		waitFor("the outcome", `document.querySelector("#resolve-done")?.textContent === "Resolved: the order is now closed."`),
		chromedp.WaitVisible(chromedp.CSS(row("orders", ghost)+`[data-status="closed"]`)))
	if n := evalJS[int](t, b, `document.querySelectorAll('button[data-action="resolve"]').length`); n != 0 {
		t.Errorf("%d resolve controls on a closed order; want none", n)
	}
	if o, err := a.store.GetOrder(ctx, ghost); err != nil || o.Status != store.StatusClosed {
		t.Errorf("stored %+v %v; want closed", o, err)
	}
	if rec := auditRecord(t, a, outcomes, ghost, "order.closed"); rec.Get("actor.reason").Str != "looks fine" {
		t.Errorf("audit of the close %s; want the reason typed", rec.Raw)
	}
	if f := b.pageFaults(); len(f) > 0 {
		t.Errorf("the page logged faults: %v", f)
	}
}

// TestAdminListsRefuseWhatTheyDoNotRead: a list's query is read whole. A
// parameter a list does not take (a misspelt "status", a filter another
// list has), a parameter given twice and the bounds of limit and before are each a 400 saying what is wrong,
// rather than a list that ignores the filter the operator believes applied
// ("no order needs review" with ?satus=needs_review). (A client the config
// no longer names is a filter still: its orders stay in the store.)
func TestAdminListsRefuseWhatTheyDoNotRead(t *testing.T) {
	_, adminURL, a, _ := consoleApp(t)
	if _, err := a.payments.CreateOrder(context.Background(), payments.CreateRequest{Client: "bot", User: "oUser-lists", SKU: "premium-monthly", Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, query, want string }{
		{"misspelt status", "/admin/api/orders?satus=needs_review", "satus"},
		{"status twice", "/admin/api/orders?status=paid&status=needs_review", "status"},
		{"unknown status", "/admin/api/orders?status=payed", "payed"},
		{"limit 0", "/admin/api/orders?limit=0", "limit"},
		{"limit not a number", "/admin/api/orders?limit=ten", "limit"},
		{"before not a time", "/admin/api/orders?before=yesterday", "before"},
		{"a filter the queue has not", "/admin/api/approvals?user=oUser-lists", "user"},
		{"a filter the refunds have not", "/admin/api/refunds?status=refunded", "status"},
		{"limit twice", "/admin/api/refunds?limit=1&limit=1000", "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, body := httpCall(t, http.MethodGet, adminURL+tc.query, "Bearer "+consoleToken, "")
			if st != http.StatusBadRequest || !strings.Contains(body.Get("error").Str, tc.want) {
				t.Errorf("%s: %d %s; want 400 naming %q", tc.query, st, body.Raw, tc.want)
			}
		})
	}
	for _, q := range []string{"/admin/api/orders?status=awaiting_payment&client=bot&user=oUser-lists&limit=5",
		"/admin/api/approvals?limit=5", "/admin/api/refunds?limit=5&before=" + time.Now().UTC().Format(time.RFC3339)} {
		if st, body := httpCall(t, http.MethodGet, adminURL+q, "Bearer "+consoleToken, ""); st != http.StatusOK {
			t.Errorf("%s: %d %s; want 200", q, st, body.Raw)
		}
	}
}
