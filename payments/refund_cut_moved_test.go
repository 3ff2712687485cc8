package payments_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// beforeRecord runs hook once, before the first refund record written
// through it: what another replica does between a sweep's (or a
// confirmation's) read of an order and its record of the order's refund.
// A record written as a plain exchange (unconditionally, as a confirmation
// once wrote it) runs the hook too, so that a test shows what such a
// write does rather than a hook that never ran.
type beforeRecord struct {
	payments.Store
	once sync.Once
	hook func()
}

func (s *beforeRecord) PutExchange(ctx context.Context, key string, data []byte, ttl time.Duration) error {
	if strings.HasPrefix(key, store.RefundRecordKeyPrefix) {
		s.once.Do(s.hook)
	}
	return s.Store.PutExchange(ctx, key, data, ttl)
}

func (s *beforeRecord) PutRefundRecord(ctx context.Context, orderNo string, version int64, data []byte, ttl time.Duration) error {
	s.once.Do(s.hook)
	return s.Store.PutRefundRecord(ctx, orderNo, version, data, ttl)
}

// confirmationGoesOn is what a confirmation of refund p of order o, cut
// after spending the user's word, does when it goes on after all as of the
// order held: it records the refund as in flight and sends it to WeChat Pay.
func confirmationGoesOn(ctx context.Context, t *testing.T, e *env, o, held *store.Order, p *store.RefundProposal) {
	t.Helper()
	rec, err := json.Marshal(map[string]any{"proposal": p, "order_version": held.Version, "confirmed_at": e.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.PutExchange(ctx, "refund-inflight:"+o.OrderNo, rec, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.CreateRefund(ctx, wechatpay.RefundRequest{
		OutTradeNo: o.OrderNo, OutRefundNo: p.OutRefundNo, Reason: p.Reason, Refund: p.AmountFen, Total: o.AmountFen,
	}); err != nil {
		t.Fatal(err)
	}
}

// sweepTwice has svc sweep twice, e's clock two minutes on before each.
func sweepTwice(ctx context.Context, t *testing.T, e *env, svc *payments.Service) {
	t.Helper()
	for range 2 {
		e.clock.Advance(2 * time.Minute)
		if _, err := svc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTakenRefundOfAnOrderThatMovedOnIsNotSentBySweep: with Redis
// replicas, a confirmation spent the user's word and recorded nothing; a
// sweep past takenGrace records and sends the refund itself. The record is
// one per order, so the sweep writes it only while the order is at the
// version it read: here the confirmation, stalled past its bound, went on
// after all as the sweep was about to record, and its refund went out and
// settled. The sweep
// sends nothing under the reservation that ended: the refund is asked for
// once, counted once.
func TestTakenRefundOfAnOrderThatMovedOnIsNotSentBySweep(t *testing.T) {
	e := newEnv(t, envOptions{driver: "redis", storeClock: true})
	ctx := context.Background()
	o, p := spentAndCut(t, e, "oUser-cut-moved")
	held := e.order(o.OrderNo)
	sweeper := replicaOn(t, e, &beforeRecord{Store: e.st, hook: func() {
		// The stalled confirmation goes on: it records its refund, sends
		// it, and WeChat Pay settles it.
		confirmationGoesOn(ctx, t, e, o, held, p)
		if d, err := e.sim.CompleteRefund(ctx, p.OutRefundNo); err != nil || !d.Acked {
			t.Fatalf("refund notification: %+v %v", d, err)
		}
	}})

	sweepTwice(ctx, t, e, sweeper)

	if got := e.order(o.OrderNo); got.Status != store.StatusRefunded || got.RefundedFen != o.AmountFen {
		t.Errorf("order %s, %d fen refunded (%s); want refunded, %d", got.Status, got.RefundedFen, got.ReviewReason, o.AmountFen)
	}
	asked := 0
	for _, l := range e.sim.Requests() {
		if l.Op == "refund" {
			asked++
		}
	}
	if asked != 1 {
		t.Errorf("WeChat Pay was asked for a refund %d times; want once, by the confirmation, nothing by the sweep after the order moved on", asked)
	}
}
