package payments_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// firstPrepayHeld holds the first prepay request until release is closed,
// saying on reached when it came, and counts every request to WeChat Pay
// after it (a query, another prepay).
type firstPrepayHeld struct {
	reached, release chan struct{}
	prepays, after   atomic.Int32
}

func (h *firstPrepayHeld) RoundTrip(r *http.Request) (*http.Response, error) {
	prepay := r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/pay/transactions/") && !strings.HasSuffix(r.URL.Path, "/close")
	if prepay && h.prepays.Add(1) == 1 {
		close(h.reached)
		<-h.release
	} else {
		h.after.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// approveWhilePrepayHeld approves order no on e, and returns once its
// prepay is held by h; the approval's outcome comes on the channel after
// h.release is closed.
func approveWhilePrepayHeld(t *testing.T, e *env, h *firstPrepayHeld, no string) <-chan error {
	t.Helper()
	approved := make(chan error, 1)
	go func() {
		_, err := e.svc.Approve(context.Background(), no)
		approved <- err
	}()
	select {
	case <-h.reached:
	case err := <-approved:
		t.Fatalf("the approval's prepay never came: approve returned %v", err)
	}
	return approved
}

// TestApprovedOrderNotPrepaidAgainWhileApproving: a manager approves an
// order held for a minute, and while the approval's prepay is on its way
// to WeChat Pay the customer asks for the purchase again (or the sweep, or
// the customer's turn on another replica, reads the order). The order is
// `creating` since the approval, but was created a minute ago: judged by
// its creation time it was past CreatingGrace, taken for one a crash left
// half made, and prepaid a second time beside the approval's own. The
// customer's ask waits for the approval's prepay, and WeChat Pay sees one.
func TestApprovedOrderNotPrepaidAgainWhileApproving(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			h := &firstPrepayHeld{reached: make(chan struct{}), release: make(chan struct{})}
			e := newEnv(t, envOptions{driver: driver, storeClock: true, client: func(c *wechatpay.Config) {
				// The held prepay is one attempt: not retried while held.
				c.Transport, c.AttemptTimeout = h, 10*time.Second
			},
				service: func(o *payments.Options) { o.Rules.ApprovalAboveFen = payments.FenPtr(5000) }})
			ctx := context.Background()
			req := payments.CreateRequest{Client: "shop-bot", User: "oUser-approve-reask", SKU: "premium-monthly", Quantity: 2}
			held, err := e.svc.CreateOrder(ctx, req)
			if err != nil || held.Order.Status != store.StatusApprovalRequired {
				t.Fatalf("held order: %+v, %v", held, err)
			}
			no := held.Order.OrderNo
			e.clock.Advance(time.Minute) // the manager comes a minute later
			approved := approveWhilePrepayHeld(t, e, h, no)
			// The customer asks while the approval's prepay is held: a bot
			// whose HTTP client gives up after a second. Nothing of the ask may
			// reach WeChat Pay: the order is the approval's to open.
			askCtx, cancel := context.WithTimeout(ctx, time.Second)
			_, askErr := e.svc.CreateOrder(askCtx, req)
			cancel()
			if n := h.after.Load(); n != 0 {
				t.Errorf("the customer's ask during the approval made %d requests to WeChat Pay (%d prepays so far); want none (it returned %v)", n, h.prepays.Load(), askErr)
			}
			close(h.release)
			if err := <-approved; err != nil {
				t.Fatalf("approve: %v", err)
			}
			again, err := e.svc.CreateOrder(ctx, req)
			if err != nil || again.Order.OrderNo != no || again.Payment == nil {
				t.Errorf("the customer's ask after the approval: %+v, %v; want order %s with its payment parameters", again, err, no)
			}
			if n := h.prepays.Load(); n != 1 {
				t.Errorf("%d prepays of %s; want the approval's alone", n, no)
			}
			if got := e.order(no); got.Status != store.StatusAwaitingPayment {
				t.Errorf("order %s after the approval; want awaiting_payment", got.Status)
			}
		})
	}
}
