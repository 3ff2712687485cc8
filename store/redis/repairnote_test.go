package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// crashWriter is a writer that records its intent, may commit its order
// script, and dies before its sync steps: what a process killed between the
// money step and the user copy leaves behind.
type crashWriter struct {
	t  *testing.T
	s  *Store
	no string
	in writeIntent
}

func beginCrashWriter(t *testing.T, s *Store, no string) *crashWriter {
	t.Helper()
	in, err := s.intent(context.Background(), no)
	if err != nil {
		t.Fatal(err)
	}
	return &crashWriter{t: t, s: s, no: no, in: in}
}

// ageNotes moves every repair note, and every entry of the intent log of
// earlier versions, d into the past: what d passing on the clock of the
// server holding {idx} does. Repair judges their age by that clock, which a
// test cannot move.
func ageNotes(t testing.TB, s *Store, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	for _, k := range []string{s.k.idx("notes"), s.k.idx("dirtyat")} {
		zs, err := s.c.ZRangeWithScores(ctx, k, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(zs) == 0 {
			continue
		}
		for i := range zs {
			zs[i].Score -= float64(d.Milliseconds())
		}
		if err := s.c.ZAddXX(ctx, k, zs...).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// create runs the create script for o with one event; it reports whether
// the script applied.
func (w *crashWriter) create(o *store.Order, eventID string) bool {
	w.t.Helper()
	elems, err := w.s.orderEvents(o.OrderNo, []store.Event{{ID: eventID, Kind: "audit", Payload: []byte(`{}`)}})
	if err != nil {
		w.t.Fatal(err)
	}
	rk, ob, obv := w.s.k.orderTag(o.OrderNo)
	args := createOrderArgs(mustJSON(w.t, o), o, w.in.tok, elems, w.in.fence())
	v, err := w.s.run(context.Background(), "create order", w.s.sc.createOrder, []string{rk, ob, obv}, args...)
	if err != nil {
		w.t.Fatal(err)
	}
	return replyInt(replySlice(v), 0) == 1
}

// update runs the update script moving o (as read) to status with one
// event; it reports whether the script applied.
func (w *crashWriter) update(o *store.Order, expect, status store.OrderStatus, eventID string) bool {
	w.t.Helper()
	next := *o
	next.Status = status
	elems, err := w.s.orderEvents(o.OrderNo, []store.Event{{ID: eventID, Kind: "webhook", Payload: []byte(`{}`)}})
	if err != nil {
		w.t.Fatal(err)
	}
	rk, ob, obv := w.s.k.orderTag(o.OrderNo)
	args := updateOrderArgs(mustJSON(w.t, &next), &next, expect, o.Version, w.in.tok, elems, w.in.fence())
	v, err := w.s.run(context.Background(), "update order", w.s.sc.updateOrder, []string{rk, ob, obv}, args...)
	if err != nil {
		w.t.Fatal(err)
	}
	return replyInt(replySlice(v), 0) == 1
}

// TestALosingWriterKeepsTheRepairOfACommittedOne: a writer whose
// compare-and-set fails (a stale reconcile close, a second create of one
// number as payments does by design, an update rejected for changing an
// immutable field) must not remove the repair note of a writer that
// committed and died before syncing, whether it lost before or after that
// commit. After Repair, the committed write is in the user copy, the status
// and all-orders listings, and its outbox event is due.
func TestALosingWriterKeepsTheRepairOfACommittedOne(t *testing.T) {
	requireSharedRedis(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		create bool // the order is created by the test's setup
		// run plays the interleaving for order no; it returns the status the
		// order must end in and the committed writer's event.
		run func(t *testing.T, s *Store, clock *storetest.Clock, no string) (store.OrderStatus, string)
	}{
		{"stale update loses after the commit", true,
			func(t *testing.T, s *Store, clock *storetest.Clock, no string) (store.OrderStatus, string) {
				read, _ := s.GetOrder(ctx, no)
				a := beginCrashWriter(t, s, no)
				if !a.update(read, store.StatusAwaitingPayment, store.StatusPaid, "evt-paid") {
					t.Fatal("the paying write did not apply")
				}
				stale := *read
				stale.Status = store.StatusClosed
				if err := s.UpdateOrder(ctx, &stale, store.StatusAwaitingPayment); !errors.Is(err, store.ErrConflict) {
					t.Fatalf("stale update: %v; want ErrConflict", err)
				}
				return store.StatusPaid, "evt-paid"
			}},
		{"stale update loses before the commit", true,
			func(t *testing.T, s *Store, clock *storetest.Clock, no string) (store.OrderStatus, string) {
				read, _ := s.GetOrder(ctx, no)
				a := beginCrashWriter(t, s, no)
				stale := *read
				stale.Status = store.StatusClosed
				stale.Version = 7 // read from a lagging replica
				if err := s.UpdateOrder(ctx, &stale, store.StatusAwaitingPayment); !errors.Is(err, store.ErrConflict) {
					t.Fatalf("stale update: %v; want ErrConflict", err)
				}
				if !a.update(read, store.StatusAwaitingPayment, store.StatusPaid, "evt-paid") {
					t.Fatal("the paying write did not apply")
				}
				return store.StatusPaid, "evt-paid"
			}},
		{"second create of the number after the first committed", false,
			func(t *testing.T, s *Store, clock *storetest.Clock, no string) (store.OrderStatus, string) {
				o := storetest.NewOrder(no, "shop", "u-"+no, clock.Now())
				o.Status, o.Version = store.StatusCreating, 1
				a := beginCrashWriter(t, s, no)
				if !a.create(o, "evt-created") {
					t.Fatal("the first create did not apply")
				}
				dup := storetest.NewOrder(no, "shop", "u-"+no, clock.Now())
				dup.Status = store.StatusClosed
				if err := s.CreateOrder(ctx, dup); !errors.Is(err, store.ErrExists) {
					t.Fatalf("second create: %v; want ErrExists", err)
				}
				return store.StatusCreating, "evt-created"
			}},
		{"second create of the number before the first commits", false,
			func(t *testing.T, s *Store, clock *storetest.Clock, no string) (store.OrderStatus, string) {
				o := storetest.NewOrder(no, "shop", "u-"+no, clock.Now())
				o.Status, o.Version = store.StatusCreating, 1
				a := beginCrashWriter(t, s, no)
				// The second creator's intent comes after the first's; its
				// script runs after the first's too, but its reply (ErrExists)
				// is handled before the first one's sync would have run.
				b := beginCrashWriter(t, s, no)
				if !a.create(o, "evt-created") {
					t.Fatal("the first create did not apply")
				}
				dup := *o
				dup.Status = store.StatusClosed
				if b.create(&dup, "evt-dup") {
					t.Fatal("the second create applied")
				}
				s.dropIntent(ctx, no, b.in)
				return store.StatusCreating, "evt-created"
			}},
		{"update changing an immutable field after the commit", true,
			func(t *testing.T, s *Store, clock *storetest.Clock, no string) (store.OrderStatus, string) {
				read, _ := s.GetOrder(ctx, no)
				a := beginCrashWriter(t, s, no)
				if !a.update(read, store.StatusAwaitingPayment, store.StatusPaid, "evt-paid") {
					t.Fatal("the paying write did not apply")
				}
				cur, _ := s.GetOrder(ctx, no)
				moved := *cur
				moved.User = "someone-else"
				if err := s.UpdateOrder(ctx, &moved, store.StatusPaid); err == nil {
					t.Fatal("an update changing the user applied")
				}
				return store.StatusPaid, "evt-paid"
			}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := storetest.NewClock()
			s := openOn(t, clock, Options{Addrs: []string{sharedAddr}})
			no := fmt.Sprintf("RN-%d", i)
			user := "u-" + no
			if tc.create {
				if err := s.CreateOrder(ctx, storetest.NewOrder(no, "shop", user, clock.Now())); err != nil {
					t.Fatal(err)
				}
			}
			status, event := tc.run(t, s, clock, no)

			ageNotes(t, s, DefaultRepairGrace+time.Minute)
			if _, err := s.Repair(ctx); err != nil {
				t.Fatalf("Repair: %v", err)
			}
			rec, err := s.GetOrder(ctx, no)
			if err != nil || rec.Status != status {
				t.Fatalf("record: %+v, %v; want %s", rec, err, status)
			}
			us, err := s.LoadUserState(ctx, "shop", user)
			if err != nil {
				t.Fatal(err)
			}
			if len(us.Orders) != 1 || us.Orders[0].Status != status || us.Orders[0].Version != rec.Version {
				t.Errorf("user copy after Repair: %d orders %v; want v%d %s", len(us.Orders), statuses(us.Orders), rec.Version, status)
			}
			for _, f := range []store.OrderFilter{{Status: status}, {}} {
				list, err := s.ListOrders(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				if len(list) != 1 {
					t.Errorf("ListOrders(status=%q) after Repair: %d orders; want 1", f.Status, len(list))
				}
			}
			evs, err := s.DueEvents(ctx, clock.Now(), 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 1 || evs[0].ID != event {
				t.Errorf("DueEvents after Repair: %v; want [%s]", ids(evs), event)
			}
		})
	}
}

func statuses(os []*store.Order) []string {
	var out []string
	for _, o := range os {
		out = append(out, fmt.Sprintf("v%d %s", o.Version, o.Status))
	}
	return out
}

// TestCrashedWritersAreRepairedUnderRacingConflicts: for each of many
// orders, a writer marking it paid (with its webhook event) dies after its
// money step while stale closes race it from other goroutines. Whatever
// wins, after Repair every order's user copy and status listing agree with
// its record, and every committed event is due.
func TestCrashedWritersAreRepairedUnderRacingConflicts(t *testing.T) {
	requireSharedRedis(t)
	ctx := context.Background()
	clock := storetest.NewClock()
	s := openOn(t, clock, Options{Addrs: []string{sharedAddr}})
	const orders, closers = 30, 4
	read := make([]*store.Order, orders)
	for i := range read {
		o := storetest.NewOrder(fmt.Sprintf("RC-%02d", i), "shop", fmt.Sprintf("u%d", i%3), clock.Now())
		if err := s.CreateOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
		read[i] = o
	}
	committed := make([]bool, orders)
	var wg sync.WaitGroup
	for i := range read {
		wg.Add(1)
		go func() {
			defer wg.Done()
			no := read[i].OrderNo
			in, err := s.intent(ctx, no)
			if err != nil {
				t.Error(err)
				return
			}
			paid := *read[i]
			paid.Status = store.StatusPaid
			elems, err := s.orderEvents(no, []store.Event{{ID: "evt-" + no, Kind: "webhook", Payload: []byte(`{}`)}})
			if err != nil {
				t.Error(err)
				return
			}
			rk, ob, obv := s.k.orderTag(no)
			args := updateOrderArgs(mustJSON(t, &paid), &paid, store.StatusAwaitingPayment, paid.Version, in.tok, elems, in.fence())
			v, err := s.run(ctx, "update order", s.sc.updateOrder, []string{rk, ob, obv}, args...)
			if err != nil {
				t.Error(err)
				return
			}
			committed[i] = replyInt(replySlice(v), 0) == 1
			// ... and dies.
		}()
		for range closers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				stale := *read[i]
				stale.Status = store.StatusClosed
				if err := s.UpdateOrder(ctx, &stale, store.StatusAwaitingPayment); err != nil && !errors.Is(err, store.ErrConflict) {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	ageNotes(t, s, DefaultRepairGrace+time.Minute)
	if _, err := s.Repair(ctx); err != nil {
		t.Fatalf("Repair: %v", err)
	}
	wantDue := map[string]bool{}
	inStatus := map[store.OrderStatus]int{}
	for i, o := range read {
		rec, err := s.GetOrder(ctx, o.OrderNo)
		if err != nil {
			t.Fatal(err)
		}
		inStatus[rec.Status]++
		if committed[i] {
			wantDue["evt-"+o.OrderNo] = true
		}
		us, err := s.LoadUserState(ctx, o.Client, o.User)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, c := range us.Orders {
			if c.OrderNo == o.OrderNo {
				found = true
				if c.Version != rec.Version || c.Status != rec.Status {
					t.Errorf("%s: user copy v%d %s; record v%d %s", o.OrderNo, c.Version, c.Status, rec.Version, rec.Status)
				}
			}
		}
		if !found {
			t.Errorf("%s: no user copy", o.OrderNo)
		}
	}
	for _, st := range []store.OrderStatus{store.StatusPaid, store.StatusClosed, store.StatusAwaitingPayment} {
		n, err := s.c.ZCard(ctx, s.k.status(st)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if int(n) != inStatus[st] {
			t.Errorf("status index %s: %d entries; %d records in that status", st, n, inStatus[st])
		}
	}
	evs, err := s.DueEvents(ctx, clock.Now(), 2*orders)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		delete(wantDue, e.ID)
	}
	if len(wantDue) != 0 {
		t.Errorf("%d committed webhook events are not due after Repair: %v", len(wantDue), wantDue)
	}
}

// legacyCreate creates o as a replica of an earlier version did, with one
// webhook event evID: an entry in the intent log of earlier versions
// ({idx}:dirty, {idx}:dirtyat), then the order's script, and no sync.
func legacyCreate(t *testing.T, s *Store, o *store.Order, evID string) {
	t.Helper()
	ctx := context.Background()
	o.Version = 1
	const tok = "41"
	if err := s.c.HSet(ctx, s.k.idx("dirty"), o.OrderNo, tok).Err(); err != nil {
		t.Fatal(err)
	}
	// An earlier version scored the entry with its own clock, which keeps
	// about the server's time.
	at, err := s.c.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.c.ZAdd(ctx, s.k.idx("dirtyat"), goredis.Z{Score: float64(at.UnixMilli()), Member: o.OrderNo}).Err(); err != nil {
		t.Fatal(err)
	}
	elems, err := s.orderEvents(o.OrderNo, []store.Event{{ID: evID, Kind: "webhook"}})
	if err != nil {
		t.Fatal(err)
	}
	rk, ob, obv := s.k.orderTag(o.OrderNo)
	args := createOrderArgs(mustJSON(t, o), o, tok, elems, writeIntent{}.fence()) // an earlier version's write has no deadline
	if _, err := s.run(ctx, "create order", s.sc.createOrder, []string{rk, ob, obv}, args...); err != nil {
		t.Fatal(err)
	}
}

// TestRepairDrainsTheIntentLogOfEarlierVersions: during a rolling upgrade,
// replicas of earlier versions still record intents as one token per member
// in {idx}:dirty and {idx}:dirtyat; Repair replays those too, then drops
// them.
func TestRepairDrainsTheIntentLogOfEarlierVersions(t *testing.T) {
	requireSharedRedis(t)
	ctx := context.Background()
	clock := storetest.NewClock()
	s := openOn(t, clock, Options{Addrs: []string{sharedAddr}})
	o := storetest.NewOrder("LG-1", "shop", "legacy", clock.Now())
	legacyCreate(t, s, o, "lg-e1")
	if n, err := s.Repair(ctx); err != nil || n != 0 {
		t.Fatalf("Repair within the grace period: %d, %v; want 0", n, err)
	}
	ageNotes(t, s, DefaultRepairGrace+time.Second)
	if n, err := s.Repair(ctx); err != nil || n != 1 {
		t.Fatalf("Repair: %d, %v; want 1", n, err)
	}
	us, err := s.LoadUserState(ctx, "shop", "legacy")
	if err != nil || len(us.Orders) != 1 {
		t.Errorf("user copy after Repair: %+v, %v; want the order", us, err)
	}
	evs, err := s.DueEvents(ctx, clock.Now(), 10)
	if err != nil || len(evs) != 1 || evs[0].ID != "lg-e1" {
		t.Errorf("DueEvents after Repair: %v, %v; want [lg-e1]", ids(evs), err)
	}
	for _, k := range []string{s.k.idx("dirty"), s.k.idx("dirtyat")} {
		if n, err := s.c.Exists(ctx, k).Result(); err != nil || n != 0 {
			t.Errorf("%s after Repair: exists %d, %v; want drained", k, n, err)
		}
	}
}

// TestRepairGoesPastMembersItCannotResync: an order whose record does not
// decode (a hand-spoilt record, a later version's) cannot be resynced, and
// its note stays. Repair must still reach every other abandoned note, also
// when more than a page of them (the 100 it reads at a time) is stuck
// before the rest, and say which it left.
func TestRepairGoesPastMembersItCannotResync(t *testing.T) {
	requireSharedRedis(t)
	clock := storetest.NewClock()
	s := openOn(t, clock, Options{Addrs: []string{sharedAddr}})
	const bad, good = 101, 3
	for i := range bad {
		o := storetest.NewOrder(fmt.Sprintf("BAD-%03d", i), "shop", "spoilt", clock.Now())
		if !beginCrashWriter(t, s, o.OrderNo).create(o, "bad-e"+o.OrderNo) {
			t.Fatalf("create %s did not apply", o.OrderNo)
		}
		spoilOrder(t, s, o.OrderNo)
	}
	// Scored after the spoilt ones (later, or in the same millisecond and
	// after them by name).
	for i := range good {
		o := storetest.NewOrder(fmt.Sprintf("OK-%d", i), "shop", "crashy", clock.Now())
		if !beginCrashWriter(t, s, o.OrderNo).create(o, "ok-e"+o.OrderNo) {
			t.Fatalf("create %s did not apply", o.OrderNo)
		}
	}
	wantRepairedPast(t, s, "BAD-000", "crashy", "notes", s.k.idx("notes"), good, bad)
}

// spoilOrder overwrites order orderNo's record with JSON that does not
// decode.
func spoilOrder(t *testing.T, s *Store, orderNo string) {
	t.Helper()
	rk, _, _ := s.k.orderTag(orderNo)
	if err := s.c.HSet(context.Background(), rk, "j", `{"order_no": nul`).Err(); err != nil {
		t.Fatal(err)
	}
}

// wantRepairedPast ages the intents written and runs Repair: it must name
// firstBad, the first order it could not resync, resolve the good ones (what
// they are: notes or legacy entries), enter them in user's state, and leave
// bad entries in index, the spoilt orders'.
func wantRepairedPast(t *testing.T, s *Store, firstBad, user, what, index string, good, bad int) {
	t.Helper()
	ctx := context.Background()
	ageNotes(t, s, DefaultRepairGrace+time.Second)
	n, err := s.Repair(ctx)
	if err == nil || !strings.Contains(err.Error(), firstBad) {
		t.Errorf("Repair error: %v; want one naming the order it could not resync", err)
	}
	if n != good {
		t.Errorf("Repair resolved %d %s; want %d", n, what, good)
	}
	us, err := s.LoadUserState(ctx, "shop", user)
	if err != nil || len(us.Orders) != good {
		t.Errorf("user state after repair: %d orders, %v; want %d", len(us.Orders), err, good)
	}
	left, err := s.c.ZCard(ctx, index).Result()
	if err != nil || left != int64(bad) {
		t.Errorf("%s left after repair: %d, %v; want %d, the spoilt orders'", what, left, err, bad)
	}
}

// downAtResync kills srv as Repair sends its first resync read, and counts
// the resync reads sent.
type downAtResync struct {
	sha   string
	srv   *redistest.Server
	reads *atomic.Int32
}

func (h downAtResync) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h downAtResync) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if runs(cmd, h.sha) && h.reads.Add(1) == 1 {
			h.srv.Kill()
		}
		return next(ctx, cmd)
	}
}

func (h downAtResync) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// TestRepairStopsWhenRedisGoesDown: Repair goes on past a member whose
// own record it cannot resync, but not past one it could not resync
// because Redis went away: every other member would meet the same, and
// the pass ends at once with Redis's failure, as store.ErrUnavailable,
// not as members left for a reason of their own.
func TestRepairStopsWhenRedisGoesDown(t *testing.T) {
	ctx := context.Background()
	srv := redistest.StartServer(t)
	s := openOn(t, nil, Options{Addrs: []string{srv.Addr()}, EpochInterval: -1, MaxRetries: 1, DialTimeout: time.Second})
	for i := range 3 {
		o := storetest.NewOrder(fmt.Sprintf("OK-%d", i), "shop", "crashy", time.Now())
		if !beginCrashWriter(t, s, o.OrderNo).create(o, "ok-e"+o.OrderNo) {
			t.Fatalf("create %s did not apply", o.OrderNo)
		}
	}
	ageNotes(t, s, DefaultRepairGrace+time.Second)
	reads := new(atomic.Int32)
	s.Client().AddHook(downAtResync{sha: s.sc.readTag.Hash(), srv: srv, reads: reads})

	n, err := s.Repair(ctx)
	if !errors.Is(err, store.ErrUnavailable) || errors.As(err, new(leftMembers)) {
		t.Errorf("Repair with Redis gone: %v; want store.ErrUnavailable, not members left", err)
	}
	if got := reads.Load(); got != 1 || n != 0 {
		t.Errorf("Repair with Redis gone read %d members and resolved %d notes; want it to stop at the first, 1 and 0", got, n)
	}
	srv.Restart() // for the cleanup's removal of the prefix
}

// TestRepairGoesPastLegacyMembersItCannotResync is
// TestRepairGoesPastMembersItCannotResync for the intent log of earlier
// versions: more than a page of spoilt orders logged there must not hide
// the orders behind them.
func TestRepairGoesPastLegacyMembersItCannotResync(t *testing.T) {
	requireSharedRedis(t)
	clock := storetest.NewClock()
	s := openOn(t, clock, Options{Addrs: []string{sharedAddr}})
	const bad, good = 101, 3
	for i := range bad {
		o := storetest.NewOrder(fmt.Sprintf("LBAD-%03d", i), "shop", "spoilt", clock.Now())
		legacyCreate(t, s, o, "lbad-e"+o.OrderNo)
		spoilOrder(t, s, o.OrderNo)
	}
	for i := range good {
		legacyCreate(t, s, storetest.NewOrder(fmt.Sprintf("LOK-%d", i), "shop", "legacy", clock.Now()), fmt.Sprintf("lok-e%d", i))
	}
	wantRepairedPast(t, s, "LBAD-000", "legacy", "legacy entries", s.k.idx("dirtyat"), good, bad)
}
