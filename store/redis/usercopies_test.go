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

// TestUserCopiesBounded: the user's copies of their orders ({u:…}:o) are
// what makes LoadUserState one round trip, and it
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
		clock.Advance(updatesApart)
		if err := s.CreateOrder(ctx, storetest.NewOrder(fmt.Sprintf("C-%03d", i), "shop", "u1", clock.Now())); err != nil {
			t.Fatal(err)
		}
	}
	// Old orders paid since: newest updated, long out of the newest created.
	for _, i := range []int{0, 3, 7} {
		clock.Advance(updatesApart)
		o, err := s.GetOrder(ctx, fmt.Sprintf("C-%03d", i))
		if err != nil {
			t.Fatal(err)
		}
		o.Status = store.StatusPaid
		if err := s.UpdateOrder(ctx, o, store.StatusAwaitingPayment); err != nil {
			t.Fatal(err)
		}
	}
	uo, _, _, _ := s.k.userTag("shop", "u1")
	rec, _, _ := s.k.orderTag("C-050")
	one, _ := s.c.MemoryUsage(ctx, rec).Result()
	copies, _ := s.c.MemoryUsage(ctx, uo).Result()
	t.Logf("one order's record: %d bytes; the user's copies of %d orders: %d bytes", one, n, copies)
	if got, err := s.c.HLen(ctx, uo).Result(); err != nil || got > 2*store.UserStateOrders {
		t.Errorf("%s holds %d orders (%v) of the user's %d; want at most %d", uo, got, err, n, 2*store.UserStateOrders)
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

// updatesApart is how far apart these tests write a user's orders: further
// than userUpdatedSlack, within which of the user's newest update every
// order stays in the update index (and keeps its copy).
const updatesApart = userUpdatedSlack + time.Second

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestUserCopiesDroppedAsTheyLeaveTheNewestUpdated: an old order updated
// since (paid, refunded) has its copy kept while it is among the user's
// newest updated, and dropped once store.UserStateOrders orders were
// updated after it: a user who pays many old orders keeps copies of at
// most 2*store.UserStateOrders of them. A copy replayed late (a writer's
// sync step stalled past all of this) does not come back, and a late
// event on a dropped order (a refund) brings its copy back, so the turn's
// state tells of it.
func TestUserCopiesDroppedAsTheyLeaveTheNewestUpdated(t *testing.T) {
	requireSharedRedis(t)
	ctx := context.Background()
	clock := storetest.NewClock()
	s := openOn(t, clock, Options{Addrs: []string{sharedAddr}})
	const n, keep = 5 * store.UserStateOrders, store.UserStateOrders
	no := func(i int) string { return fmt.Sprintf("D-%03d", i) }
	for i := range n {
		clock.Advance(updatesApart)
		if err := s.CreateOrder(ctx, storetest.NewOrder(no(i), "shop", "u1", clock.Now())); err != nil {
			t.Fatal(err)
		}
	}
	first, err := s.GetOrder(ctx, no(0))
	if err != nil {
		t.Fatal(err)
	}
	update := func(i int, from, to store.OrderStatus) {
		t.Helper()
		clock.Advance(updatesApart)
		o, err := s.GetOrder(ctx, no(i))
		if err != nil {
			t.Fatal(err)
		}
		o.Status = to
		if err := s.UpdateOrder(ctx, o, from); err != nil {
			t.Fatal(err)
		}
	}
	// The 3*keep oldest paid, oldest first: the first 2*keep of them left
	// the newest updated as later ones were paid.
	for i := range 3 * keep {
		update(i, store.StatusAwaitingPayment, store.StatusPaid)
	}
	uo, _, _, _ := s.k.userTag("shop", "u1")
	check := func(when string, want []string, gone ...string) {
		t.Helper()
		if got, err := s.c.HLen(ctx, uo).Result(); err != nil || got > 2*keep {
			t.Errorf("%s: %s holds %d orders (%v) of the user's %d; want at most %d", when, uo, got, err, n, 2*keep)
		}
		for _, g := range gone {
			if ok, err := s.c.HExists(ctx, uo, g).Result(); err != nil || ok {
				t.Errorf("%s: the copy of %s is kept (%v); want it dropped", when, g, err)
			}
		}
		st, err := s.LoadUserState(ctx, "shop", "u1")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, o := range st.Orders {
			got = append(got, o.OrderNo)
		}
		if !sameSet(got, want) {
			t.Errorf("%s: LoadUserState read %v; want %v", when, got, want)
		}
	}
	var want []string
	for i := n - keep; i < n; i++ { // the newest created
		want = append(want, no(i))
	}
	for i := 2 * keep; i < 3*keep; i++ { // the newest updated
		want = append(want, no(i))
	}
	check("after the old orders were paid", want, no(0), no(2*keep-1))

	// The copy of D-000's first version, replayed late.
	if err := s.syncUser(ctx, first); err != nil {
		t.Fatal(err)
	}
	check("after a late replay of a dropped order's copy", want, no(0))

	// A late event on D-000: refunded. Its copy is back, and D-040, the
	// least recently updated, leaves.
	update(0, store.StatusPaid, store.StatusRefunded)
	want = append(slices.DeleteFunc(want, func(s string) bool { return s == no(2*keep) }), no(0))
	check("after a late refund of a dropped order", want, no(2*keep))
	st, err := s.LoadUserState(ctx, "shop", "u1")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range st.Orders {
		if o.OrderNo == no(0) && o.Status != store.StatusRefunded {
			t.Errorf("%s loaded as %s; want refunded", o.OrderNo, o.Status)
		}
	}
}
