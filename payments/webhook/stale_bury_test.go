package webhook_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestStalledRelaysLastAttemptLeavesAnotherRelaysDelivery: relay A's last
// attempt at an order.paid stalls past its lease; relay B (another
// replica) claims the event and POSTs it; A's POST then fails, and A
// gives the event up while B's POST is still in flight. A's burial must
// not take the event B holds: written under B's lease, it kept a dead
// letter and took the event off its queue, so B's 2xx found nothing to
// acknowledge, and an event the merchant had was listed as given up with
// an ALERT, paging the operator for an order that was delivered.
func TestStalledRelaysLastAttemptLeavesAnotherRelaysDelivery(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			clk := newClock()
			st := testdrivers.Open(t, driver, nil)
			reg := prometheus.NewRegistry()
			var logs logtest.Buffer
			var ra, rb *webhook.Relay
			srv := newStall(t, ctx, clk, &ra, &rb, nil)
			ra = newRelay(t, st, srv.URL, clk.Now, func(o *webhook.Options) {
				o.Registerer = reg
				o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
			})
			rb = newRelay(t, st, srv.URL, clk.Now, nil)
			o := orders{t, st}.create("PSTALEBURY"+driver, store.StatusAwaitingPayment)
			ev := webhook.NewEvent(webhook.TypeOrderPaid, o, nil, clk.Now())
			ev.Key = webhook.QueuePrefix + o.OrderNo
			ev.Attempts = ra.MaxAttempts() - 1 // A's POST is its last attempt
			if err := st.EnqueueEvents(ctx, ev); err != nil {
				t.Fatal(err)
			}
			ra.RunOnce(ctx) // A's last POST fails; it would give the event up
			close(srv.answer)
			<-srv.done
			if n := srv.posts.Load(); n != 2 {
				t.Fatalf("%d POSTs; want 2 (A's stalled one and B's)", n)
			}
			if dead := getAdminView(t, ra).DeadLetters; len(dead) != 0 {
				t.Errorf("dead letters %+v; want none (B's POST delivered the event)", dead)
			}
			if got := testutil.ToFloat64(deliveries(t, reg, webhook.TypeOrderPaid, webhook.OutcomeGivenUp)); got != 0 {
				t.Errorf("given_up metric %v; want 0", got)
			}
			if n := strings.Count(logs.String(), `"alert":true`); n != 0 {
				t.Errorf("%d alerts logged; want none:\n%s", n, logs.String())
			}
			if l := logs.String(); !strings.Contains(l, "another relay claimed it meanwhile") || strings.Contains(l, "tried again") {
				t.Errorf("log:\n%s\nwant A's give-up left to the relay that claimed the event, not tried again", l)
			}
			if s, err := st.OutboxStats(ctx); err != nil || s.Pending != 0 {
				t.Errorf("outbox: %d pending, %v; want 0 (B's POST delivered it)", s.Pending, err)
			}
		})
	}
}
