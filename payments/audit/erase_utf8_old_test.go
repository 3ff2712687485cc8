package audit

import (
	"context"
	"testing"
	"time"
)

// TestEraseQueuedByAnEarlierVersionUnderRawBytesEnds: an earlier version
// enqueued the erasure of a user named in another encoding than UTF-8
// under the raw bytes ("audit-erasure:shop-bot/\xd5\xc5"), while the store
// reads its key back in the JSON form (each invalid byte a U+FFFD): after
// the upgrade the worker must still append it and acknowledge it, so
// that a pass ends, on both drivers.
func TestEraseQueuedByAnEarlierVersionUnderRawBytesEnds(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			ctx := context.Background()
			st := e.store()
			ev, err := ErasureEvent(ctx, "shop-bot", "\xd5\xc5", 0, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			enqueue(t, st, ev)
			w := newTestWorker(t, st, nil)
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if _, err := w.Drain(dctx); err != nil {
				t.Fatalf("drain: %v; want a pass that ends", err)
			}
			if s, err := st.OutboxStats(ctx); err != nil || s.Pending != 0 {
				t.Errorf("outbox: %+v %v; want the erasure acknowledged", s, err)
			}
		})
	}
}
