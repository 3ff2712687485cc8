package proxy

import (
	"context"
	"strconv"
	"strings"
	"testing"
)

// TestAdminAuditEraseBoundsTheUserAsRecorded: an erasure names the user as
// the records hold it, each byte that is not UTF-8 a U+FFFD (three bytes),
// so a user within maxErasedUserID as sent can be three times that as
// erased: past what the embedded store can key (32 KiB), where the erasure
// failed as an internal error. The bound is on the user as erased: such a
// user is a 400 that says the bound and writes no mark, and one whose
// recorded form is within it is erased.
func TestAdminAuditEraseBoundsTheUserAsRecorded(t *testing.T) {
	base, st, _ := auditAdminOf(t, nil)
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

// TestAdminAuditEraseBoundsTheClient: the client an erasure names is keyed
// with the user (the erasure's mark, its outbox queue and that queue's due
// entry), and was not bounded at all: a ?client= of 17,000 bytes with a
// user of 16,000 failed on the embedded store as an internal error (500),
// and one of 16,740 wrote the erasure's mark, then failed to queue its
// record. A client over maxErasedClient as the records hold it (each
// byte that is not UTF-8 a U+FFFD of three) is a 400 that says the bound
// and writes no mark; one within it is erased as before.
func TestAdminAuditEraseBoundsTheClient(t *testing.T) {
	base, st, _ := auditAdminOf(t, nil)
	ctx := context.Background()
	user := strings.Repeat("u", 16000)
	for _, tc := range []struct {
		client, recorded string // as sent (escaped), as the records hold it
		status           int
	}{
		{strings.Repeat("c", maxErasedClient), strings.Repeat("c", maxErasedClient), 200},
		{strings.Repeat("%FF", maxErasedClient/3), strings.Repeat("\uFFFD", maxErasedClient/3), 200},
		{strings.Repeat("c", maxErasedClient+1), strings.Repeat("c", maxErasedClient+1), 400},
		{strings.Repeat("%FF", maxErasedClient/3+1), strings.Repeat("\uFFFD", maxErasedClient/3+1), 400},
		{strings.Repeat("c", 16740), strings.Repeat("c", 16740), 400}, // marked, then the record failed
		{strings.Repeat("c", 17000), strings.Repeat("c", 17000), 400},
	} {
		status, out := auditAdminDo(t, "DELETE", base+"/admin/api/audit/texts/"+user+"?client="+tc.client, auditAdminToken)
		if status != tc.status || (status == 400 && !strings.Contains(out["error"].(string), strconv.Itoa(maxErasedClient))) {
			t.Errorf("a client of %d bytes as recorded: %d %v; want %d", len(tc.recorded), status, out["error"], tc.status)
		}
		at, err := st.AuditErasedAt(ctx, tc.recorded, user)
		if marked := err == nil && !at.IsZero(); marked != (tc.status == 200) {
			t.Errorf("a client of %d bytes as recorded: erasure mark %v (%v); want one only when erased", len(tc.recorded), at, err)
		}
	}
}
