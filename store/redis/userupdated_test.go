package redis

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// TestUserUpdatedIndex: the user's index of orders by last update keeps
// the newest store.UserStateOrders only, and a user without it (orders last
// written by an earlier version) still gets the newest created orders.
func TestUserUpdatedIndex(t *testing.T) {
	requireSharedRedis(t)
	ctx := context.Background()
	clock := storetest.NewClock()
	s := openOn(t, clock, Options{Addrs: []string{sharedAddr}})
	n := store.UserStateOrders + 5
	for i := range n {
		clock.Advance(updatesApart)
		if err := s.CreateOrder(ctx, storetest.NewOrder(fmt.Sprintf("U-%03d", i), "shop", "u1", clock.Now())); err != nil {
			t.Fatal(err)
		}
	}
	_, _, _, uu := s.k.userTag("shop", "u1")

	t.Run("bounded", func(t *testing.T) {
		if got, err := s.c.ZCard(ctx, uu).Result(); err != nil || got != store.UserStateOrders {
			t.Fatalf("the index holds %d orders (%v); want %d", got, err, store.UserStateOrders)
		}
		if _, err := s.c.ZScore(ctx, uu, "U-000").Result(); err == nil {
			t.Errorf("U-000, the least recently updated, is still in the index")
		}
	})

	// The index scores microseconds: the orders of the cut's microsecond
	// are kept whole, for LoadUserState to tell apart by their exact times.
	t.Run("the cut's microsecond kept whole", func(t *testing.T) {
		_, _, _, uu2 := s.k.userTag("shop", "u2")
		mk := func(no string) {
			t.Helper()
			if err := s.CreateOrder(ctx, storetest.NewOrder(no, "shop", "u2", clock.Now())); err != nil {
				t.Fatal(err)
			}
		}
		clock.Advance(updatesApart)
		mk("T-early")
		clock.Advance(500 * time.Nanosecond)
		mk("T-late")
		for i := range store.UserStateOrders - 1 {
			clock.Advance(updatesApart)
			mk(fmt.Sprintf("T-%03d", i))
		}
		if got, err := s.c.ZCard(ctx, uu2).Result(); err != nil || got != store.UserStateOrders+1 {
			t.Fatalf("the index holds %d orders (%v); want %d: T-early shares the cut's microsecond", got, err, store.UserStateOrders+1)
		}
		clock.Advance(updatesApart)
		mk("T-next")
		if got, err := s.c.ZCard(ctx, uu2).Result(); err != nil || got != store.UserStateOrders {
			t.Fatalf("the index holds %d orders (%v); want %d once the cut moved past them", got, err, store.UserStateOrders)
		}
	})

	t.Run("missing", func(t *testing.T) {
		if err := s.c.Del(ctx, uu).Err(); err != nil {
			t.Fatal(err)
		}
		st, err := s.LoadUserState(ctx, "shop", "u1")
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Orders) != store.UserStateOrders || st.Orders[0].OrderNo != fmt.Sprintf("U-%03d", n-1) {
			t.Fatalf("got %d orders, the first %v; want the %d newest created", len(st.Orders), st.Orders, store.UserStateOrders)
		}
	})
}
