package proxy

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/embedded"
	redisstore "github.com/paygate/paygate/store/redis"
)

// TestAdminAuditEraseRefusesAnIDNoUserHas: no end user's id is longer than
// maxUserID bytes (the bots' API refuses one), so an erasure naming a
// longer one erases nothing there could be and is a 400 saying why, on
// either store, with no erasure mark written. It was a 500 "internal
// error" on the embedded store past its 32 KiB key (the operator told
// nothing of the cause, the log warned of a failure), and on Redis a
// 200 that wrote a mark as long as the id.
func TestAdminAuditEraseRefusesAnIDNoUserHas(t *testing.T) {
	stores := map[string]func(t *testing.T) store.Store{
		"embedded": func(t *testing.T) store.Store {
			st, err := embedded.Open(filepath.Join(t.TempDir(), "p.db"), embedded.Options{SweepInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			return st
		},
		"redis": func(t *testing.T) store.Store {
			srv := redistest.StartServer(t)
			st, err := redisstore.Open(redisstore.Options{Addrs: []string{srv.Addr()}, KeyPrefix: "pgtest:adminerase:"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			return st
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			base, _ := auditAdminOn(t, st, nil)
			for _, tc := range []struct {
				user   string
				status int
			}{
				{strings.Repeat("u", maxUserID+1), 400},
				{strings.Repeat("u", 40000), 400},
				{strings.Repeat("u", maxUserID), 200},
			} {
				status, out := auditAdminDo(t, "DELETE", base+"/admin/api/audit/texts/"+tc.user+"?client=shop-bot", auditAdminToken)
				if status != tc.status || (status == 400 && !strings.Contains(out["error"].(string), "256")) {
					t.Errorf("a user of %d bytes: %d %v; want %d", len(tc.user), status, out, tc.status)
				}
				at, err := st.AuditErasedAt(context.Background(), "shop-bot", tc.user)
				if marked := err == nil && !at.IsZero(); marked != (tc.status == 200) {
					t.Errorf("a user of %d bytes: erasure mark %v (%v); want one only when erased", len(tc.user), at, err)
				}
			}
		})
	}
}
