package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
)

// sameOrder compares orders by their JSON form (times compare by instant).
func sameOrder(t testing.TB, what string, got, want *store.Order) {
	t.Helper()
	if got == nil || want == nil {
		t.Fatalf("%s: got %v; want %v", what, got, want)
	}
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func testOrders(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)

	o := NewOrder("PG-1", "shop", "openid-1", clock.Now())
	mustNil(t, "CreateOrder", st.CreateOrder(ctx, o))
	if o.Version != 1 {
		t.Errorf("Version after create: got %d; want 1", o.Version)
	}
	got, err := st.GetOrder(ctx, "PG-1")
	mustNil(t, "GetOrder", err)
	sameOrder(t, "GetOrder after create", got, o)

	dup := NewOrder("PG-1", "shop", "openid-2", clock.Now())
	wantErr(t, "CreateOrder of a taken number", st.CreateOrder(ctx, dup), store.ErrExists)
	got, err = st.GetOrder(ctx, "PG-1")
	mustNil(t, "GetOrder", err)
	if got.User != "openid-1" {
		t.Errorf("a refused duplicate create overwrote the order: user %q", got.User)
	}

	_, err = st.GetOrder(ctx, "PG-missing")
	wantErr(t, "GetOrder of an unknown number", err, store.ErrNotFound)

	clock.Advance(time.Minute)
	paid := *got
	paid.Status = store.StatusPaid
	paid.PaidAt = clock.Now()
	paid.TransactionID = "4200000001"

	cases := []struct {
		name        string
		order       func() *store.Order
		expect      store.OrderStatus
		wantErr     error
		wantVersion int64
		wantStatus  store.OrderStatus
	}{
		{
			name:    "wrong expected status is a conflict",
			order:   func() *store.Order { c := paid; return &c },
			expect:  store.StatusCreating,
			wantErr: store.ErrConflict, wantVersion: 1, wantStatus: store.StatusAwaitingPayment,
		},
		{
			name:    "unknown order is not found",
			order:   func() *store.Order { c := paid; c.OrderNo = "PG-nope"; return &c },
			expect:  store.StatusAwaitingPayment,
			wantErr: store.ErrNotFound, wantVersion: 1, wantStatus: store.StatusAwaitingPayment,
		},
		{
			name:        "expected status moves the order",
			order:       func() *store.Order { c := paid; return &c },
			expect:      store.StatusAwaitingPayment,
			wantVersion: 2, wantStatus: store.StatusPaid,
		},
		{
			name:    "the same transition again is a conflict",
			order:   func() *store.Order { c := paid; return &c },
			expect:  store.StatusAwaitingPayment,
			wantErr: store.ErrConflict, wantVersion: 2, wantStatus: store.StatusPaid,
		},
		{
			name:    "a write decided on an earlier version is a conflict, whatever the status",
			order:   func() *store.Order { c := paid; c.ReviewReason = "stale"; return &c },
			expect:  store.StatusPaid,
			wantErr: store.ErrConflict, wantVersion: 2, wantStatus: store.StatusPaid,
		},
		{
			name:        "a write that keeps the status bumps the version",
			order:       func() *store.Order { c := paid; c.Version = 2; c.ReviewReason = "note"; return &c },
			expect:      store.StatusPaid,
			wantVersion: 3, wantStatus: store.StatusPaid,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.order()
			err := st.UpdateOrder(ctx, o, tc.expect)
			if tc.wantErr == nil && err != nil {
				t.Fatalf("UpdateOrder: %v", err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("UpdateOrder: got %v; want %v", err, tc.wantErr)
			}
			stored, err := st.GetOrder(ctx, "PG-1")
			mustNil(t, "GetOrder", err)
			if stored.Version != tc.wantVersion || stored.Status != tc.wantStatus {
				t.Errorf("stored: got version %d status %s; want %d %s", stored.Version, stored.Status, tc.wantVersion, tc.wantStatus)
			}
			if tc.wantErr == nil {
				if o.Version != tc.wantVersion {
					t.Errorf("o.Version: got %d; want %d", o.Version, tc.wantVersion)
				}
				sameOrder(t, "stored after update", stored, o)
			}
		})
	}

	t.Run("client and user are immutable", func(t *testing.T) {
		cur, err := st.GetOrder(ctx, "PG-1")
		mustNil(t, "GetOrder", err)
		moved := *cur
		moved.User = "someone-else"
		if err := st.UpdateOrder(ctx, &moved, cur.Status); err == nil {
			t.Errorf("UpdateOrder changed the order's user")
		}
		after, err := st.GetOrder(ctx, "PG-1")
		mustNil(t, "GetOrder", err)
		if after.User != cur.User || after.Version != cur.Version {
			t.Errorf("refused update changed the order: user %q version %d", after.User, after.Version)
		}
	})

	t.Run("invalid status is refused", func(t *testing.T) {
		bad := NewOrder("PG-bad", "shop", "u", clock.Now())
		bad.Status = "bogus"
		if err := st.CreateOrder(ctx, bad); err == nil {
			t.Errorf("CreateOrder accepted status %q", bad.Status)
		}
	})
}

func testListOrders(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	base := clock.Now()

	// u1 of shop: 5 orders, u2 of shop: 2, u1 of other: 1; one minute apart.
	type spec struct {
		no, client, user string
	}
	specs := []spec{
		{"A1", "shop", "u1"}, {"A2", "shop", "u1"}, {"B1", "shop", "u2"}, {"A3", "shop", "u1"},
		{"C1", "other", "u1"}, {"A4", "shop", "u1"}, {"B2", "shop", "u2"}, {"A5", "shop", "u1"},
	}
	for i, s := range specs {
		mustNil(t, "CreateOrder", st.CreateOrder(ctx, NewOrder(s.no, s.client, s.user, base.Add(time.Duration(i)*time.Minute))))
	}
	for _, no := range []string{"A2", "B2"} {
		o, err := st.GetOrder(ctx, no)
		mustNil(t, "GetOrder", err)
		o.Status = store.StatusPaid
		mustNil(t, "UpdateOrder", st.UpdateOrder(ctx, o, store.StatusAwaitingPayment))
	}

	cases := []struct {
		name   string
		filter store.OrderFilter
		want   []string
	}{
		{"all newest first", store.OrderFilter{}, []string{"A5", "B2", "A4", "C1", "A3", "B1", "A2", "A1"}},
		{"limit", store.OrderFilter{Limit: 3}, []string{"A5", "B2", "A4"}},
		{"by client", store.OrderFilter{Client: "other"}, []string{"C1"}},
		{"by user", store.OrderFilter{Client: "shop", User: "u1"}, []string{"A5", "A4", "A3", "A2", "A1"}},
		{"by user is per client", store.OrderFilter{Client: "other", User: "u1"}, []string{"C1"}},
		{"by status after a transition", store.OrderFilter{Status: store.StatusPaid}, []string{"B2", "A2"}},
		{"status left behind", store.OrderFilter{Status: store.StatusAwaitingPayment, Client: "shop", User: "u2"}, []string{"B1"}},
		{"user and status", store.OrderFilter{Client: "shop", User: "u1", Status: store.StatusPaid}, []string{"A2"}},
		{"page after a cursor", store.OrderFilter{Client: "shop", User: "u1", Before: base.Add(5 * time.Minute), Limit: 2}, []string{"A3", "A2"}},
		{"unknown user", store.OrderFilter{Client: "shop", User: "nobody"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := st.ListOrders(ctx, tc.filter)
			mustNil(t, "ListOrders", err)
			nos := orderNos(got)
			if len(nos) != len(tc.want) {
				t.Fatalf("got %v; want %v", nos, tc.want)
			}
			for i := range nos {
				if nos[i] != tc.want[i] {
					t.Fatalf("got %v; want %v", nos, tc.want)
				}
			}
		})
	}
}

// testListOrdersWithoutClient: orders recorded without a client (payments'
// orphans, under the payer's OpenID) are found by their user with NoClient,
// apart from the same OpenID's orders of a client, which a client's filter
// keeps out; a user filter with neither, or NoClient with a client, is
// refused.
func testListOrdersWithoutClient(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	base := clock.Now()
	specs := []struct{ no, client, user string }{
		{"O1", "", "u1"}, {"A1", "shop", "u1"}, {"O2", "", "u2"}, {"O3", "", "u1"}, {"A2", "shop", "u1"},
	}
	for i, s := range specs {
		o := NewOrder(s.no, s.client, s.user, base.Add(time.Duration(i)*time.Minute))
		if s.client == "" {
			o.ClaimKey, o.Status = "", store.StatusNeedsReview
		}
		mustNil(t, "CreateOrder", st.CreateOrder(ctx, o))
	}
	cases := []struct {
		name   string
		filter store.OrderFilter
		want   string
	}{
		{"by user", store.OrderFilter{NoClient: true, User: "u1"}, "[O3 O1]"},
		{"by user, paged", store.OrderFilter{NoClient: true, User: "u1", Before: base.Add(3 * time.Minute), BeforeOrderNo: "O3"}, "[O1]"},
		{"by user and status", store.OrderFilter{NoClient: true, User: "u1", Status: store.StatusNeedsReview, Limit: 1}, "[O3]"},
		{"all of them", store.OrderFilter{NoClient: true}, "[O3 O2 O1]"},
		{"a client's user has none of them", store.OrderFilter{Client: "shop", User: "u1"}, "[A2 A1]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := st.ListOrders(ctx, tc.filter)
			mustNil(t, "ListOrders", err)
			nos := orderNos(got)
			if fmt.Sprint(nos) != tc.want {
				t.Errorf("got %v; want %s", nos, tc.want)
			}
		})
	}
	for _, f := range []store.OrderFilter{{User: "u1"}, {NoClient: true, Client: "shop", User: "u1"}, {NoClient: true, Client: "shop"}} {
		if got, err := st.ListOrders(ctx, f); err == nil {
			t.Errorf("ListOrders(%+v) = %d orders; want an error", f, len(got))
		}
	}
}

// testListOrdersCursor pages with the (CreatedAt, OrderNo) cursor of each
// page's last order through orders that share a creation time, to the
// nanosecond or only to the microsecond (the Redis index's resolution): every
// page size must visit every order once, in ListOrders' order.
func testListOrdersCursor(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	base := clock.Now() // a whole second
	created := map[string]time.Time{
		"T5": base.Add(time.Second),
		"T0": base.Add(300 * time.Nanosecond), // same microsecond as base, newer
		"T9": base.Add(100 * time.Nanosecond), // same microsecond, numbered above T0 but older
		"T1": base, "T2": base, "T3": base,    // the same nanosecond: by number, descending
		"T4": base.Add(-time.Nanosecond), // the microsecond before
	}
	for no, at := range created {
		mustNil(t, "CreateOrder", st.CreateOrder(ctx, NewOrder(no, "shop", "u1", at)))
	}
	want := []string{"T5", "T0", "T9", "T3", "T2", "T1", "T4"}

	filters := []struct {
		name   string
		filter store.OrderFilter
	}{
		{"all", store.OrderFilter{}},
		{"by client", store.OrderFilter{Client: "shop"}},
		{"by user", store.OrderFilter{Client: "shop", User: "u1"}},
		{"by status", store.OrderFilter{Status: store.StatusAwaitingPayment}},
	}
	for _, fc := range filters {
		for _, limit := range []int{1, 2, 3, 4, len(want)} {
			t.Run(fmt.Sprintf("%s limit %d", fc.name, limit), func(t *testing.T) {
				var seen []string
				f := fc.filter
				f.Limit = limit
				for range len(want) + 1 {
					page, err := st.ListOrders(ctx, f)
					mustNil(t, "ListOrders", err)
					if len(page) == 0 {
						break
					}
					for _, o := range page {
						seen = append(seen, o.OrderNo)
					}
					last := page[len(page)-1]
					f.Before, f.BeforeOrderNo = last.CreatedAt, last.OrderNo
				}
				if fmt.Sprint(seen) != fmt.Sprint(want) {
					t.Errorf("paged through %v; want %v", seen, want)
				}
			})
		}
	}

	cases := []struct {
		name   string
		filter store.OrderFilter
		want   []string
	}{
		{"time only is strictly before", store.OrderFilter{Before: base}, []string{"T4"}},
		{"time only, sub-microsecond", store.OrderFilter{Before: base.Add(200 * time.Nanosecond)}, []string{"T9", "T3", "T2", "T1", "T4"}},
		{"mid-tie", store.OrderFilter{Before: base, BeforeOrderNo: "T2"}, []string{"T1", "T4"}},
		{"number above every tie", store.OrderFilter{Before: base, BeforeOrderNo: "T99"}, []string{"T3", "T2", "T1", "T4"}},
		{"number without a time does not filter", store.OrderFilter{BeforeOrderNo: "T2", Limit: 2}, []string{"T5", "T0"}},
		// An operator's "no upper bound" (?before=9999-12-31T23:59:59Z), or
		// any time past 2262, which nanoseconds since 1970 cannot hold.
		{"a time past 2262 is after every order", store.OrderFilter{Before: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)}, want},
		{"a time past 2262, in another zone", store.OrderFilter{Before: time.Date(2500, 1, 1, 0, 0, 0, 0, time.FixedZone("CST", 8*3600))}, want},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := st.ListOrders(ctx, tc.filter)
			mustNil(t, "ListOrders", err)
			nos := orderNos(got)
			if fmt.Sprint(nos) != fmt.Sprint(tc.want) {
				t.Errorf("got %v; want %v", nos, tc.want)
			}
		})
	}
}

func testUserState(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)

	t.Run("no state", func(t *testing.T) {
		us, err := st.LoadUserState(ctx, "shop", "nobody")
		mustNil(t, "LoadUserState", err)
		if us == nil || len(us.Orders) != 0 || us.Client != "shop" || us.User != "nobody" {
			t.Errorf("got %+v; want an empty state for shop/nobody", us)
		}
	})

	t.Run("read at the store's time", func(t *testing.T) {
		clock.Advance(time.Minute)
		defer clock.Advance(-time.Minute)
		for _, user := range []string{"nobody", "u1"} {
			us, err := st.LoadUserState(ctx, "shop", user)
			mustNil(t, "LoadUserState", err)
			if !us.Now.Equal(clock.Now()) {
				t.Errorf("%s: Now = %v; want the store's clock, %v", user, us.Now, clock.Now())
			}
		}
	})

	base := clock.Now()
	n := store.UserStateOrders + 5
	for i := range n {
		mustNil(t, "CreateOrder", st.CreateOrder(ctx, NewOrder(uniq("U", i), "shop", "u1", base.Add(time.Duration(i)*time.Second))))
	}
	mustNil(t, "CreateOrder", st.CreateOrder(ctx, NewOrder("other-user", "shop", "u2", base)))
	mustNil(t, "CreateOrder", st.CreateOrder(ctx, NewOrder("other-client", "bot2", "u1", base)))

	t.Run("most recent orders, newest first", func(t *testing.T) {
		us, err := st.LoadUserState(ctx, "shop", "u1")
		mustNil(t, "LoadUserState", err)
		if len(us.Orders) != store.UserStateOrders {
			t.Fatalf("got %d orders; want %d", len(us.Orders), store.UserStateOrders)
		}
		for i, o := range us.Orders {
			if want := uniq("U", n-1-i); o.OrderNo != want {
				t.Fatalf("order %d: got %s; want %s", i, o.OrderNo, want)
			}
		}
	})

	t.Run("sees the latest write", func(t *testing.T) {
		o := payOrder(t, st, clock, uniq("U", n-1))
		us, err := st.LoadUserState(ctx, "shop", "u1")
		mustNil(t, "LoadUserState", err)
		sameOrder(t, "newest order in state", us.Orders[0], o)
	})

	// An order paid (or approved) after the user created UserStateOrders
	// newer ones is in the state, so a turn can announce it.
	t.Run("an old order updated last", func(t *testing.T) {
		clock.Advance(time.Second)
		o := payOrder(t, st, clock, uniq("U", 0))
		us, err := st.LoadUserState(ctx, "shop", "u1")
		mustNil(t, "LoadUserState", err)
		var want []string
		for i := n - 1; i >= n-store.UserStateOrders; i-- {
			want = append(want, uniq("U", i))
		}
		want = append(want, uniq("U", 0))
		if got := orderNos(us.Orders); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("got %v; want the %d newest created, then the oldest (updated last): %v", got, store.UserStateOrders, want)
		}
		sameOrder(t, "the old order updated last", us.Orders[len(us.Orders)-1], o)
	})

	// The newest created and the newest updated, each order once, newest
	// created first, and no more than UserStateOrders of each.
	t.Run("bounded, each order once, newest created first", func(t *testing.T) {
		m := 2*store.UserStateOrders + 5
		for i := range m {
			mustNil(t, "CreateOrder", st.CreateOrder(ctx, NewOrder(uniq("M", i), "shop", "many", base.Add(time.Duration(i)*time.Second))))
		}
		pay := func(i int) {
			clock.Advance(time.Second)
			payOrder(t, st, clock, uniq("M", i))
		}
		// Pay the oldest UserStateOrders+5, oldest first, then the newest:
		// the newest updated are M-044 and M-024..M-006.
		for i := range store.UserStateOrders + 5 {
			pay(i)
		}
		pay(m - 1)
		us, err := st.LoadUserState(ctx, "shop", "many")
		mustNil(t, "LoadUserState", err)
		var want []string
		for i := m - 1; i >= m-store.UserStateOrders; i-- { // created
			want = append(want, uniq("M", i))
		}
		for i := store.UserStateOrders + 4; i > 5; i-- { // updated, less M-044
			want = append(want, uniq("M", i))
		}
		if got := orderNos(us.Orders); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("got %d orders %v;\nwant %d %v", len(got), got, len(want), want)
		}
		if us.Orders[0].Status != store.StatusPaid {
			t.Errorf("%s: got %s; want its latest write, paid", us.Orders[0].OrderNo, us.Orders[0].Status)
		}
	})

	// The cuts are by the exact times, as ListOrders orders: two orders
	// created (or updated) less than a microsecond apart at the cut are
	// told apart by their times, not by their numbers, whatever
	// resolution a driver indexes them at.
	t.Run("the cut by creation falls between orders of one microsecond", func(t *testing.T) {
		at := base.Add(time.Hour)
		mk := func(no string, created time.Time) {
			t.Helper()
			mustNil(t, "CreateOrder", st.CreateOrder(ctx, NewOrder(no, "shop", "tie-created", created)))
			clock.Advance(time.Second)
		}
		// Created in one microsecond, the later first, so that it is also
		// the one updated longest ago: only the creation cut keeps it.
		mk("A-later", at.Add(500*time.Nanosecond))
		mk("Z-earlier", at)
		var want []string
		for i := range store.UserStateOrders - 1 {
			mk(uniq("TC", i), at.Add(time.Duration(i+1)*time.Minute))
			want = append([]string{uniq("TC", i)}, want...)
		}
		// The newest created: the TCs and A-later; the newest updated: the
		// TCs and Z-earlier.
		want = append(want, "A-later", "Z-earlier")
		us, err := st.LoadUserState(ctx, "shop", "tie-created")
		mustNil(t, "LoadUserState", err)
		if got := orderNos(us.Orders); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("got %d orders %v;\nwant %d %v", len(got), got, len(want), want)
		}
	})

	t.Run("the cut by update falls between orders of one microsecond", func(t *testing.T) {
		at := base.Add(2 * time.Hour)
		mk := func(no string, created time.Time) {
			t.Helper()
			mustNil(t, "CreateOrder", st.CreateOrder(ctx, NewOrder(no, "shop", "tie-updated", created)))
		}
		// Z-early and A-late are the oldest created, so only the update
		// cut can keep them; they are updated 500ns apart, Z-early first.
		mk("Z-early", at)
		mk("A-late", at.Add(time.Second))
		var want []string
		for i := range store.UserStateOrders + 5 {
			mk(uniq("TU", i), at.Add(time.Duration(i+2)*time.Second))
			if i >= 5 {
				want = append([]string{uniq("TU", i)}, want...)
			}
		}
		clock.Advance(time.Second)
		payOrder(t, st, clock, "Z-early")
		clock.Advance(500 * time.Nanosecond)
		payOrder(t, st, clock, "A-late")
		// The newest updated: A-late and the oldest UserStateOrders-1 TCs,
		// of which TU-000..TU-004 are not among the newest created.
		for i := range store.UserStateOrders - 1 {
			clock.Advance(time.Second)
			payOrder(t, st, clock, uniq("TU", i))
		}
		for i := 4; i >= 0; i-- {
			want = append(want, uniq("TU", i))
		}
		want = append(want, "A-late")
		us, err := st.LoadUserState(ctx, "shop", "tie-updated")
		mustNil(t, "LoadUserState", err)
		if got := orderNos(us.Orders); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("got %d orders %v;\nwant %d %v", len(got), got, len(want), want)
		}
	})

	// Replicas write UpdatedAt by their own clocks: an order paid on one
	// whose clock is ahead is still the most recently updated after orders
	// updated since on one behind it, though they were updated after it
	// before that on the first (the sweep, then a second replica's write).
	t.Run("an order updated last by time, after orders moved back past it", func(t *testing.T) {
		at := base.Add(3 * time.Hour)
		for i := range store.UserStateOrders {
			mustNil(t, "CreateOrder", st.CreateOrder(ctx, NewOrder(uniq("SN", i), "shop", "skew", at.Add(time.Hour+time.Duration(i)*time.Second))))
		}
		mustNil(t, "CreateOrder", st.CreateOrder(ctx, NewOrder("S-paid", "shop", "skew", at)))
		for i := range store.UserStateOrders {
			mustNil(t, "CreateOrder", st.CreateOrder(ctx, NewOrder(uniq("SA", i), "shop", "skew", at.Add(time.Duration(i+1)*time.Second))))
		}
		clock.Advance(time.Second)
		payOrder(t, st, clock, "S-paid")
		for i := range store.UserStateOrders {
			clock.Advance(time.Millisecond)
			payOrder(t, st, clock, uniq("SA", i))
		}
		clock.Advance(-2 * time.Second) // the other replica's clock
		for i := range store.UserStateOrders {
			clock.Advance(time.Millisecond)
			o, err := st.GetOrder(ctx, uniq("SA", i))
			mustNil(t, "GetOrder", err)
			o.Session = "later"
			mustNil(t, "UpdateOrder", st.UpdateOrder(ctx, o, o.Status))
		}
		clock.Advance(2*time.Second - store.UserStateOrders*time.Millisecond)
		us, err := st.LoadUserState(ctx, "shop", "skew")
		mustNil(t, "LoadUserState", err)
		if got := orderNos(us.Orders); !slices.Contains(got, "S-paid") {
			t.Fatalf("got %d orders %v; want S-paid, the most recently updated, among them", len(got), got)
		}
	})

	// A refund's outcome is on the order the turn reads, and the claim of
	// its announcement (a kind per refund and outcome) comes back with it,
	// so a turn tells of it once with no other read.
	t.Run("refund outcomes and their announcements", func(t *testing.T) {
		const user = "refunded-user"
		mustNil(t, "CreateOrder", st.CreateOrder(ctx, NewOrder("RO-1", "shop", user, clock.Now())))
		o := payOrder(t, st, clock, "RO-1")
		clock.Advance(time.Second)
		o.RefundedFen, o.RefundNos = 1000, []string{"RF-a"}
		o.Status = store.StatusPartiallyRefunded
		o.RefundOutcomes = []store.RefundOutcome{
			{OutRefundNo: "RF-closed", RefundID: "rf_closed", AmountFen: 3999, Status: store.RefundClosed, At: clock.Now().Add(-time.Minute)},
			{OutRefundNo: "RF-a", RefundID: "rf_a", AmountFen: 1000, Status: store.RefundSucceeded, At: clock.Now(),
				Reason: "too big", ProposedAt: clock.Now().Add(-2 * time.Minute)},
		}
		mustNil(t, "UpdateOrder", st.UpdateOrder(ctx, o, store.StatusPaid))
		got, err := st.GetOrder(ctx, "RO-1")
		mustNil(t, "GetOrder", err)
		sameOrder(t, "GetOrder with refund outcomes", got, o)
		kind := "refund:" + store.RefundSucceeded + ":RF-a"
		first, err := st.ClaimAnnouncement(ctx, "shop", user, kind, "RO-1", time.Hour)
		mustNil(t, "ClaimAnnouncement", err)
		if !first {
			t.Fatalf("the first claim of %s was not first", kind)
		}
		us, err := st.LoadUserState(ctx, "shop", user)
		mustNil(t, "LoadUserState", err)
		if len(us.Orders) != 1 {
			t.Fatalf("got %d orders; want RO-1", len(us.Orders))
		}
		sameOrder(t, "LoadUserState with refund outcomes", us.Orders[0], o)
		if !us.Announced[store.Announcement{Kind: kind, OrderNo: "RO-1"}] ||
			us.Announced[store.Announcement{Kind: "refund:" + store.RefundClosed + ":RF-closed", OrderNo: "RO-1"}] {
			t.Errorf("announced %v; want the succeeded refund's claim alone", us.Announced)
		}
	})
}

// payOrder moves the awaiting_payment order no to paid at clock's time
// and returns it as written.
func payOrder(t testing.TB, st store.Store, clock *Clock, no string) *store.Order {
	t.Helper()
	ctx := context.Background()
	o, err := st.GetOrder(ctx, no)
	mustNil(t, "GetOrder", err)
	o.Status = store.StatusPaid
	o.PaidAt = clock.Now()
	mustNil(t, "UpdateOrder", st.UpdateOrder(ctx, o, store.StatusAwaitingPayment))
	return o
}

// orderNos are the order numbers of orders, in their order.
func orderNos(orders []*store.Order) []string {
	var nos []string
	for _, o := range orders {
		nos = append(nos, o.OrderNo)
	}
	return nos
}

// testOrdersKeepLaterMembers: during a rolling upgrade this version's
// replicas rewrite orders a later version wrote (a refund, a notification, a
// sweep landing on an old replica). A member the later version added, and
// this one does not know, must survive the rewrite, as refund_outcomes and
// closed_refund_nos did not when the versions before them rewrote an order:
// the user was never told how a refund ended, and a late REFUND.CLOSED copy
// froze the order in needs_review.
func testOrdersKeepLaterMembers(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)

	const later = `"hold_fen":700,"later_outcomes":[{"out_refund_no":"RF-1","status":"succeeded"}]`
	base, err := json.Marshal(NewOrder("PG-LATER", "shop", "openid-later", clock.Now()))
	mustNil(t, "encode order", err)
	raw := append(append(base[:len(base)-1:len(base)-1], ','), later+"}"...)
	var o store.Order
	mustNil(t, "decode an order a later version wrote", json.Unmarshal(raw, &o))
	mustNil(t, "CreateOrder", st.CreateOrder(ctx, &o))

	keeps := func(what string, o *store.Order) {
		t.Helper()
		j, err := json.Marshal(o)
		mustNil(t, "encode "+what, err)
		for _, m := range []string{`"hold_fen":700`, `"later_outcomes":[{"out_refund_no":"RF-1","status":"succeeded"}]`} {
			if !bytes.Contains(j, []byte(m)) {
				t.Errorf("%s lost the later version's member %s: %s", what, m, j)
			}
		}
	}

	got, err := st.GetOrder(ctx, "PG-LATER")
	mustNil(t, "GetOrder", err)
	keeps("GetOrder after create", got)

	clock.Advance(time.Second)
	got.Status, got.PaidAt, got.TransactionID = store.StatusPaid, clock.Now(), "4200000009"
	mustNil(t, "UpdateOrder", st.UpdateOrder(ctx, got, store.StatusAwaitingPayment))
	again, err := st.GetOrder(ctx, "PG-LATER")
	mustNil(t, "GetOrder", err)
	keeps("GetOrder after this version's UpdateOrder", again)

	us, err := st.LoadUserState(ctx, "shop", "openid-later")
	mustNil(t, "LoadUserState", err)
	if len(us.Orders) != 1 {
		t.Fatalf("LoadUserState: %d orders; want 1", len(us.Orders))
	}
	keeps("LoadUserState's copy", us.Orders[0])
	clock.Advance(time.Second)
	u := us.Orders[0]
	u.Status = store.StatusRefunding
	mustNil(t, "UpdateOrder from the user's state", st.UpdateOrder(ctx, u, store.StatusPaid))
	last, err := st.GetOrder(ctx, "PG-LATER")
	mustNil(t, "GetOrder", err)
	keeps("GetOrder after an update from the user's state", last)
	if last.Status != store.StatusRefunding || last.AmountFen != 4999 || last.TransactionID != "4200000009" {
		t.Errorf("the known members changed: status %s, amount %d, transaction %q", last.Status, last.AmountFen, last.TransactionID)
	}
}
