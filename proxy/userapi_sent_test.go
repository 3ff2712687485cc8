package proxy

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// downStore is a payments.Store that stops answering once down is set: the
// reads and writes of an order and of its refund in flight fail, as a
// store that went away does.
type downStore struct {
	payments.Store
	down *atomic.Bool
	// ordersDown fails the reads of orders alone: the node of a Redis
	// Cluster that holds the order, while the proposal's answers.
	ordersDown *atomic.Bool
}

func (d downStore) GetOrder(ctx context.Context, no string) (*store.Order, error) {
	if d.down.Load() || d.ordersDown.Load() {
		return nil, store.ErrUnavailable
	}
	return d.Store.GetOrder(ctx, no)
}

func (d downStore) UpdateOrder(ctx context.Context, o *store.Order, expect store.OrderStatus, events ...store.Event) error {
	if d.down.Load() {
		return store.ErrUnavailable
	}
	return d.Store.UpdateOrder(ctx, o, expect, events...)
}

func (d downStore) GetExchange(ctx context.Context, key string) ([]byte, error) {
	if d.down.Load() {
		return nil, store.ErrUnavailable
	}
	return d.Store.GetExchange(ctx, key)
}

func (d downStore) PutExchange(ctx context.Context, key string, data []byte, ttl time.Duration) error {
	if d.down.Load() {
		return store.ErrUnavailable
	}
	return d.Store.PutExchange(ctx, key, data, ttl)
}

// tapEnv is a paid order of user with a refund of it proposed, under a
// payments.Service over driver's store (st, whose failures the test sets)
// and the WeChat Pay simulator behind httptest (hook, when not nil, sees
// each request first), and the user API of a proxy over it.
type tapEnv struct {
	url     string
	sim     *wxsim.Server
	st      downStore
	orderNo string
	refund  *store.RefundProposal
}

func newTapEnv(t *testing.T, driver, user string, hook func(e *tapEnv, r *http.Request)) *tapEnv {
	t.Helper()
	ctx := context.Background()
	e := &tapEnv{st: downStore{Store: testdrivers.Open(t, driver, nil), down: new(atomic.Bool), ordersDown: new(atomic.Bool)}}
	var svc *payments.Service
	e.sim, svc = newSimPayments(t, e.st, simPayments{Sim: wxsim.Options{NotifyAttempts: 1}, AttemptTimeout: time.Second,
		ActiveQueryAfter: time.Nanosecond, Catalog: []payments.CatalogItem{{SKU: "premium-monthly", Name: "Premium tier, 1 month", Price: "49.99"}},
		Hook: func(r *http.Request) {
			if hook != nil {
				hook(e, r)
			}
		}})

	created, err := svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly"})
	if err != nil || created.Order.Status != store.StatusAwaitingPayment {
		t.Fatalf("create order: %v", err)
	}
	e.orderNo = created.Order.OrderNo
	if _, err := e.sim.Pay(ctx, e.orderNo); err != nil {
		t.Fatal(err)
	}
	// The notification went nowhere; the order's query finds it paid.
	if o, err := svc.Order(ctx, "shop-bot", user, e.orderNo); err != nil || o.Status != store.StatusPaid {
		t.Fatalf("order after payment: %v, %v; want paid", o, err)
	}
	e.refund, _, err = svc.ProposeRefund(ctx, payments.RefundRequest{Client: "shop-bot", User: user, OrderNo: e.orderNo, Reason: "not needed"})
	if err != nil {
		t.Fatal(err)
	}

	_, e.url = servePaygate(t, testConfig(t, "http://127.0.0.1:1", func(*config.Config) {}), Options{UserPayments: svc}, nil)
	return e
}

// tap is the user's tap on the proposal's confirm button: its status and
// body.
func (e *tapEnv) tap(t *testing.T, user string) (int, gjson.Result) {
	t.Helper()
	resp := send(t, http.MethodPost, e.url, "/v1/paygate/refunds/"+e.refund.RefundID+"/confirm", "", map[string]string{headerOpenID: user})
	return resp.StatusCode, gjson.Parse(readAll(t, resp.Body))
}

// TestRefundTapWhoseRefundWentOutAnswersPending: the user taps confirm,
// WeChat Pay carries the refund out (its answer to the create is lost, and
// the query that follows finds it succeeded), and the store goes away
// before that answer is recorded. The money is on its way back (the order
// stays refunding with its refund recorded, which the sweep asks WeChat Pay
// about), so the tap is answered 202 pending, as a WeChat Pay that did not
// answer is. It was answered 503 "payments are temporarily unavailable":
// the bot told the user their refund had not gone through, while it had.
// Once the store is back, the same tap again answers the same refund's
// state and sends nothing.
func TestRefundTapWhoseRefundWentOutAnswersPending(t *testing.T) {
	const user = "o-tap-sent-store-down"
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			e := newTapEnv(t, driver, user, func(e *tapEnv, r *http.Request) {
				if no, ok := strings.CutPrefix(r.URL.Path, "/v3/refund/domestic/refunds/"); ok && r.Method == http.MethodGet {
					// The refund's create was carried out and its
					// answer lost; by the query that follows, WeChat
					// Pay has refunded the money, and the store is gone.
					if _, err := e.sim.CompleteRefund(r.Context(), no); err != nil {
						t.Errorf("complete refund %s: %v", no, err)
					}
					e.st.down.Store(true)
				}
			})
			e.sim.InjectFault(wxsim.Fault{Op: "refund", Kind: wxsim.FaultTimeout})
			status, body := e.tap(t, user)
			if n := e.sim.RefundCount(e.orderNo); n != 1 {
				t.Fatalf("refunds at WeChat Pay after the tap: %d; want 1", n)
			}
			if status != http.StatusAccepted || body.Get("refund.status").Str != payments.RefundPending ||
				body.Get("refund.refund_id").Str != e.refund.RefundID || body.Get("order.order_no").Str != e.orderNo {
				t.Errorf("tap whose refund WeChat Pay took, the store gone: %d %s; want 202, the refund pending, with its order", status, body.Raw)
			}

			e.st.down.Store(false)
			status, body = e.tap(t, user)
			if status != http.StatusAccepted || body.Get("refund.status").Str != payments.RefundPending {
				t.Errorf("the tap again, the store back: %d %s; want 202 pending", status, body.Raw)
			}
			if n := e.sim.RefundCount(e.orderNo); n != 1 {
				t.Errorf("refunds at WeChat Pay after the second tap: %d; want 1", n)
			}
		})
	}
}

// TestRepeatedTapWhileTheOrderCannotBeReadIsNotGone: the user's tap was
// taken and its refund is with WeChat Pay; the bot sends the tap again (its
// SDK's retry after a timeout, a second tap) while the store answers for
// the proposal but not for its order (the Redis Cluster node that holds the
// order is down). The answer is 503, which the bot may retry, never 410
// "already used, cancelled or expired; ask again in the chat": the refund
// the user confirmed is on its way, and the model they were sent back to
// could only tell them a refund is already being processed. Once the order
// can be read, the same tap answers the refund's state; nothing more is
// sent.
func TestRepeatedTapWhileTheOrderCannotBeReadIsNotGone(t *testing.T) {
	const user = "o-tap-again-order-unread"
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			e := newTapEnv(t, driver, user, nil)
			if status, body := e.tap(t, user); status != http.StatusOK || body.Get("refund.status").Str != payments.RefundProcessing {
				t.Fatalf("first tap: %d %s; want 200 processing", status, body.Raw)
			}
			e.st.ordersDown.Store(true)
			status, body := e.tap(t, user)
			if status != http.StatusServiceUnavailable || body.Get("error.code").Str != "payments_unavailable" {
				t.Errorf("the tap again, its order unreadable: %d %s; want 503 payments_unavailable", status, body.Raw)
			}
			e.st.ordersDown.Store(false)
			status, body = e.tap(t, user)
			if status != http.StatusAccepted || body.Get("refund.status").Str != payments.RefundPending {
				t.Errorf("the tap again, the order readable: %d %s; want 202 pending", status, body.Raw)
			}
			if n := e.sim.RefundCount(e.orderNo); n != 1 {
				t.Errorf("refunds at WeChat Pay: %d; want 1", n)
			}
		})
	}
}
