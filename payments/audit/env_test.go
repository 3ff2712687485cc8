package audit

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"strconv"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/embedded"
	redisstore "github.com/paygate/paygate/store/redis"
	"github.com/paygate/paygate/store/testdrivers"
)

// drivers lists the store drivers to run against (Redis required under CI).
var drivers = testdrivers.Names

// testStore is every role the tests use.
type testStore interface {
	store.Store
}

// env is one store of one driver, with raw access for tampering the way an
// attacker with access to the file or to Redis would.
type env struct {
	t      testing.TB
	driver string
	path   string // embedded
	prefix string // redis
	place  *testdrivers.Place

	mu sync.Mutex
	st testStore
}

func newEnv(t testing.TB, driver string) *env {
	t.Helper()
	p := testdrivers.NewPlace(t, driver, nil)
	e := &env{t: t, driver: driver, path: p.Path, prefix: p.Prefix, place: p}
	e.open()
	return e
}

func (e *env) open() {
	e.t.Helper()
	st := e.place.Open()
	e.mu.Lock()
	e.st = st
	e.mu.Unlock()
}

func (e *env) store() testStore {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.st
}

// Raw tampering. The embedded file is edited with bbolt directly while the
// store is closed; Redis keys are edited with plain commands.

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func (e *env) boltEdit(fn func(tx *bolt.Tx) error) {
	e.t.Helper()
	if err := e.store().Close(); err != nil {
		e.t.Fatalf("close: %v", err)
	}
	db, err := bolt.Open(e.path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		e.t.Fatalf("raw open: %v", err)
	}
	if err := db.Update(fn); err != nil {
		e.t.Fatalf("raw edit: %v", err)
	}
	if err := db.Close(); err != nil {
		e.t.Fatalf("raw close: %v", err)
	}
	e.open()
}

func (e *env) redis() *redisstore.Store { return e.store().(*redisstore.Store) }

// rawGet returns the stored record at position seq.
func (e *env) rawGet(seq uint64) store.AuditRecord {
	e.t.Helper()
	recs, err := e.store().ReadAudit(context.Background(), seq, 1)
	if err != nil || len(recs) != 1 || recs[0].Seq != seq {
		e.t.Fatalf("read record %d: %v %v", seq, recs, err)
	}
	return recs[0]
}

// rawPut stores rec at position pos (whatever rec.Seq says).
func (e *env) rawPut(pos uint64, rec store.AuditRecord) {
	e.t.Helper()
	v, err := json.Marshal(rec)
	if err != nil {
		e.t.Fatal(err)
	}
	switch e.driver {
	case "embedded":
		e.boltEdit(func(tx *bolt.Tx) error { return tx.Bucket([]byte("audit")).Put(u64(pos), v) })
	case "redis":
		if err := e.redis().Client().HSet(context.Background(), e.prefix+"{audit}:rec", strconv.FormatUint(pos, 10), v).Err(); err != nil {
			e.t.Fatal(err)
		}
	}
}

// rawDelete removes the record at position pos.
func (e *env) rawDelete(pos uint64) {
	e.t.Helper()
	switch e.driver {
	case "embedded":
		e.boltEdit(func(tx *bolt.Tx) error { return tx.Bucket([]byte("audit")).Delete(u64(pos)) })
	case "redis":
		if err := e.redis().Client().HDel(context.Background(), e.prefix+"{audit}:rec", strconv.FormatUint(pos, 10)).Err(); err != nil {
			e.t.Fatal(err)
		}
	}
}

// rawSetHead overwrites the store's head.
func (e *env) rawSetHead(h store.AuditHead) {
	e.t.Helper()
	switch e.driver {
	case "embedded":
		v, err := json.Marshal(h)
		if err != nil {
			e.t.Fatal(err)
		}
		e.boltEdit(func(tx *bolt.Tx) error { return tx.Bucket([]byte("audit_meta")).Put([]byte("head"), v) })
	case "redis":
		err := e.redis().Client().HSet(context.Background(), e.prefix+"{audit}:head", "seq", strconv.FormatUint(h.Seq, 10), "hash", h.Hash).Err()
		if err != nil {
			e.t.Fatal(err)
		}
	}
}

// rawDeleteText deletes the kept text of record seq the way someone with
// access to the file or to Redis would: no erasure, no mark.
func (e *env) rawDeleteText(seq uint64) {
	e.t.Helper()
	switch e.driver {
	case "embedded":
		e.boltEdit(func(tx *bolt.Tx) error { return tx.Bucket([]byte("audit_text")).Delete(u64(seq)) })
	case "redis":
		if err := e.redis().Client().Del(context.Background(), e.prefix+"{audit}:t:"+strconv.FormatUint(seq, 10)).Err(); err != nil {
			e.t.Fatal(err)
		}
	}
}

// eraseAt erases the texts of (client, user) with the store's clock at at,
// as a replica whose clock reads at would.
func (e *env) eraseAt(at time.Time, client, user string) {
	e.t.Helper()
	e.withClock(func() time.Time { return at }, func(st store.Store) {
		if _, err := st.EraseAuditText(context.Background(), client, user); err != nil {
			e.t.Fatalf("erase: %v", err)
		}
	})
}

// withClock runs fn with the store opened again at its place under the
// clock now, as another process (a restart, a replica) would; the test's
// store is opened again after.
func (e *env) withClock(now func() time.Time, fn func(store.Store)) {
	e.t.Helper()
	var st store.Store
	var err error
	switch e.driver {
	case "embedded":
		if err := e.store().Close(); err != nil {
			e.t.Fatalf("close: %v", err)
		}
		st, err = embedded.Open(e.path, embedded.Options{SweepInterval: -1, Now: now})
	default:
		st, err = redisstore.Open(redisstore.Options{Addrs: []string{testdrivers.RedisAddr()}, KeyPrefix: e.prefix, RepairInterval: -1, Now: now})
	}
	if err != nil {
		e.t.Fatalf("open the store under another clock: %v", err)
	}
	fn(st)
	if err := st.Close(); err != nil {
		e.t.Fatalf("close the store under another clock: %v", err)
	}
	if e.driver == "embedded" {
		e.open()
	}
}

// rawSetText overwrites the kept text of record seq.
func (e *env) rawSetText(seq uint64, text []byte) {
	e.t.Helper()
	switch e.driver {
	case "embedded":
		e.boltEdit(func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte("audit_text"))
			var r map[string]any
			if err := json.Unmarshal(b.Get(u64(seq)), &r); err != nil {
				return err
			}
			r["text"] = text
			v, err := json.Marshal(r)
			if err != nil {
				return err
			}
			return b.Put(u64(seq), v)
		})
	case "redis":
		key := e.prefix + "{audit}:t:" + strconv.FormatUint(seq, 10)
		if err := e.redis().Client().HSet(context.Background(), key, "x", text).Err(); err != nil {
			e.t.Fatal(err)
		}
	}
}

// enqueue puts audit events for the actions in the outbox, one key each
// unless keyed.
func enqueue(t testing.TB, st store.Outbox, evs ...store.Event) {
	t.Helper()
	if err := st.EnqueueEvents(context.Background(), evs...); err != nil {
		t.Fatalf("enqueue: %v", err)
	}
}

func mustEvent(t testing.TB, a Action, text string) store.Event {
	t.Helper()
	var turn *payments.Turn
	if text != "" {
		turn = &payments.Turn{Messages: []byte(text), Provider: "openrouter", Model: "openai/gpt-4o", Params: map[string]any{"temperature": 0.7, "top_p": 1.0}}
	}
	ev, err := ActionEvent(a, turn)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// readAll returns the whole chain.
func readAll(t testing.TB, st store.Audit) []store.AuditRecord {
	t.Helper()
	var out []store.AuditRecord
	next := uint64(1)
	for {
		recs, err := st.ReadAudit(context.Background(), next, 200)
		if err != nil {
			t.Fatalf("read audit: %v", err)
		}
		if len(recs) == 0 {
			return out
		}
		out = append(out, recs...)
		next = recs[len(recs)-1].Seq + 1
	}
}

// drainAll runs w until no audit event is pending.
func drainAll(t testing.TB, w *Worker) int {
	t.Helper()
	n, err := w.Drain(context.Background())
	if err != nil {
		t.Fatalf("drain: %v", err)
	}
	return n
}

func newTestWorker(t testing.TB, st Store, mod func(*WorkerOptions)) *Worker {
	t.Helper()
	o := WorkerOptions{Store: st, RetainText: time.Hour}
	if mod != nil {
		mod(&o)
	}
	w, err := NewWorker(o)
	if err != nil {
		t.Fatal(err)
	}
	return w
}
