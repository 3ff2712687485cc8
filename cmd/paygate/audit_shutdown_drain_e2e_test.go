package main

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/embedded"
)

// heldAppend is a store whose audit appends, while hold is set, wait for
// their context to end (an append in flight when the shutdown stops the
// worker); entered is closed at the first one held. With applied, a held
// append is written first (a Redis reply lost: the worker is told its
// context ended, the record is in the chain).
type heldAppend struct {
	store.Store
	hold    *atomic.Bool
	applied bool
	entered chan struct{}
	once    *sync.Once
}

func (s heldAppend) wait(ctx context.Context) error {
	s.once.Do(func() { close(s.entered) })
	<-ctx.Done()
	return ctx.Err()
}

func (s heldAppend) AppendAudit(ctx context.Context, r store.AuditRecord) error {
	if s.hold.Load() {
		if s.applied {
			if err := s.Store.AppendAudit(context.WithoutCancel(ctx), r); err != nil {
				return err
			}
		}
		return s.wait(ctx)
	}
	return s.Store.AppendAudit(ctx, r)
}

func (s heldAppend) AppendAuditBatch(ctx context.Context, rs []store.AuditRecord) error {
	if s.hold.Load() {
		if s.applied {
			if err := s.Store.AppendAuditBatch(context.WithoutCancel(ctx), rs); err != nil {
				return err
			}
		}
		return s.wait(ctx)
	}
	return s.Store.AppendAuditBatch(ctx, rs)
}

// TestShutdownAppendsCommittedAuditRecords: a money action committed before
// the shutdown (its order and its audit events written in one step) whose
// records the audit worker was appending when the shutdown stopped it is
// in the chain once paygate has closed, once each (the cut append may
// have been applied, its reply lost), and under the head it logs last.
// The worker's pass was cut with its context and stop published the head
// without them: the chain ended before the order's creation, the
// shutdown's head said so, and `paygate store status` on the stopped
// paygate found audit records undelivered. The records appended after the
// head's publication were in the chain but in no outside record.
func TestShutdownAppendsCommittedAuditRecords(t *testing.T) {
	for _, tc := range []struct {
		name    string
		applied bool
	}{
		{"append cut", false},
		{"append applied, reply lost", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hold atomic.Bool
			entered := make(chan struct{})
			logs := &logtest.Buffer{}
			_, a := paymentAppLogged(t, "http://127.0.0.1:9", "", logs, withStoreWrap(func(st store.Store) store.Store {
				return heldAppend{st, &hold, tc.applied, entered, &sync.Once{}}
			}))
			path := a.cfg.Store.Path
			hold.Store(true)
			res, err := a.payments.CreateOrder(context.Background(), payments.CreateRequest{Client: "bot", User: testOpenID, SKU: "premium-monthly"})
			if err != nil {
				t.Fatalf("create order: %v", err)
			}
			select {
			case <-entered:
			case <-time.After(30 * time.Second):
				t.Fatal("the audit worker never appended the order's records")
			}
			hold.Store(false) // the append in flight stays held until the shutdown ends it
			a.close()

			db, err := embedded.Open(path, embedded.Options{SweepInterval: -1, ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ctx := context.Background()
			left, err := db.DueEvents(ctx, time.Now().Add(365*24*time.Hour), store.MaxListLimit, audit.KindAudit)
			if err != nil {
				t.Fatal(err)
			}
			head, err := db.AuditHead(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(left) > 0 || head.Seq == 0 {
				t.Errorf("after the shutdown: chain head %d, %d audit records of order %s still in the outbox; want them in the chain", head.Seq, len(left), res.Order.OrderNo)
			}
			if last := lastHeadLogged(logs.String()); last != audit.FormatHead(head) {
				t.Errorf("last head logged %q; want the chain's head once paygate stopped, %q", last, audit.FormatHead(head))
			}
			recs, err := db.ReadAudit(ctx, 1, store.MaxListLimit)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]uint64{}
			for _, rec := range recs {
				r, err := audit.Decode(rec.Body)
				if err != nil {
					t.Fatal(err)
				}
				if at, ok := seen[r.EventID]; ok {
					t.Errorf("event %s appended twice, records %d and %d", r.EventID, at, rec.Seq)
				}
				seen[r.EventID] = rec.Seq
			}
		})
	}
}
