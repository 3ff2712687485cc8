package audit

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
	redisstore "github.com/paygate/paygate/store/redis"
	"github.com/paygate/paygate/store/testdrivers"
)

// textsKept maps each order.created record's order number to whether its
// text is kept.
func textsKept(t *testing.T, st store.Audit) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, r := range readAll(t, st) {
		body, err := Decode(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		if body.Name != "order.created" {
			continue
		}
		_, err = st.GetAuditText(context.Background(), r.Seq)
		out[body.OrderNo] = err == nil
	}
	return out
}

// TestErasureCoversTextOfReplicaAhead: replica A's clock runs 3 s ahead of
// replica B's, within the ClockSkew the worker tolerates. The user buys on
// A; later in real time the operator erases the user's texts through B,
// before any worker appended A's event. The text was said before the
// erasure, but its event's time (A's clock) is after B's erasure mark, and
// the store kept it: the text survived an erasure that came after it. The
// worker now refuses a text said up to ClockSkew after the mark, and verify
// -text accepts it as erased.
func TestErasureCoversTextOfReplicaAhead(t *testing.T) {
	if !slices.Contains(drivers(t), "redis") {
		t.Skip("needs redis")
	}
	p := testdrivers.NewPlace(t, "redis", nil)
	open := func(skew time.Duration) store.Store {
		st, err := redisstore.Open(redisstore.Options{Addrs: []string{testdrivers.RedisAddr()}, KeyPrefix: p.Prefix, RepairInterval: -1,
			Now: func() time.Time { return time.Now().Add(skew) }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	a, b := open(3*time.Second), open(0)
	ctx := context.Background()
	// A: the turn's order write enqueues the audit event (said on A's clock).
	enqueue(t, a, mustEvent(t, Action{Time: time.Now().Add(3 * time.Second), Name: "order.created", Client: "shop-bot", User: "oAlice",
		OrderNo: "PG0001", AmountFen: 4999}, `[{"role":"user","content":"my phone is 138-0000-0000, buy"}]`))
	// B: the erasure (Erase appends the pending events itself).
	wb := newTestWorker(t, b, func(o *WorkerOptions) { o.Now = func() time.Time { return time.Now() } })
	if _, err := wb.Erase(ctx, "shop-bot", "oAlice"); err != nil {
		t.Fatal(err)
	}
	if kept := textsKept(t, b); len(kept) != 1 || kept["PG0001"] {
		t.Errorf("texts kept %v; want PG0001's, said before the erasure, refused", kept)
	}
	res, err := Verify(ctx, b, VerifyOptions{Texts: true, RetainText: time.Hour})
	if err != nil || res.TextsGone != 1 {
		t.Errorf("verify -text: %+v %v; want the refused text counted as erased", res, err)
	}
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	at time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = c.at.Add(d)
}

// TestErasureRefusesTextsSaidWithinClockSkew: on one clock (the embedded
// store, or replicas in step) too, a text said up to ClockSkew after an
// erasure is refused, the price of covering the replicas' skew (the safe
// side for privacy), and verify -text accepts it as erased; one said later
// is kept, and its removal is still reported.
func TestErasureRefusesTextsSaidWithinClockSkew(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clock := &fakeClock{at: time.Now()}
			e := &env{t: t, driver: driver, place: testdrivers.NewPlace(t, driver, clock.Now)}
			e.path, e.prefix = e.place.Path, e.place.Prefix
			e.open()
			ctx := context.Background()
			say := func(orderNo string) {
				enqueue(t, e.store(), mustEvent(t, Action{Time: clock.Now(), Name: "order.created", Client: "shop-bot", User: "oAlice",
					OrderNo: orderNo, AmountFen: 4999}, `[{"role":"user","content":"buy"}]`))
			}
			w := newTestWorker(t, e.store(), func(o *WorkerOptions) { o.Now = clock.Now })
			say("PG0001")
			drainAll(t, w)
			clock.Add(time.Second)
			if n, err := w.Erase(ctx, "shop-bot", "oAlice"); err != nil || n != 1 {
				t.Fatalf("erase: %d %v", n, err)
			}
			clock.Add(DefaultClockSkew / 2)
			say("PG0002") // within the skew after the erasure
			clock.Add(DefaultClockSkew)
			say("PG0003") // past it
			drainAll(t, w)
			want := map[string]bool{"PG0001": false, "PG0002": false, "PG0003": true}
			if kept := textsKept(t, e.store()); !maps(kept, want) {
				t.Errorf("texts kept %v; want %v", kept, want)
			}
			res, err := Verify(ctx, e.store(), VerifyOptions{Texts: true, RetainText: time.Hour})
			if err != nil || res.TextsGone != 2 || res.TextsChecked != 1 {
				t.Fatalf("verify -text: %+v %v; want PG0001's and PG0002's texts erased, PG0003's checked", res, err)
			}
			e.rawDeleteText(4) // PG0003's: 1 PG0001, 2 the erasure, 3 PG0002
			_, err = Verify(ctx, e.store(), VerifyOptions{Texts: true, RetainText: time.Hour})
			wantBroken(t, err, 4, "removed without erasure")
		})
	}
}

func maps(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
