package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/store/storetest"
)

// textReads counts the text keys the store's scripts are given beyond the
// one a put writes: each is a text a script reads (a put's pass over its
// user's set reads every text the set names).
type textReads struct{ n atomic.Int64 }

func (h *textReads) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *textReads) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		err := next(ctx, cmds)
		for _, c := range cmds {
			h.count(c)
		}
		return err
	}
}

func (h *textReads) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		h.count(cmd)
		return err
	}
}

func (h *textReads) count(cmd goredis.Cmder) {
	if n := cmd.Name(); strings.EqualFold(n, "evalsha") || strings.EqualFold(n, "eval") {
		args := cmd.Args()
		if len(args) < 3 {
			return
		}
		nk, _ := strconv.Atoi(fmt.Sprint(args[2]))
		for _, a := range args[3:min(3+nk, len(args))] {
			if k, _ := a.(string); strings.Contains(k, "{audit}:t:") {
				h.n.Add(1)
			}
		}
		if strings.Contains(fmt.Sprint(args[3]), "{audit}:t:") {
			h.n.Add(-1) // a put's own text key, its first
		}
	}
}

// TestAuditTextSetDropsExpiredTexts: (client, user)'s set of text numbers
// lost a number only to an erasure, and each put extended its expiry: a
// user active for good kept every number ever written, their texts long
// expired (audit.retain_text). A put drops the numbers of texts past their
// end (and those texts) once the set doubled since it last did: the set
// holds at most about twice the live texts, each put reads about two
// members, and an erasure after the pruning still removes every text of
// the user that Redis holds.
func TestAuditTextSetDropsExpiredTexts(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock()
	s := openOn(t, clock, Options{Addrs: []string{sharedAddr}})
	reads := &textReads{}
	s.Client().AddHook(reads)
	const ttl = 24 * time.Hour
	set := s.k.auditClientUser("shop", "busy")
	seq, puts, maxKept := uint64(0), 0, int64(0)
	put := func() {
		t.Helper()
		seq++
		if err := s.PutAuditText(ctx, seq, "shop", "busy", []byte("text "+strconv.FormatUint(seq, 10)), clock.Now(), ttl); err != nil {
			t.Fatalf("put text %d: %v", seq, err)
		}
		puts++
		n, err := s.Client().SCard(ctx, set).Result()
		if err != nil {
			t.Fatal(err)
		}
		maxKept = max(maxKept, n)
		clock.Advance(time.Second)
	}
	// Rounds of texts, each run out (and a minute more, the grace Redis's
	// own expiry gives them) before the next round is said: a user who
	// stays active, their live texts never more than one round.
	const rounds, round = 4, 250
	for r := range rounds {
		if r > 0 {
			clock.Advance(ttl + expiryGrace)
		}
		for range round {
			put()
		}
	}
	t.Logf("%d puts in %d rounds: %d texts read, at most %d numbers kept", puts, rounds, reads.n.Load(), maxKept)
	if r := reads.n.Load(); r > 3*int64(puts) {
		t.Errorf("%d puts read %d texts; want at most %d (3 a put: a pass reads the set, twice what it kept)", puts, r, 3*puts)
	}
	if maxKept > 2*round+1 {
		t.Errorf("the user's set held up to %d numbers; want at most %d (twice the live texts)", maxKept, 2*round+1)
	}
	members, err := s.Client().SMembers(ctx, set).Result()
	if err != nil {
		t.Fatal(err)
	}
	kept := map[string]bool{}
	for _, m := range members {
		kept[m] = true
	}
	for q := seq - round + 1; q <= seq; q++ {
		if !kept[strconv.FormatUint(q, 10)] {
			t.Fatalf("the number of live text %d was dropped from the user's set", q)
		}
	}
	// The erasure reads the set: every text Redis holds of the user goes.
	n, err := s.EraseAuditText(ctx, "shop", "busy")
	if err != nil {
		t.Fatal(err)
	}
	if n < round {
		t.Errorf("erasure removed %d texts; want at least the %d live ones", n, round)
	}
	for q := uint64(1); q <= seq; q++ {
		if c, err := s.Client().Exists(ctx, s.k.auditText(q)).Result(); err != nil || c != 0 {
			t.Fatalf("text %d of the erased user still in Redis after the erasure (%d, %v)", q, c, err)
		}
	}
}
