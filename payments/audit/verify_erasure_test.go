package audit

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// eraseDuring is the store `paygate audit verify -text` reads while the
// running paygate (another replica sharing Redis) serves
// DELETE /admin/api/audit/texts/oAlice: the erasure runs between the walk's
// start (the head it read) and its read of the first text.
type eraseDuring struct {
	store.Store
	once  sync.Once
	erase func()
}

func (s *eraseDuring) GetAuditText(ctx context.Context, seq uint64) ([]byte, error) {
	s.once.Do(s.erase)
	return s.Store.GetAuditText(ctx, seq)
}

// TestVerifyTextsErasedDuringTheWalk: a lawful erasure made while verify
// -text walks a live store has its audit.text_erased record appended beyond
// the head the walk read. The texts it removed were reported as "removed
// without erasure"; the records appended after the walk's head are read for
// erasures before any text is.
func TestVerifyTextsErasedDuringTheWalk(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			buildChain(t, e, 4) // records 1..4, oAlice's texts at 1 and 3
			w := newTestWorker(t, e.replicas(t, 2)[1], nil)
			ctx := context.Background()
			st := &eraseDuring{Store: e.store(), erase: func() {
				if n, err := w.Erase(ctx, "shop-bot", "oAlice"); err != nil || n != 2 {
					t.Errorf("erase: %d %v", n, err)
				}
			}}
			res, err := Verify(ctx, st, VerifyOptions{Texts: true, RetainText: time.Hour})
			if err != nil {
				t.Fatalf("verify -text during a recorded erasure: %v", err)
			}
			if res.Head.Seq != 4 || res.TextsGone != 2 || res.TextsChecked != 2 {
				t.Errorf("result: %+v; want the 4 records the walk started with, oAlice's 2 texts gone, oBob's 2 checked", res)
			}
		})
	}
}

// heldErase erases user's texts with w while Run's pass is busy (steady
// traffic): Erase answers after eraseAppendWait, its audit.text_erased
// record left in the outbox.
func heldErase(t *testing.T, w *Worker, user string, want int) {
	t.Helper()
	w.pass <- struct{}{}
	defer func() { <-w.pass }()
	if n, err := w.Erase(context.Background(), "shop-bot", user); err != nil || n != want {
		t.Fatalf("erase %s: %d %v; want %d texts", user, n, err, want)
	}
}

// TestVerifyTextsWhileTheErasureRecordWaits: until Erase's record is
// appended, the texts it lawfully erased were reported as "removed without
// erasure", though the record is pending in the outbox, as a text's own
// pending event is accepted (TextsPending). So are they now.
func TestVerifyTextsWhileTheErasureRecordWaits(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			buildChain(t, e, 4)
			ctx := context.Background()
			w := newTestWorker(t, e.store(), nil)
			heldErase(t, w, "oAlice", 2)
			res, err := Verify(ctx, e.store(), VerifyOptions{Texts: true, RetainText: time.Hour})
			if err != nil {
				t.Fatalf("verify -text with the erasure's record pending: %v", err)
			}
			if res.TextsPending != 2 || res.TextsChecked != 2 {
				t.Errorf("result: %+v; want oAlice's 2 texts pending, oBob's 2 checked", res)
			}
			drainAll(t, w)
			if res, err = Verify(ctx, e.store(), VerifyOptions{Texts: true, RetainText: time.Hour}); err != nil || res.TextsGone != 2 {
				t.Errorf("verify once the record is appended: %+v %v; want oAlice's 2 texts gone", res, err)
			}
		})
	}
}

// TestVerifyTextsWhileErasuresOfSeveralUsersWait: erasures of two users
// whose records both wait: each is found pending, not only the first
// queued (an outbox read sees the head of each queue).
func TestVerifyTextsWhileErasuresOfSeveralUsersWait(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			buildChain(t, e, 4)
			w := newTestWorker(t, e.store(), nil)
			heldErase(t, w, "oBob", 2)
			heldErase(t, w, "oAlice", 2)
			res, err := Verify(context.Background(), e.store(), VerifyOptions{Texts: true, RetainText: time.Hour})
			if err != nil || res.TextsPending != 4 {
				t.Fatalf("verify -text with both erasures' records pending: %+v %v; want 4 texts pending", res, err)
			}
		})
	}
}

// TestVerifyTextsRemovedBesideAPendingErasure: a pending erasure, or one
// recorded after the walk's head, covers its own user's texts only: another
// user's text removed without erasure is still reported.
func TestVerifyTextsRemovedBesideAPendingErasure(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			buildChain(t, e, 4)
			e.rawDeleteText(2) // oBob's
			w := newTestWorker(t, e.store(), nil)
			heldErase(t, w, "oAlice", 2)
			_, err := Verify(context.Background(), e.store(), VerifyOptions{Texts: true, RetainText: time.Hour})
			wantBroken(t, err, 2, "removed without erasure")

			st := &eraseDuring{Store: e.store(), erase: func() { drainAll(t, w) }} // appended during the walk
			_, err = Verify(context.Background(), st, VerifyOptions{Texts: true, RetainText: time.Hour})
			wantBroken(t, err, 2, "removed without erasure")
		})
	}
}

// pendingErasure erases user's texts on e's store and leaves the erasure's
// audit.text_erased record, of time at, waiting in the outbox (its append
// failed, retried in an hour), as Erase leaves it when the worker is busy.
func pendingErasure(t *testing.T, e *env, user string, at time.Time) {
	t.Helper()
	if _, err := e.store().EraseAuditText(context.Background(), "shop-bot", user); err != nil {
		t.Fatal(err)
	}
	ev, err := ErasureEvent(context.Background(), "shop-bot", user, 1, at)
	if err != nil {
		t.Fatal(err)
	}
	ev.NextAt = at.Add(time.Hour)
	enqueue(t, e.store(), ev)
}

// TestVerifyTextSaidAfterAPendingErasure: while an erasure's record of a
// user waits in the outbox, every missing text of that user counted as
// pending, one said after the erasure too, which the erasure cannot have
// removed: such a text removed without erasure went unreported for as long
// as the record waited. Only a text the pending erasure covers (said up to
// ClockSkew after it) is pending now; a later one's removal is reported.
func TestVerifyTextSaidAfterAPendingErasure(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clock := &fakeClock{at: time.Now()}
			e := &env{t: t, driver: driver, place: testdrivers.NewPlace(t, driver, clock.Now)}
			e.path, e.prefix = e.place.Path, e.place.Prefix
			e.open()
			ctx := context.Background()
			say := func(user, orderNo string) {
				enqueue(t, e.store(), mustEvent(t, Action{Time: clock.Now(), Name: "order.created", Client: "shop-bot", User: user,
					OrderNo: orderNo, AmountFen: 4999}, `[{"role":"user","content":"buy"}]`))
			}
			w := newTestWorker(t, e.store(), func(o *WorkerOptions) { o.Now = clock.Now })
			say("oAlice", "PG0001")
			say("oBob", "PG0002")
			drainAll(t, w) // records 1 and 2
			clock.Add(time.Second)
			pendingErasure(t, e, "oAlice", clock.Now())
			clock.Add(2 * DefaultClockSkew)
			say("oAlice", "PG0003") // after the erasure and its skew: kept
			drainAll(t, w)          // record 3; the erasure's record still waits
			res, err := Verify(ctx, e.store(), VerifyOptions{Texts: true, RetainText: time.Hour})
			if err != nil || res.TextsPending != 1 || res.TextsChecked != 2 {
				t.Fatalf("verify -text: %+v %v; want PG0001's text pending, PG0002's and PG0003's checked", res, err)
			}
			e.rawDeleteText(3)
			_, err = Verify(ctx, e.store(), VerifyOptions{Texts: true, RetainText: time.Hour})
			wantBroken(t, err, 3, "removed without erasure")
		})
	}
}

// TestVerifyTextErasedByAnErasureQueuedBehindAPendingOne: a second erasure
// of the user, whose record waits behind the first's in the user's
// erasure queue (the outbox shows a queue's head only), covers the texts
// said between the two: they are pending, not removed without erasure.
func TestVerifyTextErasedByAnErasureQueuedBehindAPendingOne(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clock := &fakeClock{at: time.Now()}
			e := &env{t: t, driver: driver, place: testdrivers.NewPlace(t, driver, clock.Now)}
			e.path, e.prefix = e.place.Path, e.place.Prefix
			e.open()
			w := newTestWorker(t, e.store(), func(o *WorkerOptions) { o.Now = clock.Now })
			enqueue(t, e.store(), mustEvent(t, Action{Time: clock.Now(), Name: "order.created", Client: "shop-bot", User: "oAlice",
				OrderNo: "PG0001", AmountFen: 4999}, `[{"role":"user","content":"buy"}]`))
			drainAll(t, w)
			clock.Add(time.Second)
			pendingErasure(t, e, "oAlice", clock.Now())
			clock.Add(2 * DefaultClockSkew)
			enqueue(t, e.store(), mustEvent(t, Action{Time: clock.Now(), Name: "order.created", Client: "shop-bot", User: "oAlice",
				OrderNo: "PG0002", AmountFen: 4999}, `[{"role":"user","content":"buy again"}]`))
			drainAll(t, w) // record 2, its text kept
			clock.Add(time.Second)
			pendingErasure(t, e, "oAlice", clock.Now()) // queued behind the first
			res, err := Verify(context.Background(), e.store(), VerifyOptions{Texts: true, RetainText: time.Hour})
			if err != nil || res.TextsPending != 2 {
				t.Fatalf("verify -text: %+v %v; want both texts pending", res, err)
			}
		})
	}
}
