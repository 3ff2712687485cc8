package payments_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
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
				c.AttemptTimeout = 300 * time.Millisecond
			}})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-timeout-refused", 1) // 49.99
			p := propose(t, e, o, 2000)
			e.sim.InjectFault(wxsim.Fault{Op: "refund", Kind: wxsim.FaultTimeout})
			res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
			if err != nil || res.Status != payments.RefundPending {
				t.Fatalf("confirm: %+v, %v; want pending (WeChat Pay may hold the refund)", res, err)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusRefunding || got.RefundReservedBy != p.RefundID {
				t.Fatalf("order %s reserved by %q; want refunding, held for %s", got.Status, got.RefundReservedBy, p.RefundID)
			}
			if _, _, err := e.svc.ProposeRefund(ctx, payments.RefundRequest{Client: "shop-bot", User: o.User, OrderNo: o.OrderNo, Reason: "again", AmountFen: 2000}); !errors.Is(err, payments.ErrRefundInProgress) {
				t.Errorf("a second proposal while WeChat Pay holds the first: %v; want ErrRefundInProgress", err)
			}
			// The sweep asks by the same number, finds it processing, sends nothing.
			e.clock.Advance(2 * time.Minute)
			if _, err := e.svc.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusRefunding {
				t.Errorf("after the sweep: order %s; want refunding", got.Status)
			}
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
