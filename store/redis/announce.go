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
// That counter (kind+orderNo), which earlier versions claimed with, is
// on another tag, so no script can write both on a cluster. A claim that
// makes the mark then raises the counter, and is first only when the raise
// is the counter's first count: during a rolling upgrade a replica of an
// earlier version claims with that counter alone, and one INCR of one key
// decides between the two, as it decided between two earlier replicas.
// Read before the mark instead, an earlier replica's claim landing between
// the read and the mark (or the mark's WAIT) announced the order twice. A
// counter an earlier version raised before the upgrade answers the same:
// announced. A raise that fails answers the error and announces nothing:
// the mark stands, so the order is never announced rather than perhaps
// twice (the order list and the order.paid webhook still carry it). Re-sent
// after a lost reply, the raise's token answers its first count again. The
// raise can go once no earlier version runs (their counters outlive no
// announcement window).
func (s *Store) ClaimAnnouncement(ctx context.Context, client, user, kind, orderNo string, ttl time.Duration) (bool, error) {
	if kind == "" || orderNo == "" || ttl <= 0 {
		return false, errors.New("redis: an announcement claim needs a kind, an order number and a ttl")
	}
	if err := s.refused("claim announcement"); err != nil {
		return false, err
	}
	now := s.serverMs(ctx, s.now())
	v, err := s.runMoney(ctx, "claim announcement", s.sc.announce, []string{s.k.userAnnounced(client, user), s.k.userAnnouncedKept(client, user)},
		orderNo, kind, now, now+ms(ttl), ms(ttl+expiryGrace), rand.Text())
	if err != nil {
		return false, fmt.Errorf("announcement %s of order %s: %w", kind, orderNo, err)
	}
	if n, _ := v.(int64); n != 1 {
		return false, nil
	}
	c, err := s.run(ctx, "raise the earlier announcement counter", s.sc.counter, []string{s.k.one("k", kind+orderNo)},
		now, ms(ttl), ms(expiryGrace), rand.Text())
	if err != nil {
		return false, fmt.Errorf("announcement %s of order %s: the counter of earlier versions: %w", kind, orderNo, err)
	}
	n, _ := c.(int64)
	return n == 1, nil
}
