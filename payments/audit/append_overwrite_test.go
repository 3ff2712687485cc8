package audit

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
)

// TestAppendNeverOverwritesARecord: with the chain's head moved back and
// the records after it left in place (the head key restored from an older
// copy, or edited), the next append does not write its record over the one
// stored at its place: that record is the only trace of a money action
// whose event was acknowledged long ago. The append is refused, the new
// event waits in the outbox, and verify still names the first record
// beyond the head. Before, the worker wrote the new record over it, and
// over the next ones with each later action, until the chain verified
// again, the replaced money actions gone from the store.
func TestAppendNeverOverwritesARecord(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			recs := buildChain(t, e, 4)
			e.rawSetHead(store.AuditHead{Seq: 2, Hash: recs[1].Hash})

			st := e.store()
			ev := mustEvent(t, Action{Time: time.Now(), Name: "order.created", Client: "shop-bot", User: "oAlice", OrderNo: "PG9999", AmountFen: 1}, "")
			enqueue(t, st, ev)
			w := newTestWorker(t, st, nil)
			if _, err := w.Drain(context.Background()); err == nil {
				t.Errorf("drain: no error; want the append refused")
			} else if !errors.Is(err, store.ErrExists) {
				t.Errorf("drain: %v; want it to wrap store.ErrExists", err)
			}
			for _, r := range recs[2:] {
				if got := e.rawGet(r.Seq); got.Hash != r.Hash || !bytes.Equal(got.Body, r.Body) {
					t.Errorf("record %d after the append: hash %.12s…; want the one stored before, %.12s…", r.Seq, got.Hash, r.Hash)
				}
			}
			if h, err := st.AuditHead(context.Background()); err != nil || h.Seq != 2 {
				t.Errorf("head after the append: %+v %v; want record 2 still", h, err)
			}
			stats, err := st.OutboxStats(context.Background())
			if err != nil || stats.Pending != 1 {
				t.Errorf("outbox after the refused append: %+v %v; want the event still pending", stats, err)
			}
			_, err = Verify(context.Background(), st, VerifyOptions{})
			wantBroken(t, err, 3, "beyond the store's head")
		})
	}
}
