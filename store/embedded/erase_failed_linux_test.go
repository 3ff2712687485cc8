package embedded

import (
	"context"
	"testing"
	"time"
)

// TestFailedErasureReportsNoneErased: an erasure whose transaction does
// not commit (here the file's writes fail) erased nothing, and says so:
// the audit worker records the count the store reports in the chain's
// audit.text_erased record, even when the store answers an error (a Redis
// erasure that failed partway did erase some). It reported the texts its
// rolled-back transaction had deleted.
func TestFailedErasureReportsNoneErased(t *testing.T) {
	ctx := context.Background()
	d, path, _ := openClocked(t)
	now := time.Unix(1_700_000_000, 0)
	for seq := uint64(1); seq <= 2; seq++ {
		if err := d.PutAuditText(ctx, seq, "shop", "oAlice", []byte("hello"), now, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	restore := failWrites(t, path)
	n, err := d.EraseAuditText(ctx, "shop", "oAlice")
	restore()
	if err == nil || n != 0 {
		t.Fatalf("erasure with the file's writes failing: %d, %v; want 0 erased and an error", n, err)
	}
	for seq := uint64(1); seq <= 2; seq++ {
		if _, err := d.GetAuditText(ctx, seq); err != nil {
			t.Errorf("text %d after the failed erasure: %v; want it kept (nothing committed)", seq, err)
		}
	}
}
