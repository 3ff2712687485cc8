package payments_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// refusingRT answers the WeChat Pay requests refuse picks (by method, path
// and how many of that method and path came before, from 1) with a 403
// NO_AUTH refusal, and passes every other to the simulator.
type refusingRT struct {
	mu     sync.Mutex
	seen   map[string]int
	refuse func(method, path string, nth int) bool
}

func (r *refusingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	key := req.Method + " " + req.URL.Path
	r.mu.Lock()
	if r.seen == nil {
		r.seen = map[string]int{}
	}
	r.seen[key]++
	nth := r.seen[key]
	r.mu.Unlock()
	if r.refuse(req.Method, req.URL.Path, nth) {
		body := `{"code":"NO_AUTH","message":"商户无权限"}`
		return &http.Response{StatusCode: http.StatusForbidden, Status: "403 Forbidden", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body)),
			ContentLength: int64(len(body)), Request: req}, nil
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestRefundTimedOutThenQueryRefusedStaysPending: the refund create reaches
// WeChat Pay and its answer is lost (timeout); the query by the same
// out_refund_no that follows is refused (403). WeChat Pay holds the refund,
// so the confirmation is pending, not "refused, nothing was refunded": the
// order stays refunding (no second proposal can send a second refund under
// another number), and the sweep asks again by the same number.
func TestRefundTimedOutThenQueryRefusedStaysPending(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			rt := &refusingRT{refuse: func(method, path string, nth int) bool {
				return method == http.MethodGet && strings.HasPrefix(path, "/v3/refund/domestic/refunds/") && nth == 1
			}}
			e := newEnv(t, envOptions{driver: driver, storeClock: true, client: func(c *wechatpay.Config) {
				c.Transport = rt
				c.AttemptTimeout = faultAttemptTimeout
			}})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-timeout-refused", 1) // 49.99
			p := propose(t, e, o, 2000)
			e.sim.InjectFault(wxsim.Fault{Op: "refund", Kind: wxsim.FaultTimeout})
			// The sweep asks by the same number, finds it processing, sends nothing.
			confirmPendingThenSweep(t, e, o, p)
			if d, err := e.sim.CompleteRefund(ctx, p.OutRefundNo); err != nil || !d.Acked {
				t.Fatalf("refund notification: %+v %v", d, err)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusPartiallyRefunded || got.RefundedFen != 2000 {
				t.Errorf("after the notification: %s %d; want partially_refunded 2000", got.Status, got.RefundedFen)
			}
			if n := e.sim.RefundCount(o.OrderNo); n != 1 {
				t.Errorf("refunds at WeChat Pay: %d; want 1", n)
			}
			for _, l := range e.sim.Requests() {
				if l.Op == "refund" && l.OutRefundNo != p.OutRefundNo {
					t.Errorf("a refund request under another number: %s", l.OutRefundNo)
				}
			}
		})
	}
}

// revertFails is a store whose first write taking an order from refunding
// back to paid fails: before writing (nothing changed) or, with lostReply,
// after writing it (the reply was lost).
type revertFails struct {
	fullStore
	lostReply bool
	failed    atomic.Bool
}

func (s *revertFails) UpdateOrder(ctx context.Context, o *store.Order, expect store.OrderStatus, events ...store.Event) error {
	if expect != store.StatusRefunding || o.Status != store.StatusPaid || s.failed.Swap(true) {
		return s.fullStore.UpdateOrder(ctx, o, expect, events...)
	}
	return failWrite(s.lostReply, func() error { return s.fullStore.UpdateOrder(ctx, o, expect, events...) })
}

// failWrite is a store's failure of write: made and its reply lost (made),
// or refused before it was made; either is store.ErrUnavailable.
func failWrite(made bool, write func() error) error {
	if made {
		if err := write(); err != nil {
			return err
		}
	}
	return fmt.Errorf("the write's reply was lost: %w", store.ErrUnavailable)
}

// TestRefusedRefundIsFailedOnlyOnceRestored: WeChat Pay refuses the refund
// (403) and putting the order back to paid fails. The order is still
// refunding with its refund recorded, so the sweep will ask WeChat Pay and
// send it again under the same out_refund_no: the user, told "refused,
// nothing was refunded" (502 refund_failed), would see it refunded after
// all. The confirmation is pending instead, and what the sweep does next is
// what the user hears of. Told refused only once the order is paid again
// (the write's reply was lost, but it was made), nothing is sent again.
func TestRefusedRefundIsFailedOnlyOnceRestored(t *testing.T) {
	for _, driver := range drivers(t) {
		for _, lost := range []bool{false, true} {
			name := driver + "/revert not written"
			if lost {
				name = driver + "/revert written, its reply lost"
			}
			t.Run(name, func(t *testing.T) {
				rt := &refusingRT{refuse: func(method, path string, nth int) bool {
					return method == http.MethodPost && path == "/v3/refund/domestic/refunds" && nth == 1
				}}
				var st *revertFails
				e := newEnv(t, envOptions{driver: driver, storeClock: true,
					client: func(c *wechatpay.Config) { c.Transport = rt },
					service: func(o *payments.Options) {
						st = &revertFails{fullStore: o.Store.(fullStore), lostReply: lost}
						o.Store = st
					}})
				ctx := context.Background()
				o := paidOrder(t, e, "oUser-refused-stuck", 1)
				p := propose(t, e, o, 0)
				res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
				if !st.failed.Load() {
					t.Fatalf("confirm: %+v, %v; the order was never put back (the test means the refund refused)", res, err)
				}
				told := errors.Is(err, payments.ErrRefundFailed)
				switch {
				case lost && (!told || res.Order.Status != store.StatusPaid):
					t.Errorf("confirm: %+v, %v; want ErrRefundFailed with the order paid again", res, err)
				case !lost && (err != nil || res.Status != payments.RefundPending):
					t.Errorf("confirm: %+v, %v; want pending, the order still refunding (the sweep sends it again)", res, err)
				}
				e.clock.Advance(2 * time.Minute)
				if _, err := e.svc.Sweep(ctx); err != nil {
					t.Fatal(err)
				}
				sent := e.sim.RefundCount(o.OrderNo)
				if told && sent != 0 {
					t.Errorf("the user was told nothing was refunded, and the sweep sent the refund: %d at WeChat Pay", sent)
				}
				if !told && sent != 1 {
					t.Errorf("pending: refunds at WeChat Pay after the sweep %d; want 1, under the same number", sent)
				}
				for _, l := range e.sim.Requests() {
					if l.Op == "refund" && l.OutRefundNo != p.OutRefundNo {
						t.Errorf("a refund request under another number: %s", l.OutRefundNo)
					}
				}
			})
		}
	}
}

// confirmPendingThenSweep confirms p, whose refund create's outcome is
// unknown, and checks what an unknown outcome must leave: the confirmation
// pending, the order refunding and held for p (a second proposal refused, so
// no second refund goes out under another number), and still refunding
// after a sweep two minutes on, which asks WeChat Pay by the same number.
func confirmPendingThenSweep(t *testing.T, e *env, o *store.Order, p *store.RefundProposal) {
	t.Helper()
	ctx := context.Background()
	res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
	if err != nil || res.Status != payments.RefundPending {
		t.Fatalf("confirm: %v, %v; want pending (WeChat Pay may hold the refund)", resStatus(res), err)
	}
	if got := e.order(o.OrderNo); got.Status != store.StatusRefunding || got.RefundReservedBy != p.RefundID {
		t.Fatalf("order %s reserved by %q; want refunding, held for %s", got.Status, got.RefundReservedBy, p.RefundID)
	}
	if _, _, err := e.svc.ProposeRefund(ctx, payments.RefundRequest{Client: "shop-bot", User: o.User, OrderNo: o.OrderNo, Reason: "again", AmountFen: 2000}); !errors.Is(err, payments.ErrRefundInProgress) {
		t.Errorf("a second proposal while WeChat Pay holds the first: %v; want ErrRefundInProgress", err)
	}
	e.clock.Advance(2 * time.Minute)
	if _, err := e.svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.order(o.OrderNo); got.Status != store.StatusRefunding {
		t.Errorf("after the sweep: order %s; want refunding", got.Status)
	}
}
