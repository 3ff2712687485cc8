package payments_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// pausedList is a store whose next listing of status, once armed, is read
// and then held (listed) until go is closed: a sweep that read a page and
// has not yet come to its order.
type pausedList struct {
	fullStore
	status store.OrderStatus
	armed  chan struct{} // closed: the next listing of status is held
	listed chan struct{}
	goOn   chan struct{}
}

func (p *pausedList) ListOrders(ctx context.Context, f store.OrderFilter) ([]*store.Order, error) {
	page, err := p.fullStore.ListOrders(ctx, f)
	if f.Status != p.status {
		return page, err
	}
	select {
	case <-p.armed:
	default:
		return page, err
	}
	select {
	case <-p.listed:
		return page, err // held once
	default:
	}
	close(p.listed)
	<-p.goOn
	return page, err
}

// heldRefund is a backend whose first CreateRefund waits for release
// before it reaches WeChat Pay.
type heldRefund struct {
	payments.Backend
	at      chan struct{}
	release chan struct{}
	n       int
}

func (h *heldRefund) CreateRefund(ctx context.Context, req wechatpay.RefundRequest) (*wechatpay.Refund, error) {
	if h.n++; h.n == 1 {
		close(h.at)
		<-h.release
	}
	return h.Backend.CreateRefund(ctx, req)
}

// TestSweepOfARefundingSnapshotSendsNoRefusedRefund: with the embedded
// store (SoleWriter) a refunding order no confirmation works on is
// reconciled by the sweep at once. The sweep judged that by the order as
// its page listed it: a confirmation working on it then, which WeChat Pay
// refused and which put the order back to paid and told the user nothing
// was refunded, had left by the time the sweep came to it. The sweep asked
// WeChat Pay about the refund (unknown: it was refused) and sent it again,
// a refund the user was told had failed, while the order is paid and can
// be refunded again under another number.
func TestSweepOfARefundingSnapshotSendsNoRefusedRefund(t *testing.T) {
	for _, tc := range []struct {
		name string
		age  time.Duration // how long before the sweep the order was reserved
	}{
		{"reserved just now", 0},
		// A tap that goes on under a reservation a dead process made
		// (reservedFor) writes nothing to the order: it is as old as that
		// reservation while the tap is at WeChat Pay.
		{"reserved a while ago", 2 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) { sweepOfARefundingSnapshot(t, tc.age) })
	}
}

func sweepOfARefundingSnapshot(t *testing.T, age time.Duration) {
	rt := &refusingRT{refuse: func(method, path string, nth int) bool {
		return method == http.MethodPost && path == "/v3/refund/domestic/refunds" && nth == 1
	}}
	var st *pausedList
	var be *heldRefund
	e := newEnv(t, envOptions{driver: "embedded", storeClock: true,
		client: func(c *wechatpay.Config) { c.Transport = rt },
		service: func(o *payments.Options) {
			o.SoleWriter = true
			st = &pausedList{fullStore: o.Store.(fullStore), status: store.StatusRefunding,
				armed: make(chan struct{}), listed: make(chan struct{}), goOn: make(chan struct{})}
			o.Store = st
			be = &heldRefund{Backend: o.Backend, at: make(chan struct{}), release: make(chan struct{})}
			o.Backend = be
		}})
	ctx := context.Background()
	o := paidOrder(t, e, "oUser-stale-sweep", 1)
	p := propose(t, e, o, 0)

	confirmed := make(chan error, 1)
	go func() {
		_, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
		confirmed <- err
	}()
	<-be.at // refunding, its refund recorded, on its way to WeChat Pay
	e.clock.Advance(age)
	close(st.armed)
	swept := make(chan error, 1)
	go func() {
		_, err := e.svc.Sweep(ctx)
		swept <- err
	}()
	<-st.listed // the sweep holds the order as refunding
	close(be.release)
	if err := <-confirmed; !errors.Is(err, payments.ErrRefundFailed) {
		t.Fatalf("confirm: %v; want ErrRefundFailed (WeChat Pay refused it)", err)
	}
	if got := e.order(o.OrderNo); got.Status != store.StatusPaid {
		t.Fatalf("after the refusal the order is %s; want paid", got.Status)
	}
	close(st.goOn)
	select {
	case err := <-swept:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sweep did not end")
	}
	if n := e.sim.RefundCount(o.OrderNo); n != 0 {
		t.Errorf("the user was told the refund failed, and the sweep sent it: %d refunds at WeChat Pay", n)
	}
	if got := e.order(o.OrderNo); got.Status != store.StatusPaid {
		t.Errorf("order %s after the sweep; want paid", got.Status)
	}
	for _, l := range e.sim.Requests() {
		if l.Op == "refund" && !strings.EqualFold(l.OutRefundNo, p.OutRefundNo) {
			t.Errorf("a refund under another number: %s", l.OutRefundNo)
		}
	}
}
