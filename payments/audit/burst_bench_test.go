package audit

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// ackTimes notes when each audit event is acknowledged: from then on its
// order's merchant webhooks, queued behind it, are due to the relay.
type ackTimes struct {
	testStore
	start time.Time
	mu    sync.Mutex
	lags  []time.Duration
}

func (a *ackTimes) AckEvent(ctx context.Context, key, id string) error {
	err := a.testStore.AckEvent(ctx, key, id)
	a.mu.Lock()
	a.lags = append(a.lags, time.Since(a.start))
	a.mu.Unlock()
	return err
}

// BenchmarkWorkerBurst measures the audit lag after a burst of payment
// turns: burstN audit events of as many orders, each with its text, queued
// at once and drained by one Worker. It reports records/s, and when the
// median and the last order's record was acknowledged (its webhooks due)
// after the burst. Run with -benchtime 1x.
func BenchmarkWorkerBurst(b *testing.B) {
	const burstN = 1500
	for _, driver := range drivers(b) {
		b.Run(driver, func(b *testing.B) {
			var rate, p50, last float64
			for range b.N {
				b.StopTimer()
				e := newEnv(b, driver)
				st := &ackTimes{testStore: e.store()}
				for i := range burstN {
					enqueue(b, st, mustEvent(b, Action{Time: time.Now(), Name: "order.created", Client: "shop-bot", User: "oAlice",
						OrderNo: fmt.Sprintf("PGX%05d", i), AmountFen: 4999}, fmt.Sprintf(`[{"role":"user","content":"buy plan %d"}]`, i)))
				}
				w := newTestWorker(b, st, nil)
				b.StartTimer()
				st.start = time.Now()
				n, err := w.Drain(context.Background())
				took := time.Since(st.start)
				if err != nil || n != burstN {
					b.Fatalf("drained %d %v; want %d", n, err, burstN)
				}
				slices.Sort(st.lags)
				rate += burstN / took.Seconds()
				p50 += st.lags[len(st.lags)/2].Seconds()
				last += st.lags[len(st.lags)-1].Seconds()
			}
			b.ReportMetric(rate/float64(b.N), "records/s")
			b.ReportMetric(p50/float64(b.N), "s-p50-ack-lag")
			b.ReportMetric(last/float64(b.N), "s-last-ack-lag")
		})
	}
}
