package redis

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"
)

// ClaimAnnouncement implements store.Announcements. The mark is a field of
// the user's announcement hash (keys.userAnnounced), on the user's tag, so
// LoadUserState's script returns it with the order copies; it is written
// by runMoney, as every money write is: WAIT covers it, and the generation
// raise behind it makes a Redis that went back to before it found and
// refused, where the counter earlier versions claimed with (IncrCounter,
// run without either) was granted again.
//
// That counter (kind+orderNo) is read first, in a round trip of its own (it
// is on another tag, so no script can read both on a cluster): only a
// claim that finds no mark pays it, once per order. It is read before the
// mark is written so that a failed read writes nothing and a later turn
// tries again, rather than leaving a mark no one announced. A claim this
// call is first to make then raises it too, for the replicas of an earlier
// version that may still run beside this one during a rolling upgrade:
// they know only the counter, and would announce the order again. That
// raise is not a money write and its failure is only logged: the claim is
// made. Both the read and the raise can go once no earlier version runs
// (their counters outlive no announcement window).
func (s *Store) ClaimAnnouncement(ctx context.Context, client, user, kind, orderNo string, ttl time.Duration) (bool, error) {
	if kind == "" || orderNo == "" || ttl <= 0 {
		return false, errors.New("redis: an announcement claim needs a kind, an order number and a ttl")
	}
	if err := s.refused("claim announcement"); err != nil {
		return false, err
	}
	now := s.now()
	legacyKey := s.k.one("k", kind+orderNo)
	legacy, err := s.c.HMGet(ctx, legacyKey, "n", "until").Result()
	if err != nil {
		return false, mapErr("claim announcement: read the earlier counter", err)
	}
	announced := replyInt(legacy, 0) >= 1 && replyInt(legacy, 1) > now.UnixMilli()
	v, err := s.runMoney(ctx, "claim announcement", s.sc.announce, []string{s.k.userAnnounced(client, user)},
		orderNo, kind, now.UnixMilli(), now.Add(ttl).UnixMilli(), ms(ttl+expiryGrace), rand.Text())
	if err != nil {
		return false, fmt.Errorf("announcement %s of order %s: %w", kind, orderNo, err)
	}
	if n, _ := v.(int64); n != 1 || announced {
		return false, nil
	}
	if _, err := s.run(ctx, "raise the earlier announcement counter", s.sc.counter, []string{legacyKey},
		now.UnixMilli(), ms(ttl), ms(expiryGrace), rand.Text()); err != nil {
		s.log.Warn("store: an announcement claimed; the counter of earlier versions not raised, so one still running may announce it again",
			"kind", kind, "order_no", orderNo, "err", err)
	}
	return true, nil
}
