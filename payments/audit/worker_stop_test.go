package audit

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/store"
)

// stoppedDuringAppend is a store whose head read finds the worker stopped
// (serve's shutdown cancels it) and ends with that cancel, as the Redis
// driver passes it on.
type stoppedDuringAppend struct {
	Store
	stop context.CancelFunc
}

func (s stoppedDuringAppend) AuditHead(ctx context.Context) (store.AuditHead, error) {
	s.stop()
	<-ctx.Done()
	return store.AuditHead{}, ctx.Err()
}

// TestWorkerStoppedMidAppendIsNoFailure: a worker stopped (a deploy's
// SIGTERM) while it appends an event leaves the event as it was, due at
// once for the next process, and reports no failure: it counted
// paygate_audit_records_total{outcome="error"}, which the README alerts on
// as money actions waiting for their record, logged "audit record not
// appended; will retry" at error level, and put the event off with a
// retry's backoff (or warned that it could not, the store refusing the
// stopped call), for a record nothing had failed to append.
func TestWorkerStoppedMidAppendIsNoFailure(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			st := e.store()
			enqueue(t, st, store.Event{Kind: KindAudit, Key: "PG0001", Payload: oldEvent(`{"temperature":0.7}`)})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			logs := &logtest.Buffer{}
			w := newTestWorker(t, stoppedDuringAppend{Store: st, stop: cancel}, func(o *WorkerOptions) {
				o.Logger = slog.New(slog.NewJSONHandler(logs, nil))
			})
			if _, err := w.Drain(ctx); err == nil {
				t.Fatal("the stopped pass reported no error")
			}
			if n := testutil.ToFloat64(w.m.records.WithLabelValues("error")); n != 0 {
				t.Errorf(`paygate_audit_records_total{outcome="error"} = %v; want 0: the worker was stopped, nothing failed`, n)
			}
			if got := logs.String(); strings.Contains(got, "not appended") || strings.Contains(got, "rescheduled") {
				t.Errorf("logged a failure for a stopped worker:\n%s", got)
			}
			due, err := st.DueEvents(context.Background(), time.Now(), 10, KindAudit)
			if err != nil {
				t.Fatal(err)
			}
			if len(due) != 1 || due[0].Attempts != 0 || due[0].LastError != "" {
				t.Fatalf("after the stop: due %+v; want the event due at once, as it was", due)
			}
			// The next process appends it.
			w2 := newTestWorker(t, st, nil)
			if n := drainAll(t, w2); n != 1 {
				t.Errorf("the next worker appended %d; want 1", n)
			}
		})
	}
}
