package redis

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// TestUserCopiesBounded: the user's copies of their orders ({u:…}:o, with
// their versions) are what makes LoadUserState one round trip, and it
// reads the copies of the user's store.UserStateOrders newest created and
// newest updated orders only; every order is kept for good in its own
// record. The copies of all the rest were kept too, for ever: a second
// copy of every order in Redis's memory, growing with each order of a
// year at a busy merchant. A user with many orders, some old ones updated
// since, keeps copies of at most 2*store.UserStateOrders of them, and
// LoadUserState reads the same orders, as they now are, that it read with
// every copy kept.
func TestUserCopiesBounded(t *testing.T) {
	requireSharedRedis(t)
	ctx := context.Background()
	clock := storetest.NewClock()
	s := openOn(t, clock, Options{Addrs: []string{sharedAddr}})
	const n = 5 * store.UserStateOrders
	for i := range n {
		clock.Advance(time.Second)
		if err := s.CreateOrder(ctx, storetest.NewOrder(fmt.Sprintf("C-%03d", i), "shop", "u1", clock.Now())); err != nil {
			t.Fatal(err)
		}
	}
	// Old orders paid since: newest updated, long out of the newest created.
	for _, i := range []int{0, 3, 7} {
		clock.Advance(time.Second)
		o, err := s.GetOrder(ctx, fmt.Sprintf("C-%03d", i))
		if err != nil {
			t.Fatal(err)
		}
		o.Status = store.StatusPaid
		if err := s.UpdateOrder(ctx, o, store.StatusAwaitingPayment); err != nil {
			t.Fatal(err)
		}
	}
	uo, uv, _, _ := s.k.userTag("shop", "u1")
	rec, _, _ := s.k.orderTag("C-050")
	one, _ := s.c.MemoryUsage(ctx, rec).Result()
	copies, _ := s.c.MemoryUsage(ctx, uo).Result()
	t.Logf("one order's record: %d bytes; the user's copies of %d orders: %d bytes", one, n, copies)
	for _, k := range []string{uo, uv} {
		if got, err := s.c.HLen(ctx, k).Result(); err != nil || got > 2*store.UserStateOrders {
			t.Errorf("%s holds %d orders (%v) of the user's %d; want at most %d", k, got, err, n, 2*store.UserStateOrders)
		}
	}
	st, err := s.LoadUserState(ctx, "shop", "u1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range st.Orders {
		got = append(got, o.OrderNo)
		if slices.Contains([]string{"C-000", "C-003", "C-007"}, o.OrderNo) && o.Status != store.StatusPaid {
			t.Errorf("%s loaded as %s; want paid", o.OrderNo, o.Status)
		}
	}
	var want []string
	for i := n - 1; i >= n-store.UserStateOrders; i-- {
		want = append(want, fmt.Sprintf("C-%03d", i))
	}
	// The newest updated: the three paid, then the newest created.
	want = append(want, "C-007", "C-003", "C-000")
	if !sameSet(got, want) {
		t.Errorf("LoadUserState read %v; want %v", got, want)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
