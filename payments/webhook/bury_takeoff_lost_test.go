package webhook_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// takeOffAnswerLost applies the first take-off of an event from its
// delivery queue (a given-up event's: a delivered one is acknowledged by
// AckEvent) and then fails, as a store whose reply is lost after the write
// (a timeout) does; or, not applied, fails.
type takeOffAnswerLost struct {
	store.Store
	applied bool // the take-off is applied before the failure
	lost    atomic.Bool
}

func (s *takeOffAnswerLost) AckEventAt(ctx context.Context, key, id string, createdAt time.Time) error {
	if !strings.HasPrefix(key, webhook.QueuePrefix) || s.lost.Load() {
		return s.Store.AckEventAt(ctx, key, id, createdAt)
	}
	if s.applied {
		if err := s.Store.AckEventAt(ctx, key, id, createdAt); err != nil {
			return err
		}
	}
	s.lost.Store(true)
	return fmt.Errorf("reply lost: %w", store.ErrUnavailable)
}

// TestBuryTakeOffAppliedIsAGiveUp: a burial whose last step, taking the
// event off its queue, was applied though the store's answer was lost has
// given the event up: it is no longer queued, so it is never tried or
// buried again, and only this burial can count it and raise the ALERT.
// Counted as a failed attempt, the event lay as a dead letter that no
// alert and no given_up ever told of. One not applied leaves the event
// queued, and its next burial is the give-up, counted once.
func TestBuryTakeOffAppliedIsAGiveUp(t *testing.T) {
	for _, driver := range drivers(t) {
		for _, applied := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/applied=%v", driver, applied), func(t *testing.T) { buryTakeOffLost(t, driver, applied) })
		}
	}
}

func buryTakeOffLost(t *testing.T, driver string, applied bool) {
	st := &takeOffAnswerLost{Store: testdrivers.Open(t, driver, nil), applied: applied}
	clk, _, r, reg, logs := givingUp(t, st, "PGBURYLOST"+driver)
	for range 240 {
		drain(t, r)
		clk.Advance(500 * time.Millisecond)
	}
	if !st.lost.Load() {
		t.Fatal("no burial was tried")
	}
	if got := testutil.ToFloat64(deliveries(t, reg, webhook.TypeOrderApprovalRequired, webhook.OutcomeGivenUp)); got != 1 {
		t.Errorf("given_up metric %v; want 1 (the event was given up)", got)
	}
	if n := strings.Count(logs.String(), `"alert":true`); n != 1 {
		t.Errorf("%d alerts logged; want 1:\n%s", n, logs.String())
	}
	s, _ := st.OutboxStats(context.Background())
	if s.Pending != 1 || len(s.Heads) != 1 || !strings.HasPrefix(s.Heads[0].Key, webhook.DeadPrefix) {
		t.Errorf("outbox %+v; want only the dead letter of the approval_required", s)
	}
}
