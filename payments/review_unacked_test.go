package payments_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// reviewWriteUnacked applies the first write that puts an order in
// needs_review (an orphan's record, or an order's move to review) and
// reports the store unavailable, as the Redis driver does when WAIT sees
// too few replicas in time (store.redis.wait_replicas): applied, and the
// order carries its new version.
type reviewWriteUnacked struct {
	fullStore
	mu   sync.Mutex
	done bool
}

func (p *reviewWriteUnacked) takeFirst(o *store.Order) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done || o.Status != store.StatusNeedsReview {
		return false
	}
	p.done = true
	return true
}

var errUnreplicated = fmt.Errorf("redis: written, not replicated in time: %w", store.ErrUnavailable)

func (p *reviewWriteUnacked) CreateOrder(ctx context.Context, o *store.Order, ev ...store.Event) error {
	first := p.takeFirst(o)
	if err := p.fullStore.CreateOrder(ctx, o, ev...); err != nil || !first {
		return err
	}
	return errUnreplicated
}

func (p *reviewWriteUnacked) UpdateOrder(ctx context.Context, o *store.Order, expect store.OrderStatus, ev ...store.Event) error {
	first := p.takeFirst(o)
	if err := p.fullStore.UpdateOrder(ctx, o, expect, ev...); err != nil || !first {
		return err
	}
	return errUnreplicated
}

// TestReviewWriteUnackedIsRaised: WeChat Pay's word that disagrees with the
// records (a payment for an unknown order, an amount that is not the
// order's) is raised loudly (SPEC 2.4: log, metric, audit, webhook) also
// when the store applied its record but did not confirm it. The
// notification is answered 500, and WeChat Pay's retry finds the record
// written, a duplicate: the retry (or the sweep) announces it then
// (Options.Committed, the transitions metric) with the alert its first
// answer never logged. Before, an orphan so recorded was never announced
// nor alerted on at all, and an order put in review had no alert.
func TestReviewWriteUnackedIsRaised(t *testing.T) {
	for _, driver := range drivers(t) {
		for _, tc := range []struct {
			name   string
			orphan bool
		}{{name: "orphan", orphan: true}, {name: "amount mismatch"}} {
			t.Run(driver+"/"+tc.name, func(t *testing.T) {
				e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
					o.Store = &reviewWriteUnacked{fullStore: o.Store.(fullStore)}
				}})
				var o *store.Order
				if tc.orphan {
					o = &store.Order{OrderNo: "PGghostUnacked0000001", AppID: e.sim.AppID(), User: "oGhost", AmountFen: 777}
				} else {
					o = e.create("oUser-review-unacked", 1)
				}
				tx := e.paidTx(o)
				tx.Amount.Total = 777 // the order's own 4999 otherwise
				n := e.buildPayment(tx, nil)
				if s, body := e.post(n.Header, n.Body); s != http.StatusInternalServerError {
					t.Fatalf("notification: %d %s; want 500 (WeChat Pay retries)", s, body)
				}
				if s, body := e.post(n.Header, n.Body); s != http.StatusNoContent { // WeChat Pay's retry
					t.Fatalf("retry: %d %s; want 204", s, body)
				}
				if _, err := e.svc.Sweep(context.Background()); err != nil {
					t.Fatal(err)
				}
				if got := e.order(o.OrderNo); got.Status != store.StatusNeedsReview {
					t.Fatalf("order %s; want needs_review", got.Status)
				}
				announced := 0
				for done := false; !done; {
					select {
					case tr := <-e.transitions():
						if tr.After.OrderNo == o.OrderNo && tr.After.Status == store.StatusNeedsReview {
							announced++
						}
					default:
						done = true
					}
				}
				if announced != 1 {
					t.Errorf("Committed saw %d moves into needs_review; want 1", announced)
				}
				if got := e.counter("paygate_order_transitions_total", map[string]string{"to": "needs_review"}); got != 1 {
					t.Errorf("transitions to needs_review counted: %v; want 1", got)
				}
				alerts := 0
				for _, line := range strings.Split(e.logs.String(), "\n") {
					var rec map[string]any
					if json.Unmarshal([]byte(line), &rec) == nil && rec["alert"] == true && rec["level"] == "ERROR" &&
						(rec["order_no"] == o.OrderNo || rec["out_trade_no"] == o.OrderNo) {
						alerts++
					}
				}
				if alerts != 1 {
					t.Errorf("%d alerts name order %s; want 1. Log:\n%s", alerts, o.OrderNo, e.logs.String())
				}
			})
		}
	}
}
