package redis

import (
	"context"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/store"
)

// TestProposalQueueKeysExpireWithTheProposal: a refund proposal's event queue
// ({r:ID}:ob, {r:ID}:obv) is on the proposal's tag; it must not outlive the
// proposal by more than a bounded time, nor expire before it. After every
// outbox step on the queue (put, enqueue, enqueue-once, claim, retry, ack)
// each key of the tag has an expiry, none shorter than the proposal record's;
// a retry due after the record's physical expiry extends the queue past the
// retry's due time, so a pending event is never dropped before delivery.
// (The version key used to stay forever: 88 bytes per proposal.)
func TestProposalQueueKeysExpireWithTheProposal(t *testing.T) {
	requireSharedRedis(t)
	ctx := context.Background()
	s := openOn(t, nil, Options{Addrs: []string{sharedAddr}})
	c := goredis.NewClient(&goredis.Options{Addr: sharedAddr})
	defer c.Close()

	// check reads every key of id's tag, then the record's PTTL last: keys
	// that expire with the record read at least the record's PTTL.
	check := func(step, id string, wantKeys int, atLeast time.Duration) {
		t.Helper()
		rec := s.k.one("r", id)
		keys, err := c.Keys(ctx, rec+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		ttls := map[string]time.Duration{}
		for _, k := range keys {
			if k == rec {
				continue
			}
			if strings.Contains(k, ":qt:") {
				// A call's token (EnqueueEventsOnce's lost-reply answer) is
				// no queue key: it lives expiryGrace, however long the
				// proposal does, and must never stay.
				if ttl := c.PTTL(ctx, k).Val(); ttl <= 0 || ttl > expiryGrace {
					t.Errorf("%s: call token %s PTTL %v; want at most %v", step, k, ttl, expiryGrace)
				}
				continue
			}
			ttls[k] = c.PTTL(ctx, k).Val()
		}
		recTTL := c.PTTL(ctx, rec).Val()
		if recTTL <= 0 {
			t.Fatalf("%s: proposal record %s PTTL %v; want an expiry", step, rec, recTTL)
		}
		if len(ttls) != wantKeys {
			t.Errorf("%s: queue keys %v; want %d", step, keys, wantKeys)
		}
		for k, ttl := range ttls {
			switch {
			case ttl < 0:
				mem, _ := c.MemoryUsage(ctx, k).Result()
				t.Errorf("%s: %s has no expiry (%d bytes): it outlives its proposal", step, k, mem)
			case ttl < recTTL:
				t.Errorf("%s: %s expires in %v, before its proposal (%v)", step, k, ttl, recTTL)
			case ttl < atLeast:
				t.Errorf("%s: %s expires in %v; want at least %v", step, k, ttl, atLeast)
			}
		}
	}

	// A proposal with its audit event: put, claim, retry, ack.
	p := &store.RefundProposal{RefundID: "rf_q1", OrderNo: "ORD-Q1", Client: "c", User: "u", AmountFen: 1, OutRefundNo: "R1"}
	key := store.ProposalEventKey(p.RefundID)
	ev := store.Event{ID: "evt_q1", Kind: "audit", Payload: []byte(`{}`)}
	if err := s.PutRefundProposal(ctx, p, time.Minute, ev); err != nil {
		t.Fatal(err)
	}
	check("put", p.RefundID, 2, 0)

	if pending, err := s.EnqueueEventsOnce(ctx, []store.Event{{ID: "evt_q1b", Kind: "audit", Key: key}}); err != nil || len(pending) != 0 {
		t.Fatalf("EnqueueEventsOnce: pending %v, %v", pending, err)
	}
	check("enqueue once", p.RefundID, 2, 0)

	now := time.Now()
	evs, err := s.ClaimEvents(ctx, "audit", now, time.Minute, store.MaxListLimit)
	if err != nil {
		t.Fatal(err)
	}
	claimed := false
	for _, e := range evs {
		claimed = claimed || e.ID == ev.ID
	}
	if !claimed {
		t.Fatalf("ClaimEvents: %v; want %s among them", ids(evs), ev.ID)
	}
	check("claim", p.RefundID, 2, 0)

	// A retry due after the record is physically gone (ttl + tombstone +
	// grace): the pending event must still be there when it is due.
	due := time.Minute + store.TombstoneTTL + 24*time.Hour
	if err := s.RetryEvent(ctx, key, ev.ID, time.Now().Add(due), 1, "audit down"); err != nil {
		t.Fatal(err)
	}
	check("retry", p.RefundID, 2, due)

	for _, id := range []string{ev.ID, "evt_q1b"} {
		if err := s.AckEvent(ctx, key, id); err != nil {
			t.Fatal(err)
		}
	}
	check("ack", p.RefundID, 1, 0) // the list is gone once drained; obv stays

	// A long-lived proposal put without events, whose queue an enqueue
	// creates later: the new keys still last as long as the proposal.
	p2 := &store.RefundProposal{RefundID: "rf_q2", OrderNo: "ORD-Q2", Client: "c", User: "u", AmountFen: 1, OutRefundNo: "R2"}
	if err := s.PutRefundProposal(ctx, p2, 30*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.EnqueueEvents(ctx, store.Event{ID: "evt_q2", Kind: "audit", Key: store.ProposalEventKey(p2.RefundID)}); err != nil {
		t.Fatal(err)
	}
	check("enqueue", p2.RefundID, 2, 30*24*time.Hour)
	if err := s.AckEvent(ctx, store.ProposalEventKey(p2.RefundID), "evt_q2"); err != nil {
		t.Fatal(err)
	}
	check("ack after enqueue", p2.RefundID, 1, 30*24*time.Hour)

	// A proposal put without events whose cancellation (or consumption)
	// carries one: the queue it creates lasts as long as the tombstone.
	for _, id := range []string{"rf_q3", "rf_q4"} {
		p := &store.RefundProposal{RefundID: id, OrderNo: "ORD-" + id, Client: "c", User: "u", AmountFen: 1, OutRefundNo: "R" + id}
		if err := s.PutRefundProposal(ctx, p, time.Minute); err != nil {
			t.Fatal(err)
		}
		answer := s.CancelRefundProposal
		if id == "rf_q4" {
			answer = s.ConsumeRefundProposal
		}
		if _, err := answer(ctx, id, "u", store.Event{ID: "evt_" + id, Kind: "audit", Payload: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
		check("answer", id, 2, store.TombstoneTTL)
	}

	// A proposal put without events whose record is near its physical end
	// when an enqueue creates its queue: the queue lasts TombstoneTTL past
	// the step (queueHold), not the call token's minute (token_ms, the
	// ARGV before hold_ms in luaEnqueue).
	p5 := &store.RefundProposal{RefundID: "rf_q5", OrderNo: "ORD-Q5", Client: "c", User: "u", AmountFen: 1, OutRefundNo: "R5"}
	if err := s.PutRefundProposal(ctx, p5, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := c.PExpire(ctx, s.k.one("r", p5.RefundID), 2*time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.EnqueueEvents(ctx, store.Event{ID: "evt_q5", Kind: "audit", Key: store.ProposalEventKey(p5.RefundID)}); err != nil {
		t.Fatal(err)
	}
	check("enqueue near the record's end", p5.RefundID, 2, store.TombstoneTTL)
}
