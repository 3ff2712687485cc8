package redis

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// writerHook plays, on a writer's client, what a stall, another replica and
// a crash do around the writer's money step: with stall, the writer's first
// intent is made that much older (its note and the deadline the writer
// carries: the server's clock moved on while the writer stalled before its
// money step); just before the money step first goes out, before runs
// (another replica's Repair pass); once the step has run, every sync script
// of the writer fails (the writer died, or its connection was cut, right
// after the money step).
type writerHook struct {
	intent string   // the SHA of the intent script
	money  string   // the SHA of the money step's script
	syncs  []string // the SHAs of the sync scripts
	stall  time.Duration
	age    func(time.Duration) // makes the notes that much older
	before func()
	armed  atomic.Bool
	dead   atomic.Bool
	steps  atomic.Int32 // money steps sent
}

// runs reports whether cmd runs one of the scripts shas.
func runs(cmd goredis.Cmder, shas ...string) bool {
	a := cmd.Args()
	if len(a) < 2 || cmd.Name() != "evalsha" {
		return false
	}
	sha, _ := a[1].(string)
	return slices.Contains(shas, sha)
}

func (h *writerHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *writerHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		switch {
		case h.dead.Load() && runs(cmd, h.syncs...):
			err := errors.New("the writer died after its money step")
			cmd.SetErr(err)
			return err
		case runs(cmd, h.money):
			return h.moneyStep(func() error { return next(ctx, cmd) })
		case h.stall > 0 && h.steps.Load() == 0 && runs(cmd, h.intent):
			if err := next(ctx, cmd); err != nil {
				return err
			}
			shiftDeadline(cmd, h.stall)
			h.age(h.stall)
			return nil
		}
		return next(ctx, cmd)
	}
}

func (h *writerHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		if slices.ContainsFunc(cmds, func(c goredis.Cmder) bool { return runs(c, h.money) }) {
			return h.moneyStep(func() error { return next(ctx, cmds) })
		}
		return next(ctx, cmds)
	}
}

// shiftDeadline makes the deadline in the reply of intent cmd d earlier.
func shiftDeadline(cmd goredis.Cmder, d time.Duration) {
	c := cmd.(*goredis.Cmd)
	r := slices.Clone(replySlice(c.Val()))
	r[1] = replyInt(r, 1) - d.Milliseconds()
	c.SetVal(r)
}

func (h *writerHook) moneyStep(run func() error) error {
	h.steps.Add(1)
	if h.armed.CompareAndSwap(true, false) {
		h.before()
	}
	err := run()
	h.dead.Store(true)
	return err
}

// raceWrite is one kind of write that records an intent before its money
// step.
type raceWrite struct {
	name  string
	money func(*scripts) *goredis.Script
	// setup runs before the hook is installed; write is the write under test,
	// which carries the event evt-1.
	setup func(ctx context.Context, s *Store, clock *storetest.Clock) error
	write func(ctx context.Context, s *Store, clock *storetest.Clock) error
	// order, for a write of order RR-1 (user u1), is the status the write
	// leaves it in; its user copy and status index must follow.
	order store.OrderStatus
}

func raceWrites() []raceWrite {
	evt := func(key string) store.Event {
		return store.Event{ID: "evt-1", Kind: "webhook", Key: key, Payload: []byte(`{"type":"order.paid"}`)}
	}
	createOrder := func(ctx context.Context, s *Store, clock *storetest.Clock) error {
		return s.CreateOrder(ctx, storetest.NewOrder("RR-1", "shop", "u1", clock.Now()))
	}
	proposal := func() *store.RefundProposal {
		return &store.RefundProposal{RefundID: "rf-1", OrderNo: "RR-1", Client: "shop", User: "u1", AmountFen: 100, OutRefundNo: "RF1"}
	}
	return []raceWrite{
		{name: "create order", money: func(sc *scripts) *goredis.Script { return sc.createOrder },
			write: func(ctx context.Context, s *Store, clock *storetest.Clock) error {
				return s.CreateOrder(ctx, storetest.NewOrder("RR-1", "shop", "u1", clock.Now()), evt(""))
			},
			order: store.StatusAwaitingPayment},
		{name: "update order", money: func(sc *scripts) *goredis.Script { return sc.updateOrder },
			setup: createOrder,
			write: func(ctx context.Context, s *Store, clock *storetest.Clock) error {
				o, err := s.GetOrder(ctx, "RR-1")
				if err != nil {
					return err
				}
				o.Status, o.TransactionID = store.StatusPaid, "wx-tx-1"
				return s.UpdateOrder(ctx, o, store.StatusAwaitingPayment, evt(""))
			},
			order: store.StatusPaid},
		{name: "enqueue events", money: func(sc *scripts) *goredis.Script { return sc.enqueue },
			write: func(ctx context.Context, s *Store, clock *storetest.Clock) error {
				return s.EnqueueEvents(ctx, evt("k-1"))
			}},
		{name: "enqueue events once", money: func(sc *scripts) *goredis.Script { return sc.enqueueOnceAll },
			write: func(ctx context.Context, s *Store, clock *storetest.Clock) error {
				_, err := s.EnqueueEventsOnce(ctx, []store.Event{evt("k-1")})
				return err
			}},
		{name: "put refund proposal", money: func(sc *scripts) *goredis.Script { return sc.putRefund },
			write: func(ctx context.Context, s *Store, clock *storetest.Clock) error {
				return s.PutRefundProposal(ctx, proposal(), time.Hour, evt(""))
			}},
		{name: "consume refund proposal", money: func(sc *scripts) *goredis.Script { return sc.finishRefund },
			setup: func(ctx context.Context, s *Store, clock *storetest.Clock) error {
				return s.PutRefundProposal(ctx, proposal(), time.Hour)
			},
			write: func(ctx context.Context, s *Store, clock *storetest.Clock) error {
				_, err := s.ConsumeRefundProposal(ctx, "rf-1", "u1", evt(""))
				return err
			}},
	}
}

// TestARepairBeforeTheMoneyStepKeepsTheWritersNote: another replica's Repair
// pass runs between a writer's intent and its money step, then the money
// step commits and the writer dies before its sync. The repair pass must not
// have removed the writer's note, or nothing is left to repair the write:
// its outbox event would never be due (a lost order.paid webhook, a lost
// audit record), the user copy and the status index would stay stale.
func TestARepairBeforeTheMoneyStepKeepsTheWritersNote(t *testing.T) {
	requireSharedRedis(t)
	testRepairBeforeTheMoneyStep(t, func(t testing.TB, clock *storetest.Clock, prefix string) *Store {
		return openOn(t, clock, Options{Addrs: []string{sharedAddr}, KeyPrefix: prefix})
	})
}

func testRepairBeforeTheMoneyStep(t *testing.T, open func(t testing.TB, clock *storetest.Clock, prefix string) *Store) {
	ctx := context.Background()
	cases := []struct {
		name string
		// ahead is how far the repairing replica's clock is ahead of the
		// writer's; stall is how long the writer stalls between its intent
		// and its money step.
		ahead, stall time.Duration
	}{
		{"the repairing replica's clock is ahead by more than the grace", DefaultRepairGrace + time.Second, 0},
		{"the writer stalls longer than the grace", 0, DefaultRepairGrace + time.Second},
	}
	for _, tc := range cases {
		for _, rw := range raceWrites() {
			t.Run(tc.name+"/"+rw.name, func(t *testing.T) {
				wClock, rClock := storetest.NewClock(), storetest.NewClock()
				rClock.Advance(tc.ahead)
				prefix := testPrefix()
				w, r := open(t, wClock, prefix), open(t, rClock, prefix)
				if rw.setup != nil {
					if err := rw.setup(ctx, w, wClock); err != nil {
						t.Fatalf("setup: %v", err)
					}
				}
				h := &writerHook{
					intent: w.sc.intent.Hash(),
					money:  rw.money(w.sc).Hash(),
					syncs:  []string{w.sc.syncUser.Hash(), w.sc.syncIndex.Hash()},
					stall:  tc.stall,
					age:    func(d time.Duration) { ageNotes(t, r, d) },
					before: func() {
						n, err := r.Repair(ctx)
						t.Logf("the other replica's repair pass before the money step: %d notes, %v", n, err)
					},
				}
				h.armed.Store(true)
				w.Client().AddHook(h)
				if err := rw.write(ctx, w, wClock); err != nil {
					t.Fatalf("write: %v", err) // sync failures are logged, not returned
				}
				if h.armed.Load() || !h.dead.Load() {
					t.Fatal("the hook did not see the money step")
				}
				// A stalled writer's first money step is refused; it writes
				// under a fresh intent.
				want := int32(1)
				if tc.stall > 0 {
					want = 2
				}
				if h.steps.Load() != want {
					t.Errorf("money steps sent: %d; want %d", h.steps.Load(), want)
				}

				// Later: every replica's repair has run, long after the grace.
				wClock.Advance(10 * time.Minute)
				rClock.Advance(10 * time.Minute)
				ageNotes(t, r, 10*time.Minute)
				if _, err := r.Repair(ctx); err != nil {
					t.Fatalf("Repair: %v", err)
				}

				due, err := r.DueEvents(ctx, rClock.Now(), 100)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Contains(ids(due), "evt-1") {
					t.Errorf("the committed event is not due: DueEvents = %v (a lost webhook or audit record)", ids(due))
				}
				if left, err := r.c.ZCard(ctx, r.k.idx("notes")).Result(); err != nil || left != 0 {
					t.Errorf("notes left after the repair: %d, %v; want 0", left, err)
				}
				if rw.order == "" {
					return
				}
				rec, err := r.GetOrder(ctx, "RR-1")
				if err != nil || rec.Status != rw.order {
					t.Fatalf("record: %+v, %v; want %s", rec, err, rw.order)
				}
				us, err := r.LoadUserState(ctx, "shop", "u1")
				if err != nil {
					t.Fatal(err)
				}
				if len(us.Orders) != 1 || us.Orders[0].Status != rec.Status || us.Orders[0].Version != rec.Version {
					t.Errorf("user copy: %v; want v%d %s, as the record", statuses(us.Orders), rec.Version, rec.Status)
				}
				list, err := r.ListOrders(ctx, store.OrderFilter{Status: rw.order})
				if err != nil {
					t.Fatal(err)
				}
				if len(list) != 1 {
					t.Errorf("ListOrders(status %s): %d orders; want RR-1", rw.order, len(list))
				}
			})
		}
	}
}

// TestAStaleIntentWritesNothing: once a write's intent is past its deadline
// (its writer stalled before the money step), the money step's script
// refuses to write, so it cannot commit behind a Repair pass that took the
// intent's note for abandoned. A re-sent run of a write that did apply (its
// reply was lost) still answers as that run did, however late.
func TestAStaleIntentWritesNothing(t *testing.T) {
	requireSharedRedis(t)
	ctx := context.Background()
	clock := storetest.NewClock()
	s := openOn(t, clock, Options{Addrs: []string{sharedAddr}})
	if err := s.CreateOrder(ctx, storetest.NewOrder("ST-1", "shop", "u1", clock.Now())); err != nil {
		t.Fatal(err)
	}
	read, err := s.GetOrder(ctx, "ST-1")
	if err != nil {
		t.Fatal(err)
	}
	rk, ob, obv := s.k.orderTag("ST-1")
	pay := func(in writeIntent) (any, error) {
		paid := *read
		paid.Status = store.StatusPaid
		elems, err := s.orderEvents("ST-1", []store.Event{{ID: "evt-paid", Kind: "webhook"}})
		if err != nil {
			t.Fatal(err)
		}
		args := updateOrderArgs(mustJSON(t, &paid), &paid, store.StatusAwaitingPayment, read.Version, in.tok, elems, in.fence())
		return s.run(ctx, "update order", s.sc.updateOrder, []string{rk, ob, obv}, args...)
	}
	late := func() writeIntent {
		in, err := s.intent(ctx, "ST-1")
		if err != nil {
			t.Fatal(err)
		}
		in.deadline -= DefaultRepairGrace.Milliseconds() // the writer stalled that long
		return in
	}

	if _, err := pay(late()); !goredis.HasErrorPrefix(err, "STALEINTENT") {
		t.Fatalf("money step past its intent's deadline: %v; want a STALEINTENT refusal", err)
	}
	if got, err := s.GetOrder(ctx, "ST-1"); err != nil || got.Version != read.Version || got.Status != read.Status {
		t.Errorf("record after the refusal: %+v, %v; want v%d %s, unchanged", got, err, read.Version, read.Status)
	}
	if n, err := s.c.LLen(ctx, ob).Result(); err != nil || n != 0 {
		t.Errorf("outbox after the refusal: %d events, %v; want none", n, err)
	}

	t.Run("a re-sent run of a write that applied answers as it did", func(t *testing.T) {
		in, err := s.intent(ctx, "ST-1")
		if err != nil {
			t.Fatal(err)
		}
		v, err := pay(in)
		if err != nil || replyInt(replySlice(v), 0) != 1 {
			t.Fatalf("money step: %v, %v; want applied", v, err)
		}
		in.deadline -= DefaultRepairGrace.Milliseconds() // the re-send comes late
		v, err = pay(in)
		if err != nil || replyInt(replySlice(v), 0) != 1 || replyInt(replySlice(v), 1) != read.Version+1 {
			t.Errorf("late re-send of the applied step: %v, %v; want applied at v%d", v, err, read.Version+1)
		}
		if n, err := s.c.LLen(ctx, ob).Result(); err != nil || n != 1 {
			t.Errorf("outbox after the re-send: %d events, %v; want 1", n, err)
		}
	})
}

// lateIntents moves the deadline of every intent its client records back by
// by: a writer each of whose money steps comes too late.
type lateIntents struct {
	sha string
	by  time.Duration
}

func (h lateIntents) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h lateIntents) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		if err == nil && runs(cmd, h.sha) {
			shiftDeadline(cmd, h.by)
		}
		return err
	}
}

func (h lateIntents) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// TestAWriterThatCannotWriteInTimeFailsClosed: a writer whose money step is
// refused as stale under each of staleTries fresh intents reports
// store.ErrUnavailable, having written nothing; Repair later resolves the
// notes of its intents.
func TestAWriterThatCannotWriteInTimeFailsClosed(t *testing.T) {
	requireSharedRedis(t)
	ctx := context.Background()
	clock := storetest.NewClock()
	s := openOn(t, clock, Options{Addrs: []string{sharedAddr}})
	o := storetest.NewOrder("SL-1", "shop", "u1", clock.Now())
	if err := s.CreateOrder(ctx, o); err != nil {
		t.Fatal(err)
	}
	s.Client().AddHook(lateIntents{sha: s.sc.intent.Hash(), by: DefaultRepairGrace})
	paid := *o
	paid.Status = store.StatusPaid
	err := s.UpdateOrder(ctx, &paid, store.StatusAwaitingPayment, store.Event{ID: "evt-paid", Kind: "webhook"})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("UpdateOrder refused as stale every time: %v; want ErrUnavailable", err)
	}
	if got, err := s.GetOrder(ctx, "SL-1"); err != nil || got.Version != 1 || got.Status != store.StatusAwaitingPayment {
		t.Errorf("record: %+v, %v; want v1 awaiting payment, unchanged", got, err)
	}
	if n, err := s.c.ZCard(ctx, s.k.idx("notes")).Result(); err != nil || n != staleTries {
		t.Errorf("notes: %d, %v; want the %d of the refused intents", n, err, staleTries)
	}
	ageNotes(t, s, DefaultRepairGrace+time.Second)
	if n, err := s.Repair(ctx); err != nil || n != staleTries {
		t.Errorf("Repair: %d, %v; want the %d notes resolved", n, err, staleTries)
	}
	if evs, err := s.DueEvents(ctx, clock.Now(), 10); err != nil || len(evs) != 0 {
		t.Errorf("DueEvents: %v, %v; want none (nothing was written)", ids(evs), err)
	}
}
