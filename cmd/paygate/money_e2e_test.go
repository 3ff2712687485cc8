package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/proxy"
	"github.com/paygate/paygate/proxy/console"
	"github.com/paygate/paygate/store"
)

const testAdminToken = "adm-e2e-7f3c1a9b5d"

// moneyScript answers a user message with one call of tool (arguments
// args()) and the tool result with a line of text, non-stream.
func moneyScript(tool string, args func() string) func(body string) scriptRound {
	return func(body string) scriptRound {
		if gjson.Get(body, "messages.@reverse.0.role").Str == "tool" {
			return scriptRound{whole: `{"id":"chatcmpl-M2","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Done."},"finish_reason":"stop"}]}`}
		}
		a := strings.ReplaceAll(args(), `"`, `\"`)
		return scriptRound{whole: `{"id":"chatcmpl-M1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"","tool_calls":[{"id":"call_m1","type":"function","function":{"name":"` + tool + `","arguments":"` + a + `"}}]},"finish_reason":"tool_calls"}]}`}
	}
}

// chatAs sends a non-stream chat turn for user with the e2e client key.
func chatAs(t *testing.T, url, user, content string) gjson.Result {
	t.Helper()
	return chatWith(t, url, e2eClientKey, user, content)
}

// httpCall makes one request with the given Authorization and OpenID (either
// may be empty) and returns the status and body.
func httpCall(t *testing.T, method, url, auth, user string) (int, gjson.Result) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if user != "" {
		req.Header.Set("X-WeChat-OpenID", user)
	}
	if method != http.MethodGet && method != http.MethodHead {
		req.Header.Set(console.CSRFHeader, "1") // the admin listener's CSRF guard
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: content type %q; want application/json (%s)", method, url, ct, b)
	}
	return resp.StatusCode, gjson.ParseBytes(b)
}

// moneyApp is paymentApp with an admin listener and the given rules.
func moneyApp(t *testing.T, providerURL, extra string) (string, string, *app) {
	t.Helper()
	url, a := paymentApp(t, providerURL, extra+"admin: {token: "+testAdminToken+"}\n")
	admin := httptest.NewServer(a.adminHandler())
	t.Cleanup(admin.Close)
	return url, admin.URL, a
}

func TestApprovalThroughHTTP(t *testing.T) {
	var args string
	up := newScriptedProvider(t, moneyScript("create_order", func() string { return args }))
	url, adminURL, a := moneyApp(t, up.URL, "")
	admin := "Bearer " + testAdminToken
	tests := []struct {
		name       string
		user       string
		approve    bool
		wantStatus string
		wantPrepay int
	}{
		{name: "approved", user: "oUser-approval-yes", approve: true, wantStatus: "awaiting_payment", wantPrepay: 1},
		{name: "rejected", user: "oUser-approval-no", approve: false, wantStatus: "rejected", wantPrepay: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// 2 x 499.00 = 998.00, above the default 500.00.
			args = `{"sku":"premium-yearly","quantity":2}`
			ans := chatAs(t, url, tt.user, "two years of premium please")
			act := ans.Get("paygate.actions.0")
			no := act.Get("order.order_no").Str
			if act.Get("type").Str != "approval_required" || act.Get("order.status").Str != "approval_required" ||
				act.Get("order.amount_fen").Int() != 99800 || act.Get("request_payment").Exists() {
				t.Fatalf("action %s; want approval_required for 998.00 without payment parameters", act.Raw)
			}
			if n := a.sim.Prepays(no); n != 0 {
				t.Fatalf("prepays before approval %d; want 0", n)
			}

			status, q := httpCall(t, http.MethodGet, adminURL+"/admin/api/approvals", admin, "")
			if status != http.StatusOK || !strings.Contains(q.Get("approvals.#.order_no").Raw, no) {
				t.Fatalf("approvals: %d %s; want %s listed", status, q.Raw, no)
			}
			if q.Get(`approvals.#(order_no=="`+no+`").user`).Str != tt.user {
				t.Errorf("approval entry does not name the user: %s", q.Raw)
			}
			decision := "reject"
			if tt.approve {
				decision = "approve"
			}
			status, d := httpCall(t, http.MethodPost, adminURL+"/admin/api/approvals/"+no+"/"+decision, admin, "")
			if status != http.StatusOK || d.Get("order.status").Str != tt.wantStatus {
				t.Fatalf("%s: %d %s; want 200 %s", decision, status, d.Raw, tt.wantStatus)
			}
			if n := a.sim.Prepays(no); n != tt.wantPrepay {
				t.Errorf("prepays after %s: %d; want %d", decision, n, tt.wantPrepay)
			}
			if tt.approve {
				tx, ok := a.sim.Order(no)
				if !ok || tx.Amount.Total != 99800 || tx.Payer == nil || tx.Payer.OpenID != tt.user {
					t.Errorf("simulator order %+v; want 998.00 for %s", tx, tt.user)
				}
			}
			// A second decision (a double click, a retry after a lost
			// answer, the other manager's) is refused, with the order as
			// the first one left it, and moves no money.
			for _, again := range []string{"approve", "reject"} {
				status, d := httpCall(t, http.MethodPost, adminURL+"/admin/api/approvals/"+no+"/"+again, admin, "")
				if status != http.StatusConflict || d.Get("error").Str == "" || d.Get("order.order_no").Str != no || d.Get("order.status").Str != tt.wantStatus {
					t.Errorf("second decision (%s): %d %s; want 409 with the order %s", again, status, d.Raw, tt.wantStatus)
				}
			}
			if n := a.sim.Prepays(no); n != tt.wantPrepay {
				t.Errorf("prepays after a second decision: %d; want %d", n, tt.wantPrepay)
			}

			status, list := httpCall(t, http.MethodGet, url+"/v1/paygate/orders", "Bearer "+e2eClientKey, tt.user)
			if status != http.StatusOK || list.Get("data.#").Int() != 1 {
				t.Fatalf("orders: %d %s; want one order", status, list.Raw)
			}
			got := list.Get("data.0")
			if got.Get("order_no").Str != no || got.Get("status").Str != tt.wantStatus {
				t.Errorf("listed order %s; want %s %s", got.Raw, no, tt.wantStatus)
			}
			if pay := got.Get("request_payment"); tt.approve != (pay.Get("paySign").Str != "" && strings.HasPrefix(pay.Get("package").Str, "prepay_id=")) {
				t.Errorf("request_payment %s; want it exactly when approved", pay.Raw)
			}
			status, one := httpCall(t, http.MethodGet, url+"/v1/paygate/orders/"+no, "Bearer "+e2eClientKey, tt.user)
			if status != http.StatusOK || one.Get("status").Str != tt.wantStatus || one.Get("request_payment").Exists() != tt.approve {
				t.Errorf("GET order: %d %s", status, one.Raw)
			}
			// Another user sees neither the order nor its parameters.
			status, e := httpCall(t, http.MethodGet, url+"/v1/paygate/orders/"+no, "Bearer "+e2eClientKey, "oUser-someone-else")
			if status != http.StatusNotFound || e.Get("error.code").Str != "order_not_found" || e.Get("error.message").Str == "" || strings.Contains(e.Raw, "amount_fen") {
				t.Errorf("another user's GET: %d %s; want a 404 OpenAI error", status, e.Raw)
			}
			if _, others := httpCall(t, http.MethodGet, url+"/v1/paygate/orders", "Bearer "+e2eClientKey, "oUser-someone-else"); others.Get("data.#").Int() != 0 {
				t.Errorf("another user's list: %s; want empty", others.Raw)
			}
		})
	}
	// The admin order list filters by status and user.
	status, all := httpCall(t, http.MethodGet, adminURL+"/admin/api/orders?status=rejected", admin, "")
	if status != http.StatusOK || all.Get("orders.#").Int() != 1 || all.Get("orders.0.user").Str != "oUser-approval-no" {
		t.Errorf("orders?status=rejected: %d %s", status, all.Raw)
	}
	status, mine := httpCall(t, http.MethodGet, adminURL+"/admin/api/orders?user=oUser-approval-yes", admin, "")
	if status != http.StatusOK || mine.Get("orders.#").Int() != 1 || mine.Get("orders.0.status").Str != "awaiting_payment" {
		t.Errorf("orders?user=: %d %s", status, mine.Raw)
	}
	if status, _ := httpCall(t, http.MethodGet, adminURL+"/admin/api/orders?status=bogus", admin, ""); status != http.StatusBadRequest {
		t.Errorf("orders?status=bogus: %d; want 400", status)
	}
	if status, _ := httpCall(t, http.MethodPost, adminURL+"/admin/api/approvals/PG000000000000nosuchorder/approve", admin, ""); status != http.StatusNotFound {
		t.Errorf("approve unknown: %d; want 404", status)
	}
}

func TestAdminAPIRefusesBadTokens(t *testing.T) {
	up := newScriptedProvider(t, purchaseScript)
	_, adminURL, _ := moneyApp(t, up.URL, "")
	_, off := paymentApp(t, up.URL, "") // no admin token configured
	offURL := httptest.NewServer(off.adminHandler())
	t.Cleanup(offURL.Close)
	tests := []struct {
		name, base, auth string
		want             int
	}{
		{name: "missing", base: adminURL, auth: "", want: http.StatusUnauthorized},
		{name: "empty bearer", base: adminURL, auth: "Bearer ", want: http.StatusUnauthorized},
		{name: "wrong token", base: adminURL, auth: "Bearer " + testAdminToken + "x", want: http.StatusUnauthorized},
		{name: "prefix of the token", base: adminURL, auth: "Bearer " + testAdminToken[:5], want: http.StatusUnauthorized},
		{name: "not bearer", base: adminURL, auth: "Basic " + testAdminToken, want: http.StatusUnauthorized},
		{name: "a client key", base: adminURL, auth: "Bearer " + e2eClientKey, want: http.StatusUnauthorized},
		{name: "right token", base: adminURL, auth: "Bearer " + testAdminToken, want: http.StatusOK},
		{name: "no token configured: empty bearer", base: offURL.URL, auth: "Bearer ", want: http.StatusServiceUnavailable},
		{name: "no token configured: any token", base: offURL.URL, auth: "Bearer " + testAdminToken, want: http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, p := range []string{"GET /admin/api/orders", "GET /admin/api/approvals", "GET /admin/api/refunds", "POST /admin/api/approvals/PG1/approve", "POST /admin/api/approvals/PG1/reject"} {
				method, path, _ := strings.Cut(p, " ")
				want := tt.want
				if want == http.StatusOK && method == http.MethodPost {
					want = http.StatusNotFound // authorised; no such order
				}
				status, body := httpCall(t, method, tt.base+path, tt.auth, "")
				if status != want {
					t.Errorf("%s: %d %s; want %d", p, status, body.Raw, want)
				}
				if status == http.StatusUnauthorized && body.Get("error").Str == "" {
					t.Errorf("%s: 401 body %s; want {\"error\": …}", p, body.Raw)
				}
				if status == http.StatusServiceUnavailable && body.Get("code").Str != proxy.AdminDisabled {
					t.Errorf("%s: 503 body %s; want the code %s", p, body.Raw, proxy.AdminDisabled)
				}
			}
		})
	}
}

// paidByChat buys premium-monthly for user through a chat turn and pays it
// at the simulator.
func paidByChat(t *testing.T, url string, a *app, user string) string {
	t.Helper()
	ans := chatAs(t, url, user, "premium monthly please")
	no := ans.Get("paygate.actions.0.order.order_no").Str
	if no == "" {
		t.Fatalf("no order in %s", ans.Raw)
	}
	if d, err := a.sim.Pay(context.Background(), no); err != nil || !d.Acked {
		t.Fatalf("pay %s: %+v %v", no, d, err)
	}
	return no
}

// refundProvider is a scripted model that buys premium-monthly, and asks
// for a refund of *orderNo with reason when the user's last message says
// "refund" (and after that call's result).
func refundProvider(t *testing.T, orderNo *string, reason string) *scriptedProvider {
	t.Helper()
	return newScriptedProvider(t, func(body string) scriptRound {
		if strings.Contains(gjson.Get(body, "messages.@reverse.0.content").Str, "refund") ||
			(gjson.Get(body, "messages.@reverse.0.role").Str == "tool" && strings.Contains(body, "refund_id")) {
			return moneyScript("request_refund", func() string {
				return `{"order_no":"` + *orderNo + `","reason":"` + reason + `"}`
			})(body)
		}
		return moneyScript("create_order", func() string { return `{"sku":"premium-monthly"}` })(body)
	})
}

func TestRefundThroughHTTP(t *testing.T) {
	var orderNo string
	up := refundProvider(t, &orderNo, "it does not work for me")
	url, adminURL, a := moneyApp(t, up.URL, "")
	const user = "oUser-refund-e2e"
	orderNo = paidByChat(t, url, a, user)

	ans := chatAs(t, url, user, "I want a refund")
	act := ans.Get(`paygate.actions.#(type=="refund_proposed")`)
	id := act.Get("refund.refund_id").Str
	if act.Get("type").Str != "refund_proposed" || act.Get("refund.label").Str != "Confirm refund of 49.99 CNY" ||
		act.Get("refund.confirm_url").Str != "/v1/paygate/refunds/"+id+"/confirm" || act.Get("refund.amount_fen").Int() != 4999 ||
		act.Get("refund.order_no").Str != orderNo {
		t.Fatalf("action %s; want refund_proposed of 49.99 CNY", act.Raw)
	}
	reqs := up.requests()
	if last := reqs[len(reqs)-1]; !strings.Contains(last, "awaiting_user_confirmation") {
		t.Errorf("the model was not told the refund awaits the user: %s", last)
	}
	if n := a.sim.RefundCount(""); n != 0 {
		t.Fatalf("a request_refund call reached WeChat Pay: %d refunds", n)
	}
	confirm := url + act.Get("refund.confirm_url").Str

	status, e := httpCall(t, http.MethodPost, confirm, "Bearer "+e2eClientKey, "oUser-not-the-payer")
	if status != http.StatusNotFound || e.Get("error.code").Str != "refund_not_found" {
		t.Errorf("confirm by another user: %d %s; want 404", status, e.Raw)
	}
	if status, _ := httpCall(t, http.MethodPost, confirm, "Bearer wrong-key", user); status != http.StatusUnauthorized {
		t.Errorf("confirm with a wrong client key: %d; want 401", status)
	}
	if status, _ := httpCall(t, http.MethodPost, confirm, "Bearer "+e2eClientKey, ""); status != http.StatusBadRequest {
		t.Errorf("confirm without a user: %d; want 400", status)
	}
	if n := a.sim.RefundCount(""); n != 0 {
		t.Fatalf("refunds after refused confirmations: %d; want 0", n)
	}

	const n = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest(http.MethodPost, confirm, nil)
			req.Header.Set("Authorization", "Bearer "+e2eClientKey)
			req.Header.Set("X-WeChat-OpenID", user)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			codes[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	// One tap takes the confirmation and sends the refund (200, WeChat Pay
	// took it); every other is a repeat of the user's own word, answered
	// with the refund's state (202: on its way), never a second refund.
	if codes[http.StatusOK] != 1 || codes[http.StatusAccepted] != n-1 {
		t.Errorf("confirm status codes %v; want one 200 and %d 202", codes, n-1)
	}
	if got := a.sim.RefundCount(orderNo); got != 1 {
		t.Fatalf("refunds at the simulator %d; want exactly 1", got)
	}
	admin := "Bearer " + testAdminToken
	status, rl := httpCall(t, http.MethodGet, adminURL+"/admin/api/refunds", admin, "")
	if status != http.StatusOK || rl.Get("refunds.#").Int() != 1 || rl.Get("refunds.0.order.status").Str != "refunding" ||
		rl.Get("refunds.0.in_flight.refund_id").Str != id || rl.Get("refunds.0.in_flight.out_refund_no").Str != payments.OutRefundNo(id) {
		t.Errorf("admin refunds while refunding: %d %s", status, rl.Raw)
	}
	if d, err := a.sim.CompleteRefund(context.Background(), payments.OutRefundNo(id)); err != nil || !d.Acked {
		t.Fatalf("refund notification: %+v %v", d, err)
	}
	status, rl = httpCall(t, http.MethodGet, adminURL+"/admin/api/refunds", admin, "")
	if status != http.StatusOK || rl.Get("refunds.0.order.status").Str != "refunded" || rl.Get("refunds.0.in_flight").Type != gjson.Null {
		t.Errorf("admin refunds after the refund: %d %s", status, rl.Raw)
	}
	status, o := httpCall(t, http.MethodGet, url+"/v1/paygate/orders/"+orderNo, "Bearer "+e2eClientKey, user)
	if status != http.StatusOK || o.Get("status").Str != "refunded" || o.Get("refunded_fen").Int() != 4999 {
		t.Errorf("order after the refund: %d %s; want refunded 4999", status, o.Raw)
	}
	status, g := httpCall(t, http.MethodPost, confirm, "Bearer "+e2eClientKey, user)
	if status != http.StatusOK || g.Get("refund.status").Str != payments.RefundSucceeded || g.Get("refund.refund_id").Str != id ||
		g.Get("order.status").Str != "refunded" {
		t.Errorf("late confirm: %d %s; want 200 with the refund succeeded", status, g.Raw)
	}
	if got := a.sim.RefundCount(orderNo); got != 1 {
		t.Errorf("refunds at the simulator after the late confirm %d; want exactly 1", got)
	}
}

// TestConfirmRetryAnswersTheRefundState: a bot whose confirm timed out (or
// whose SDK retried it) sends the same POST again. The confirmation is
// single use, so no second refund is made; the retry is told what became
// of the refund the user confirmed (as the first answer would have), not
// 410 "already used, cancelled or expired; ask again in the chat", which
// made the bot tell the user the refund had not happened.
func TestConfirmRetryAnswersTheRefundState(t *testing.T) {
	var orderNo string
	up := refundProvider(t, &orderNo, "it does not work for me")
	url, _, a := moneyApp(t, up.URL, "")
	const user = "oUser-confirm-retry"
	orderNo = paidByChat(t, url, a, user)
	act := chatAs(t, url, user, "I want a refund").Get(`paygate.actions.#(type=="refund_proposed")`)
	id := act.Get("refund.refund_id").Str
	if id == "" {
		t.Fatalf("no refund proposed: %s", act.Raw)
	}
	confirm := url + act.Get("refund.confirm_url").Str
	bearer := "Bearer " + e2eClientKey
	tests := []struct {
		name       string
		before     func()
		wantStatus int
		wantRefund string
		wantOrder  string
	}{
		{"the first confirm", func() {}, http.StatusOK, payments.RefundProcessing, "refunding"},
		{"a retry while WeChat Pay processes it", func() {}, http.StatusAccepted, payments.RefundPending, "refunding"},
		{"a retry once it succeeded", func() {
			if d, err := a.sim.CompleteRefund(context.Background(), payments.OutRefundNo(id)); err != nil || !d.Acked {
				t.Fatalf("refund notification: %+v %v", d, err)
			}
		}, http.StatusOK, payments.RefundSucceeded, "refunded"},
	}
	for _, tt := range tests {
		tt.before()
		status, b := httpCall(t, http.MethodPost, confirm, bearer, user)
		if status != tt.wantStatus || b.Get("refund.status").Str != tt.wantRefund || b.Get("refund.refund_id").Str != id ||
			b.Get("refund.amount_fen").Int() != 4999 || b.Get("order.order_no").Str != orderNo || b.Get("order.status").Str != tt.wantOrder {
			t.Errorf("%s: %d %s; want %d, refund %s, order %s", tt.name, status, b.Raw, tt.wantStatus, tt.wantRefund, tt.wantOrder)
		}
		if got := a.sim.RefundCount(orderNo); got != 1 {
			t.Fatalf("%s: %d refunds at WeChat Pay; want exactly 1", tt.name, got)
		}
	}
	if status, b := httpCall(t, http.MethodPost, confirm, bearer, "oUser-not-the-payer"); status != http.StatusNotFound {
		t.Errorf("a used confirmation tapped by another user: %d %s; want 404 (the id is not theirs)", status, b.Raw)
	}
}

// TestRefundCancelAndExpiryThroughHTTP: a proposal cancelled, then one
// expired, through the routes. confirm_ttl is 2s: the cancel steps must end
// before the cancelled proposal would expire, and 1s left a loaded CI
// machine under -race less room than its stalls can take.
func TestRefundCancelAndExpiryThroughHTTP(t *testing.T) {
	up := newScriptedProvider(t, moneyScript("create_order", func() string { return `{"sku":"premium-monthly"}` }))
	url, _, a := moneyApp(t, up.URL, "  refunds: {confirm_ttl: 2s}\n")
	const user = "oUser-refund-cancel"
	no := paidByChat(t, url, a, user)
	ctx := context.Background()
	propose := func() *store.RefundProposal {
		t.Helper()
		p, _, err := a.payments.ProposeRefund(ctx, payments.RefundRequest{Client: "bot", User: user, OrderNo: no, Reason: "test"})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := url + "/v1/paygate/refunds/"

	expired := propose() // left to expire while the cancel steps run
	cancelled := propose()
	if status, _ := httpCall(t, http.MethodPost, base+cancelled.RefundID+"/cancel", "Bearer "+e2eClientKey, "oUser-other"); status != http.StatusNotFound {
		t.Errorf("cancel by another user: %d; want 404", status)
	}
	status, c := httpCall(t, http.MethodPost, base+cancelled.RefundID+"/cancel", "Bearer "+e2eClientKey, user)
	if status != http.StatusOK || c.Get("refund.status").Str != "cancelled" {
		t.Errorf("cancel: %d %s", status, c.Raw)
	}
	if status, _ := httpCall(t, http.MethodPost, base+cancelled.RefundID+"/confirm", "Bearer "+e2eClientKey, user); status != http.StatusGone {
		t.Errorf("confirm after cancel: %d; want 410", status)
	}

	// Wait for the instant the proposal's confirm_ttl ends (the store
	// judges it by the same wall clock).
	timer := time.NewTimer(time.Until(expired.ExpiresAt) + time.Millisecond)
	<-timer.C
	if status, _ := httpCall(t, http.MethodPost, base+expired.RefundID+"/confirm", "Bearer "+e2eClientKey, user); status != http.StatusGone {
		t.Errorf("confirm after expiry: %d; want 410", status)
	}
	if status, _ := httpCall(t, http.MethodPost, base+"rf_nosuchproposal/confirm", "Bearer "+e2eClientKey, user); status != http.StatusNotFound {
		t.Errorf("confirm of an unknown id: %d; want 404", status)
	}
	if status, _ := httpCall(t, http.MethodPost, url+"/v1/paygate/nothing-here", "Bearer "+e2eClientKey, user); status != http.StatusNotFound {
		t.Errorf("unknown paygate path: %d; want 404, not forwarded", status)
	}
	if n := a.sim.RefundCount(""); n != 0 {
		t.Errorf("refunds at the simulator %d; want 0", n)
	}
	if got, err := a.store.GetOrder(ctx, no); err != nil || got.Status != store.StatusPaid {
		t.Errorf("order %+v %v; want still paid", got, err)
	}
}

// TestRulesFromConfig: payments.rules in the config reach the tool calls of a
// turn, each at its boundary.
func TestRulesFromConfig(t *testing.T) {
	tests := []struct {
		name  string
		rules string
		asks  []string // create_order arguments, one turn each
		want  []string // the status the model was told, per turn
	}{
		{name: "998.00 at approval_above 998.00 is prepaid", rules: `approval_above: "998.00"`,
			asks: []string{`{"sku":"premium-yearly","quantity":2}`}, want: []string{"awaiting_payment"}},
		{name: "998.00 above approval_above 997.99 waits", rules: `approval_above: "997.99"`,
			asks: []string{`{"sku":"premium-yearly","quantity":2}`}, want: []string{"approval_required"}},
		{name: "the second order of the day over a limit of one", rules: `max_orders_per_user_per_day: 1`,
			asks: []string{`{"sku":"premium-monthly","quantity":1}`, `{"sku":"premium-monthly","quantity":2}`}, want: []string{"awaiting_payment", "refused"}},
		{name: "the third payment call of the minute over a limit of two", rules: `max_payment_calls_per_minute: 2`,
			asks: []string{`{"sku":"premium-monthly","quantity":1}`, `{"sku":"premium-monthly","quantity":2}`, `{"sku":"premium-monthly","quantity":3}`},
			want: []string{"awaiting_payment", "awaiting_payment", "rate_limited"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var args string
			up := newScriptedProvider(t, moneyScript("create_order", func() string { return args }))
			url, a := paymentApp(t, up.URL, "  rules: {"+tt.rules+"}\n")
			prepays := 0
			for i, ask := range tt.asks {
				args = ask
				chatAs(t, url, "oUser-rules-config", "buy")
				reqs := up.requests()
				result := gjson.Get(reqs[len(reqs)-1], "messages.@reverse.0.content").Str
				if got := gjson.Get(result, "status").Str; got != tt.want[i] {
					t.Errorf("turn %d: the model was told %s; want status %s", i+1, result, tt.want[i])
				}
				if tt.want[i] == "awaiting_payment" {
					prepays++
				}
			}
			if n := a.sim.OrderCount(); n != prepays {
				t.Errorf("simulator orders %d; want %d", n, prepays)
			}
		})
	}
}

// TestApprovalReachesTheNextTurn: after a manager decides, the user's next
// message carries the decision — the order and its payment parameters once
// approved (an order_created action, announced once), "rejected by a
// manager" and an order_rejected action, announced once, once rejected —
// without the model being asked to do anything.
func TestApprovalReachesTheNextTurn(t *testing.T) {
	up := newScriptedProvider(t, func(body string) scriptRound {
		last := gjson.Get(body, "messages.@reverse.0")
		if last.Get("role").Str == "user" && strings.Contains(last.Get("content").Str, "two years") {
			return moneyScript("create_order", func() string { return `{"sku":"premium-yearly","quantity":2}` })(body)
		}
		if last.Get("role").Str == "tool" {
			return moneyScript("", nil)(body)
		}
		return scriptRound{whole: `{"id":"chatcmpl-N","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Here you go."},"finish_reason":"stop"}]}`}
	})
	url, adminURL, _ := moneyApp(t, up.URL, "")
	admin := "Bearer " + testAdminToken
	for _, tt := range []struct {
		decision, user, wantState string
	}{
		{"approve", "oUser-next-approve", "awaiting payment"},
		{"reject", "oUser-next-reject", "rejected by a manager"},
	} {
		t.Run(tt.decision, func(t *testing.T) {
			no := chatAs(t, url, tt.user, "two years of premium please").Get("paygate.actions.0.order.order_no").Str
			if status, _ := httpCall(t, http.MethodPost, adminURL+"/admin/api/approvals/"+no+"/"+tt.decision, admin, ""); status != http.StatusOK {
				t.Fatalf("%s: %d", tt.decision, status)
			}
			ans := chatAs(t, url, tt.user, "any news?")
			reqs := up.requests()
			state := gjson.Get(reqs[len(reqs)-1], `messages.#(role=="system").content`).Str
			if !strings.Contains(state, no) || !strings.Contains(state, tt.wantState) {
				t.Errorf("state message %q; want %s as %q", state, no, tt.wantState)
			}
			created := ans.Get(`paygate.actions.#(type=="order_created")`)
			if tt.decision == "approve" {
				if created.Get("order.order_no").Str != no || created.Get("request_payment.paySign").Str == "" {
					t.Errorf("actions %s; want order_created with payment parameters for %s", ans.Get("paygate").Raw, no)
				}
				again := chatAs(t, url, tt.user, "and now?")
				if again.Get(`paygate.actions.#(type=="order_created")`).Exists() {
					t.Errorf("order_created announced twice: %s", again.Get("paygate").Raw)
				}
			} else {
				if created.Exists() {
					t.Errorf("a rejected order got payment parameters: %s", created.Raw)
				}
				if rej := ans.Get(`paygate.actions.#(type=="order_rejected")#`).Array(); len(rej) != 1 || rej[0].Get("order.order_no").Str != no {
					t.Errorf("actions %s; want one order_rejected for %s", ans.Get("paygate").Raw, no)
				}
				again := chatAs(t, url, tt.user, "and now?")
				if again.Get(`paygate.actions.#(type=="order_rejected")`).Exists() {
					t.Errorf("order_rejected announced twice: %s", again.Get("paygate").Raw)
				}
			}
		})
	}
}

// TestRefundProposalInOrdersAPI: an open refund proposal is listed on its
// order in GET /v1/paygate/orders and /orders/{order_no}, as the same
// refund object as the refund_proposed action, until it is answered. SPEC
// 2.3 sends a bot whose SDK drops the paygate object (go-openai) there for
// the same facts, and the proposal's refund_id and confirm_url appeared
// nowhere in it: such a bot could not show the user the confirm button.
func TestRefundProposalInOrdersAPI(t *testing.T) {
	var orderNo string
	// Each proposal of its own amount: the same request while its
	// proposal is open returns that one.
	var amount atomic.Pointer[string]
	up := newScriptedProvider(t, func(body string) scriptRound {
		if strings.Contains(gjson.Get(body, "messages.@reverse.0.content").Str, "refund") ||
			(gjson.Get(body, "messages.@reverse.0.role").Str == "tool" && strings.Contains(body, "refund_id")) {
			return moneyScript("request_refund", func() string {
				return `{"order_no":"` + orderNo + `","reason":"broken","amount":"` + *amount.Load() + `"}`
			})(body)
		}
		return moneyScript("create_order", func() string { return `{"sku":"premium-monthly"}` })(body)
	})
	url, _, a := moneyApp(t, up.URL, "")
	const user = "oUser-refund-orders-api"
	orderNo = paidByChat(t, url, a, user)
	ask := func(amt string) gjson.Result {
		t.Helper()
		amount.Store(&amt)
		return chatAs(t, url, user, "I want a refund").Get(`paygate.actions.#(type=="refund_proposed").refund`)
	}
	bearer := "Bearer " + e2eClientKey
	proposals := func() (one, listed gjson.Result) {
		t.Helper()
		st, o := httpCall(t, http.MethodGet, url+"/v1/paygate/orders/"+orderNo, bearer, user)
		if st != http.StatusOK {
			t.Fatalf("GET order: %d %s", st, o.Raw)
		}
		st, l := httpCall(t, http.MethodGet, url+"/v1/paygate/orders", bearer, user)
		if st != http.StatusOK {
			t.Fatalf("GET orders: %d %s", st, l.Raw)
		}
		return o.Get("refunds_proposed"), l.Get(`data.#(order_no=="` + orderNo + `").refunds_proposed`)
	}
	if one, listed := proposals(); one.Exists() || listed.Exists() {
		t.Errorf("refunds_proposed before any proposal: %s, %s", one.Raw, listed.Raw)
	}
	var ids []string
	var actions []string
	for _, amt := range []string{"40.00", "49.99"} { // two open proposals of one order: both are listed, oldest first
		act := ask(amt)
		if act.Get("refund_id").Str == "" {
			t.Fatalf("no refund_proposed action: %s", act.Raw)
		}
		ids, actions = append(ids, act.Get("refund_id").Str), append(actions, act.Raw)
	}
	one, listed := proposals()
	for name, got := range map[string]gjson.Result{"GET /v1/paygate/orders/{order_no}": one, "GET /v1/paygate/orders": listed} {
		if n := len(got.Array()); n != 2 || got.Get("0").Raw != actions[0] || got.Get("1").Raw != actions[1] {
			t.Errorf("%s: refunds_proposed %s; want the two refund_proposed objects %s", name, got.Raw, actions)
		}
	}
	// Answered, a proposal is no longer open.
	if st, b := httpCall(t, http.MethodPost, url+"/v1/paygate/refunds/"+ids[0]+"/cancel", bearer, user); st != http.StatusOK {
		t.Fatalf("cancel: %d %s", st, b.Raw)
	}
	one, listed = proposals()
	for name, got := range map[string]gjson.Result{"GET /v1/paygate/orders/{order_no}": one, "GET /v1/paygate/orders": listed} {
		if n := len(got.Array()); n != 1 || got.Get("0.refund_id").Str != ids[1] {
			t.Errorf("%s after a cancel: refunds_proposed %s; want only %s", name, got.Raw, ids[1])
		}
	}
	// Confirmed, one proposal refunds the order in full: another, still
	// open, is not listed, as its confirmation could only answer 409.
	if act := ask("30.00"); act.Get("refund_id").Str == "" {
		t.Fatalf("no third refund_proposed action: %s", act.Raw)
	}
	if st, b := httpCall(t, http.MethodPost, url+"/v1/paygate/refunds/"+ids[1]+"/confirm", bearer, user); st != http.StatusOK {
		t.Fatalf("confirm: %d %s", st, b.Raw)
	}
	if one, listed := proposals(); one.Exists() || listed.Exists() {
		t.Errorf("refunds_proposed after a proposal refunded the order: %s, %s", one.Raw, listed.Raw)
	}
}

// TestRefusedRefundIsNotRetried: WeChat Pay refuses a confirmed refund. The
// bot hears why (502 refund_failed) and is told not to retry
// (x-should-retry: false): the confirmation is used, and the OpenAI Node
// SDK's automatic retry got 410 "already used" and handed the bot that
// instead of the refusal.
func TestRefusedRefundIsNotRetried(t *testing.T) {
	var orderNo string
	up := refundProvider(t, &orderNo, "it does not work for me")
	url, _, a := moneyApp(t, up.URL, "")
	const user = "oUser-refund-refused"
	orderNo = paidByChat(t, url, a, user)
	act := chatAs(t, url, user, "I want a refund").Get(`paygate.actions.#(type=="refund_proposed")`)
	a.sim.InjectFault(wxsim.Fault{Op: "refund", Kind: wxsim.FaultOrderPaid}) // a refusal
	req, _ := http.NewRequest(http.MethodPost, url+act.Get("refund.confirm_url").Str, nil)
	req.Header.Set("Authorization", "Bearer "+e2eClientKey)
	req.Header.Set("X-WeChat-OpenID", user)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || gjson.GetBytes(b, "error.code").Str != "refund_failed" {
		t.Fatalf("confirm: %d %s; want 502 refund_failed", resp.StatusCode, b)
	}
	if got := resp.Header.Get("X-Should-Retry"); got != "false" {
		t.Errorf("x-should-retry %q; want false (a retry finds the confirmation used)", got)
	}
	if n := a.sim.RefundCount(orderNo); n != 0 {
		t.Errorf("%d refunds at WeChat Pay; want 0", n)
	}
}
