package redis

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
)

// TestExpiringRecordsLeaveRedis: expiry is logical (judged on every read
// against the clock), so the conformance suite, which reads, passes as
// well when a script forgets its PEXPIRE; only Redis's memory notices,
// and with a key per purchase ask, notification, conversation, tool
// exchange or announcement, a year of traffic fills a maxmemory that
// noeviction (the only policy paygate supports) then turns into refused
// money writes. Every record a call gives a ttl to must leave Redis by
// itself: after each such call, every key under the prefix, the
// deployment's own marks aside, has an expiry, and each key the call
// created expires within what the call asked for (and the drivers'
// minute of grace; a claim's generation, store.GenerationRetention more;
// a refund proposal, its tombstone's store.TombstoneTTL more).
func TestExpiringRecordsLeaveRedis(t *testing.T) {
	requireSharedRedis(t)
	ctx := context.Background()
	s := openOn(t, nil, Options{Addrs: []string{sharedAddr}})
	c := s.Client()

	// Kept for good, by design: the deployment's marks (epoch, owner,
	// the generation counters, the write probe's own expiring key).
	permanent := func(k string) bool {
		rest := strings.TrimPrefix(k, s.k.p)
		return strings.HasPrefix(rest, "{meta:") || strings.HasPrefix(rest, "{gen:")
	}
	ttls := func() map[string]time.Duration {
		t.Helper()
		out := map[string]time.Duration{}
		iter := c.Scan(ctx, 0, s.k.p+"*", 1000).Iterator()
		for iter.Next(ctx) {
			if k := iter.Val(); !permanent(k) {
				out[k] = c.PTTL(ctx, k).Val()
			}
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	seen := ttls()
	reported := map[string]bool{}
	step := func(name string, most time.Duration, call func() error) {
		t.Helper()
		if err := call(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		most += expiryGrace
		for k, ttl := range ttls() {
			_, old := seen[k]
			switch {
			case ttl <= 0 && !reported[k]:
				reported[k] = true
				mem, _ := c.MemoryUsage(ctx, k).Result()
				t.Errorf("%s: %s has no expiry (PTTL %v, %d bytes): it stays in Redis for good", name, k, ttl, mem)
			case ttl > 0 && !old && ttl > most:
				t.Errorf("%s: %s expires in %v; want at most %v", name, k, ttl, most)
			}
			seen[k] = ttl
		}
	}

	const dedupe = 10 * time.Minute
	step("claim a purchase", dedupe+store.GenerationRetention, func() error {
		_, _, err := s.ClaimPurchase(ctx, "purchase:c:u:sku:1:jsapi", "ORD-1", dedupe)
		return err
	})
	step("advance the claim", dedupe+store.GenerationRetention, func() error {
		_, _, err := s.AdvanceClaim(ctx, "purchase:c:u:sku:1:jsapi", 1, "ORD-2", dedupe)
		return err
	})
	step("see a notification", 48*time.Hour, func() error {
		_, err := s.SeenNotification(ctx, "note-1", 48*time.Hour)
		return err
	})
	step("count an order of the day", 48*time.Hour, func() error {
		if _, err := s.IncrCounter(ctx, "orders:2026-12-05:c:u", 48*time.Hour); err != nil {
			return err
		}
		return s.DecrCounter(ctx, "orders:2026-12-05:c:u", "back-1")
	})
	step("admit a payment call", time.Minute, func() error {
		_, err := s.AllowWindow(ctx, "paycalls:c:u", 5, time.Minute, "tok-1")
		return err
	})
	step("take a lease", 30*time.Second, func() error {
		_, err := s.TakeLeases(ctx, "replica-1", []string{"sweep:ORD-1", "sweep:ORD-2"}, 30*time.Second)
		return err
	})
	const session = 30 * 24 * time.Hour
	step("add to a conversation's cost", session, func() error {
		if _, err := s.AddTally(ctx, "cost:c\x00u\x00u", 5, session); err != nil {
			return err
		}
		return s.AddTallies(ctx, []store.TallyAdd{{Key: "cost:c\x00u\x00u", Delta: 1}, {Key: "cost:c\x00u\x00chat-2", Delta: 2}}, session)
	})
	step("take a conversation's cost", time.Minute, func() error {
		_, err := s.TakeTally(ctx, "cost:c\x00u\x00u")
		return err
	})
	step("keep a tool exchange", 24*time.Hour, func() error {
		return s.PutExchange(ctx, "exchange:c:u:call_1", []byte(`{}`), 24*time.Hour)
	})
	step("announce an order", 30*24*time.Hour, func() error {
		_, err := s.ClaimAnnouncement(ctx, "c", "u", "announced:", "ORD-1", 30*24*time.Hour)
		return err
	})
	const confirm = 15 * time.Minute
	p := &store.RefundProposal{RefundID: "rf_x1", OrderNo: "ORD-1", Client: "c", User: "u", AmountFen: 1, OutRefundNo: "RFx1"}
	step("propose a refund", confirm+store.TombstoneTTL, func() error {
		return s.PutRefundProposal(ctx, p, confirm)
	})
	step("cancel the proposal", store.TombstoneTTL, func() error {
		_, err := s.CancelRefundProposal(ctx, p.RefundID, "u")
		return err
	})
	const retain = 4320 * time.Hour
	step("keep a turn's text beside the chain", retain, func() error {
		return s.PutAuditText(ctx, 1, "c", "u", []byte("I want the monthly plan"), time.Now(), retain)
	})
}
