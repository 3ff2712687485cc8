package audit

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// TestEraseAnswersUnderSteadyTraffic: an erasure waits for its record to
// reach the chain at most eraseAppendWait, not until the audit traffic
// stops (Drain returns only once a pass finds nothing due).
func TestEraseAnswersUnderSteadyTraffic(t *testing.T) {
	const feedFor = 20 * time.Second // the traffic's length, were Erase to wait it out
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			st := e.store()
			var stop atomic.Bool
			started := make(chan struct{})
			done := make(chan struct{})
			go func() { // audit events as fast as the store takes them
				defer close(done)
				end := time.Now().Add(feedFor)
				for i := 0; !stop.Load() && time.Now().Before(end); i++ {
					ev := mustEvent(t, Action{Name: "order.created", Client: "shop-bot", User: "oBob",
						OrderNo: fmt.Sprintf("PG%06d", i), AmountFen: 4999, Currency: "CNY"}, `[{"role":"user","content":"buy"}]`)
					_ = st.EnqueueEvents(context.Background(), ev)
					if i == 100 {
						close(started)
					}
				}
			}()
			defer func() { stop.Store(true); <-done }()
			<-started
			start := time.Now()
			if _, err := newTestWorker(t, st, nil).Erase(context.Background(), "shop-bot", "oAlice"); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took > 4*eraseAppendWait {
				t.Errorf("Erase took %v under steady traffic; want at most about %v", took, eraseAppendWait)
			}
		})
	}
}
