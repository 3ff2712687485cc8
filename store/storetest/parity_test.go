package storetest_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
	"github.com/paygate/paygate/store/testdrivers"
)

// The conformance suite (Run) holds each driver to the contract case by
// case; these run one random sequence of calls on every driver and want
// the same answers, call for call (SPEC 6: two drivers, one behaviour), so
// that a difference no case names is found too. Each driver opens a fresh
// store at its own place; the seeds are fixed, so a failure repeats.

// sameOnEveryDriver runs script on a fresh store of every driver for each
// seed, with a random source seeded alike, and stops at the first answer
// where two drivers differ.
func sameOnEveryDriver(t *testing.T, seeds uint64, script func(t *testing.T, st store.Store, clock *storetest.Clock, r *rand.Rand) []string) {
	t.Helper()
	drivers := testdrivers.Names(t)
	if len(drivers) < 2 {
		t.Skipf("only %v to compare", drivers)
	}
	for seed := range seeds {
		answers := map[string][]string{}
		for _, d := range drivers {
			clock := storetest.NewClock()
			answers[d] = script(t, testdrivers.Open(t, d, clock.Now), clock, rand.New(rand.NewPCG(seed, 7)))
		}
		first := answers[drivers[0]]
		for _, d := range drivers[1:] {
			other := answers[d]
			for i := range max(len(first), len(other)) {
				a, b := line(first, i), line(other, i)
				if a != b {
					t.Fatalf("seed %d, answer %d differs (before it: %q)\n %s: %s\n %s: %s",
						seed, i, first[max(0, i-3):min(i, len(first))], drivers[0], a, d, b)
				}
			}
		}
	}
}

func line(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "(none)"
}

func errName(err error) string {
	for _, e := range []error{store.ErrNotFound, store.ErrGone, store.ErrExists, store.ErrConflict} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	if err != nil {
		return "error: " + err.Error()
	}
	return "ok"
}

// TestParityOrders: orders created within a few microseconds of each other
// (several in one), some paid or closed, listed page by page under every
// filter, and the users' states.
func TestParityOrders(t *testing.T) {
	sameOnEveryDriver(t, 6, func(t *testing.T, st store.Store, clock *storetest.Clock, r *rand.Rand) []string {
		ctx := context.Background()
		base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range 60 {
			client := []string{"c1", "c2", ""}[r.IntN(3)]
			user := []string{"u1", "u2"}[r.IntN(2)]
			created := base.Add(time.Duration(r.IntN(4))*time.Microsecond + time.Duration(r.IntN(3))*300*time.Nanosecond)
			o := storetest.NewOrder(fmt.Sprintf("N%c%02d", 'a'+r.IntN(26), i), client, user, created)
			if err := st.CreateOrder(ctx, o); err != nil {
				t.Fatal(err)
			}
			clock.Advance(time.Millisecond)
			if r.IntN(3) == 0 {
				o.Status = []store.OrderStatus{store.StatusPaid, store.StatusClosed}[r.IntN(2)]
				if err := st.UpdateOrder(ctx, o, store.StatusAwaitingPayment); err != nil {
					t.Fatal(err)
				}
			}
		}
		var out []string
		filters := []store.OrderFilter{
			{}, {Client: "c1"}, {Client: "c1", User: "u1"}, {NoClient: true}, {NoClient: true, User: "u2"},
			{Status: store.StatusPaid}, {Status: store.StatusAwaitingPayment}, {Client: "c2", Status: store.StatusClosed},
		}
		for _, f := range filters {
			for _, limit := range []int{1, 3, 7} {
				f.Limit = limit
				var b strings.Builder
				fmt.Fprintf(&b, "%+v:", f)
				for range 100 {
					page, err := st.ListOrders(ctx, f)
					if err != nil {
						t.Fatal(err)
					}
					if len(page) == 0 {
						break
					}
					for _, o := range page {
						fmt.Fprintf(&b, " %s/%d", o.OrderNo, o.Version)
					}
					b.WriteString(" |")
					last := page[len(page)-1]
					f.Before, f.BeforeOrderNo = last.CreatedAt, last.OrderNo
				}
				out = append(out, b.String())
			}
		}
		for _, cu := range [][2]string{{"c1", "u1"}, {"c2", "u2"}, {"", "u1"}} {
			out = append(out, userState(t, st, cu[0], cu[1]))
		}
		return out
	})
}

// TestParityUserState: more orders than a user's state holds, created and
// updated within a few microseconds of each other, so both of its cuts
// fall among orders of one microsecond.
func TestParityUserState(t *testing.T) {
	sameOnEveryDriver(t, 8, func(t *testing.T, st store.Store, clock *storetest.Clock, r *rand.Rand) []string {
		ctx := context.Background()
		base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		var out []string
		var nos []string
		for i := range 2*store.UserStateOrders + 10 {
			no := fmt.Sprintf("U%c%02d", 'a'+r.IntN(26), i)
			created := base.Add(time.Duration(r.IntN(8))*time.Microsecond + time.Duration(r.IntN(4))*250*time.Nanosecond)
			if err := st.CreateOrder(ctx, storetest.NewOrder(no, "c", "u", created)); err != nil {
				t.Fatal(err)
			}
			nos = append(nos, no)
			clock.Advance(time.Duration(r.IntN(5)) * 250 * time.Nanosecond)
		}
		for range 3 * store.UserStateOrders {
			touchOrder(t, st, nos[r.IntN(len(nos))], r)
			clock.Advance(time.Duration(r.IntN(5)) * 250 * time.Nanosecond)
			if r.IntN(4) == 0 {
				out = append(out, userState(t, st, "c", "u"))
			}
		}
		return append(out, userState(t, st, "c", "u"))
	})
}

func userState(t *testing.T, st store.Store, client, user string) string {
	t.Helper()
	us, err := st.LoadUserState(context.Background(), client, user)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "state of %s/%s:", client, user)
	for _, o := range us.Orders {
		fmt.Fprintf(&b, " %s/%s/%d", o.OrderNo, o.Status, o.Version)
	}
	return b.String()
}

// TestParityKV: counters, windows, tallies, exchanges, purchase claims,
// notification ids and refund proposals on two keys, with time moving on.
func TestParityKV(t *testing.T) {
	sameOnEveryDriver(t, 30, func(t *testing.T, st store.Store, clock *storetest.Clock, r *rand.Rand) []string {
		ctx := context.Background()
		ttl := func() time.Duration { return time.Duration(1+r.IntN(5)) * time.Second }
		key := func() string { return []string{"a", "b"}[r.IntN(2)] }
		user := func() string { return []string{"u", "v"}[r.IntN(2)] }
		var out []string
		for step := range 80 {
			var s string
			switch r.IntN(14) {
			case 0:
				clock.Advance(time.Duration(r.IntN(3000)) * time.Millisecond)
				s = "advance"
			case 1:
				n, err := st.IncrCounter(ctx, key(), ttl())
				s = fmt.Sprintf("incr %d %s", n, errName(err))
			case 2:
				err := st.DecrCounter(ctx, key(), []string{"t1", "t2"}[r.IntN(2)])
				s = fmt.Sprintf("decr %s", errName(err))
			case 3:
				ok, err := st.AllowWindow(ctx, key(), 1+r.IntN(3), ttl(), fmt.Sprint("w", r.IntN(4)))
				s = fmt.Sprintf("window %v %s", ok, errName(err))
			case 4:
				n, err := st.AddTally(ctx, key(), int64(r.IntN(10)-3), ttl())
				s = fmt.Sprintf("tally %d %s", n, errName(err))
			case 5:
				n, err := st.TakeTally(ctx, key())
				s = fmt.Sprintf("take %d %s", n, errName(err))
			case 6:
				err := st.PutExchange(ctx, key(), []byte(fmt.Sprint(step)), ttl())
				s = fmt.Sprintf("put exchange %s", errName(err))
			case 7:
				v, err := st.GetExchange(ctx, key())
				s = fmt.Sprintf("get exchange %s %s", v, errName(err))
			case 8:
				// Candidates repeat: payments passes numbers already bound.
				c, created, err := st.ClaimPurchase(ctx, key(), fmt.Sprint("o", r.IntN(6)), ttl())
				s = fmt.Sprintf("claim %+v %v %s", c, created, errName(err))
			case 9:
				c, advanced, err := st.AdvanceClaim(ctx, key(), r.IntN(4), fmt.Sprint("o", r.IntN(6)), ttl())
				s = fmt.Sprintf("advance %+v %v %s", c, advanced, errName(err))
			case 10:
				first, err := st.SeenNotification(ctx, key(), ttl())
				s = fmt.Sprintf("seen %v %s", first, errName(err))
			case 11:
				p := &store.RefundProposal{RefundID: key(), OrderNo: "o", Client: "c", User: user(), AmountFen: 1}
				s = fmt.Sprintf("propose %s", errName(st.PutRefundProposal(ctx, p, ttl())))
			case 12:
				var err error
				if r.IntN(2) == 0 {
					_, err = st.ConsumeRefundProposal(ctx, key(), user())
				} else {
					_, err = st.CancelRefundProposal(ctx, key(), user())
				}
				s = fmt.Sprintf("answer %s", errName(err))
			case 13:
				k := key()
				_, err := st.GetRefundProposal(ctx, k)
				_, state, err2 := st.RefundProposalState(ctx, k)
				s = fmt.Sprintf("get proposal %s, state %s %s", errName(err), state, errName(err2))
			}
			out = append(out, fmt.Sprintf("%d %s", step, s))
		}
		return out
	})
}

// TestParityOutbox: events enqueued, claimed, retried and acknowledged on a
// few keys (an order's, the default, a proposal's), with time moving on.
func TestParityOutbox(t *testing.T) {
	sameOnEveryDriver(t, 30, func(t *testing.T, st store.Store, clock *storetest.Clock, r *rand.Rand) []string {
		ctx := context.Background()
		key := func() string { return []string{"k1", "k2", "k3", "", store.ProposalEventKey("p1")}[r.IntN(5)] }
		kind := func() string { return []string{"audit", "webhook"}[r.IntN(2)] }
		id := func() string { return fmt.Sprint("e", r.IntN(12)) }
		var out []string
		for step := range 100 {
			var s string
			switch r.IntN(9) {
			case 0:
				clock.Advance(time.Duration(r.IntN(3000)) * time.Millisecond)
				s = "advance"
			case 1:
				s = "enqueue " + errName(st.EnqueueEvents(ctx, store.Event{ID: id(), Key: key(), Kind: kind()}))
			case 2:
				pending, err := st.EnqueueEventsOnce(ctx, []store.Event{{ID: id(), Key: key(), Kind: kind()}})
				s = fmt.Sprintf("enqueue once %v %s", pending, errName(err))
			case 3:
				s = "ack " + errName(st.AckEvent(ctx, key(), id()))
			case 4:
				next := clock.Now().Add(time.Duration(r.IntN(4000)-1000) * time.Millisecond)
				s = "retry " + errName(st.RetryEvent(ctx, key(), id(), next, r.IntN(5), "boom"))
			case 5:
				var kinds []string
				if r.IntN(2) == 0 {
					kinds = []string{kind()}
				}
				evs, err := st.DueEvents(ctx, clock.Now(), 100, kinds...)
				s = fmt.Sprintf("due %v %s %s", kinds, events(evs), errName(err))
			case 6:
				evs, err := st.ClaimEvents(ctx, kind(), clock.Now(), time.Duration(1+r.IntN(3))*time.Second, 100)
				s = fmt.Sprintf("claim %s %s", events(evs), errName(err))
			case 7:
				stats, err := st.OutboxStats(ctx)
				s = fmt.Sprintf("stats %d pending, %d keys %s %q %s", stats.Pending, stats.Keys, events(stats.Heads), stats.LastError, errName(err))
			case 8:
				evs, err := st.OutboxHeads(ctx, "k", "refund:")
				s = fmt.Sprintf("heads %s %s", events(evs), errName(err))
			}
			out = append(out, fmt.Sprintf("%d %s", step, s))
		}
		return out
	})
}

// TestParityOutboxMore: what TestParityOutbox does not call (AckEventAt
// and RescheduleEvent of events read before, OutboxHeadsApart and
// OutboxStatsApart, events enqueued for later or stamped earlier, two
// events and one with them enqueued once) on the same keys.
func TestParityOutboxMore(t *testing.T) {
	sameOnEveryDriver(t, 30, func(t *testing.T, st store.Store, clock *storetest.Clock, r *rand.Rand) []string {
		ctx := context.Background()
		key := func() string { return []string{"k1", "k2", "dead:k3", "", store.ProposalEventKey("p1")}[r.IntN(5)] }
		kind := func() string { return []string{"audit", "webhook"}[r.IntN(2)] }
		id := func() string { return fmt.Sprint("e", r.IntN(8)) }
		base := clock.Now()
		at := func() time.Time {
			switch r.IntN(3) {
			case 0:
				return time.Time{}
			case 1:
				return base.Add(time.Duration(r.IntN(8)) * time.Second)
			}
			return clock.Now().Add(time.Duration(r.IntN(4000)-1000) * time.Millisecond).Truncate(time.Millisecond)
		}
		var out []string
		var read []store.Event
		// pick is an event read before (as a caller holds one), or an id
		// never read; the reads are sorted first, their order being the
		// driver's where heads tie.
		pick := func() store.Event {
			if len(read) == 0 {
				return store.Event{Key: key(), ID: id()}
			}
			slices.SortStableFunc(read, func(a, b store.Event) int {
				return strings.Compare(a.Key+"\x00"+a.ID+"\x00"+a.CreatedAt.String()+a.NextAt.String(), b.Key+"\x00"+b.ID+"\x00"+b.CreatedAt.String()+b.NextAt.String())
			})
			return read[r.IntN(len(read))]
		}
		for step := range 120 {
			var s string
			// Apart by a millisecond, the heads due at one instant are
			// read with a limit above them all: which of them a lower
			// limit takes is the drivers' own (TestParityOutbox's note).
			clock.Advance(time.Millisecond)
			switch r.IntN(12) {
			case 0:
				clock.Advance(time.Duration(r.IntN(3000)) * time.Millisecond)
				s = "advance"
			case 1:
				e := store.Event{ID: id(), Key: key(), Kind: kind(), NextAt: at()}
				if r.IntN(2) == 0 {
					e.CreatedAt = clock.Now().Add(-time.Duration(r.IntN(5))*time.Second - time.Duration(step)*time.Microsecond)
				}
				s = fmt.Sprintf("enqueue %s/%s/%s next %v created %v ", e.Key, e.ID, e.Kind, e.NextAt.UnixMilli(), e.CreatedAt.UnixMilli()) + errName(st.EnqueueEvents(ctx, e))
			case 2:
				k := key()
				a, b, c := store.Event{ID: id(), Key: k, Kind: kind()}, store.Event{ID: id(), Key: k, Kind: kind()}, store.Event{ID: id(), Key: k, Kind: kind()}
				pending, err := st.EnqueueEventsOnce(ctx, []store.Event{a, b}, c)
				s = fmt.Sprintf("enqueue once %s %s %s %s %v %s", k, a.ID, b.ID, c.ID, pending, errName(err))
			case 3:
				e := pick()
				s = "ackat " + e.Key + "/" + e.ID + " " + errName(st.AckEventAt(ctx, e.Key, e.ID, e.CreatedAt))
			case 4:
				e := pick()
				s = "retry " + e.Key + "/" + e.ID + " " + errName(st.RetryEvent(ctx, e.Key, e.ID, at(), r.IntN(3), "boom"))
			case 5:
				var kinds []string
				if r.IntN(2) == 0 {
					kinds = []string{kind()}
				}
				evs, err := st.DueEvents(ctx, clock.Now(), 100, kinds...)
				read = append(read, evs...)
				s = fmt.Sprintf("due %v %s %s", kinds, events(evs), errName(err))
			case 6:
				evs, err := st.ClaimEvents(ctx, kind(), clock.Now(), time.Duration(r.IntN(3))*time.Second, 100)
				read = append(read, evs...)
				s = fmt.Sprintf("claim %s %s", events(evs), errName(err))
			case 7:
				stats, k, err := st.OutboxStatsApart(ctx, "dead:")
				s = fmt.Sprintf("stats %d pending, %d keys, %d apart %s %q %v %s", stats.Pending, stats.Keys, k, events(stats.Heads), stats.LastError, stats.Oldest.UnixMilli(), errName(err))
			case 8:
				evs, k, err := st.OutboxHeadsApart(ctx, "dead:", "refund:")
				read = append(read, evs...)
				s = fmt.Sprintf("heads apart %d %s %s", k, events(evs), errName(err))
			case 9:
				e := pick()
				moved, err := st.RescheduleEvent(ctx, e.Key, e.ID, e.NextAt, at())
				s = fmt.Sprintf("reschedule %v %s", moved, errName(err))
			case 10:
				e := pick()
				s = "ack " + e.Key + "/" + e.ID + " " + errName(st.AckEvent(ctx, e.Key, e.ID))
			case 11:
				evs, err := st.OutboxHeads(ctx, "k", "")
				read = append(read, evs...)
				s = fmt.Sprintf("heads %s %s", events(evs), errName(err))
			}
			out = append(out, fmt.Sprintf("%d %s", step, s))
		}
		return out
	})
}

// events names evs in a fixed order: which are handed out is compared
// here, the order of heads due at one instant is the conformance suite's.
func events(evs []store.Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, fmt.Sprintf("%s@%s/%s/a%d/n%d/%q", e.ID, e.Key, e.Kind, e.Attempts, e.NextAt.UnixMilli(), e.LastError))
	}
	slices.Sort(s)
	return strings.Join(s, ",")
}

// TestParityKVMore: what TestParityKV does not call (sweep leases,
// announcement claims beside an earlier version's counter, proposals
// expired by the store and listed as open, tallies added in batches) on
// two keys and two users, with time moving on.
func TestParityKVMore(t *testing.T) {
	sameOnEveryDriver(t, 30, func(t *testing.T, st store.Store, clock *storetest.Clock, r *rand.Rand) []string {
		ctx := context.Background()
		ttl := func() time.Duration { return time.Duration(1+r.IntN(5)) * time.Second }
		key := func() string { return []string{"a", "b"}[r.IntN(2)] }
		user := func() string { return []string{"u", "v"}[r.IntN(2)] }
		var out []string
		for step := range 80 {
			var s string
			switch r.IntN(11) {
			case 0:
				clock.Advance(time.Duration(r.IntN(3000)) * time.Millisecond)
				s = "advance"
			case 1:
				held, err := st.TakeLeases(ctx, []string{"h1", "h2"}[r.IntN(2)], []string{"a", "b", key()}, ttl())
				s = fmt.Sprintf("leases %v %s", held, errName(err))
			case 2:
				first, err := st.ClaimAnnouncement(ctx, "c", user(), "paid:", key(), ttl())
				s = fmt.Sprintf("announce %v %s", first, errName(err))
			case 3:
				// An earlier version's claim: only whether it was the
				// first count is compared (a claim of this version raises
				// the counter on Redis, where an earlier one may claim at
				// once; the embedded file has one process).
				n, err := st.IncrCounter(ctx, "paid:"+key(), ttl())
				s = fmt.Sprintf("earlier announce %v %s", n == 1, errName(err))
			case 4:
				us, err := st.LoadUserState(ctx, "c", user())
				s = fmt.Sprintf("state %d announced %s", len(us.Announced), errName(err))
			case 5:
				p, state, err := st.ExpireRefundProposal(ctx, key())
				s = fmt.Sprintf("expire %v %s %s", p != nil, state, errName(err))
			case 6:
				ps, err := st.OpenRefundProposals(ctx, "c", user())
				var ids []string
				for _, p := range ps {
					ids = append(ids, p.RefundID)
				}
				// Which are open is compared here; the order of those
				// proposed at one instant is the conformance suite's.
				slices.Sort(ids)
				s = fmt.Sprintf("open %v %s", ids, errName(err))
			case 7:
				p := &store.RefundProposal{RefundID: key(), OrderNo: "o", Client: "c", User: user(), AmountFen: 1}
				s = fmt.Sprintf("propose %s", errName(st.PutRefundProposal(ctx, p, ttl())))
			case 8:
				var err error
				if r.IntN(2) == 0 {
					_, err = st.ConsumeRefundProposal(ctx, key(), user())
				} else {
					_, err = st.CancelRefundProposal(ctx, key(), user())
				}
				s = fmt.Sprintf("answer %s", errName(err))
			case 9:
				err := st.AddTallies(ctx, []store.TallyAdd{{Key: key(), Delta: int64(r.IntN(5))}, {Key: key(), Delta: 1}}, ttl())
				s = fmt.Sprintf("tallies %s", errName(err))
			case 10:
				n, err := st.TakeTally(ctx, key())
				s = fmt.Sprintf("take %d %s", n, errName(err))
			}
			out = append(out, fmt.Sprintf("%d %s", step, s))
		}
		return out
	})
}

// TestParityAuditText: records appended, their texts kept (some said
// before an erasure, some for another client of the same user), read,
// expired and erased, with time moving on.
func TestParityAuditText(t *testing.T) {
	sameOnEveryDriver(t, 30, func(t *testing.T, st store.Store, clock *storetest.Clock, r *rand.Rand) []string {
		ctx := context.Background()
		client := func() string { return []string{"c1", "c2"}[r.IntN(2)] }
		user := func() string { return []string{"u", "v"}[r.IntN(2)] }
		var out []string
		for step := range 80 {
			var s string
			switch r.IntN(7) {
			case 0:
				clock.Advance(time.Duration(r.IntN(3000)) * time.Millisecond)
				s = "advance"
			case 1:
				h, err := st.AuditHead(ctx)
				if err == nil {
					err = st.AppendAudit(ctx, store.AuditRecord{Seq: h.Seq + 1, PrevHash: h.Hash, Hash: fmt.Sprint("h", step),
						Body: fmt.Appendf(nil, `{"client":%q}`, client()), User: user()})
				}
				s = "append " + errName(err)
			case 2:
				h, err := st.AuditHead(ctx)
				if err != nil {
					t.Fatal(err)
				}
				seq, c, u := uint64(r.IntN(int(h.Seq)+2)), client(), user()
				said := clock.Now().Add(-time.Duration(r.IntN(3000)) * time.Millisecond)
				err = st.PutAuditText(ctx, seq, c, u, fmt.Append(nil, "said ", step), said, time.Duration(1+r.IntN(5))*time.Second)
				s = fmt.Sprintf("keep %d %s/%s %s", seq, c, u, errName(err))
			case 3:
				seq := uint64(r.IntN(8))
				text, err := st.GetAuditText(ctx, seq)
				s = fmt.Sprintf("text %d %q %s", seq, text, errName(err))
			case 4:
				c, u := client(), user()
				n, err := st.EraseAuditText(ctx, c, u)
				s = fmt.Sprintf("erase %s/%s %d %s", c, u, n, errName(err))
			case 5:
				at, err := st.AuditErasedAt(ctx, client(), user())
				s = fmt.Sprintf("erased at %d %s", at.UnixMilli(), errName(err))
			case 6:
				recs, err := st.ReadAudit(ctx, uint64(r.IntN(5)), r.IntN(4))
				var seqs []uint64
				for _, rec := range recs {
					seqs = append(seqs, rec.Seq)
				}
				s = fmt.Sprintf("read %v %s", seqs, errName(err))
			}
			out = append(out, fmt.Sprintf("%d %s", step, s))
		}
		return out
	})
}

// TestParityUserStateClockSteps: TestParityUserState with the orders'
// updates stamped by clocks up to 3 s apart (replicas whose clocks differ,
// within the README's minute), each stamp going back or forward: every
// driver returns the same newest orders, though an update moves an order
// back past others.
func TestParityUserStateClockSteps(t *testing.T) {
	sameOnEveryDriver(t, 12, func(t *testing.T, st store.Store, clock *storetest.Clock, r *rand.Rand) []string {
		ctx := context.Background()
		var out []string
		var nos []string
		for i := range 2*store.UserStateOrders + 10 {
			no := fmt.Sprintf("K%c%02d", 'a'+r.IntN(26), i)
			if err := st.CreateOrder(ctx, storetest.NewOrder(no, "c", "u", clock.Now())); err != nil {
				t.Fatal(err)
			}
			nos = append(nos, no)
			clock.Advance(time.Duration(r.IntN(5)) * 250 * time.Millisecond)
		}
		for range 6 * store.UserStateOrders {
			// Each update on a replica whose clock is up to 3 s off.
			step := time.Duration(r.IntN(13)-6) * 500 * time.Millisecond
			clock.Advance(step)
			touchOrder(t, st, nos[r.IntN(len(nos))], r)
			clock.Advance(-step + time.Millisecond)
			if r.IntN(4) == 0 {
				out = append(out, userState(t, st, "c", "u"))
			}
		}
		return append(out, userState(t, st, "c", "u"))
	})
}

// touchOrder updates order no with a new session drawn from r.
func touchOrder(t *testing.T, st store.Store, no string, r *rand.Rand) {
	t.Helper()
	ctx := context.Background()
	o, err := st.GetOrder(ctx, no)
	if err != nil {
		t.Fatal(err)
	}
	o.Session = fmt.Sprint("s", r.IntN(100))
	if err := st.UpdateOrder(ctx, o, o.Status); err != nil {
		t.Fatal(err)
	}
}
