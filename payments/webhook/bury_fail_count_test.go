package webhook_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// deadKeepFails fails the first write of a dead letter: a store that
// blinks as the relay buries a given-up event.
type deadKeepFails struct {
	store.Store
	failed atomic.Bool
}

func (s *deadKeepFails) EnqueueEventsOnce(ctx context.Context, evs []store.Event, with ...store.Event) ([]string, error) {
	if len(evs) > 0 && strings.HasPrefix(evs[0].Key, webhook.DeadPrefix) && s.failed.CompareAndSwap(false, true) {
		return nil, errors.New("store blinked")
	}
	return s.Store.EnqueueEventsOnce(ctx, evs, with...)
}

// TestBuryFailureIsNoGiveUp: an event past its last attempt whose burial
// the store refuses is not given up yet: it stays on its queue and is
// tried, and buried, again once its lease runs out. It was counted
// given_up and raised the ALERT at the failed burial, then again at the
// burial that held: paygate_webhook_deliveries_total read two give-ups
// and the operator was paged twice for one event kept as one dead letter.
func TestBuryFailureIsNoGiveUp(t *testing.T) {
	st := &deadKeepFails{Store: testdrivers.Open(t, "embedded", nil)}
	clk, rc, r, reg, logs := givingUp(t, st, "PGBURYFAIL")
	for range 240 {
		drain(t, r)
		clk.Advance(500 * time.Millisecond)
	}
	if !st.failed.Load() {
		t.Fatal("no burial was tried")
	}
	if got := testutil.ToFloat64(deliveries(t, reg, webhook.TypeOrderApprovalRequired, webhook.OutcomeGivenUp)); got != 1 {
		t.Errorf("given_up metric %v; want 1 (one event given up)", got)
	}
	if n := strings.Count(logs.String(), `"alert":true`); n != 1 {
		t.Errorf("%d alerts logged; want 1:\n%s", n, logs.String())
	}
	acc := rc.accepted()
	if len(acc) != 1 || acc[0].typ != webhook.TypeOrderClosed {
		t.Errorf("accepted %+v; want the order.closed that followed the given-up event", acc)
	}
	s, _ := st.OutboxStats(context.Background())
	if s.Pending != 1 || len(s.Heads) != 1 || !strings.HasPrefix(s.Heads[0].Key, webhook.DeadPrefix) {
		t.Errorf("outbox %+v; want only the dead letter of the approval_required", s)
	}
}
