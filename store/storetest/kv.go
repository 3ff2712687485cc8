package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
)

func testClaims(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	const ttl = 10 * time.Minute

	type step struct {
		name        string
		advance     time.Duration
		advanceFrom int // >0: AdvanceClaim from this generation; 0: ClaimPurchase
		candidate   string
		wantNo      string
		wantGen     int
		wantCreated bool
	}
	steps := []step{
		{name: "first claim creates generation 1", candidate: "O1", wantNo: "O1", wantGen: 1, wantCreated: true},
		{name: "repeat returns the live claim", advance: 8 * time.Minute, candidate: "O2", wantNo: "O1", wantGen: 1},
		{name: "the repeat slid the ttl", advance: 8 * time.Minute, candidate: "O3", wantNo: "O1", wantGen: 1},
		{name: "advance from the current generation", advanceFrom: 1, candidate: "O4", wantNo: "O4", wantGen: 2, wantCreated: true},
		{name: "a stale advance gets the winner", advanceFrom: 1, candidate: "O5", wantNo: "O4", wantGen: 2},
		{name: "an expired claim starts the next generation", advance: ttl + time.Second, candidate: "O6", wantNo: "O6", wantGen: 3, wantCreated: true},
		{name: "advance of an expired claim claims afresh", advance: ttl + time.Second, advanceFrom: 3, candidate: "O7", wantNo: "O7", wantGen: 4, wantCreated: true},
		{name: "generations restart after the retention", advance: ttl + store.GenerationRetention + time.Minute, candidate: "O8", wantNo: "O8", wantGen: 1, wantCreated: true},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			clock.Advance(s.advance)
			var c store.Claim
			var created bool
			var err error
			if s.advanceFrom > 0 {
				c, created, err = st.AdvanceClaim(ctx, "purchase-1", s.advanceFrom, s.candidate, ttl)
			} else {
				c, created, err = st.ClaimPurchase(ctx, "purchase-1", s.candidate, ttl)
			}
			mustNil(t, "claim", err)
			if c.OrderNo != s.wantNo || c.Generation != s.wantGen || created != s.wantCreated {
				t.Errorf("got %+v created=%v; want {%s %d} created=%v", c, created, s.wantNo, s.wantGen, s.wantCreated)
			}
		})
	}

	// payments passes order numbers that already exist as the candidate
	// (the open order a repeated purchase is bound to, the order it just
	// recorded, checked against the claim), so a candidate is not always
	// new: created and advanced say whether this call bound the claim, not
	// whether the claim names the candidate.
	t.Run("a candidate already bound is not bound again", func(t *testing.T) {
		steps := []struct {
			name        string
			advanceFrom int // >0: AdvanceClaim from this generation; 0: ClaimPurchase
			candidate   string
			wantNo      string
			wantGen     int
			wantCreated bool
		}{
			{name: "first claim", candidate: "X", wantNo: "X", wantGen: 1, wantCreated: true},
			{name: "the same candidate again", candidate: "X", wantNo: "X", wantGen: 1},
			{name: "advance to an open order", advanceFrom: 1, candidate: "OPEN", wantNo: "OPEN", wantGen: 2, wantCreated: true},
			{name: "a stale advance to the same order", advanceFrom: 1, candidate: "OPEN", wantNo: "OPEN", wantGen: 2},
			{name: "an advance from the current generation to the order it names", advanceFrom: 2, candidate: "OPEN", wantNo: "OPEN", wantGen: 3, wantCreated: true},
			{name: "a claim naming the bound order", candidate: "OPEN", wantNo: "OPEN", wantGen: 3},
		}
		for _, s := range steps {
			var c store.Claim
			var created bool
			var err error
			if s.advanceFrom > 0 {
				c, created, err = st.AdvanceClaim(ctx, "purchase-same", s.advanceFrom, s.candidate, ttl)
			} else {
				c, created, err = st.ClaimPurchase(ctx, "purchase-same", s.candidate, ttl)
			}
			mustNil(t, s.name, err)
			if c.OrderNo != s.wantNo || c.Generation != s.wantGen || created != s.wantCreated {
				t.Errorf("%s: got %+v created=%v; want {%s %d} created=%v", s.name, c, created, s.wantNo, s.wantGen, s.wantCreated)
			}
		}
	})

	t.Run("keys are independent", func(t *testing.T) {
		c, created, err := st.ClaimPurchase(ctx, "purchase-2", "P1", ttl)
		mustNil(t, "ClaimPurchase", err)
		if !created || c.OrderNo != "P1" || c.Generation != 1 {
			t.Errorf("got %+v created=%v; want {P1 1} created", c, created)
		}
	})
}

func testNotifications(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	cases := []struct {
		name    string
		id      string
		advance time.Duration
		want    bool
	}{
		{"first sighting", "n1", 0, true},
		{"replay", "n1", time.Hour, false},
		{"another id", "n2", 0, true},
		{"after the ttl", "n1", 24 * time.Hour, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock.Advance(tc.advance)
			first, err := st.SeenNotification(ctx, tc.id, 24*time.Hour)
			mustNil(t, "SeenNotification", err)
			if first != tc.want {
				t.Errorf("got first=%v; want %v", first, tc.want)
			}
		})
	}
	t.Run("concurrent copies: one first", func(t *testing.T) {
		var firsts atomic.Int32
		var wg sync.WaitGroup
		for range 30 {
			wg.Go(func() {
				first, err := st.SeenNotification(ctx, "n-race", time.Hour)
				if err != nil {
					t.Errorf("SeenNotification: %v", err)
				}
				if first {
					firsts.Add(1)
				}
			})
		}
		wg.Wait()
		if got := firsts.Load(); got != 1 {
			t.Errorf("got %d first sightings; want 1", got)
		}
	})
}

func newProposal(id, user string) *store.RefundProposal {
	return &store.RefundProposal{
		RefundID: id, OrderNo: "PG-" + id, Client: "shop", User: user,
		AmountFen: 4999, Reason: "not as described", OutRefundNo: "R-" + id,
	}
}

func testRefunds(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	const ttl = 15 * time.Minute

	p := newProposal("rf1", "u1")
	mustNil(t, "PutRefundProposal", st.PutRefundProposal(ctx, p, ttl))
	if want := clock.Now().Add(ttl); !p.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt: got %v; want %v", p.ExpiresAt, want)
	}
	wantErr(t, "PutRefundProposal of a taken id", st.PutRefundProposal(ctx, newProposal("rf1", "u9"), ttl), store.ErrExists)
	// An expiry the caller stamped (rendered already in its webhook) is
	// kept when it is no later than the store's; a later one is not, nor
	// one already past (or now), which would put a proposal no one could
	// confirm: those lapse when the store's would.
	for i, stamped := range []time.Duration{ttl - time.Second, ttl + time.Hour, -time.Minute, 0} {
		p := newProposal(fmt.Sprintf("rf-stamped-%d", i), "u1")
		p.ExpiresAt = clock.Now().Add(stamped)
		mustNil(t, "PutRefundProposal", st.PutRefundProposal(ctx, p, ttl))
		got, err := st.GetRefundProposal(ctx, p.RefundID)
		mustNil(t, "GetRefundProposal", err)
		lapse := min(stamped, ttl)
		if stamped <= 0 {
			lapse = ttl
		}
		if want := clock.Now().Add(lapse); !p.ExpiresAt.Equal(want) || !got.ExpiresAt.Equal(want) {
			t.Errorf("stamped to lapse in %v: ExpiresAt %v, read back %v; want %v", stamped, p.ExpiresAt, got.ExpiresAt, want)
		}
	}
	got, err := st.GetRefundProposal(ctx, "rf1")
	mustNil(t, "GetRefundProposal", err)
	if got.User != "u1" || got.AmountFen != 4999 || got.OutRefundNo != "R-rf1" {
		t.Errorf("GetRefundProposal: got %+v", got)
	}

	mustNil(t, "PutRefundProposal", st.PutRefundProposal(ctx, newProposal("rf2", "u1"), ttl))
	mustNil(t, "PutRefundProposal", st.PutRefundProposal(ctx, newProposal("rf3", "u1"), ttl))

	type op int
	const (
		consume op = iota
		cancel
		get
	)
	cases := []struct {
		name    string
		op      op
		id      string
		user    string
		advance time.Duration
		wantErr error
	}{
		{name: "unknown id", op: consume, id: "rf-none", user: "u1", wantErr: store.ErrNotFound},
		{name: "another user's proposal is not found", op: consume, id: "rf1", user: "u2", wantErr: store.ErrNotFound},
		{name: "the proposer consumes it", op: consume, id: "rf1", user: "u1"},
		{name: "used once only", op: consume, id: "rf1", user: "u1", wantErr: store.ErrGone},
		{name: "a used proposal reads as gone", op: get, id: "rf1", wantErr: store.ErrGone},
		{name: "cancel", op: cancel, id: "rf2", user: "u1"},
		{name: "a cancelled proposal cannot be confirmed", op: consume, id: "rf2", user: "u1", wantErr: store.ErrGone},
		{name: "expired", op: consume, id: "rf3", user: "u1", advance: ttl, wantErr: store.ErrGone},
		{name: "an expired proposal reads as gone", op: get, id: "rf3", wantErr: store.ErrGone},
		{name: "the tombstone outlives six days", op: consume, id: "rf1", user: "u1", advance: 6 * 24 * time.Hour, wantErr: store.ErrGone},
		{name: "the expired tombstone too", op: cancel, id: "rf3", user: "u1", wantErr: store.ErrGone},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock.Advance(tc.advance)
			var p *store.RefundProposal
			var err error
			switch tc.op {
			case consume:
				p, err = st.ConsumeRefundProposal(ctx, tc.id, tc.user)
			case cancel:
				p, err = st.CancelRefundProposal(ctx, tc.id, tc.user)
			case get:
				p, err = st.GetRefundProposal(ctx, tc.id)
			}
			if tc.wantErr != nil {
				wantErr(t, "result", err, tc.wantErr)
				return
			}
			mustNil(t, "result", err)
			if p == nil || p.RefundID != tc.id || p.User != tc.user {
				t.Errorf("got %+v; want proposal %s of %s", p, tc.id, tc.user)
			}
		})
	}

	// What became of each, which ErrGone does not tell: the reconciler
	// must know a taken confirmation from a proposal that ended unused. An
	// open one's ExpiresAt says whether it still can be taken.
	mustNil(t, "PutRefundProposal", st.PutRefundProposal(ctx, newProposal("rf4", "u1"), ttl))
	for _, tc := range []struct {
		id      string
		want    store.ProposalState
		expired bool
	}{
		{id: "rf1", want: store.ProposalUsed},
		{id: "rf2", want: store.ProposalCancelled},
		{id: "rf3", want: store.ProposalOpen, expired: true},
		{id: "rf4", want: store.ProposalOpen},
	} {
		p, state, err := st.RefundProposalState(ctx, tc.id)
		mustNil(t, "RefundProposalState "+tc.id, err)
		if state != tc.want || p == nil || p.RefundID != tc.id || p.User != "u1" || p.AmountFen != 4999 || p.OutRefundNo != "R-"+tc.id {
			t.Errorf("RefundProposalState %s: %+v %q; want the proposal, %q", tc.id, p, state, tc.want)
			continue
		}
		if expired := !clock.Now().Before(p.ExpiresAt); state == store.ProposalOpen && expired != tc.expired {
			t.Errorf("RefundProposalState %s: expires at %v, now %v; want expired %v", tc.id, p.ExpiresAt, clock.Now(), tc.expired)
		}
	}
	_, _, err = st.RefundProposalState(ctx, "rf-none")
	wantErr(t, "RefundProposalState of an unknown id", err, store.ErrNotFound)
}

// testExpireRefund: ExpireRefundProposal ends a proposal lapsed by the
// caller's clock for every caller: one whose clock is behind (the clock
// moved back here) can no longer take, cancel or list it. A proposal not
// lapsed, used or cancelled is left as it is.
func testExpireRefund(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	const ttl = 15 * time.Minute
	for _, id := range []string{"rf-lapse", "rf-live", "rf-used", "rf-cancelled"} {
		mustNil(t, "PutRefundProposal "+id, st.PutRefundProposal(ctx, newProposal(id, "u1"), ttl))
	}
	_, err := st.ConsumeRefundProposal(ctx, "rf-used", "u1")
	mustNil(t, "ConsumeRefundProposal", err)
	_, err = st.CancelRefundProposal(ctx, "rf-cancelled", "u1")
	mustNil(t, "CancelRefundProposal", err)

	expire := func(id string, want store.ProposalState) {
		t.Helper()
		p, state, err := st.ExpireRefundProposal(ctx, id)
		mustNil(t, "ExpireRefundProposal "+id, err)
		if state != want || p == nil || p.RefundID != id || p.User != "u1" || p.OutRefundNo != "R-"+id {
			t.Errorf("ExpireRefundProposal %s: %+v %q; want the proposal, %q", id, p, state, want)
		}
	}
	expire("rf-lapse", store.ProposalOpen) // not lapsed yet: left open
	if _, err := st.GetRefundProposal(ctx, "rf-lapse"); err != nil {
		t.Errorf("a proposal not lapsed, after ExpireRefundProposal: %v; want it live", err)
	}
	clock.Advance(ttl)
	expire("rf-lapse", store.ProposalExpired)
	expire("rf-lapse", store.ProposalExpired) // asked again: the same
	expire("rf-used", store.ProposalUsed)
	expire("rf-cancelled", store.ProposalCancelled)
	_, _, err = st.ExpireRefundProposal(ctx, "rf-none")
	wantErr(t, "ExpireRefundProposal of an unknown id", err, store.ErrNotFound)

	// A caller whose clock is a minute behind: the proposal would be live
	// for it, but it ended.
	clock.Advance(-time.Minute)
	_, err = st.ConsumeRefundProposal(ctx, "rf-lapse", "u1")
	wantErr(t, "ConsumeRefundProposal of an expired proposal, clock behind", err, store.ErrGone)
	_, err = st.CancelRefundProposal(ctx, "rf-lapse", "u1")
	wantErr(t, "CancelRefundProposal of an expired proposal, clock behind", err, store.ErrGone)
	_, err = st.GetRefundProposal(ctx, "rf-lapse")
	wantErr(t, "GetRefundProposal of an expired proposal, clock behind", err, store.ErrGone)
	listed, err := st.OpenRefundProposals(ctx, "shop", "u1")
	mustNil(t, "OpenRefundProposals", err)
	for _, p := range listed {
		if p.RefundID == "rf-lapse" {
			t.Errorf("OpenRefundProposals, clock behind, lists the expired proposal")
		}
	}
	if _, state, err := st.RefundProposalState(ctx, "rf-lapse"); err != nil || state != store.ProposalExpired {
		t.Errorf("RefundProposalState of the expired proposal: %q, %v; want %q", state, err, store.ProposalExpired)
	}
	// rf-live (put with the others) lapsed too by now; ended by a caller
	// whose clock is behind, it is not.
	expire("rf-live", store.ProposalOpen)
	if _, err := st.ConsumeRefundProposal(ctx, "rf-live", "u1"); err != nil {
		t.Errorf("ConsumeRefundProposal of a proposal open by the caller's clock: %v", err)
	}
}

// testOpenRefunds: OpenRefundProposals lists the proposals of one client's
// user that can still be confirmed, oldest first: not another user's or
// another client's, not a used, cancelled or expired one. The user's
// order list shows them (SPEC 2.3: a bot whose SDK drops the paygate
// object learns of a proposal there).
func testOpenRefunds(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	ids := func(ps []*store.RefundProposal) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.RefundID)
		}
		return out
	}
	list := func(client, user string, want ...string) {
		t.Helper()
		got, err := st.OpenRefundProposals(ctx, client, user)
		mustNil(t, "OpenRefundProposals", err)
		if !slices.Equal(ids(got), want) {
			t.Errorf("OpenRefundProposals(%s, %s): %q; want %q", client, user, ids(got), want)
		}
		for _, p := range got {
			if p.Client != client || p.User != user || p.AmountFen != 4999 || p.OrderNo != "PG-"+p.RefundID || !p.ExpiresAt.After(clock.Now()) {
				t.Errorf("OpenRefundProposals(%s, %s): %+v", client, user, p)
			}
		}
	}
	list("shop", "u1")
	put := func(p *store.RefundProposal, ttl time.Duration) {
		t.Helper()
		mustNil(t, "PutRefundProposal "+p.RefundID, st.PutRefundProposal(ctx, p, ttl))
		clock.Advance(time.Second)
	}
	put(newProposal("rf-short", "u1"), 10*time.Minute)
	put(newProposal("rf-long", "u1"), time.Hour)
	put(newProposal("rf-used", "u1"), time.Hour)
	put(newProposal("rf-cancelled", "u1"), time.Hour)
	put(newProposal("rf-other-user", "u2"), time.Hour)
	other := newProposal("rf-other-client", "u1")
	other.Client = "other-shop"
	put(other, time.Hour)
	_, err := st.ConsumeRefundProposal(ctx, "rf-used", "u1")
	mustNil(t, "ConsumeRefundProposal", err)
	_, err = st.CancelRefundProposal(ctx, "rf-cancelled", "u1")
	mustNil(t, "CancelRefundProposal", err)

	list("shop", "u1", "rf-short", "rf-long")
	list("shop", "u2", "rf-other-user")
	list("other-shop", "u1", "rf-other-client")
	list("shop", "u-none")
	clock.Advance(10 * time.Minute)
	list("shop", "u1", "rf-long")
	clock.Advance(time.Hour)
	list("shop", "u1")
}

func testCounters(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	cases := []struct {
		name    string
		key     string
		advance time.Duration
		want    int64
	}{
		{"first", "orders:shop:u1:day", 0, 1},
		{"second", "orders:shop:u1:day", time.Hour, 2},
		{"third", "orders:shop:u1:day", time.Hour, 3},
		{"other key", "orders:shop:u2:day", 0, 1},
		{"window over", "orders:shop:u1:day", 23 * time.Hour, 1},
		{"new window counts", "orders:shop:u1:day", time.Hour, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock.Advance(tc.advance)
			got, err := st.IncrCounter(ctx, tc.key, 24*time.Hour)
			mustNil(t, "IncrCounter", err)
			if got != tc.want {
				t.Errorf("got %d; want %d", got, tc.want)
			}
		})
	}
}

// testLeases: TakeLeases gives each key to one holder at a time, renews the
// holder's own, and hands a lease over once it has run out: replicas sweep
// each order once per interval between them, and a replica that died holds
// nothing for longer than its leases' ttl.
func testLeases(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	const ttl = time.Minute
	cases := []struct {
		name    string
		holder  string
		keys    []string
		advance time.Duration
		want    []bool
	}{
		{"first takes all", "a", []string{"sweep:1", "sweep:2"}, 0, []bool{true, true}},
		{"another takes only what is free", "b", []string{"sweep:1", "sweep:3", "sweep:2"}, 0, []bool{false, true, false}},
		{"the holder again has its own", "a", []string{"sweep:2", "sweep:1"}, ttl / 2, []bool{true, true}},
		{"renewed: not free where the first ttl ended", "b", []string{"sweep:1"}, ttl / 2, []bool{false}},
		{"run out: taken over", "b", []string{"sweep:1", "sweep:2", "sweep:3"}, ttl / 2, []bool{true, true, true}},
		{"the former holder is refused", "a", []string{"sweep:1"}, 0, []bool{false}},
		{"none", "a", nil, 0, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock.Advance(tc.advance)
			got, err := st.TakeLeases(ctx, tc.holder, tc.keys, ttl)
			mustNil(t, "TakeLeases", err)
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s takes %v: got %v; want %v", tc.holder, tc.keys, got, tc.want)
			}
		})
	}
}

// testCounterGiveBack: DecrCounter takes one count back from the live
// window, once per token, never below zero, and never makes a counter of its
// own: the daily order limit gives back the count of an order WeChat Pay
// refused, and a give-back sent twice must not give the user an extra order.
func testCounterGiveBack(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	const key = "orders:shop:u1:day"
	incr := func() int64 {
		t.Helper()
		n, err := st.IncrCounter(ctx, key, 24*time.Hour)
		mustNil(t, "IncrCounter", err)
		return n
	}
	back := func(key, token string) {
		t.Helper()
		mustNil(t, "DecrCounter", st.DecrCounter(ctx, key, token))
	}
	steps := []struct {
		name    string
		do      func()
		advance time.Duration
		want    int64 // the next IncrCounter's count
	}{
		{"no counter: nothing made", func() { back(key, "t0") }, 0, 1},
		{"two counted, one given back", func() { incr(); back(key, "t1") }, 0, 2},
		{"the same token again takes nothing", func() { back(key, "t1") }, 0, 3},
		{"another token takes one", func() { back(key, "t2") }, time.Hour, 3},
		{"never below zero", func() {
			for i := range 5 {
				back(key, "z"+string(rune('a'+i)))
			}
		}, 0, 1},
		{"other keys untouched", func() { back("orders:shop:u2:day", "t3") }, 0, 2},
		{"window over: nothing given back", func() { clock.Advance(24 * time.Hour); back(key, "t4") }, 0, 1},
		{"a new window's tokens start afresh", func() { incr(); back(key, "t1") }, 0, 2},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			s.do()
			clock.Advance(s.advance)
			if got := incr(); got != s.want {
				t.Errorf("next count %d; want %d", got, s.want)
			}
		})
	}
}

// testWindow: AllowWindow admits at most limit events in any window of
// its length (a window started by the first call let twice the limit
// through around its end), records only what it admits, and admits a call
// re-sent under its token again without counting it twice.
func testWindow(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	const key = "paycalls:shop:u1"
	n := 0
	steps := []struct {
		name    string
		advance time.Duration
		key     string
		token   string // "": a new one
		want    bool
	}{
		{"first", 0, key, "", true},
		{"second, near the window's end", 59500 * time.Millisecond, key, "", true},
		{"third (the limit)", 0, key, "t-third", true},
		{"fourth refused", 0, key, "", false},
		{"the first is a window old: one more", 500 * time.Millisecond, key, "", true},
		{"still three in the last minute", 0, key, "", false},
		{"the third, re-sent: admitted, not counted again", 0, key, "t-third", true},
		{"another key", 0, "paycalls:shop:u2", "", true},
		{"the second and third a window old: two more", 59500 * time.Millisecond, key, "", true},
		{"the fifth (of this window)", 0, key, "", true},
		{"refused again", 0, key, "", false},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			clock.Advance(s.advance)
			tok := s.token
			if tok == "" {
				n++
				tok = fmt.Sprintf("t%d", n)
			}
			got, err := st.AllowWindow(ctx, s.key, 3, time.Minute, tok)
			mustNil(t, "AllowWindow", err)
			if got != s.want {
				t.Errorf("admitted %v; want %v", got, s.want)
			}
		})
	}
}

// testWindowClockBack: an event admitted after the clock stepped back (an
// NTP correction of the one process's clock, or a replica behind another)
// leaves the window once it is a window old, though an event admitted
// before it is newer: the window holds events, not a queue in time order.
func testWindowClockBack(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	const key = "paycalls:shop:back"
	allow := func(tok string, want bool) {
		t.Helper()
		got, err := st.AllowWindow(ctx, key, 2, time.Minute, tok)
		mustNil(t, "AllowWindow", err)
		if got != want {
			t.Errorf("%s: admitted %v; want %v", tok, got, want)
		}
	}
	allow("at-0", true)
	clock.Advance(-30 * time.Second)
	allow("at-minus-30s", true)
	// At +45 s: the event at -30 s is 75 s old, the one at 0 is 45 s old:
	// one in the last minute, so a second is admitted.
	clock.Advance(75 * time.Second)
	allow("at-45s", true)
	allow("at-45s-again", false)
}

func testTallies(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	const big = int64(1) << 60 // beyond a double's exact integers
	cases := []struct {
		name    string
		op      string // add or take
		key     string
		delta   int64
		advance time.Duration
		want    int64
	}{
		{"first add", "add", "cost:a", 5, 0, 5},
		{"second add", "add", "cost:a", 7, time.Hour, 12},
		{"other key", "add", "cost:b", 1, 0, 1},
		{"take", "take", "cost:a", 0, 0, 12},
		{"taken: starts again", "take", "cost:a", 0, 0, 0},
		{"add after take", "add", "cost:a", 3, 0, 3},
		{"unknown key", "take", "cost:none", 0, 0, 0},
		{"a counter's key is not a tally", "take", "orders:shop:u1:day", 0, 0, 0},
		{"expired: starts again", "add", "cost:a", 2, 24 * time.Hour, 2},
		{"expired take", "take", "cost:b", 0, 0, 0},
		{"exact large sums", "add", "cost:big", big + 1, 0, big + 1},
		{"exact large sums, added", "add", "cost:big", 1, 0, big + 2},
		{"exact large sums, taken", "take", "cost:big", 0, 0, big + 2},
	}
	if _, err := st.IncrCounter(ctx, "orders:shop:u1:day", 24*time.Hour); err != nil {
		t.Fatalf("IncrCounter: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock.Advance(tc.advance)
			var got int64
			var err error
			if tc.op == "add" {
				got, err = st.AddTally(ctx, tc.key, tc.delta, 24*time.Hour)
			} else {
				got, err = st.TakeTally(ctx, tc.key)
			}
			mustNil(t, tc.op, err)
			if got != tc.want {
				t.Errorf("got %d; want %d", got, tc.want)
			}
		})
	}
	t.Run("concurrent adds and takes lose nothing", func(t *testing.T) {
		tallyRace(t, ctx, []store.Store{st}, "cost:race", 50)
	})
	t.Run("batch", func(t *testing.T) { testAddTallies(t, open) })
	t.Run("a sum stops at int64's end", func(t *testing.T) {
		// A conversation's cost summed past the largest amount wrapped
		// negative (embedded), or its add was refused whole (Redis): its
		// paid order then carried nothing, or far less than the sum.
		const top = int64(math.MaxInt64)
		mustNil(t, "AddTallies", st.AddTallies(ctx, []store.TallyAdd{{Key: "cost:top", Delta: top - 5}, {Key: "cost:top2", Delta: 1}}, time.Hour))
		mustNil(t, "AddTallies", st.AddTallies(ctx, []store.TallyAdd{{Key: "cost:top", Delta: 10}, {Key: "cost:top2", Delta: 1}}, time.Hour))
		if got, err := st.AddTally(ctx, "cost:top", 1<<62, time.Hour); err != nil || got != top {
			t.Errorf("AddTally past the end: %d, %v; want %d", got, err, top)
		}
		for key, want := range map[string]int64{"cost:top": top, "cost:top2": 2} {
			if got, err := st.TakeTally(ctx, key); err != nil || got != want {
				t.Errorf("%s: took %d, %v; want %d", key, got, err, want)
			}
		}
	})
}

// testAddTallies: a batch of adds does what the same AddTally calls do: a
// key's adds in one batch add up, an expired sum starts again, an empty
// batch writes nothing, and every sum expires ttl after its batch.
func testAddTallies(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	const big = int64(1) << 60
	if _, err := st.AddTally(ctx, "b:kept", 10, time.Hour); err != nil {
		t.Fatalf("AddTally: %v", err)
	}
	if _, err := st.AddTally(ctx, "b:expired", 10, time.Minute); err != nil {
		t.Fatalf("AddTally: %v", err)
	}
	clock.Advance(2 * time.Minute)
	mustNil(t, "empty batch", st.AddTallies(ctx, nil, time.Hour))
	adds := []store.TallyAdd{
		{Key: "b:kept", Delta: 5},
		{Key: "b:new", Delta: 3},
		{Key: "b:expired", Delta: 2},
		{Key: "b:new", Delta: 4},
		{Key: "b:big", Delta: big},
		{Key: "b:big", Delta: 1},
	}
	mustNil(t, "AddTallies", st.AddTallies(ctx, adds, time.Hour))
	// The same batch once more, then a step short of its ttl: still kept.
	mustNil(t, "AddTallies", st.AddTallies(ctx, adds[:1], time.Hour))
	clock.Advance(59 * time.Minute)
	for _, want := range []struct {
		key string
		sum int64
	}{{"b:kept", 20}, {"b:new", 7}, {"b:expired", 2}, {"b:big", big + 1}} {
		got, err := st.TakeTally(ctx, want.key)
		mustNil(t, "TakeTally "+want.key, err)
		if got != want.sum {
			t.Errorf("%s: took %d; want %d", want.key, got, want.sum)
		}
	}
	// A sum expires ttl after the batch that last added to it.
	mustNil(t, "AddTallies", st.AddTallies(ctx, []store.TallyAdd{{Key: "b:late", Delta: 1}, {Key: "b:late2", Delta: 1}}, time.Minute))
	clock.Advance(2 * time.Minute)
	if got, err := st.TakeTally(ctx, "b:late"); err != nil || got != 0 {
		t.Errorf("b:late after its ttl: took %d, %v; want 0", got, err)
	}
}

// tallyRace adds 1..n to one tally from n goroutines over sts while
// another takes it repeatedly: the sums taken, and what is left, add up to
// every amount added, once.
func tallyRace(t *testing.T, ctx context.Context, sts []store.Store, key string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			if _, err := sts[i%len(sts)].AddTally(ctx, key, int64(i+1), time.Hour); err != nil {
				t.Errorf("AddTally: %v", err)
			}
		})
	}
	var taken int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-start
		for i := range n / 5 {
			v, err := sts[i%len(sts)].TakeTally(ctx, key)
			if err != nil {
				t.Errorf("TakeTally: %v", err)
			}
			taken += v
		}
	}()
	close(start)
	wg.Wait()
	<-done
	rest, err := sts[0].TakeTally(ctx, key)
	mustNil(t, "TakeTally", err)
	if want := int64(n * (n + 1) / 2); taken+rest != want {
		t.Errorf("taken %d and left %d: %d in all; want %d", taken, rest, taken+rest, want)
	}
}

func testExchanges(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	mustNil(t, "PutExchange", st.PutExchange(ctx, "call_1", []byte(`{"a":1}`), time.Hour))
	mustNil(t, "PutExchange", st.PutExchange(ctx, "call_2", []byte(`{"b":2}`), time.Hour))
	mustNil(t, "PutExchange", st.PutExchange(ctx, "call_2", []byte(`{"b":3}`), time.Hour))
	cases := []struct {
		name    string
		key     string
		advance time.Duration
		want    string
		wantErr error
	}{
		{name: "stored", key: "call_1", want: `{"a":1}`},
		{name: "replaced", key: "call_2", want: `{"b":3}`},
		{name: "unknown", key: "call_3", wantErr: store.ErrNotFound},
		{name: "expired", key: "call_1", advance: time.Hour, wantErr: store.ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock.Advance(tc.advance)
			got, err := st.GetExchange(ctx, tc.key)
			if tc.wantErr != nil {
				wantErr(t, "GetExchange", err, tc.wantErr)
				return
			}
			mustNil(t, "GetExchange", err)
			if string(got) != tc.want {
				t.Errorf("got %s; want %s", got, tc.want)
			}
		})
	}
}

// testRefundRecords: an order's refund record written only while the
// order is at a version is read through Exchanges under RefundRecordKey,
// as one PutExchange wrote is; at another version, or with no such order,
// nothing is written and the record before stands.
func testRefundRecords(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	mustNil(t, "CreateOrder", st.CreateOrder(ctx, NewOrder("RR-1", "shop", "u1", clock.Now())))
	payOrder(t, st, clock, "RR-1")
	o, err := st.GetOrder(ctx, "RR-1")
	mustNil(t, "GetOrder", err)
	key := store.RefundRecordKey("RR-1")
	read := func(what, want string) {
		t.Helper()
		got, err := st.GetExchange(ctx, key)
		mustNil(t, "GetExchange "+what, err)
		if string(got) != want {
			t.Errorf("%s: record %s; want %s", what, got, want)
		}
	}

	mustNil(t, "PutExchange", st.PutExchange(ctx, key, []byte(`{"v":"confirmation"}`), time.Hour))
	read("written by PutExchange", `{"v":"confirmation"}`)
	mustNil(t, "PutRefundRecord at the order's version", st.PutRefundRecord(ctx, "RR-1", o.Version, []byte(`{"v":"sweep"}`), time.Hour))
	read("written at the order's version", `{"v":"sweep"}`)

	wantErr(t, "PutRefundRecord at an earlier version", st.PutRefundRecord(ctx, "RR-1", o.Version-1, []byte(`{"v":"stale"}`), time.Hour), store.ErrConflict)
	wantErr(t, "PutRefundRecord at a later version", st.PutRefundRecord(ctx, "RR-1", o.Version+1, []byte(`{"v":"ahead"}`), time.Hour), store.ErrConflict)
	read("after writes at other versions", `{"v":"sweep"}`)

	wantErr(t, "PutRefundRecord of no order", st.PutRefundRecord(ctx, "RR-NONE", 1, []byte(`{"v":"none"}`), time.Hour), store.ErrNotFound)
	if _, err := st.GetExchange(ctx, store.RefundRecordKey("RR-NONE")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("record of no order: %v; want nothing written (ErrNotFound)", err)
	}

	o.Status = store.StatusRefunding
	mustNil(t, "UpdateOrder", st.UpdateOrder(ctx, o, store.StatusPaid))
	moved, err := st.GetOrder(ctx, "RR-1")
	mustNil(t, "GetOrder", err)
	wantErr(t, "PutRefundRecord at the version the order left", st.PutRefundRecord(ctx, "RR-1", moved.Version-1, []byte(`{"v":"left"}`), time.Hour), store.ErrConflict)
	mustNil(t, "PutRefundRecord at the order's new version", st.PutRefundRecord(ctx, "RR-1", moved.Version, []byte(`{"v":"later"}`), 30*time.Minute))
	read("written at the new version", `{"v":"later"}`)

	clock.Advance(30 * time.Minute)
	if _, err := st.GetExchange(ctx, key); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("record past its ttl: %v; want ErrNotFound", err)
	}
}

func testSecrets(t *testing.T, open Opener) {
	ctx := context.Background()
	st := open(t, NewClock())
	var calls atomic.Int32
	gen := func(v string) func() ([]byte, error) {
		return func() ([]byte, error) { calls.Add(1); return []byte(v), nil }
	}
	first, err := st.GetOrCreateSecret(ctx, "hash_key", gen("one"))
	mustNil(t, "GetOrCreateSecret", err)
	again, err := st.GetOrCreateSecret(ctx, "hash_key", gen("two"))
	mustNil(t, "GetOrCreateSecret", err)
	if string(first) != "one" || string(again) != "one" || calls.Load() != 1 {
		t.Errorf("got %q then %q with %d generations; want one, one, 1", first, again, calls.Load())
	}
	_, err = st.GetOrCreateSecret(ctx, "broken", func() ([]byte, error) { return nil, errors.New("no entropy") })
	if err == nil {
		t.Errorf("a failing generator gave no error")
	}

	t.Run("racing replicas agree", func(t *testing.T) {
		var wg sync.WaitGroup
		vals := make([][]byte, 20)
		for i := range vals {
			wg.Go(func() {
				v, err := st.GetOrCreateSecret(ctx, "raced", func() ([]byte, error) { return []byte(uniq("v", i)), nil })
				if err != nil {
					t.Errorf("GetOrCreateSecret: %v", err)
				}
				vals[i] = v
			})
		}
		wg.Wait()
		for i := range vals {
			if !bytes.Equal(vals[i], vals[0]) || len(vals[i]) == 0 {
				t.Fatalf("replica %d got %q; replica 0 got %q", i, vals[i], vals[0])
			}
		}
	})
}
