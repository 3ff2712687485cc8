package audit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
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

// heldPass holds the first AppendAudit until release is closed: a pass of
// the worker that takes long (a slow store, or one of many under traffic).
type heldPass struct {
	Store
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (h *heldPass) AppendAudit(ctx context.Context, rec store.AuditRecord) error {
	first := false
	h.once.Do(func() { first = true })
	if first {
		close(h.entered)
		<-h.release
	}
	return h.Store.AppendAudit(ctx, rec)
}

// TestEraseAnswersWhileTheRunningWorkerHoldsItsPass: serve wires the admin
// erasure to the Worker Run drains with, and Erase waited for Run's pass
// before its eraseAppendWait began: under steady audit traffic, which keeps
// that pass going, DELETE /admin/api/audit/texts answered only once the
// traffic stopped (30-48 s under 20 s of it). Erase now gives up waiting
// for the pass after eraseAppendWait; the running worker appends its record.
func TestEraseAnswersWhileTheRunningWorkerHoldsItsPass(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			st := &heldPass{Store: e.store(), entered: make(chan struct{}), release: make(chan struct{})}
			w := newTestWorker(t, st, nil)
			enqueue(t, st, mustEvent(t, Action{Name: "order.created", Client: "shop-bot", User: "oBob",
				OrderNo: "PG000001", AmountFen: 4999, Currency: "CNY"}, `[{"role":"user","content":"buy"}]`))
			passDone := make(chan error, 1)
			go func() { _, err := w.Drain(context.Background()); passDone <- err }() // Run's pass
			<-st.entered

			erased := make(chan error, 1)
			go func() { _, err := w.Erase(context.Background(), "shop-bot", "oAlice"); erased <- err }()
			select {
			case err := <-erased:
				if err != nil {
					t.Errorf("erase: %v", err)
				}
			case <-time.After(5 * eraseAppendWait): // a generous bound: it answers after eraseAppendWait
				t.Errorf("Erase did not answer within %v while the running worker's pass was held; want about %v", 5*eraseAppendWait, eraseAppendWait)
				close(st.release)
				<-erased
				<-passDone
				return
			}
			close(st.release)
			if err := <-passDone; err != nil {
				t.Fatalf("the held pass: %v", err)
			}
			drainAll(t, w)
			_, recs := chainEvents(t, st)
			if len(recs) != 2 || recs[1].Name != ActionTextErased || recs[1].User != "oAlice" {
				t.Errorf("chain: %+v; want the order, then the erasure of oAlice's texts", recs)
			}
		})
	}
}
