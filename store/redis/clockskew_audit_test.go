package redis

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
)

// erasureMargin is payments/audit.DefaultClockSkew, the minute README lets
// replica clocks differ by: the audit worker passes PutAuditText a text's
// said time less it.
const erasureMargin = time.Minute

// TestSkewedReplicasJudgeAuditTextsByTheChainsClocks: unlike the leases
// and windows of TestSkewedReplicasShareWindows, the audit texts' times
// are not carried onto the server's clock, because what they are compared
// with never is: a text's said time and a chain record's time are the
// saying replica's, and `paygate audit verify` judges a missing text by
// the record's time, its retention and its own clock, and an erasure by
// AuditErasedAt and the record's time, with erasureMargin for the skew.
//   - Retention: a text is kept until said + retain_text as a reader's
//     clock reads it, which is when that reader's verify counts it gone. On
//     the server's clock, a text said on a replica ahead of the reader
//     vanished that much before its verify expected, and was reported
//     "removed without erasure".
//   - Erasure: the mark is the erasing replica's time, AuditErasedAt
//     returns it as it was, and a text said on a replica ahead just before
//     the erasure, passed with the margin, is not kept. On the server's
//     clock the mark would be compared with said times of another clock,
//     and no margin for replica clocks would cover the server's.
func TestSkewedReplicasJudgeAuditTextsByTheChainsClocks(t *testing.T) {
	ctx := context.Background()
	const retain = time.Hour

	t.Run("retention", func(t *testing.T) {
		clock, behind, ahead := skewedReplicas(t)
		said := ahead.now()
		if err := ahead.PutAuditText(ctx, 1, "shop", "u1", []byte("kept"), said, retain); err != nil {
			t.Fatal(err)
		}
		clock.Advance(retain + time.Second)
		if _, err := ahead.GetAuditText(ctx, 1); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("on the replica that said it, past said + retain_text: %v; want ErrNotFound", err)
		}
		if got, err := behind.GetAuditText(ctx, 1); err != nil || string(got) != "kept" {
			t.Errorf("on a replica %v behind, before said + retain_text by its clock: %q, %v; want the text", replicaSkew, got, err)
		}
		clock.Advance(replicaSkew)
		if _, err := behind.GetAuditText(ctx, 1); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("on the replica behind, past said + retain_text by its clock: %v; want ErrNotFound", err)
		}
	})

	t.Run("erasure", func(t *testing.T) {
		clock, behind, ahead := skewedReplicas(t)
		erasedAt := behind.now()
		if _, err := behind.EraseAuditText(ctx, "shop", "u1"); err != nil {
			t.Fatal(err)
		}
		if at, err := ahead.AuditErasedAt(ctx, "shop", "u1"); err != nil || !at.Equal(erasedAt) {
			t.Errorf("AuditErasedAt on another replica: %v, %v; want the eraser's time %v", at, err, erasedAt)
		}
		// Said on the replica ahead a second before the erasure: by its
		// clock, replicaSkew - 1s after the mark.
		saidBefore := ahead.now().Add(-time.Second)
		if err := ahead.PutAuditText(ctx, 1, "shop", "u1", []byte("said before"), saidBefore.Add(-erasureMargin), retain); err != nil {
			t.Fatal(err)
		}
		if got, err := ahead.GetAuditText(ctx, 1); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a text said on a replica %v ahead just before another's erasure: kept (%q, %v); want ErrNotFound", replicaSkew, got, err)
		}
		clock.Advance(erasureMargin)
		saidAfter := behind.now().Add(time.Second)
		if err := behind.PutAuditText(ctx, 2, "shop", "u1", []byte("said after"), saidAfter.Add(-erasureMargin), retain); err != nil {
			t.Fatal(err)
		}
		if got, err := ahead.GetAuditText(ctx, 2); err != nil || string(got) != "said after" {
			t.Errorf("a text said more than the margin after the erasure: %q, %v; want it kept", got, err)
		}
	})
}
