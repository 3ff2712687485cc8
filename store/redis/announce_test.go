package redis

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/store/storetest"
)

// TestAnnouncementMarksPruned: a user's announcement marks share one hash
// whose expiry every claim extends, so a user who buys every month would
// keep every mark ever made; a claim drops the marks past their ttl, and
// the hash holds only the live ones.
func TestAnnouncementMarksPruned(t *testing.T) {
	requireSharedRedis(t)
	ctx := context.Background()
	clock := storetest.NewClock()
	s := openOn(t, clock, Options{Addrs: []string{sharedAddr}})
	const ttl = 30 * 24 * time.Hour
	claim := func(kind, no string) {
		t.Helper()
		if first, err := s.ClaimAnnouncement(ctx, "shop", "monthly", kind, no, ttl); err != nil || !first {
			t.Fatalf("claim %s%s: %v, %v; want first", kind, no, first, err)
		}
	}
	fields := func() map[string]string {
		t.Helper()
		m, err := s.Client().HGetAll(ctx, s.k.userAnnounced("shop", "monthly")).Result()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	claim("payable:", "M-1")
	clock.Advance(time.Hour)
	claim("announced:", "M-1")
	clock.Advance(ttl - time.Minute) // M-1's payable mark is past its ttl, its announced one is not
	claim("payable:", "M-2")
	if m := fields(); len(m) != 2 {
		t.Fatalf("marks: %v; want M-1's and M-2's", m)
	}
	clock.Advance(2 * time.Hour) // M-1's marks are all past their ttl
	claim("payable:", "M-3")
	m := fields()
	if _, ok := m["M-1"]; ok || len(m) != 2 {
		t.Errorf("marks after M-1's expired: %v; want M-2's and M-3's only", m)
	}
	us, err := s.LoadUserState(ctx, "shop", "monthly")
	if err != nil {
		t.Fatal(err)
	}
	if len(us.Announced) != 0 {
		t.Errorf("Announced of a user without orders: %v; want none (only the marks of the orders loaded)", us.Announced)
	}
}

// TestAnnouncementClaimSeenByEarlierVersions: during a rolling upgrade,
// replicas of the earlier version, which claim with the counter
// kind+orderNo, still run; a claim made by this one raises that counter, so
// they find the order announced rather than announce it again.
func TestAnnouncementClaimSeenByEarlierVersions(t *testing.T) {
	requireSharedRedis(t)
	ctx := context.Background()
	s := openOn(t, storetest.NewClock(), Options{Addrs: []string{sharedAddr}})
	if first, err := s.ClaimAnnouncement(ctx, "shop", "u1", "announced:", "UP-1", time.Hour); err != nil || !first {
		t.Fatalf("claim: %v, %v; want first", first, err)
	}
	if n, err := s.IncrCounter(ctx, "announced:UP-1", time.Hour); err != nil || n != 2 {
		t.Errorf("an earlier version's claim (IncrCounter) after this one's: %d, %v; want 2 (not the first)", n, err)
	}
}
