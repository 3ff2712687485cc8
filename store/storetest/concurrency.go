package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
)

func testConcurrency(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)

	t.Run("100 claims of one purchase: one order", func(t *testing.T) {
		claimRace(t, ctx, []store.Store{st}, "race-claim", 100)
	})

	t.Run("100 concurrent claims of one candidate: one creator", func(t *testing.T) {
		claimRaceOf(t, ctx, []store.Store{st}, "race-claim-same", 100, func(int) string { return "SAME-1" })
	})

	t.Run("50 transitions from one state: one wins", func(t *testing.T) {
		transitionRace(t, ctx, []store.Store{st}, clock, "race-order", 50)
	})

	t.Run("concurrent refund confirmations: one", func(t *testing.T) {
		mustNil(t, "PutRefundProposal", st.PutRefundProposal(ctx, newProposal("race-rf", "u1"), time.Hour))
		var mu sync.Mutex
		won, gone := 0, 0
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Go(func() {
				var err error
				if i%5 == 0 {
					_, err = st.CancelRefundProposal(ctx, "race-rf", "u1")
				} else {
					_, err = st.ConsumeRefundProposal(ctx, "race-rf", "u1")
				}
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won++
				case errors.Is(err, store.ErrGone):
					gone++
				default:
					t.Errorf("consume: %v", err)
				}
			})
		}
		wg.Wait()
		if won != 1 || gone != 49 {
			t.Errorf("got %d winners and %d gone; want 1 and 49", won, gone)
		}
	})

	t.Run("concurrent audit appends: gap-free chain", func(t *testing.T) {
		auditRace(t, ctx, []store.Store{st}, 16, 6)
	})

	t.Run("a claim after its order closed: new generation", func(t *testing.T) {
		claimAfterClose(t, ctx, []store.Store{st}, clock)
	})
}

// claimRace: n goroutines spread over the stores claim one key, each with a
// candidate of its own; exactly one creates, everyone sees the same order.
func claimRace(t *testing.T, ctx context.Context, sts []store.Store, key string, n int) {
	t.Helper()
	claimRaceOf(t, ctx, sts, key, n, func(i int) string { return uniq("cand", i) })
}

// claimRaceOf is claimRace with the candidates cand gives. When they are
// all one number, exactly one caller still creates: created says that this
// call bound the claim, not that the claim names its candidate (payments
// passes existing order numbers as candidates).
func claimRaceOf(t *testing.T, ctx context.Context, sts []store.Store, key string, n int, cand func(i int) string) {
	t.Helper()
	type res struct {
		c       store.Claim
		created bool
	}
	out := make([]res, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			c, created, err := sts[i%len(sts)].ClaimPurchase(ctx, key, cand(i), 10*time.Minute)
			if err != nil {
				t.Errorf("ClaimPurchase: %v", err)
			}
			out[i] = res{c, created}
		})
	}
	close(start)
	wg.Wait()
	created, winner := 0, ""
	for i, r := range out {
		if r.created {
			created++
			winner = cand(i)
		}
	}
	if created != 1 {
		t.Fatalf("got %d creators; want exactly 1", created)
	}
	for i, r := range out {
		if r.c.OrderNo != winner || r.c.Generation != 1 {
			t.Fatalf("claimer %d got %+v; want {%s 1}", i, r.c, winner)
		}
	}
}

// transitionRace: n goroutines move one order from awaiting_payment to paid, each
// with its own transaction id and event; exactly one succeeds and only its
// write and its event exist.
func transitionRace(t *testing.T, ctx context.Context, sts []store.Store, clock *Clock, no string, n int) {
	t.Helper()
	base := NewOrder(no, "shop", "racer", clock.Now())
	mustNil(t, "CreateOrder", sts[0].CreateOrder(ctx, base))
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			o := *base
			o.Status = store.StatusPaid
			o.PaidAt = clock.Now()
			o.TransactionID = uniq("tx", i)
			<-start
			errs[i] = sts[i%len(sts)].UpdateOrder(ctx, &o, store.StatusAwaitingPayment, store.Event{ID: uniq(no+"-evt", i), Kind: "webhook"})
		})
	}
	close(start)
	wg.Wait()
	winners := 0
	winnerTx := ""
	for i, err := range errs {
		switch {
		case err == nil:
			winners++
			winnerTx = uniq("tx", i)
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("UpdateOrder %d: %v", i, err)
		}
	}
	if winners != 1 {
		t.Fatalf("got %d successful transitions; want exactly 1", winners)
	}
	for _, s := range sts {
		got, err := s.GetOrder(ctx, no)
		mustNil(t, "GetOrder", err)
		if got.Status != store.StatusPaid || got.TransactionID != winnerTx || got.Version != 2 {
			t.Errorf("stored: got %s %s v%d; want paid %s v2", got.Status, got.TransactionID, got.Version, winnerTx)
		}
	}
	evs, err := sts[0].DueEvents(ctx, clock.Now(), store.MaxListLimit)
	mustNil(t, "DueEvents", err)
	var mine []string
	for _, e := range evs {
		if e.Key == no {
			mine = append(mine, e.ID)
			mustNil(t, "AckEvent", sts[0].AckEvent(ctx, e.Key, e.ID))
		}
	}
	want := no + "-evt-" + winnerTx[len("tx-"):]
	if len(mine) != 1 || mine[0] != want {
		t.Fatalf("events of the order: got %v; want [%s]", mine, want)
	}
	evs, err = sts[0].DueEvents(ctx, clock.Now(), store.MaxListLimit)
	mustNil(t, "DueEvents", err)
	for _, e := range evs {
		if e.Key == no {
			t.Errorf("a losing transition left event %s behind", e.ID)
		}
	}
}

// auditRace: writers goroutines each append per records, retrying lost races;
// the chain ends gap-free and linked.
func auditRace(t *testing.T, ctx context.Context, sts []store.Store, writers, per int) {
	t.Helper()
	h, err := sts[0].AuditHead(ctx)
	mustNil(t, "AuditHead", err)
	if h.Seq != 0 {
		t.Fatalf("the audit race needs an empty chain; head is %d", h.Seq)
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range per {
				body := fmt.Appendf(nil, `{"writer":%d,"i":%d}`, w, i)
				if err := appendWithRetry(ctx, sts[w%len(sts)], "u1", body); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, s := range sts {
		verifyChain(t, ctx, s, writers*per)
	}
}

// claimAfterClose plays SPEC 4: a purchase claimed, its order closed, the next
// request for the same purchase gets a new generation and a new number, however
// many race for it.
func claimAfterClose(t *testing.T, ctx context.Context, sts []store.Store, clock *Clock) {
	t.Helper()
	const key, ttl = "shop|u1|premium|1|jsapi", 10 * time.Minute
	c, created, err := sts[0].ClaimPurchase(ctx, key, "G1", ttl)
	mustNil(t, "ClaimPurchase", err)
	if !created || c.Generation != 1 {
		t.Fatalf("first claim: got %+v created=%v", c, created)
	}
	o := NewOrder("G1", "shop", "u1", clock.Now())
	mustNil(t, "CreateOrder", sts[0].CreateOrder(ctx, o))
	o.Status = store.StatusClosed
	mustNil(t, "UpdateOrder", sts[0].UpdateOrder(ctx, o, store.StatusAwaitingPayment))

	const n = 20
	type res struct {
		c        store.Claim
		advanced bool
	}
	out := make([]res, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s := sts[i%len(sts)]
			c, _, err := s.ClaimPurchase(ctx, key, uniq("unused", i), ttl)
			if err != nil {
				t.Errorf("ClaimPurchase: %v", err)
				return
			}
			if c.OrderNo != "G1" { // someone already moved on; their order is in the making
				out[i] = res{c, false}
				return
			}
			cur, err := s.GetOrder(ctx, c.OrderNo)
			if err != nil {
				t.Errorf("GetOrder(%s): %v", c.OrderNo, err)
				return
			}
			if cur.Status == store.StatusClosed {
				c2, adv, err := s.AdvanceClaim(ctx, key, c.Generation, uniq("G2", i), ttl)
				if err != nil {
					t.Errorf("AdvanceClaim: %v", err)
				}
				c = c2
				out[i] = res{c, adv}
				return
			}
			out[i] = res{c, false}
		})
	}
	wg.Wait()
	advanced, winner := 0, ""
	for i, r := range out {
		if r.advanced {
			advanced++
			winner = uniq("G2", i)
		}
	}
	if advanced != 1 {
		t.Fatalf("got %d advances; want exactly 1", advanced)
	}
	for i, r := range out {
		if r.c.OrderNo != winner || r.c.Generation != 2 {
			t.Fatalf("requester %d got %+v; want {%s 2}", i, r.c, winner)
		}
	}
}
