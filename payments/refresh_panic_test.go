package payments_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// panicOnceQuery panics in its first QueryOrder, as the SDK does on some
// answers it does not expect, then asks WeChat Pay as usual.
type panicOnceQuery struct {
	*wechatpay.Client
	calls atomic.Int32
}

func (b *panicOnceQuery) QueryOrder(ctx context.Context, no string) (*wechatpay.Transaction, error) {
	if b.calls.Add(1) == 1 {
		var tx *wechatpay.Transaction
		_ = tx.TradeState // nil dereference
	}
	return b.Client.QueryOrder(ctx, no)
}

// TestActiveQueryPanicIsAFailedQuery: a panic in the background goroutine
// of a user's active query took the whole process down (every bot with it):
// it is recovered, logged, and the query fails like an error; the turn goes
// on with what is known, and the next turn queries afresh.
func TestActiveQueryPanicIsAFailedQuery(t *testing.T) {
	var b *panicOnceQuery
	e := newEnv(t, envOptions{notifyTo: "sink", storeClock: true, service: func(o *payments.Options) {
		b = &panicOnceQuery{Client: o.Backend.(*wechatpay.Client)}
		o.Backend = b
		o.ActiveQueryDeadline = 5 * time.Second
	}})
	o := e.create("oUser-refresh-panic", 1)
	if _, err := e.sim.Pay(context.Background(), o.OrderNo); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)

	start := time.Now()
	got, err := e.svc.Order(context.Background(), "shop-bot", o.User, o.OrderNo)
	if err != nil || got.Status != store.StatusAwaitingPayment {
		t.Fatalf("order after a panicking query: got %+v, %v; want it as it was, awaiting_payment", got, err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("the turn waited %s for a query that had ended; want no wait past the panic", d)
	}
	if !strings.Contains(e.logs.String(), "active query panicked") {
		t.Errorf("no log line says the active query panicked; log:\n%s", e.logs.String())
	}
	// A failed query counts in the order's gap (a failing WeChat Pay is
	// not asked again at once): the next turn past it queries afresh.
	e.clock.Advance(payments.DefaultActiveQueryAfter)
	got, err = e.svc.Order(context.Background(), "shop-bot", o.User, o.OrderNo)
	if err != nil || got.Status != store.StatusPaid {
		t.Fatalf("next turn: got %+v, %v; want paid (a fresh query, not the dead one joined)", got, err)
	}
}
