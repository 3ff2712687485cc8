package proxy

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/embedded"
	redisstore "github.com/paygate/paygate/store/redis"
)

// TestAdminAuditEraseReachesAnEarlierVersionsLongID: the bots' API has
// refused an end user's id over maxUserID bytes only since recently;
// earlier versions kept the conversation texts of longer ids, for
// audit.retain_text (180 days by default). An erasure naming such a user
// was refused (400 "no end user's id is longer than 256"), so a person
// asking for their texts to be erased could not have it done while the
// texts stayed. It erases them, on either store. An id past
// maxErasedUserID (16 KiB; the embedded store's keys end at 32) is a 400
// that says the bound and writes no mark on either store, where it failed
// as an internal error on the embedded store.
func TestAdminAuditEraseReachesAnEarlierVersionsLongID(t *testing.T) {
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
			ctx := context.Background()
			long := strings.Repeat("u", maxUserID+1)
			// As an earlier version kept it.
			if err := st.PutAuditText(ctx, 1, "shop-bot", long, []byte("my address is …"), time.Now(), time.Hour); err != nil {
				t.Fatal(err)
			}
			status, out := auditAdminDo(t, "DELETE", base+"/admin/api/audit/texts/"+long+"?client=shop-bot", auditAdminToken)
			if status != 200 || out["erased"] != float64(1) {
				t.Fatalf("a user of %d bytes with a kept text: %d %v; want 200, 1 erased", len(long), status, out)
			}
			if _, err := st.GetAuditText(ctx, 1); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the text after the erasure: %v; want it gone", err)
			}
			for _, tc := range []struct {
				n      int
				status int
			}{{maxErasedUserID, 200}, {maxErasedUserID + 1, 400}, {40000, 400}} {
				user := strings.Repeat("v", tc.n)
				status, out := auditAdminDo(t, "DELETE", base+"/admin/api/audit/texts/"+user+"?client=shop-bot", auditAdminToken)
				if status != tc.status || (status == 400 && !strings.Contains(out["error"].(string), strconv.Itoa(maxErasedUserID))) {
					t.Errorf("a user of %d bytes: %d %v; want %d", tc.n, status, out, tc.status)
				}
				at, err := st.AuditErasedAt(ctx, "shop-bot", user)
				if marked := err == nil && !at.IsZero(); marked != (tc.status == 200) {
					t.Errorf("a user of %d bytes: erasure mark %v (%v); want one only when erased", tc.n, at, err)
				}
			}
		})
	}
}
