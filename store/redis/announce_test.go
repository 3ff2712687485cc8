package redis

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/store/storetest"
)

// TestAnnouncementMarksPruned: a user's announcement marks share one hash
// whose expiry every claim extends, so a user who buys every month would
// keep every mark ever made; a claim drops the marks past their ttl once
// the hash has doubled since it last did (TestAnnouncementClaimDecodesFewMarks),
// so the hash holds at most twice the live ones.
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
	floor, _ := strconv.Atoi(announcePruneFloor)
	for i := range 2*floor - 1 { // the hash reaches twice the floor: a pass
		claim("payable:", fmt.Sprintf("M-%d", 3+i))
	}
	m := fields()
	if _, ok := m["M-1"]; ok || len(m) != 2*floor {
		t.Errorf("marks after M-1's expired: %d, M-1's kept: %v; want M-2's to M-%d's only", len(m), ok, 2*floor+1)
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

// TestAnnouncementClaimRacesAnEarlierVersion: an earlier version's replica
// claims with IncrCounter(kind+orderNo) alone, and its claim may land at
// any point of this version's: before it, after any of its commands (the
// mark script, its WAIT and generation raise, the counter raise). Exactly
// one of the two is first, wherever it lands. The claim read the counter
// before writing its mark, so an earlier claim landing between the read and
// the mark (or during the mark's WAIT) made both first: the order
// announced twice.
func TestAnnouncementClaimRacesAnEarlierVersion(t *testing.T) {
	requireSharedRedis(t)
	ctx := context.Background()
	clock := storetest.NewClock()
	prefix := testPrefix()
	newer := openOn(t, clock, Options{Addrs: []string{sharedAddr}, KeyPrefix: prefix})
	older := openOn(t, clock, Options{Addrs: []string{sharedAddr}, KeyPrefix: prefix}) // stands for the earlier version
	const ttl = 30 * 24 * time.Hour
	hook := &afterCommands{}
	newer.Client().AddHook(hook)

	// How many commands (or pipelines) one claim sends.
	hook.arm(-1, nil)
	if first, err := newer.ClaimAnnouncement(ctx, "shop", "u1", "announced:", "RACE-COUNT", ttl); err != nil || !first {
		t.Fatalf("claim: %v, %v; want first", first, err)
	}
	sent := int(hook.seen.Load())
	if sent == 0 {
		t.Fatal("the claim sent no command the hook saw")
	}
	for at := 0; at <= sent; at++ {
		no := fmt.Sprintf("RACE-%d", at)
		var olderFirst bool
		earlier := func() {
			n, err := older.IncrCounter(ctx, "announced:"+no, ttl)
			if err != nil {
				t.Errorf("the earlier version's claim: %v", err)
			}
			olderFirst = n == 1
		}
		if at == 0 {
			earlier()
		} else {
			hook.arm(at, earlier)
		}
		first, err := newer.ClaimAnnouncement(ctx, "shop", "u1", "announced:", no, ttl)
		if err != nil {
			t.Fatalf("claim with the earlier one after command %d: %v", at, err)
		}
		if first == olderFirst {
			t.Errorf("the earlier version's claim after command %d of %d: this one first %v, the earlier first %v; want exactly one",
				at, sent, first, olderFirst)
		}
	}
}

// afterCommands is a go-redis hook that runs f once, right after the
// client's at-th command or pipeline since arm, and counts them.
type afterCommands struct {
	seen atomic.Int64
	at   int64
	f    func()
}

func (h *afterCommands) arm(at int, f func()) { h.seen.Store(0); h.at, h.f = int64(at), f }

func (h *afterCommands) done() {
	if n := h.seen.Add(1); n == h.at && h.f != nil {
		h.f()
	}
}

func (h *afterCommands) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *afterCommands) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		h.done()
		return err
	}
}

func (h *afterCommands) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		err := next(ctx, cmds)
		h.done()
		return err
	}
}
