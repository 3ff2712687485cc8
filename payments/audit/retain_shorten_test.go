package audit

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/embedded"
)

// rawHasText reports whether the store still holds record seq's text,
// expired or not: a text hidden by its expiry but left in the file or in
// Redis is still kept.
func (e *env) rawHasText(seq uint64) bool {
	e.t.Helper()
	switch e.driver {
	case "embedded":
		var held bool
		e.boltEdit(func(tx *bolt.Tx) error {
			held = tx.Bucket([]byte("audit_text")).Get(u64(seq)) != nil
			return nil
		})
		return held
	default:
		n, err := e.redis().Client().Exists(context.Background(), e.prefix+"{audit}:t:"+strconv.FormatUint(seq, 10)).Result()
		if err != nil {
			e.t.Fatal(err)
		}
		return n == 1
	}
}

// atLater runs fn with the store opened again at its place, its clock
// later by d, as a process restarted then would; the test's store is
// opened again after.
func (e *env) atLater(d time.Duration, fn func(store.Store)) {
	e.t.Helper()
	e.withClock(func() time.Time { return time.Now().Add(d) }, fn)
}

// TestShortenedRetentionDeletesTextsKeptUnderTheLongerOne: texts written
// under retain_text 4320h, the store reopened under a shorter retention
// (720h; 0, which keeps none): the worker's first pass and one sweep leave
// no text whose turn is older than the retention in force, keep the
// others, and verify -text under the new retention finds nothing removed
// without erasure.
func TestShortenedRetentionDeletesTextsKeptUnderTheLongerOne(t *testing.T) {
	for _, tc := range []struct {
		name       string
		retain     time.Duration // the config's retain_text after the restart
		verify     time.Duration // VerifyOptions.RetainText for it
		keptRecent bool          // the text of 100h ago is still kept
	}{
		{name: "720h", retain: 720 * time.Hour, verify: 720 * time.Hour, keptRecent: true},
		{name: "0", retain: 0, verify: -1, keptRecent: false},
	} {
		for _, driver := range drivers(t) {
			t.Run(tc.name+"/"+driver, func(t *testing.T) {
				e := newEnv(t, driver)
				now := time.Now()
				for i, age := range []time.Duration{1000 * time.Hour, 100 * time.Hour} {
					said := now.Add(-age)
					ev := mustEvent(t, Action{Time: said, Name: "order.created", Client: "shop-bot", User: "oAlice",
						OrderNo: "PG000" + strconv.Itoa(i+1), SKU: "premium-monthly", Quantity: 1, AmountFen: 4999, Currency: "CNY"},
						`[{"role":"user","content":"buy `+strconv.Itoa(i+1)+`"}]`)
					ev.CreatedAt = said
					enqueue(t, e.store(), ev)
				}
				long := newTestWorker(t, e.store(), func(o *WorkerOptions) { o.RetainText = 4320 * time.Hour })
				if got := drainAll(t, long); got != 2 {
					t.Fatalf("drained %d events under 4320h; want 2", got)
				}
				for seq := uint64(1); seq <= 2; seq++ {
					if !e.rawHasText(seq) {
						t.Fatalf("text %d not kept under 4320h", seq)
					}
				}

				// The restart under the shorter retention.
				if err := e.store().Close(); err != nil {
					t.Fatal(err)
				}
				e.open()
				short := newTestWorker(t, e.store(), func(o *WorkerOptions) { o.RetainText = tc.retain })
				drainAll(t, short)
				if db, ok := e.store().(*embedded.DB); ok {
					if _, err := db.Sweep(context.Background()); err != nil {
						t.Fatalf("sweep: %v", err)
					}
				}

				if e.rawHasText(1) {
					t.Errorf("the text of 1000h ago is still kept under retain_text %s; want it deleted", tc.name)
				}
				if got := e.rawHasText(2); got != tc.keptRecent {
					t.Errorf("the text of 100h ago kept: %v under retain_text %s; want %v", got, tc.name, tc.keptRecent)
				}
				_, err := e.store().GetAuditText(context.Background(), 1)
				if !errors.Is(err, store.ErrNotFound) {
					t.Errorf("GetAuditText(1) = %v; want ErrNotFound", err)
				}
				res, err := Verify(context.Background(), e.store(), VerifyOptions{Texts: true, RetainText: tc.verify})
				if err != nil {
					t.Fatalf("verify -text under retain_text %s: %v", tc.name, err)
				}
				wantGone := 1
				if !tc.keptRecent {
					wantGone = 2
				}
				if res.TextsGone != wantGone || res.TextsChecked != 2-wantGone {
					t.Errorf("verify: texts gone %d, checked %d; want %d, %d", res.TextsGone, res.TextsChecked, wantGone, 2-wantGone)
				}
				if tc.keptRecent {
					// Its expiry was brought forward to its turn plus 720h:
					// 621h on, the sweep deletes it.
					e.atLater(621*time.Hour, func(st store.Store) {
						if db, ok := st.(*embedded.DB); ok {
							if _, err := db.Sweep(context.Background()); err != nil {
								t.Fatalf("sweep: %v", err)
							}
						}
						if _, err := st.GetAuditText(context.Background(), 2); !errors.Is(err, store.ErrNotFound) {
							t.Errorf("621h on, GetAuditText(2) = %v; want ErrNotFound: the text of 100h ago kept past its turn plus 720h", err)
						}
					})
					if e.driver == "embedded" && e.rawHasText(2) {
						t.Error("621h on, the sweep left the text of 100h ago; want it deleted at its turn plus 720h")
					}
				}
			})
		}
	}
}

// TestShortenedRetentionCutsTextsALongerReplicaKeepsWriting: on Redis,
// replicas of a rolling deploy share the texts, and one still running the
// longer retention (an earlier version, or the old config) keeps writing
// texts under it after a replica under the shorter one made its pass over
// every text. The next calls cut those too, by their record's time: one
// whose turn is older than the shorter retention (an event that waited in
// the outbox) is deleted, a recent one is kept until its record's time
// plus the shorter retention, and verify under it finds nothing removed.
func TestShortenedRetentionCutsTextsALongerReplicaKeepsWriting(t *testing.T) {
	if !slices.Contains(drivers(t), "redis") {
		t.Skip("redis not available")
	}
	e := newEnv(t, "redis")
	ctx := context.Background()
	now := time.Now()
	event := func(n int, age time.Duration) store.Event {
		said := now.Add(-age)
		ev := mustEvent(t, Action{Time: said, Name: "order.created", Client: "shop-bot", User: "oAlice",
			OrderNo: "PG000" + strconv.Itoa(n), SKU: "premium-monthly", Quantity: 1, AmountFen: 4999, Currency: "CNY"},
			`[{"role":"user","content":"buy `+strconv.Itoa(n)+`"}]`)
		ev.CreatedAt = said
		return ev
	}
	const long, short = 4320 * time.Hour, 720 * time.Hour
	oldReplica := e.place.Open()
	enqueue(t, oldReplica, event(1, 100*time.Hour))
	drainAll(t, newTestWorker(t, oldReplica, func(o *WorkerOptions) { o.RetainText = long }))

	newReplica := e.store().(store.AuditTextRetention)
	if _, err := newReplica.RetainAuditTexts(ctx, short); err != nil {
		t.Fatalf("the pass over every text: %v", err)
	}
	// Written after that pass by the replica under 4320h.
	enqueue(t, oldReplica, event(2, 1000*time.Hour), event(3, 10*time.Hour))
	if got := drainAll(t, newTestWorker(t, oldReplica, func(o *WorkerOptions) { o.RetainText = long })); got != 2 {
		t.Fatalf("the replica under 4320h drained %d events; want 2", got)
	}
	if !e.rawHasText(2) {
		t.Fatal("the replica under 4320h kept no text of 1000h ago")
	}
	for range 2 { // a second call finds nothing more to cut
		if _, err := newReplica.RetainAuditTexts(ctx, short); err != nil {
			t.Fatalf("a later pass: %v", err)
		}
	}
	if e.rawHasText(2) {
		t.Error("the text of 1000h ago, written under 4320h after the pass, is still kept under 720h; want it deleted")
	}
	for seq, age := range map[uint64]time.Duration{1: 100 * time.Hour, 3: 10 * time.Hour} {
		until, err := e.redis().Client().HGet(ctx, e.prefix+"{audit}:t:"+strconv.FormatUint(seq, 10), "until").Int64()
		if err != nil {
			t.Fatalf("text %d: %v", seq, err)
		}
		if want := now.Add(-age).Add(short).UnixMilli(); until != want {
			t.Errorf("text %d (%s ago) kept until %s; want its turn plus 720h, %s", seq, age,
				time.UnixMilli(until).UTC(), time.UnixMilli(want).UTC())
		}
	}
	res, err := Verify(ctx, e.store(), VerifyOptions{Texts: true, RetainText: short})
	if err != nil {
		t.Fatalf("verify -text under 720h: %v", err)
	}
	if res.TextsGone != 1 || res.TextsChecked != 2 {
		t.Errorf("verify: texts gone %d, checked %d; want 1, 2", res.TextsGone, res.TextsChecked)
	}
}

// slowRetention is a store whose RetainAuditTexts takes as long as the
// test says: a first pass reading 100,000 texts (51s measured under -race
// with the embedded store).
type slowRetention struct {
	store.Store
	entered, release chan struct{}
}

func (s *slowRetention) RetainAuditTexts(ctx context.Context, retain time.Duration) (int, error) {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	select {
	case <-s.release:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return 0, nil
}

// TestRetainingTextsDoesNotHoldBackTheChain: the pass that applies a
// shortened retention to the texts kept reads every one of them; a money
// action's audit record enqueued meanwhile is appended without waiting for
// it to end.
func TestRetainingTextsDoesNotHoldBackTheChain(t *testing.T) {
	e := newEnv(t, "embedded")
	st := &slowRetention{Store: e.store(), entered: make(chan struct{}, 1), release: make(chan struct{})}
	w := newTestWorker(t, st, func(o *WorkerOptions) { o.RetainText = 720 * time.Hour })
	first := make(chan error, 1)
	go func() { _, err := w.Drain(context.Background()); first <- err }()
	defer func() { close(st.release); <-first }()
	<-st.entered
	enqueue(t, e.store(), mustEvent(t, Action{Time: time.Now(), Name: "order.created", Client: "shop-bot", User: "oAlice",
		OrderNo: "PG0001", SKU: "premium-monthly", Quantity: 1, AmountFen: 4999, Currency: "CNY"}, `[{"role":"user","content":"buy"}]`))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	n, err := w.Drain(ctx)
	if err != nil || n != 1 {
		t.Errorf("a pass while the texts kept are being read: appended %d, %v; want the order's record appended at once", n, err)
	}
}
