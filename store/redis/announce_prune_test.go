package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/store/storetest"
)

// hgetCalls is how many HGET the server ran, scripts' included: the claim
// script reads each mark it decodes with one.
func hgetCalls(t *testing.T, srv *redistest.Server) int64 {
	t.Helper()
	info, err := srv.Client().Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_hget:calls="); ok {
			n, err := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	return 0
}

// TestAnnouncementClaimDecodesFewMarks: a claim decoded every live mark of
// the user (kept 29 days) to drop the expired ones: 0.34 ms at first, 6.6 ms
// at 3,000 marks, Redis blocked meanwhile, so a user's claims cost the
// square of their number. It drops them only once the marks have doubled
// since it last did, a mark decoded per claim on average; and the marks
// kept stay within twice those live.
func TestAnnouncementClaimDecodesFewMarks(t *testing.T) {
	redistest.RequireBinaries(t)
	srv := redistest.StartServer(t)
	ctx := context.Background()
	clock := storetest.NewClock()
	s := openOn(t, clock, Options{Addrs: []string{srv.Addr()}})
	const ttl = 30 * 24 * time.Hour
	ua := s.k.userAnnounced("shop", "busy")
	claims, maxKept := 0, int64(0)
	claim := func(no string) {
		t.Helper()
		if first, err := s.ClaimAnnouncement(ctx, "shop", "busy", "payable:", no, ttl); err != nil || !first {
			t.Fatalf("claim %s: %v, %v; want first", no, first, err)
		}
		claims++
		n, err := s.Client().HLen(ctx, ua).Result()
		if err != nil {
			t.Fatal(err)
		}
		maxKept = max(maxKept, n)
	}
	before := hgetCalls(t, srv)
	const live = 300
	for i := range live {
		claim(fmt.Sprintf("A-%d", i))
		clock.Advance(time.Minute)
	}
	read := hgetCalls(t, srv) - before
	t.Logf("%d claims among live marks: %d marks read, at most %d kept", claims, read, maxKept)
	if read > 3*int64(claims) {
		t.Errorf("%d claims read %d marks; want at most %d (3 a claim)", claims, read, 3*claims)
	}
	// Every mark made so far expires; the next claims' marks are the live ones.
	clock.Advance(ttl)
	before, claims, maxKept = hgetCalls(t, srv), 0, 0
	for i := range 2 * live {
		claim(fmt.Sprintf("B-%d", i))
		clock.Advance(time.Minute)
	}
	read = hgetCalls(t, srv) - before
	t.Logf("%d claims among %d expired marks: %d marks read, at most %d kept", claims, live, read, maxKept)
	if read > 3*int64(claims) {
		t.Errorf("%d claims among expired marks read %d marks; want at most %d (3 a claim)", claims, read, 3*claims)
	}
	if maxKept > 2*live+1 {
		t.Errorf("the user's hash held up to %d marks; want at most %d (twice the live ones)", maxKept, 2*live+1)
	}
	m, err := s.Client().HGetAll(ctx, ua).Result()
	if err != nil {
		t.Fatal(err)
	}
	for no := range m {
		if strings.HasPrefix(no, "A-") {
			t.Errorf("mark of %s kept %v past its ttl, after %d claims", no, ttl, 2*live)
			break
		}
	}
}
