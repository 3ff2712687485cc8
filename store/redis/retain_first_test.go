package redis

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// TestFirstRetentionPassCutsATextPutAfterItReadItsRecord: a replica under
// the longer retention appends a record and keeps its text a moment later
// (the audit worker keeps a text after its record's append); the first
// RetainAuditTexts on the store, under the shorter retention, reads every
// record between the two and finds no text. The next calls must read that
// record again, as they read again every record a call before them read
// ("two calls cover each record"): the first call recorded the head as the
// place to go on from, and the text stayed kept under the longer
// retention for good.
func TestFirstRetentionPassCutsATextPutAfterItReadItsRecord(t *testing.T) {
	requireSharedRedis(t)
	ctx := context.Background()
	clock := storetest.NewClock()
	s := openOn(t, clock, Options{Addrs: []string{sharedAddr}})
	const long, short, age = 4320 * time.Hour, 720 * time.Hour, 1000 * time.Hour
	said := clock.Now().Add(-age)
	body := fmt.Appendf(nil, `{"action":"order_created","time":%q}`, said.UTC().Format(time.RFC3339Nano))
	if err := s.AppendAudit(ctx, store.AuditRecord{Seq: 1, Hash: "h1", Body: body}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RetainAuditTexts(ctx, short); err != nil {
		t.Fatalf("the first pass: %v", err)
	}
	// Kept by the replica under 4320h after the pass read its record.
	if err := s.PutAuditText(ctx, 1, "shop", "u1", []byte("buy 1"), said, long-age); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := s.RetainAuditTexts(ctx, short); err != nil {
			t.Fatalf("a later pass: %v", err)
		}
	}
	if _, err := s.GetAuditText(ctx, 1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the text said %s ago, kept after the first pass read its record: %v; want it deleted under %s", age, err, short)
	}
}
