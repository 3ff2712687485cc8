package audit

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/store"
	redisstore "github.com/paygate/paygate/store/redis"
)

// TestWorkerAcksNoRecordItFoundUnreplicated: with
// store.redis.wait_replicas, a batch append no replica acknowledged in time
// is reported ErrUnavailable though it applied on the primary. The worker
// then finds its records in the chain, processing its events one at a time
// at once, or all of them together in a later pass; either way it must not
// keep their texts and acknowledge their events until the chain is on a
// replica (store.Replicated, as a notification found applied is answered
// success only then): acknowledged, the events are gone for good, and a
// failover to a replica without the records leaves the money actions with
// no record and nothing to append one from. Once a replica has the chain,
// the events are acknowledged, each record in the chain once.
func TestWorkerAcksNoRecordItFoundUnreplicated(t *testing.T) {
	redistest.RequireBinaries(t)
	fast := []string{"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"}
	primary := redistest.StartServer(t, fast...)
	prefix := "pg-test-replicated-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	open := func(wait int, timeout time.Duration) testStore {
		st, err := redisstore.Open(redisstore.Options{Addrs: []string{primary.Addr()}, KeyPrefix: prefix,
			WaitReplicas: wait, WaitTimeout: timeout, RepairInterval: -1, EpochInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	plain, st := open(0, 0), open(1, 100*time.Millisecond) // no replica connected: every money write of st unconfirmed
	ctx := context.Background()
	evs := burst(t, plain, 12, "PGW")

	w := newTestWorker(t, st, nil)
	if _, err := w.Drain(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("drain with no replica: %v; want store.ErrUnavailable", err)
	}
	if h, err := st.AuditHead(ctx); err != nil || h.Seq != uint64(len(evs)) {
		t.Fatalf("head: %+v %v; want the batch applied on the primary, %d records", h, err, len(evs))
	}
	if stats, err := st.OutboxStats(ctx); err != nil || stats.Pending != len(evs) {
		t.Errorf("outbox after the unreplicated batch: %d pending, %v; want its %d events still pending, none acknowledged", stats.Pending, err, len(evs))
	}
	// A pass after the retries' backoff finds every one in the chain at
	// once (the batch path, no append left to make).
	later := newTestWorker(t, st, func(o *WorkerOptions) { o.Now = func() time.Time { return time.Now().Add(time.Minute) } })
	if _, err := later.Drain(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("drain again with no replica: %v; want store.ErrUnavailable", err)
	}
	if stats, err := st.OutboxStats(ctx); err != nil || stats.Pending != len(evs) {
		t.Errorf("outbox after a pass found them all in the chain, not on a replica: %d pending, %v; want all %d events still pending", stats.Pending, err, len(evs))
	}

	redistest.StartServer(t, append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(primary.Port)}, fast...)...)
	primary.WaitReplicas(1)
	st = open(1, 10*time.Second) // a replica that has just synced may take more than 100 ms to answer WAIT
	if got := drainAll(t, newTestWorker(t, st, func(o *WorkerOptions) { o.Now = func() time.Time { return time.Now().Add(2 * time.Minute) } })); got != len(evs) {
		t.Errorf("with a replica: drained %d; want %d (each found in the chain)", got, len(evs))
	}
	wantAllRecorded(t, st, evs)
}
