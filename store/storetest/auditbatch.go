package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/paygate/paygate/store"
)

// batchAfter builds n records that follow head, each linked to the one
// before it, with bodies tagged by tag.
func batchAfter(head store.AuditHead, user, tag string, n int) []store.AuditRecord {
	recs := make([]store.AuditRecord, 0, n)
	for i := range n {
		r := chainRecord(head, user, fmt.Appendf(nil, `{"%s":%d}`, tag, i))
		recs = append(recs, r)
		head = store.AuditHead{Seq: r.Seq, Hash: r.Hash}
	}
	return recs
}

// appendBatchWithRetry appends n records after whatever the head is, in
// one batch, rebuilding it on each lost race.
func appendBatchWithRetry(ctx context.Context, st store.Audit, user, tag string, n int) error {
	for range 1000 {
		h, err := st.AuditHead(ctx)
		if err != nil {
			return err
		}
		err = st.AppendAuditBatch(ctx, batchAfter(h, user, tag, n))
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return errors.New("batch append kept conflicting")
}

// wantChainUnchanged fails unless the head is still head and nothing is
// stored after it.
func wantChainUnchanged(t *testing.T, ctx context.Context, st store.Audit, head store.AuditHead) {
	t.Helper()
	h, err := st.AuditHead(ctx)
	mustNil(t, "AuditHead", err)
	if h != head {
		t.Errorf("head after the refused batch: %+v; want %+v", h, head)
	}
	recs, err := st.ReadAudit(ctx, head.Seq+1, 10)
	mustNil(t, "ReadAudit", err)
	if len(recs) != 0 {
		t.Errorf("after the refused batch: %d records stored past the head (first %d); want none (nothing half-written)", len(recs), recs[0].Seq)
	}
}

// testAuditBatch: AppendAuditBatch appends its records as AppendAudit would
// one after another, in one step, and a refusal appends none of them.
func testAuditBatch(t *testing.T, open Opener) {
	ctx := context.Background()
	st := open(t, NewClock())

	t.Run("an empty batch on the empty chain", func(t *testing.T) {
		mustNil(t, "AppendAuditBatch", st.AppendAuditBatch(ctx, nil))
		mustNil(t, "AppendAuditBatch", st.AppendAuditBatch(ctx, []store.AuditRecord{}))
		wantChainUnchanged(t, ctx, st, store.AuditHead{})
	})
	recs := batchAfter(store.AuditHead{}, "u1", "a", 3)
	mustNil(t, "AppendAuditBatch", st.AppendAuditBatch(ctx, recs))
	verifyChain(t, ctx, st, 3)
	// A single append and a batch after it: the chain runs on across them.
	mustNil(t, "append", appendWithRetry(ctx, st, "u2", []byte(`{"single":4}`)))
	mustNil(t, "AppendAuditBatch", appendBatchWithRetry(ctx, st, "u1", "b", 5))
	mustNil(t, "AppendAuditBatch", appendBatchWithRetry(ctx, st, "u2", "c", 1))
	verifyChain(t, ctx, st, 10)
	head, err := st.AuditHead(ctx)
	mustNil(t, "AuditHead", err)
	if got, err := st.ReadAudit(ctx, 5, 1); err != nil || len(got) != 1 || string(got[0].Body) != `{"b":0}` || got[0].User != "u1" {
		t.Errorf("record 5: %+v, %v; want the second batch's first, of u1", got, err)
	}

	t.Run("an empty batch on a chain", func(t *testing.T) {
		mustNil(t, "AppendAuditBatch", st.AppendAuditBatch(ctx, nil))
		wantChainUnchanged(t, ctx, st, head)
	})

	next := batchAfter(head, "u1", "d", 3)
	// after builds a batch linked among itself whose first record follows
	// h, which is not the head.
	after := func(h store.AuditHead) []store.AuditRecord { return batchAfter(h, "u1", "d", 3) }
	refused := []struct {
		name string
		recs []store.AuditRecord
		want error // nil: an error that is neither a conflict nor ErrExists
	}{
		{"a first record past the next place", after(store.AuditHead{Seq: head.Seq + 1, Hash: head.Hash}), store.ErrConflict},
		{"a first record at the head's place", after(store.AuditHead{Seq: head.Seq - 1, Hash: head.Hash}), store.ErrConflict},
		{"a first record naming another previous hash", after(store.AuditHead{Seq: head.Seq, Hash: "forged"}), store.ErrConflict},
		{"the whole chain again from its start", batchAfter(store.AuditHead{}, "u1", "e", 3), store.ErrConflict},
		{"a batch whose later record skips a place", func() []store.AuditRecord {
			out := append([]store.AuditRecord(nil), next...)
			out[2].Seq++
			return out
		}(), nil},
		{"a batch whose later record names another previous hash", func() []store.AuditRecord {
			out := append([]store.AuditRecord(nil), next...)
			out[1].PrevHash = "forged"
			return out
		}(), nil},
		{"a batch with a record without a hash", func() []store.AuditRecord {
			out := append([]store.AuditRecord(nil), next...)
			out[2].Hash = ""
			return out
		}(), nil},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			err := st.AppendAuditBatch(ctx, tc.recs)
			switch {
			case err == nil:
				t.Errorf("AppendAuditBatch: nil; want it refused")
			case tc.want != nil:
				wantErr(t, "AppendAuditBatch", err, tc.want)
			case errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrExists):
				t.Errorf("AppendAuditBatch: %v; want a refusal of the batch itself (no conflict to retry, nothing stored)", err)
			}
			wantChainUnchanged(t, ctx, st, head)
		})
	}

	t.Run("the next batch after the refusals", func(t *testing.T) {
		mustNil(t, "AppendAuditBatch", st.AppendAuditBatch(ctx, next))
		verifyChain(t, ctx, st, 13)
		// The same batch again: its first record no longer follows the head.
		wantErr(t, "the batch again", st.AppendAuditBatch(ctx, next), store.ErrConflict)
		verifyChain(t, ctx, st, 13)
	})
}

// testAuditBatchConcurrent: appenders of batches and of single records at
// once, each re-reading the head after a lost race, never fork the chain:
// it is gap-free, each record linked to the one before, every record
// appended once.
func testAuditBatchConcurrent(t *testing.T, open Opener) {
	ctx := context.Background()
	st := open(t, NewClock())
	const appenders, rounds = 6, 8
	var wg sync.WaitGroup
	for a := range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				var err error
				if a%3 == 2 {
					err = appendWithRetry(ctx, st, "u", fmt.Appendf(nil, `{"single":"%d-%d"}`, a, r))
				} else {
					err = appendBatchWithRetry(ctx, st, "u", fmt.Sprintf("b%d-%d", a, r), 1+(a+r)%4)
				}
				mustNilAsync(t, err)
			}
		}()
	}
	wg.Wait()
	want := 0
	for a := range appenders {
		for r := range rounds {
			if a%3 == 2 {
				want++
			} else {
				want += 1 + (a+r)%4
			}
		}
	}
	verifyChain(t, ctx, st, want)
	seen := map[string]bool{}
	for from := uint64(1); from <= uint64(want); from += 100 {
		recs, err := st.ReadAudit(ctx, from, 100)
		mustNil(t, "ReadAudit", err)
		for _, r := range recs {
			if seen[string(r.Body)] {
				t.Errorf("record %d: body %s appended twice", r.Seq, r.Body)
			}
			seen[string(r.Body)] = true
		}
	}
	if len(seen) != want {
		t.Errorf("%d distinct records; want %d", len(seen), want)
	}
}
