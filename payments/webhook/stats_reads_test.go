package webhook_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// outboxReads counts the outbox events the store reads for its caller:
// OutboxStats reads the head of every key (Keys of them), OutboxStatsApart
// of every key not apart, OutboxHeads and
// OutboxHeadsApart those they return. At the first ClaimEvents, which the
// relay's Run calls once its first refresh is done, the count is kept in
// atStart and read closed.
type outboxReads struct {
	store.Store
	n, atStart atomic.Int64
	once       sync.Once
	read       chan struct{}
}

func (s *outboxReads) ClaimEvents(ctx context.Context, kind string, now time.Time, lease time.Duration, limit int) ([]store.Event, error) {
	s.once.Do(func() { s.atStart.Store(s.n.Load()); close(s.read) })
	return s.Store.ClaimEvents(ctx, kind, now, lease, limit)
}

func (s *outboxReads) OutboxStats(ctx context.Context) (store.OutboxStats, error) {
	st, err := s.Store.OutboxStats(ctx)
	s.n.Add(int64(st.Keys))
	return st, err
}

func (s *outboxReads) OutboxStatsApart(ctx context.Context, apart ...string) (store.OutboxStats, int, error) {
	st, n, err := s.Store.OutboxStatsApart(ctx, apart...)
	s.n.Add(int64(st.Keys))
	return st, n, err
}

func (s *outboxReads) OutboxHeads(ctx context.Context, prefixes ...string) ([]store.Event, error) {
	h, err := s.Store.OutboxHeads(ctx, prefixes...)
	s.n.Add(int64(len(h)))
	return h, err
}

func (s *outboxReads) OutboxHeadsApart(ctx context.Context, apart ...string) ([]store.Event, int, error) {
	h, n, err := s.Store.OutboxHeadsApart(ctx, apart...)
	s.n.Add(int64(len(h)))
	return h, n, err
}

// TestGaugeRefreshReadsNoDeadLetter: the relay refreshes its gauges every
// 15 s (StatsInterval), and each refresh read every dead letter, twice, and
// every outbox head (513 ms for 30,000 dead letters, Redis's every 15 s): it
// counts the dead letters now, reading only the orders still pending. The
// admin view still lists the oldest thousand and counts every one.
func TestGaugeRefreshReadsNoDeadLetter(t *testing.T) {
	const dead, live = store.MaxListLimit + 200, 3
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			base := testdrivers.Open(t, driver, nil)
			seedOutbox(t, base, dead, live)
			st := &outboxReads{Store: base, read: make(chan struct{})}
			reg := prometheus.NewRegistry()
			rc, _ := downReceiver(t, time.Now)
			r := newRelay(t, st, rc.URL, time.Now, func(o *webhook.Options) {
				o.Registerer, o.StatsInterval, o.PollInterval = reg, time.Hour, time.Hour
			})
			runCtx, cancel := context.WithCancel(ctx)
			finished := make(chan struct{})
			go func() { r.Run(runCtx); close(finished) }()
			select {
			case <-st.read: // the refresh Run makes as it starts
			case <-time.After(30 * time.Second):
				cancel()
				t.Fatal("no refresh")
			}
			cancel()
			<-finished
			reads := st.atStart.Load()
			t.Logf("a refresh with %d dead letters and %d pending orders read %d events", dead, live, reads)
			if reads > 2*live {
				t.Errorf("a refresh read %d outbox events; want at most %d (those of the pending orders), not the %d dead letters", reads, 2*live, dead)
			}
			if got := gaugeValue(t, reg, "paygate_webhook_dead_letters"); got != dead {
				t.Errorf("paygate_webhook_dead_letters %v; want %d", got, dead)
			}
			if got := gaugeValue(t, reg, "paygate_webhook_pending_orders"); got != live {
				t.Errorf("paygate_webhook_pending_orders %v; want %d", got, live)
			}
			if got := gaugeValue(t, reg, "paygate_webhook_retrying_orders"); got != live {
				t.Errorf("paygate_webhook_retrying_orders %v; want %d", got, live)
			}
			v := getAdminView(t, r)
			if v.GivenUp != dead || len(v.DeadLetters) != store.MaxListLimit || v.DeadLetters[0].OrderNo != "PGDEAD00000" {
				t.Errorf("admin view: given_up %d, %d dead letters listed (first %+v); want %d and the oldest %d",
					v.GivenUp, len(v.DeadLetters), v.DeadLetters[:min(1, len(v.DeadLetters))], dead, store.MaxListLimit)
			}
		})
	}
}

// gaugeValue reads the gauge named name from reg.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s among %d families", name, len(mfs))
	return 0
}

// seedOutbox queues dead dead letters (PGDEAD00000 the oldest) and live
// orders' webhooks, each failed once and retrying in an hour, in st.
func seedOutbox(t *testing.T, st store.Store, dead, live int) {
	t.Helper()
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	var evs []store.Event
	for i := range dead {
		no, id := fmt.Sprintf("PGDEAD%05d", i), fmt.Sprintf("evt_dead%05d", i)
		evs = append(evs, store.Event{
			ID: id, Key: webhook.DeadPrefix + no + "/" + id, Kind: webhook.Kind,
			Payload:   []byte(`{"id":"` + id + `","type":"order.paid","data":{"order":{"order_no":"` + no + `"}}}`),
			CreatedAt: at.Add(time.Duration(i) * time.Millisecond), NextAt: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC),
			Attempts: 12, LastError: "503", FailedAt: at,
		})
	}
	for i := range live {
		no, id := fmt.Sprintf("PGLIVE%d", i), fmt.Sprintf("evt_live%d", i)
		evs = append(evs, store.Event{
			ID: id, Key: webhook.QueuePrefix + no, Kind: webhook.Kind,
			Payload:   []byte(`{"id":"` + id + `","type":"order.paid","data":{"order":{"order_no":"` + no + `"}}}`),
			CreatedAt: at, NextAt: time.Now().Add(time.Hour), Attempts: 1, LastError: "503", FailedAt: at,
		})
	}
	for len(evs) > 0 {
		n := min(len(evs), 200)
		if err := st.EnqueueEvents(context.Background(), evs[:n]...); err != nil {
			t.Fatal(err)
		}
		evs = evs[n:]
	}
}

// TestAdminViewReadsEachDeadLetterOnce: GET /admin/api/webhooks read every
// dead letter twice, once in OutboxStats (the head of every key) and once
// in OutboxHeads (the dead letters it lists and counts): 2,400 events read
// for 1,200 dead letters, with both stores. It reads each once now, and
// still lists the oldest thousand, counts every one and every event the
// outbox holds.
func TestAdminViewReadsEachDeadLetterOnce(t *testing.T) {
	const dead, live = store.MaxListLimit + 200, 3
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			base := testdrivers.Open(t, driver, nil)
			seedOutbox(t, base, dead, live)
			st := &outboxReads{Store: base}
			rc, _ := downReceiver(t, time.Now)
			r := newRelay(t, st, rc.URL, time.Now, nil)
			v := getAdminView(t, r)
			reads := st.n.Load()
			t.Logf("the admin view of %d dead letters and %d pending orders read %d events", dead, live, reads)
			if reads > dead+2*live {
				t.Errorf("the admin view read %d outbox events; want at most %d (each dead letter once)", reads, dead+2*live)
			}
			if v.GivenUp != dead || len(v.DeadLetters) != store.MaxListLimit || v.DeadLetters[0].OrderNo != "PGDEAD00000" {
				t.Errorf("admin view: given_up %d, %d dead letters listed; want %d and the oldest %d", v.GivenUp, len(v.DeadLetters), dead, store.MaxListLimit)
			}
			if v.PendingOrders != live || v.OutboxPending != dead+live {
				t.Errorf("admin view: %d pending orders, %d outbox events; want %d and %d", v.PendingOrders, v.OutboxPending, live, dead+live)
			}
		})
	}
}
