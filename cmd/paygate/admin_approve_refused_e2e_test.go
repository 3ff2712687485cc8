package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/proxy/console"
	"github.com/paygate/paygate/store"
)

// numberUsedElsewhere is the WeChat Pay client's transport, under which
// WeChat Pay refuses the prepay of users' orders for good: before such a
// prepay goes, the simulator gets an order under the same number with other
// parameters (a NATIVE order of 1 fen), so it answers OUT_TRADE_NO_USED.
type numberUsedElsewhere struct {
	users []string
	sim   atomic.Pointer[wxsim.Server] // set once the application is built
}

func (u *numberUsedElsewhere) RoundTrip(req *http.Request) (*http.Response, error) {
	sim := u.sim.Load()
	if sim == nil || req.Method != http.MethodPost || !strings.HasPrefix(req.URL.Path, "/v3/pay/transactions/") || req.Body == nil {
		return http.DefaultTransport.RoundTrip(req)
	}
	b, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	if err != nil {
		return nil, err
	}
	out := req.Clone(req.Context())
	out.Body = io.NopCloser(bytes.NewReader(b))
	if slices.Contains(u.users, gjson.GetBytes(b, "payer.openid").Str) {
		client, err := wechatpay.New(req.Context(), sim.ClientConfig(req.URL.Scheme+"://"+req.URL.Host, "http://127.0.0.1:1/wechatpay/notify"))
		if err != nil {
			return nil, err
		}
		if _, err := client.Prepay(req.Context(), wechatpay.PrepayRequest{Method: wechatpay.MethodNative,
			OutTradeNo: gjson.GetBytes(b, "out_trade_no").Str, Description: "another order", Total: 1}); err != nil {
			return nil, fmt.Errorf("the order under the same number: %w", err)
		}
	}
	return http.DefaultTransport.RoundTrip(out)
}

// closeUnrecorded is a store whose write of user's order as closed fails
// with err.
type closeUnrecorded struct {
	store.Store
	user string
	err  error
}

func (s closeUnrecorded) UpdateOrder(ctx context.Context, o *store.Order, expect store.OrderStatus, ev ...store.Event) error {
	if o.User == s.user && o.Status == store.StatusClosed {
		return fmt.Errorf("write order: %w", s.err)
	}
	return s.Store.UpdateOrder(ctx, o, expect, ev...)
}

// storeAddr is where the failing store's error says it was: the admin
// API's answer must not tell it.
const storeAddr = "10.9.8.7:6379"

// storeDown is the error a Redis store gives when its server is gone.
var storeDown = fmt.Errorf("redis: dial tcp %s: connect: connection refused: %w", storeAddr, store.ErrUnavailable)

// TestAdminApprovalRefusedKeepsTheStoresErrorOut: a manager approves, WeChat
// Pay refuses the order for good (OUT_TRADE_NO_USED), and the store fails
// as paygate records the order closed, so it stays creating. The admin
// API's 502 carried the service's error whole, the store's own text with
// it ("closing: redis: dial tcp 10.9.8.7:6379: …"), while its other answers
// keep the store's text to the log. The answer says WeChat Pay's reason and
// not the store's; the log has the store's error with the order number.
func TestAdminApprovalRefusedKeepsTheStoresErrorOut(t *testing.T) {
	const user = "oUser-refused-unrecorded"
	var logs lockedWriter
	no, resp, b := approveRefusedUnclosed(t, user, storeDown, &logs)
	body := gjson.ParseBytes(b)
	msg := body.Get("error").Str
	if resp.StatusCode != http.StatusBadGateway || !strings.HasPrefix(msg, "approved, but ") || !strings.Contains(msg, "OUT_TRADE_NO_USED") {
		t.Errorf("%d %s; want 502 with an error that says it was approved and WeChat Pay's reason", resp.StatusCode, b)
	}
	if body.Get("order.order_no").Str != no || body.Get("order.status").Str != string(store.StatusCreating) {
		t.Errorf("answer's order %s; want %s as it stands, creating", body.Get("order").Raw, no)
	}
	for _, raw := range []string{storeAddr, "dial tcp", "connection refused"} {
		if strings.Contains(string(b), raw) {
			t.Errorf("the answer carries the store's own error (%q): %s", raw, b)
		}
	}
	logged := false
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, no) && strings.Contains(line, storeAddr) {
			logged = true
		}
	}
	if !logged {
		t.Errorf("no log line has the store's error with %s:\n%s", no, logs.String())
	}
}

// dataLost is the error a Redis store gives once it lost its data: every
// command is refused, the reconciler's too, until the replicas restart.
var dataLost = fmt.Errorf("redis: %w: %w (Redis at %s is empty)", store.ErrUnavailable, store.ErrDataLost, storeAddr)

// TestAdminApprovalRefusedOnAStoreThatLostItsData: a manager approves,
// WeChat Pay refuses the order for good, and paygate cannot record it
// closed because the store lost its data. The 502 said the close was not
// recorded and the console that the reconciler closes it, while such a
// store refuses the reconciler's commands too until every replica
// restarts: the service's error no longer carried store.ErrDataLost (the
// store's error is logged, not quoted), so the answer could not tell. It
// is a 503 that tells the operator store.DataLostAdvice, as the admin
// API's other answers for such a store, with the order as it stands and
// WeChat Pay's reason, and still without the store's own text.
func TestAdminApprovalRefusedOnAStoreThatLostItsData(t *testing.T) {
	const user = "oUser-refused-data-lost"
	no, resp, b := approveRefusedUnclosed(t, user, dataLost, io.Discard)
	body := gjson.ParseBytes(b)
	msg := body.Get("error").Str
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.HasPrefix(msg, "approved, but WeChat Pay refused the order") ||
		!strings.Contains(msg, store.DataLostAdvice) || !strings.Contains(msg, "OUT_TRADE_NO_USED") {
		t.Errorf("%d %s; want 503 that says it was approved, WeChat Pay's reason and %q", resp.StatusCode, b, store.DataLostAdvice)
	}
	if body.Get("order.order_no").Str != no || body.Get("order.status").Str != string(store.StatusCreating) {
		t.Errorf("answer's order %s; want %s as it stands, creating", body.Get("order").Raw, no)
	}
	if strings.Contains(string(b), storeAddr) {
		t.Errorf("the answer carries the store's own error: %s", b)
	}
}

// approveRefusedUnclosed serves paygate on the simulator with WeChat Pay
// refusing user's orders (their number used elsewhere) and the store
// failing their close with closeErr, has user order above the approval
// threshold and a manager approve it through the admin API, and checks
// that the order was left creating (refused, its close unrecorded). It
// returns the order number and the admin API's answer.
func approveRefusedUnclosed(t *testing.T, user string, closeErr error, logs io.Writer) (string, *http.Response, []byte) {
	t.Helper()
	tr := &numberUsedElsewhere{users: []string{user}}
	_, a := serveConfig(t, `
clients: [{name: bot, key: `+e2eClientKey+`}]
admin: {token: `+consoleToken+`}
store: {path: "`+filepath.Join(t.TempDir(), "paygate.db")+`"}
providers:
  - {name: fake, base_url: "http://127.0.0.1:1/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
payments:
  catalog:
    - {sku: premium-yearly, name: "Premium tier, 1 year", price: "499.00", max_quantity: 2}
`, logs, withWeChatPayTransport(tr),
		withStoreWrap(func(st store.Store) store.Store { return closeUnrecorded{st, user, closeErr} }))
	tr.sim.Store(a.sim)
	admin := httptest.NewServer(a.adminHandler())
	t.Cleanup(admin.Close)

	res, err := a.payments.CreateOrder(context.Background(), payments.CreateRequest{Client: "bot", User: user, SKU: "premium-yearly", Quantity: 2})
	if err != nil || res.Order.Status != store.StatusApprovalRequired {
		t.Fatalf("create: %+v %v; want approval_required", res, err)
	}
	no := res.Order.OrderNo
	resp, b := adminDo(t, http.MethodPost, admin.URL+"/admin/api/approvals/"+no+"/approve",
		map[string]string{"Authorization": "Bearer " + consoleToken, console.CSRFHeader: "1"})
	if o, err := a.store.GetOrder(context.Background(), no); err != nil || o.Status != store.StatusCreating {
		t.Fatalf("order %+v %v; want creating (refused, its close unrecorded)", o, err)
	}
	return no, resp, b
}
