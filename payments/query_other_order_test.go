package payments_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// replayingRoute is a route to WeChat Pay (an egress proxy, a cache) that
// answers the query of one order with the answer it recorded for another's:
// WeChat Pay's signature covers the answer's body, timestamp and nonce, not
// the request it answers, so the answer verifies.
type replayingRoute struct {
	mu       sync.Mutex
	recorded map[string]routedAnswer // by request path
	replay   map[string]string       // path asked → path whose answer is served
}

type routedAnswer struct {
	status int
	header http.Header
	body   []byte
}

func newReplayingRoute() *replayingRoute {
	return &replayingRoute{recorded: map[string]routedAnswer{}, replay: map[string]string{}}
}

// before puts the route before the client's WeChat Pay (newEnv's client
// hook).
func (rr *replayingRoute) before(t *testing.T) func(*wechatpay.Config) {
	return func(c *wechatpay.Config) {
		target, err := url.Parse(c.APIBase)
		if err != nil {
			t.Fatal(err)
		}
		gw := httptest.NewServer(rr.handler(target))
		t.Cleanup(gw.Close)
		c.APIBase = gw.URL
	}
}

func (rr *replayingRoute) handler(target *url.URL) http.Handler {
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(resp *http.Response) error {
		var b bytes.Buffer
		if _, err := b.ReadFrom(resp.Body); err != nil {
			return err
		}
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(b.Bytes()))
		rr.mu.Lock()
		rr.recorded[resp.Request.URL.Path] = routedAnswer{resp.StatusCode, resp.Header.Clone(), b.Bytes()}
		rr.mu.Unlock()
		return nil
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rr.mu.Lock()
		a, ok := rr.recorded[rr.replay[r.URL.Path]]
		rr.mu.Unlock()
		if !ok {
			proxy.ServeHTTP(w, r)
			return
		}
		for k, v := range a.header {
			w.Header()[k] = v
		}
		w.WriteHeader(a.status)
		_, _ = w.Write(a.body)
	})
}

// TestReconcileRefusesAQueryAnswerOfAnotherOrder: a query's answer names
// the order it is of (out_trade_no), and WeChat Pay's signature does not
// bind it to the request, so an answer of another order (a route that
// replays or caches answers) verifies. Taken for the order asked about, a
// user's unpaid order was recorded paid with another order's transaction
// (same user, app and amount: nothing disagreed), and the merchant told to
// deliver it. It is not WeChat Pay's word about this order: the order stays
// as it was, the reconcile fails, and once the route answers again the
// order is reconciled by its own answer.
func TestReconcileRefusesAQueryAnswerOfAnotherOrder(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		reconcile func(e *env, o *store.Order)
	}{
		{"sweep", func(e *env, o *store.Order) {
			if _, err := e.svc.Sweep(ctx); err != nil {
				e.t.Fatal(err)
			}
		}},
		{"user's message", func(e *env, o *store.Order) {
			e.svc.RefreshPending(ctx, []*store.Order{o})
		}},
	}
	for _, driver := range drivers(t) {
		for _, tt := range tests {
			t.Run(driver+"/"+tt.name, func(t *testing.T) {
				route := newReplayingRoute()
				e := newEnv(t, envOptions{driver: driver, client: route.before(t), service: func(o *payments.Options) {
					o.ActiveQueryDeadline = 10 * time.Second // the message waits for its query's answer
				}})
				user := "oUser-otheranswer-" + strings.ReplaceAll(tt.name, " ", "-")
				unpaid := e.create(user, 1)
				res, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "other-bot", User: user, SKU: "premium-monthly", Quantity: 1})
				if err != nil {
					t.Fatal(err)
				}
				paid := res.Order
				if d, err := e.sim.Pay(ctx, paid.OrderNo); err != nil || !d.Acked {
					t.Fatalf("pay %s: %+v %v", paid.OrderNo, d, err)
				}
				tx, err := e.client.QueryOrder(ctx, paid.OrderNo) // the route records its answer
				if err != nil || tx.TradeState != wechatpay.TradeSuccess {
					t.Fatalf("query %s: %+v %v", paid.OrderNo, tx, err)
				}
				path := func(no string) string { return "/v3/pay/transactions/out-trade-no/" + no }
				route.mu.Lock()
				route.replay[path(unpaid.OrderNo)] = path(paid.OrderNo)
				route.mu.Unlock()

				e.clock.Advance(time.Minute) // past ActiveQueryAfter, within the order's deadline
				tt.reconcile(e, unpaid)
				if got := e.order(unpaid.OrderNo); got.Status != store.StatusAwaitingPayment || got.TransactionID != "" {
					t.Errorf("unpaid order %s after a query answered with order %s's answer: %s, transaction %q; want awaiting_payment as it was",
						unpaid.OrderNo, paid.OrderNo, got.Status, got.TransactionID)
				}

				// The route fixed, the order's own answer is applied.
				route.mu.Lock()
				route.replay = map[string]string{}
				route.mu.Unlock()
				if _, err := e.sim.Pay(ctx, unpaid.OrderNo); err != nil {
					t.Fatal(err)
				}
				if got := e.order(unpaid.OrderNo); got.Status != store.StatusPaid {
					t.Errorf("order %s after its own payment: %s; want paid", unpaid.OrderNo, got.Status)
				}
			})
		}
	}
}

// TestSweepRefusesARefundQueryAnswerOfAnotherRefund: as an order's query,
// a refund's names the refund it is of (out_refund_no), unbound to the
// request by WeChat Pay's signature. Another order's refund's SUCCESS,
// replayed for this refund's query, was applied to this order. It is not
// WeChat Pay's word about this refund: the order stays refunding, and its
// own refund's word settles it.
func TestSweepRefusesARefundQueryAnswerOfAnotherRefund(t *testing.T) {
	ctx := context.Background()
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			route := newReplayingRoute()
			e := newEnv(t, envOptions{driver: driver, storeClock: true, client: route.before(t)})
			var refunds []*store.RefundProposal
			var orders []*store.Order
			for _, user := range []string{"oUser-otherrefund-a", "oUser-otherrefund-b"} {
				o := paidOrder(t, e, user, 1)
				p := propose(t, e, o, 0)
				if res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil || res.Status != payments.RefundProcessing {
					t.Fatalf("confirm %s: %+v, %v; want processing", o.OrderNo, res, err)
				}
				orders, refunds = append(orders, o), append(refunds, p)
			}
			mine, other := orders[0], orders[1]
			if d, err := e.sim.CompleteRefund(ctx, refunds[1].OutRefundNo); err != nil || !d.Acked {
				t.Fatal(d, err)
			}
			if r, err := e.client.QueryRefund(ctx, refunds[1].OutRefundNo); err != nil || r.Status != wechatpay.RefundSuccess {
				t.Fatalf("query %s: %+v %v", refunds[1].OutRefundNo, r, err) // the route records its answer
			}
			path := func(no string) string { return "/v3/refund/domestic/refunds/" + no }
			route.mu.Lock()
			route.replay[path(refunds[0].OutRefundNo)] = path(refunds[1].OutRefundNo)
			route.mu.Unlock()

			e.clock.Advance(2 * time.Minute) // its notification late (past recordedGrace): the sweep asks
			if _, err := e.svc.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			if got := e.order(mine.OrderNo); got.Status != store.StatusRefunding || got.RefundedFen != 0 {
				t.Errorf("order %s after its refund's query was answered with order %s's refund: %s, refunded %d, review %q; want refunding, nothing counted",
					mine.OrderNo, other.OrderNo, got.Status, got.RefundedFen, got.ReviewReason)
			}

			route.mu.Lock()
			route.replay = map[string]string{}
			route.mu.Unlock()
			if d, err := e.sim.CompleteRefund(ctx, refunds[0].OutRefundNo); err != nil || !d.Acked {
				t.Fatal(d, err)
			}
			if got := e.order(mine.OrderNo); got.Status != store.StatusRefunded || got.RefundedFen != mine.AmountFen {
				t.Errorf("order %s after its own refund's notification: %s, refunded %d; want refunded %d", mine.OrderNo, got.Status, got.RefundedFen, mine.AmountFen)
			}
		})
	}
}

// TestConfirmRefusesARefundCreateAnswerOfAnotherRefund: a refund's create
// is answered with the refund (out_refund_no, out_trade_no, amounts), and
// as a query's, WeChat Pay's signature does not bind the answer to the
// request. A route that replays answers handed a confirmation the SUCCESS
// of another refund, which paygate applied as its own: of another order's,
// the order was sent to review; of an earlier partial refund of the same
// order, the user was told their refund succeeded while it was never sent.
// It is not WeChat Pay's word about this refund: its outcome is unknown
// (pending), nothing is counted, and the sweep asks by its own number.
func TestConfirmRefusesARefundCreateAnswerOfAnotherRefund(t *testing.T) {
	ctx := context.Background()
	const create = "/v3/refund/domestic/refunds"
	tests := []struct {
		name string
		// other is the refund whose SUCCESS the route replays, made and
		// settled; mine is the order whose confirmation gets it.
		setup func(t *testing.T, e *env) (mine *store.Order, other *store.RefundProposal)
	}{
		{"another order's refund", func(t *testing.T, e *env) (*store.Order, *store.RefundProposal) {
			o := paidOrder(t, e, "oUser-othercreate-b", 1)
			p := propose(t, e, o, 0)
			if res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil || res.Status != payments.RefundProcessing {
				t.Fatalf("confirm %s: %+v, %v; want processing", o.OrderNo, res, err)
			}
			return paidOrder(t, e, "oUser-othercreate-a", 1), p
		}},
		{"an earlier refund of the same order", func(t *testing.T, e *env) (*store.Order, *store.RefundProposal) {
			o := paidOrder(t, e, "oUser-othercreate-same", 2)
			p := propose(t, e, o, o.AmountFen/2)
			if res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil || res.Status != payments.RefundProcessing {
				t.Fatalf("confirm %s: %+v, %v; want processing", o.OrderNo, res, err)
			}
			return o, p
		}},
	}
	for _, driver := range drivers(t) {
		for _, tt := range tests {
			t.Run(driver+"/"+tt.name, func(t *testing.T) {
				route := newReplayingRoute()
				e := newEnv(t, envOptions{driver: driver, storeClock: true, client: route.before(t)})
				mine, other := tt.setup(t, e)
				if d, err := e.sim.CompleteRefund(ctx, other.OutRefundNo); err != nil || !d.Acked {
					t.Fatal(d, err)
				}
				// The same create sent again is answered with the refund
				// as it stands (SUCCESS), which the route records.
				otherOrder := e.order(other.OrderNo)
				if r, err := e.client.CreateRefund(ctx, wechatpay.RefundRequest{
					OutTradeNo: other.OrderNo, OutRefundNo: other.OutRefundNo, Refund: other.AmountFen, Total: otherOrder.AmountFen,
				}); err != nil || r.Status != wechatpay.RefundSuccess {
					t.Fatalf("create %s again: %+v %v", other.OutRefundNo, r, err)
				}
				mine = e.order(mine.OrderNo)
				before := mine.RefundedFen
				p := propose(t, e, mine, 0)
				route.mu.Lock()
				route.replay[create] = create
				route.mu.Unlock()

				res, err := e.svc.ConfirmRefund(ctx, "shop-bot", mine.User, p.RefundID)
				got := e.order(mine.OrderNo)
				if err != nil || res.Status == payments.RefundSucceeded || got.Status != store.StatusRefunding || got.RefundedFen != before {
					t.Errorf("confirm of %s (%d fen) answered with refund %s's SUCCESS: %+v, %v; order %s, refunded %d, review %q; want not succeeded, refunding, refunded %d",
						p.OutRefundNo, p.AmountFen, other.OutRefundNo, res, err, got.Status, got.RefundedFen, got.ReviewReason, before)
				}

				// The route fixed, the sweep asks by its own number and
				// sends it; its own SUCCESS settles it.
				route.mu.Lock()
				route.replay = map[string]string{}
				route.mu.Unlock()
				e.clock.Advance(2 * time.Minute)
				if _, err := e.svc.Sweep(ctx); err != nil {
					t.Fatal(err)
				}
				if d, err := e.sim.CompleteRefund(ctx, p.OutRefundNo); err != nil || !d.Acked {
					t.Fatal(d, err)
				}
				if got := e.order(mine.OrderNo); got.Status != store.StatusRefunded || got.RefundedFen != mine.AmountFen {
					t.Errorf("order %s after its own refund's notification: %s, refunded %d; want refunded %d", mine.OrderNo, got.Status, got.RefundedFen, mine.AmountFen)
				}
			})
		}
	}
}
