package redis

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// TestAuditTextPruneKeepsTextsLiveOnAReplicaBehind: a put's pass over its
// user's text numbers (pruneTexts) judges a text run out on the putting
// replica's clock, which may run ahead of the replica that said it (README:
// replica clocks a minute apart). A text within retain_text on the clock of
// the replica behind is still read there (GetAuditText, ?text=1) and must
// still be reached by an erasure: the pass deletes it only a minute (the
// skew, expiryGrace) past its end, and keeps its number meanwhile.
func TestAuditTextPruneKeepsTextsLiveOnAReplicaBehind(t *testing.T) {
	ctx := context.Background()
	const retain = time.Hour
	clock, behind, ahead := skewedReplicas(t)
	const first = 15 // a pass runs at the 16th number (2 * textPruneFloor)
	for seq := uint64(1); seq <= first; seq++ {
		if err := behind.PutAuditText(ctx, seq, "shop", "u1", []byte("said "+strconv.FormatUint(seq, 10)), behind.now(), retain); err != nil {
			t.Fatal(err)
		}
	}
	// A second before their end by the clock of the replica that said
	// them; replicaSkew less a second past it by the one ahead.
	clock.Advance(retain - time.Second)
	if err := ahead.PutAuditText(ctx, first+1, "shop", "u1", []byte("said later"), ahead.now(), retain); err != nil {
		t.Fatal(err)
	}
	// The put's pass leaves the count of what it kept (none is set before).
	if c, err := ahead.Client().Exists(ctx, ahead.k.auditClientKept("shop", "u1")).Result(); err != nil || c != 1 {
		t.Fatalf("the put made no pass over the user's %d numbers (%d, %v)", first+1, c, err)
	}
	for seq := uint64(1); seq <= first; seq++ {
		if got, err := behind.GetAuditText(ctx, seq); err != nil || string(got) != "said "+strconv.FormatUint(seq, 10) {
			t.Fatalf("text %d, within retain_text on the clock of the replica that said it, after a pass on a replica %v ahead: %q, %v; want the text",
				seq, replicaSkew, got, err)
		}
		if ok, err := behind.Client().SIsMember(ctx, behind.k.auditClientUser("shop", "u1"), strconv.FormatUint(seq, 10)).Result(); err != nil || !ok {
			t.Fatalf("the number of kept text %d left its user's set (%v, %v): an erasure would not reach it", seq, ok, err)
		}
	}
	n, err := behind.EraseAuditText(ctx, "shop", "u1")
	if err != nil || n != first+1 {
		t.Fatalf("erasure: %d texts, %v; want all %d", n, err, first+1)
	}
}
