package redis

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// TestEveryStepAfterAScriptFlush: Redis forgets its scripts at a restart, a
// failover to a replica that never ran them, or SCRIPT FLUSH. Each step
// here is made right after the cache is emptied, one after the other, on a
// Redis of the test's own, so that every way a script is sent (runMoney's
// pipeline, runBatch's and evalEach's pipelines of EVALSHA, go-redis's
// Script.Run) meets NOSCRIPT: each must load its script and go on, never
// answer a step that did not run as failed, or one that did as not done.
func TestEveryStepAfterAScriptFlush(t *testing.T) {
	srv := redistest.StartServer(t)
	admin := srv.Client()
	s := openOn(t, storetest.NewClock(), Options{Addrs: []string{srv.Addr()}, EpochInterval: -1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	now := s.now()
	steps := []struct {
		name string
		run  func() error
	}{
		{"create order (runMoney)", func() error {
			return s.CreateOrder(ctx, storetest.NewOrder("SF-1", "bot", "u1", now),
				store.Event{ID: "sf-created", Kind: "webhook", Payload: []byte(`{}`)})
		}},
		{"update order (runMoney)", func() error {
			o, err := s.GetOrder(ctx, "SF-1")
			if err != nil {
				return err
			}
			paid := *o
			paid.Status = store.StatusPaid
			return s.UpdateOrder(ctx, &paid, store.StatusAwaitingPayment)
		}},
		{"load user state (Script.Run)", func() error {
			st, err := s.LoadUserState(ctx, "bot", "u1")
			if err == nil && len(st.Orders) != 1 {
				t.Errorf("user state after the flush: %d orders; want 1", len(st.Orders))
			}
			return err
		}},
		{"claim purchase (runMoney)", func() error {
			c, created, err := s.ClaimPurchase(ctx, "sf-claim", "SF-2", time.Hour)
			if err == nil && (!created || c.OrderNo != "SF-2") {
				t.Errorf("claim after the flush: %+v created %v; want SF-2 created", c, created)
			}
			return err
		}},
		{"seen notification (runMoney)", func() error {
			first, err := s.SeenNotification(ctx, "sf-note", time.Hour)
			if err == nil && !first {
				t.Error("a notification never seen answered seen")
			}
			return err
		}},
		{"due events (evalEach, read)", func() error {
			due, err := s.DueEvents(ctx, now.Add(time.Hour), 10)
			if err == nil && len(due) != 1 {
				t.Errorf("due after the flush: %d events; want 1", len(due))
			}
			return err
		}},
		{"claim events (evalEach, write)", func() error {
			evs, err := s.ClaimEvents(ctx, "webhook", now.Add(time.Hour), time.Minute, 10)
			if err == nil && len(evs) != 1 {
				t.Errorf("claimed after the flush: %d events; want 1", len(evs))
			}
			return err
		}},
		{"add tallies (runBatch)", func() error {
			return s.AddTallies(ctx, []store.TallyAdd{{Key: "sf-t1", Delta: 3}, {Key: "sf-t2", Delta: 4}}, time.Hour)
		}},
		{"take leases (runBatch)", func() error {
			held, err := s.TakeLeases(ctx, "holder", []string{"sf-l1", "sf-l2"}, time.Minute)
			if err == nil && (len(held) != 2 || !held[0] || !held[1]) {
				t.Errorf("leases after the flush: %v; want both held", held)
			}
			return err
		}},
		{"take tally (Script.Run)", func() error {
			n, err := s.TakeTally(ctx, "sf-t1")
			if err == nil && n != 3 {
				t.Errorf("tally after the flush: %d; want 3", n)
			}
			return err
		}},
	}
	for _, st := range steps {
		if err := admin.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if err := st.run(); err != nil {
			t.Errorf("%s after SCRIPT FLUSH: %v", st.name, err)
		}
	}
}
