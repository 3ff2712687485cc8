package proxy

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/paygate/paygate/store/embedded"
)

// TestAdminAuditEraseBoundsTheUserAsRecorded: an erasure names the user as
// the records hold it, each byte that is not UTF-8 a U+FFFD (three bytes),
// so a user within maxErasedUserID as sent can be three times that as
// erased: past what the embedded store can key (32 KiB), where the erasure
// failed as an internal error. The bound is on the user as erased: such a
// user is a 400 that says the bound and writes no mark, and one whose
// recorded form is within it is erased.
func TestAdminAuditEraseBoundsTheUserAsRecorded(t *testing.T) {
	st, err := embedded.Open(filepath.Join(t.TempDir(), "p.db"), embedded.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	base, _ := auditAdminOn(t, st, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		n      int // bytes 0xFF sent
		status int
	}{{maxErasedUserID / 3, 200}, {maxErasedUserID/3 + 1, 400}, {maxErasedUserID, 400}} {
		user := strings.Repeat("%FF", tc.n)
		status, out := auditAdminDo(t, "DELETE", base+"/admin/api/audit/texts/"+user+"?client=shop-bot", auditAdminToken)
		if status != tc.status || (status == 400 && !strings.Contains(out["error"].(string), strconv.Itoa(maxErasedUserID))) {
			t.Errorf("a user of %d bytes 0xFF: %d %v; want %d", tc.n, status, out, tc.status)
		}
		at, err := st.AuditErasedAt(ctx, "shop-bot", strings.Repeat("\uFFFD", tc.n))
		if marked := err == nil && !at.IsZero(); marked != (tc.status == 200) {
			t.Errorf("a user of %d bytes 0xFF: erasure mark %v (%v); want one only when erased", tc.n, at, err)
		}
	}
}
