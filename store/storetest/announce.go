package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
)

// testAnnouncements: a claim is granted once per order and kind while its
// mark lives, the marks of the user's orders come back with LoadUserState
// (so a turn needs no write to know them), and a claim an earlier version
// made with its counter (kind+orderNo) counts as made.
func testAnnouncements(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	const ttl = 30 * 24 * time.Hour
	for i, no := range []string{"AN-1", "AN-2", "AN-3"} {
		o := NewOrder(no, "shop", "u1", clock.Now().Add(time.Duration(i)*time.Second))
		mustNil(t, "CreateOrder", st.CreateOrder(ctx, o))
	}
	mustNil(t, "CreateOrder", st.CreateOrder(ctx, NewOrder("AN-OTHER", "shop", "u2", clock.Now())))
	claim := func(user, kind, no string) bool {
		t.Helper()
		first, err := st.ClaimAnnouncement(ctx, "shop", user, kind, no, ttl)
		mustNil(t, "ClaimAnnouncement", err)
		return first
	}
	announced := func(user string) map[store.Announcement]bool {
		t.Helper()
		us, err := st.LoadUserState(ctx, "shop", user)
		mustNil(t, "LoadUserState", err)
		return us.Announced
	}
	an := func(kind, no string) store.Announcement { return store.Announcement{Kind: kind, OrderNo: no} }

	t.Run("nothing claimed", func(t *testing.T) {
		if got := announced("u1"); len(got) != 0 {
			t.Errorf("Announced: got %v; want none", got)
		}
	})

	t.Run("once per order and kind", func(t *testing.T) {
		steps := []struct {
			kind, no string
			want     bool
		}{
			{"announced:", "AN-1", true},
			{"announced:", "AN-1", false},
			{"payable:", "AN-1", true},
			{"announced:", "AN-2", true},
			{"payable:", "AN-1", false},
		}
		for _, s := range steps {
			if got := claim("u1", s.kind, s.no); got != s.want {
				t.Errorf("claim %s%s: got %v; want %v", s.kind, s.no, got, s.want)
			}
		}
	})

	t.Run("marks of the user's orders in the state", func(t *testing.T) {
		want := map[store.Announcement]bool{an("announced:", "AN-1"): true, an("payable:", "AN-1"): true, an("announced:", "AN-2"): true}
		if got := announced("u1"); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("u1's Announced: got %v; want %v", got, want)
		}
		if got := announced("u2"); len(got) != 0 {
			t.Errorf("u2's Announced: got %v; want none (the marks are u1's)", got)
		}
	})

	t.Run("an earlier version's counter counts as a claim", func(t *testing.T) {
		n, err := st.IncrCounter(ctx, "announced:AN-3", ttl)
		mustNil(t, "IncrCounter", err)
		if n != 1 {
			t.Fatalf("IncrCounter: %d; want 1", n)
		}
		if claim("u1", "announced:", "AN-3") {
			t.Errorf("an order an earlier version announced (counter announced:AN-3) was claimed again: announced twice across an upgrade")
		}
		if got := announced("u1"); !got[an("announced:", "AN-3")] {
			t.Errorf("Announced after the claim found the counter: %v; want announced:AN-3 marked, so later turns need not ask", got)
		}
	})

	t.Run("an earlier version's claim finds this one's", func(t *testing.T) {
		// An earlier version claims with the counter alone (IncrCounter
		// kind+orderNo, first at 1): a replica of it during a rolling
		// upgrade, or the embedded file opened again by it after a
		// rollback, must find the order announced, or it tells the user
		// payment_confirmed again and the bot delivers twice.
		if !claim("u1", "announced:", "AN-4") {
			t.Fatalf("claim announced:AN-4: got false; want true")
		}
		n, err := st.IncrCounter(ctx, "announced:AN-4", ttl)
		mustNil(t, "IncrCounter", err)
		if n == 1 {
			t.Errorf("an earlier version's claim (IncrCounter announced:AN-4) after this version's: got 1, first; want more: announced twice across a rollback or a rolling upgrade")
		}
	})

	t.Run("expired", func(t *testing.T) {
		clock.Advance(ttl)
		if got := announced("u1"); len(got) != 0 {
			t.Errorf("Announced a ttl after the claims: got %v; want none", got)
		}
		if !claim("u1", "announced:", "AN-1") {
			t.Errorf("claim after its mark expired: got false; want true")
		}
		if got := announced("u1"); len(got) != 1 || !got[an("announced:", "AN-1")] {
			t.Errorf("Announced after the new claim: got %v; want only announced:AN-1", got)
		}
	})

	t.Run("concurrent claims: one", func(t *testing.T) {
		announceRace(t, ctx, []store.Store{st}, "AN-2", 50)
	})
}

// announceRace: n goroutines spread over the stores claim one order's
// announcement; exactly one is first.
func announceRace(t *testing.T, ctx context.Context, sts []store.Store, no string, n int) {
	t.Helper()
	var firsts atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			first, err := sts[i%len(sts)].ClaimAnnouncement(ctx, "shop", "race", "race:", no, time.Hour)
			if err != nil {
				t.Errorf("ClaimAnnouncement: %v", err)
			}
			if first {
				firsts.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if got := firsts.Load(); got != 1 {
		t.Errorf("got %d first claims of %s; want exactly 1", got, no)
	}
}
