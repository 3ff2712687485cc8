package main

import (
	"context"
	"errors"
	"strings"
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
// context ended, the record is in the chain). Closing release ends the
// held appends too (a test's guard, so that its cleanup does not hang).
type heldAppend struct {
	store.Store
	hold    *atomic.Bool
	applied bool
	entered chan struct{}
	once    *sync.Once
	release chan struct{}
}

func (s heldAppend) wait(ctx context.Context) error {
	s.once.Do(func() { close(s.entered) })
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.release:
		return errors.New("held append released by the test")
	}
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
				return heldAppend{st, &hold, tc.applied, entered, &sync.Once{}, nil}
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

// TestShutdownAuditPassEndsWhenAppendsHang: a store whose audit appends
// stopped answering does not hold the shutdown's extra pass: it ends with
// finalHeadTimeout, says the records are left for the next start, and the
// head is published all the same. The pass ran under no deadline (closeBy
// closes only a store that is not local under it: the embedded file
// waits for close however long it takes).
func TestShutdownAuditPassEndsWhenAppendsHang(t *testing.T) {
	var hold atomic.Bool
	entered := make(chan struct{})
	release := make(chan struct{})
	logs := &logtest.Buffer{}
	_, a := paymentAppLogged(t, "http://127.0.0.1:9", "", logs, withStoreWrap(func(st store.Store) store.Store {
		return heldAppend{st, &hold, false, entered, &sync.Once{}, release}
	}))
	hold.Store(true) // every append hangs until its context ends
	if _, err := a.payments.CreateOrder(context.Background(), payments.CreateRequest{Client: "bot", User: testOpenID, SKU: "premium-monthly"}); err != nil {
		t.Fatalf("create order: %v", err)
	}
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the audit worker never appended the order's records")
	}
	closed := make(chan struct{})
	go func() { defer close(closed); a.close() }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		close(release)
		<-closed
		t.Fatal("shutdown still waiting on the audit appends 30 s on; want it to end with finalHeadTimeout")
	}
	if !strings.Contains(logs.String(), "audit records left in the outbox at shutdown") {
		t.Errorf("no warning of the records left in the outbox; log:\n%s", logs.String())
	}
	if lastHeadLogged(logs.String()) == "" {
		t.Errorf("no head published at the shutdown")
	}
}
