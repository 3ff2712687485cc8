package payments_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// adoptStore is a store whose first ConsumeRefundProposal fails (a
// confirmation that reserved its order and stopped there, as a dead
// process leaves it), and whose first read of a refund record, once armed,
// is held until goOn is closed: a sweep that adopted its order and has not
// yet read its refund.
type adoptStore struct {
	fullStore
	mu       sync.Mutex
	consumed bool
	armed    bool
	held     chan struct{}
	goOn     chan struct{}
}

func (a *adoptStore) ConsumeRefundProposal(ctx context.Context, id, user string, evs ...store.Event) (*store.RefundProposal, error) {
	a.mu.Lock()
	first := !a.consumed
	a.consumed = true
	a.mu.Unlock()
	if first {
		return nil, errors.New("write refused")
	}
	return a.fullStore.ConsumeRefundProposal(ctx, id, user, evs...)
}

func (a *adoptStore) GetExchange(ctx context.Context, key string) ([]byte, error) {
	a.mu.Lock()
	hold := a.armed && strings.HasPrefix(key, "refund-inflight:")
	if hold {
		a.armed = false
	}
	a.mu.Unlock()
	if hold {
		close(a.held)
		<-a.goOn
	}
	return a.fullStore.GetExchange(ctx, key)
}

// waitLogged closes seen on the first record whose message has substr.
type waitLogged struct {
	slog.Handler
	substr string
	once   *sync.Once
	seen   chan struct{}
}

func (w waitLogged) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, w.substr) {
		w.once.Do(func() { close(w.seen) })
	}
	return w.Handler.Handle(ctx, r)
}

func (w waitLogged) WithAttrs(as []slog.Attr) slog.Handler {
	w.Handler = w.Handler.WithAttrs(as)
	return w
}

func (w waitLogged) WithGroup(g string) slog.Handler {
	w.Handler = w.Handler.WithGroup(g)
	return w
}

// TestConfirmationWaitsForTheSweepThatAdoptedItsOrder: with the embedded
// store the sweep takes a refunding order no confirmation works on as its
// own (adopt) and reconciles it. A user's tap that goes on under the
// reservation a stopped confirmation left did not look at that mark: it
// recorded the refund and sent it while the sweep, having read the refund
// record, asked WeChat Pay about it (unknown: the tap's call was on its
// way) and sent it too, under the same number. WeChat Pay refused the
// sweep's (not enough balance) and took the tap's a moment later: the
// sweep put the order back to paid while its refund was going through, and
// the user, told it was processing, had an order another proposal could
// refund again.
func TestConfirmationWaitsForTheSweepThatAdoptedItsOrder(t *testing.T) {
	rt := &refusingRT{refuse: func(method, path string, nth int) bool {
		return method == http.MethodPost && path == "/v3/refund/domestic/refunds" && nth == 1
	}}
	var st *adoptStore
	var be *heldRefund
	waiting := make(chan struct{})
	e := newEnv(t, envOptions{driver: "embedded", storeClock: true,
		client: func(c *wechatpay.Config) { c.Transport = rt },
		service: func(o *payments.Options) {
			o.SoleWriter = true
			st = &adoptStore{fullStore: o.Store.(fullStore), held: make(chan struct{}), goOn: make(chan struct{})}
			o.Store = st
			be = &heldRefund{Backend: o.Backend, at: make(chan struct{}), release: make(chan struct{})}
			o.Backend = be
			o.Logger = slog.New(waitLogged{Handler: o.Logger.Handler(), substr: "waits for the sweep", once: &sync.Once{}, seen: waiting})
		}})
	ctx := context.Background()
	o := paidOrder(t, e, "oUser-adopted", 1)
	p := propose(t, e, o, 0)

	// The first tap reserves the order and stops: refunding, no refund
	// recorded, the proposal still open.
	if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err == nil {
		t.Fatal("first confirmation: want its consumption's error")
	}
	if got := e.order(o.OrderNo); got.Status != store.StatusRefunding {
		t.Fatalf("after the stopped tap the order is %s; want refunding", got.Status)
	}

	st.mu.Lock()
	st.armed = true
	st.mu.Unlock()
	swept := make(chan error, 1)
	go func() {
		_, err := e.svc.Sweep(ctx)
		swept <- err
	}()
	<-st.held // the sweep adopted the order and is about to read its refund

	type answer struct {
		res *payments.RefundResult
		err error
	}
	confirmed := make(chan answer, 1)
	go func() {
		res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
		confirmed <- answer{res, err}
	}()
	select {
	case <-be.at: // the tap went on beside the sweep: its refund is on its way
		close(st.goOn)
		if err := <-swept; err != nil {
			t.Fatal(err)
		}
		close(be.release)
	case <-waiting: // the tap waits for the sweep
		close(be.release)
		close(st.goOn)
		if err := <-swept; err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the tap neither sent its refund nor waited for the sweep")
	}
	a := <-confirmed
	got := e.order(o.OrderNo)
	refunds := e.sim.RefundCount(o.OrderNo)
	switch {
	case errors.Is(a.err, payments.ErrRefundFailed):
		if refunds != 0 || got.Status != store.StatusPaid {
			t.Errorf("the user was told the refund failed; %d refunds at WeChat Pay, order %s", refunds, got.Status)
		}
	case a.err == nil:
		if refunds != 1 || got.Status == store.StatusPaid {
			t.Errorf("the user was told the refund is %s; %d refunds at WeChat Pay, order %s (paid: refundable again)", a.res.Status, refunds, got.Status)
		}
	default:
		t.Fatalf("second confirmation: %v", a.err)
	}
	for _, l := range e.sim.Requests() {
		if l.Op == "refund" && !strings.EqualFold(l.OutRefundNo, p.OutRefundNo) {
			t.Errorf("a refund under another number: %s", l.OutRefundNo)
		}
	}
}
