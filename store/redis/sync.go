package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/store"
)

// A write to an order (or to an outbox key) touches three hash tags: the
// order's own (the atomic money step), the user's (the copy LoadUserState
// reads) and {idx} (listings and pending outboxes). It runs as:
//
//	1. intent:  {idx} remembers "member may be out of sync" with a fresh token
//	2. write:   the order script on {o:NO}, order and outbox together
//	3. user:    the copy on {u:CLIENT:USER}, applied only if newer
//	4. index:   {idx} indexes, applied only if newer; clears the intent if it
//	            still holds this writer's token
//
// Steps 3 and 4 are idempotent and version-guarded, so any replica may replay
// them in any order. A crash between 1 and 4 leaves the intent; Repair replays
// 3 and 4 for intents older than the grace period.

// intent is step 1.
func (s *Store) intent(ctx context.Context, member string) (string, error) {
	v, err := s.run(ctx, "write intent", s.sc.intent,
		[]string{s.k.idx("dirty"), s.k.idx("dirtyat"), s.k.idx("seq")},
		member, s.now().UnixMilli())
	if err != nil {
		return "", err
	}
	tok, _ := v.(string)
	return tok, nil
}

// dropIntent clears an intent whose write changed nothing (a lost CAS).
// Failure is harmless: Repair finds nothing to fix and clears it.
func (s *Store) dropIntent(ctx context.Context, member, tok string) {
	s.syncIndex(ctx, nil, member, "", 0, tok)
}

// sync runs steps 3 and 4 after a successful write of o (nil for an outbox key
// without an order); obv and next are the outbox state the write left.
// Failures are logged, not returned: the money step is committed, and the
// intent stays for Repair.
func (s *Store) sync(ctx context.Context, o *store.Order, obv, next int64, tok string) {
	if o != nil {
		if err := s.syncUser(ctx, o); err != nil {
			s.log.Warn("store user copy sync deferred to repair", "order", o.OrderNo, "err", err)
			return
		}
	}
	member := ""
	if o != nil {
		member = o.OrderNo
	}
	s.syncIndex(ctx, o, member, strconv.FormatInt(obv, 10), next, tok)
}

func (s *Store) syncUser(ctx context.Context, o *store.Order) error {
	j, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("redis: encode order copy: %w", err)
	}
	uo, uv, ur := s.k.userTag(o.Client, o.User)
	_, err = s.run(ctx, "sync user copy", s.sc.syncUser, []string{uo, uv, ur},
		o.OrderNo, o.Version, j, score(o.CreatedAt))
	return err
}

// syncIndex is step 4 for member: the order part when o != nil, the outbox
// part when obv != "", the intent clearing when tok != "".
func (s *Store) syncIndex(ctx context.Context, o *store.Order, member, obv string, next int64, tok string) {
	keys := make([]string, 0, idxFixedKeys+len(s.statuses))
	keys = append(keys, s.k.idx("v"), s.k.idx("all"), s.k.idx("ob"), s.k.idx("obv"), s.k.idx("dirty"), s.k.idx("dirtyat"))
	for _, st := range s.statuses {
		keys = append(keys, s.k.status(st))
	}
	ver, stIdx, created := "", 0, int64(0)
	if o != nil {
		ver = strconv.FormatInt(o.Version, 10)
		created = score(o.CreatedAt)
		for i, st := range s.statuses {
			if st == o.Status {
				stIdx = i + 1
			}
		}
	}
	if _, err := s.run(ctx, "sync index", s.sc.syncIndex, keys, member, ver, stIdx, created, member, obv, next, tok); err != nil {
		s.log.Warn("store index sync deferred to repair", "member", member, "err", err)
	}
}

// Repair replays steps 3 and 4 for write intents older than the grace period
// (left by a crash or a lost connection between the steps) and reports how
// many it repaired. It runs at start-up and every RepairInterval; it is
// exported for operators and tests.
func (s *Store) Repair(ctx context.Context) (int, error) {
	cutoff := s.now().Add(-s.grace).UnixMilli()
	seen := map[string]bool{}
	n := 0
	for {
		members, err := s.c.ZRangeByScore(ctx, s.k.idx("dirtyat"), &goredis.ZRangeBy{
			Min: "-inf", Max: strconv.FormatInt(cutoff, 10), Offset: 0, Count: 100,
		}).Result()
		if err != nil {
			return n, mapErr("repair", err)
		}
		progress := false
		for _, m := range members {
			if seen[m] {
				continue
			}
			seen[m] = true
			progress = true
			if err := s.repairOne(ctx, m); err != nil {
				return n, err
			}
			n++
		}
		if !progress {
			return n, nil
		}
	}
}

func (s *Store) repairOne(ctx context.Context, member string) error {
	tok, err := s.c.HGet(ctx, s.k.idx("dirty"), member).Result()
	if err != nil && err != goredis.Nil {
		return mapErr("repair", err)
	}
	rk, ob, obv := s.k.orderTag(member)
	v, err := s.run(ctx, "repair read", s.sc.readTag, []string{rk, ob, obv})
	if err != nil {
		return err
	}
	r := replySlice(v)
	var o *store.Order
	if j, ok := replyStr(r, 0); ok {
		if o, err = decodeOrder(j, replyInt(r, 1)); err != nil {
			return err
		}
		if err := s.syncUser(ctx, o); err != nil {
			return err
		}
	}
	if tok == "" {
		// Cleared meanwhile by the writer; still make sure the index is right.
		tok = "-"
	}
	s.syncIndex(ctx, o, member, strconv.FormatInt(replyInt(r, 2), 10), replyInt(r, 3), tok)
	if tok == "-" {
		return nil
	}
	// The intent survives if syncIndex failed; report that as an error so the
	// loop stops instead of spinning on it.
	left, err := s.c.HGet(ctx, s.k.idx("dirty"), member).Result()
	if err != nil && err != goredis.Nil {
		return mapErr("repair", err)
	}
	if left == tok {
		return fmt.Errorf("redis: repair of %s did not clear its intent", member)
	}
	return nil
}

// outbox list elements: the event with the fields the scripts read.
type obElem struct {
	ID     string      `json:"id"`
	NextMs int64       `json:"next_ms"`
	Ev     store.Event `json:"ev"`
}

func (s *Store) fillEvent(e store.Event) store.Event {
	if e.Key == "" {
		e.Key = store.DefaultEventKey
	}
	if e.ID == "" {
		e.ID = newID("evt_")
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = s.now()
	}
	return e
}

func encodeEvents(evs []store.Event) ([]any, error) {
	out := make([]any, len(evs))
	for i, e := range evs {
		b, err := json.Marshal(obElem{ID: e.ID, NextMs: nextMs(e.NextAt), Ev: e})
		if err != nil {
			return nil, fmt.Errorf("redis: encode event: %w", err)
		}
		out[i] = b
	}
	return out, nil
}

func nextMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// orderEvents keys events passed with an order write by that order.
func (s *Store) orderEvents(orderNo string, events []store.Event) ([]any, error) {
	evs := make([]store.Event, len(events))
	for i, e := range events {
		if e.Key != "" && e.Key != orderNo {
			return nil, fmt.Errorf("redis: event %s keyed %q cannot ride on order %s", e.ID, e.Key, orderNo)
		}
		e.Key = orderNo
		evs[i] = s.fillEvent(e)
	}
	return encodeEvents(evs)
}
