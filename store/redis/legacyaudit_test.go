package redis

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// TestAuditLegacy: texts and marks an earlier version kept by user alone.
func TestAuditLegacy(t *testing.T) {
	requireSharedRedis(t)
	ctx := context.Background()
	storetest.RunAuditLegacy(t, func(t testing.TB, clock *storetest.Clock) store.Store {
		return openOn(t, clock, Options{Addrs: []string{sharedAddr}})
	}, storetest.Legacy{
		Text: func(t testing.TB, st store.Store, seq uint64, user string, text []byte, until time.Time) {
			s := st.(*Store)
			k := s.k.auditText(seq)
			if err := s.c.HSet(ctx, k, "u", user, "x", text, "until", until.UnixMilli()).Err(); err != nil {
				t.Fatal(err)
			}
			if err := s.c.SAdd(ctx, s.k.auditUser(user), strconv.FormatUint(seq, 10)).Err(); err != nil {
				t.Fatal(err)
			}
		},
		Mark: func(t testing.TB, st store.Store, user string, at time.Time) {
			s := st.(*Store)
			if err := s.c.Set(ctx, s.k.auditErased(user), at.UnixMilli(), 0).Err(); err != nil {
				t.Fatal(err)
			}
		},
		Spoil: func(t testing.TB, st store.Store, seq uint64, data []byte) {
			s := st.(*Store)
			if err := s.c.HSet(ctx, s.k.audit("rec"), strconv.FormatUint(seq, 10), data).Err(); err != nil {
				t.Fatal(err)
			}
		},
	})
}
