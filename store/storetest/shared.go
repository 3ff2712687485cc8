package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
)

// PairOpener opens two store instances over the same backend (two replicas),
// both judging expiry by clock.
type PairOpener func(t testing.TB, clock *Clock) (a, b store.Store)

// RunShared checks that two instances over one backend behave as one store:
// each sees the other's writes, and the money races hold across them.
func RunShared(t *testing.T, open PairOpener) {
	ctx := context.Background()

	t.Run("each sees the other's writes", func(t *testing.T) {
		clock := NewClock()
		a, b := open(t, clock)
		o := NewOrder("SH-1", "shop", "u1", clock.Now())
		mustNil(t, "CreateOrder on a", a.CreateOrder(ctx, o, store.Event{ID: "sh-e1", Kind: "webhook"}))
		got, err := b.GetOrder(ctx, "SH-1")
		mustNil(t, "GetOrder on b", err)
		sameOrder(t, "b reads a's order", got, o)
		us, err := b.LoadUserState(ctx, "shop", "u1")
		mustNil(t, "LoadUserState on b", err)
		if len(us.Orders) != 1 || us.Orders[0].OrderNo != "SH-1" {
			t.Fatalf("b's user state: got %+v; want SH-1", us.Orders)
		}
		got.Status = store.StatusPaid
		mustNil(t, "UpdateOrder on b", b.UpdateOrder(ctx, got, store.StatusAwaitingPayment))
		again, err := a.GetOrder(ctx, "SH-1")
		mustNil(t, "GetOrder on a", err)
		if again.Status != store.StatusPaid || again.Version != 2 {
			t.Errorf("a after b's update: got %s v%d; want paid v2", again.Status, again.Version)
		}
		stale := *o
		stale.Status = store.StatusClosed
		wantErr(t, "a's stale transition", a.UpdateOrder(ctx, &stale, store.StatusAwaitingPayment), store.ErrConflict)

		evs, err := b.DueEvents(ctx, clock.Now(), 10)
		mustNil(t, "DueEvents on b", err)
		sameIDs(t, "b sees a's event", evs, "sh-e1")
		mustNil(t, "AckEvent on b", b.AckEvent(ctx, evs[0].Key, evs[0].ID))
		evs, err = a.DueEvents(ctx, clock.Now(), 10)
		mustNil(t, "DueEvents on a", err)
		sameIDs(t, "a sees b's ack", evs)

		first, err := a.SeenNotification(ctx, "sh-n1", time.Hour)
		mustNil(t, "SeenNotification on a", err)
		second, err := b.SeenNotification(ctx, "sh-n1", time.Hour)
		mustNil(t, "SeenNotification on b", err)
		if !first || second {
			t.Errorf("notification seen: a first=%v, b first=%v; want true, false", first, second)
		}

		mustNil(t, "PutRefundProposal on a", a.PutRefundProposal(ctx, newProposal("sh-rf", "u1"), time.Hour))
		_, err = b.ConsumeRefundProposal(ctx, "sh-rf", "u1")
		mustNil(t, "ConsumeRefundProposal on b", err)
		_, err = a.ConsumeRefundProposal(ctx, "sh-rf", "u1")
		wantErr(t, "ConsumeRefundProposal on a after b", err, store.ErrGone)

		mustNil(t, "PutExchange on a", a.PutExchange(ctx, "call_x", []byte("x"), time.Hour))
		x, err := b.GetExchange(ctx, "call_x")
		mustNil(t, "GetExchange on b", err)
		if string(x) != "x" {
			t.Errorf("b's exchange: got %q; want x", x)
		}

		n1, err := a.IncrCounter(ctx, "sh-count", time.Hour)
		mustNil(t, "IncrCounter on a", err)
		n2, err := b.IncrCounter(ctx, "sh-count", time.Hour)
		mustNil(t, "IncrCounter on b", err)
		if n1 != 1 || n2 != 2 {
			t.Errorf("shared counter: got %d then %d; want 1 then 2", n1, n2)
		}
	})

	t.Run("tallies add up across replicas", func(t *testing.T) {
		a, b := open(t, NewClock())
		tallyRace(t, ctx, []store.Store{a, b}, "shared-tally", 100)
	})

	t.Run("claims are shared", func(t *testing.T) {
		a, b := open(t, NewClock())
		claimRace(t, ctx, []store.Store{a, b}, "shared-claim", 100)
		claimRaceOf(t, ctx, []store.Store{a, b}, "shared-claim-same", 100, func(int) string { return "SAME-1" })
	})

	t.Run("announcement claims are shared", func(t *testing.T) {
		a, b := open(t, NewClock())
		announceRace(t, ctx, []store.Store{a, b}, "shared-announce", 50)
	})

	t.Run("transitions race across replicas", func(t *testing.T) {
		clock := NewClock()
		a, b := open(t, clock)
		transitionRace(t, ctx, []store.Store{a, b}, clock, "shared-order", 50)
	})

	t.Run("outbox claims across replicas", func(t *testing.T) {
		clock := NewClock()
		a, b := open(t, clock)
		outboxClaimRace(t, ctx, []store.Store{a, b}, clock, 30*time.Second)
	})

	t.Run("audit appends across replicas", func(t *testing.T) {
		a, b := open(t, NewClock())
		auditRace(t, ctx, []store.Store{a, b}, 10, 5)
	})

	t.Run("claim after close across replicas", func(t *testing.T) {
		clock := NewClock()
		a, b := open(t, clock)
		claimAfterClose(t, ctx, []store.Store{a, b}, clock)
	})

	t.Run("one secret for all replicas", func(t *testing.T) {
		a, b := open(t, NewClock())
		var wg sync.WaitGroup
		var va, vb []byte
		wg.Go(func() {
			v, err := a.GetOrCreateSecret(ctx, "hash_key", func() ([]byte, error) { return []byte("from-a"), nil })
			mustNilAsync(t, err)
			va = v
		})
		wg.Go(func() {
			v, err := b.GetOrCreateSecret(ctx, "hash_key", func() ([]byte, error) { return []byte("from-b"), nil })
			mustNilAsync(t, err)
			vb = v
		})
		wg.Wait()
		if string(va) != string(vb) || len(va) == 0 {
			t.Errorf("replicas disagree on the secret: %q vs %q", va, vb)
		}
	})
}

func mustNilAsync(t testing.TB, err error) {
	if err != nil {
		t.Errorf("unexpected error: %v", err)
	}
}
