package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
)

// Clock is a manual clock shared by a test and the store under test, so expiry
// is tested by moving time, never by sleeping.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts a clock at a fixed instant.
func NewClock() *Clock {
	return &Clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// Now returns the clock's time; pass it to the driver's options.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Opener opens a fresh, empty store whose clock is clock.Now. The store must be
// closed by the opener's cleanup (t.Cleanup); closing it twice must be safe.
type Opener func(t testing.TB, clock *Clock) store.Store

// Run runs the whole conformance suite against the driver that open creates.
func Run(t *testing.T, open Opener) {
	t.Run("Orders", func(t *testing.T) { testOrders(t, open) })
	t.Run("OrdersKeepLaterMembers", func(t *testing.T) { testOrdersKeepLaterMembers(t, open) })
	t.Run("ListOrders", func(t *testing.T) { testListOrders(t, open) })
	t.Run("ListOrdersCursor", func(t *testing.T) { testListOrdersCursor(t, open) })
	t.Run("ListOrdersWithoutClient", func(t *testing.T) { testListOrdersWithoutClient(t, open) })
	t.Run("UserState", func(t *testing.T) { testUserState(t, open) })
	t.Run("Announcements", func(t *testing.T) { testAnnouncements(t, open) })
	t.Run("Claims", func(t *testing.T) { testClaims(t, open) })
	t.Run("Notifications", func(t *testing.T) { testNotifications(t, open) })
	t.Run("RefundProposals", func(t *testing.T) { testRefunds(t, open) })
	t.Run("OpenRefundProposals", func(t *testing.T) { testOpenRefunds(t, open) })
	t.Run("ExpireRefundProposal", func(t *testing.T) { testExpireRefund(t, open) })
	t.Run("Counters", func(t *testing.T) { testCounters(t, open) })
	t.Run("CounterGiveBack", func(t *testing.T) { testCounterGiveBack(t, open) })
	t.Run("Window", func(t *testing.T) { testWindow(t, open) })
	t.Run("WindowClockBack", func(t *testing.T) { testWindowClockBack(t, open) })
	t.Run("Leases", func(t *testing.T) { testLeases(t, open) })
	t.Run("Tallies", func(t *testing.T) { testTallies(t, open) })
	t.Run("Exchanges", func(t *testing.T) { testExchanges(t, open) })
	t.Run("RefundRecords", func(t *testing.T) { testRefundRecords(t, open) })
	t.Run("Secrets", func(t *testing.T) { testSecrets(t, open) })
	t.Run("Outbox", func(t *testing.T) { testOutbox(t, open) })
	t.Run("OutboxDueKinds", func(t *testing.T) { testDueKinds(t, open) })
	t.Run("OutboxDueTies", func(t *testing.T) { testDueTies(t, open) })
	t.Run("OutboxDueBytesMixed", func(t *testing.T) { testDueBytesMixed(t, open) })
	t.Run("OutboxClaims", func(t *testing.T) { testOutboxClaims(t, open) })
	t.Run("OutboxHeads", func(t *testing.T) { testOutboxHeads(t, open) })
	t.Run("OutboxAckAt", func(t *testing.T) { testAckEventAt(t, open) })
	t.Run("OutboxReschedule", func(t *testing.T) { testReschedule(t, open) })
	t.Run("OutboxRescheduleLeased", func(t *testing.T) { testRescheduleLeased(t, open) })
	t.Run("RefundProposalEvents", func(t *testing.T) { testRefundProposalEvents(t, open) })
	t.Run("RefundAnswerEvents", func(t *testing.T) { testRefundAnswerEvents(t, open) })
	t.Run("Audit", func(t *testing.T) { testAudit(t, open) })
	t.Run("AuditBatch", func(t *testing.T) { testAuditBatch(t, open) })
	t.Run("AuditBatchConcurrent", func(t *testing.T) { testAuditBatchConcurrent(t, open) })
	t.Run("AuditText", func(t *testing.T) { testAuditText(t, open) })
	t.Run("AuditErasedAt", func(t *testing.T) { testAuditErasedAt(t, open) })
	t.Run("AuditTextPerClient", func(t *testing.T) { testAuditTextPerClient(t, open) })
	t.Run("AuditTextRetention", func(t *testing.T) { testAuditTextRetention(t, open) })
	t.Run("Concurrency", func(t *testing.T) { testConcurrency(t, open) })
	t.Run("Closed", func(t *testing.T) { testClosed(t, open) })
}

// testClosed: a closed store answers ErrUnavailable to every call, never
// panics, and may be closed again.
func testClosed(t *testing.T, open Opener) {
	ctx := context.Background()
	st := open(t, NewClock())
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("Ping on an open store: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checks := []struct {
		name string
		call func() error
	}{
		{"Ping", func() error { return st.Ping(ctx) }},
		{"GetOrder", func() error { _, err := st.GetOrder(ctx, "x"); return err }},
		{"CreateOrder", func() error { return st.CreateOrder(ctx, NewOrder("x", "c", "u", time.Now())) }},
		{"LoadUserState", func() error { _, err := st.LoadUserState(ctx, "c", "u"); return err }},
		{"ClaimPurchase", func() error { _, _, err := st.ClaimPurchase(ctx, "k", "x", time.Minute); return err }},
		{"ClaimAnnouncement", func() error { _, err := st.ClaimAnnouncement(ctx, "c", "u", "k:", "x", time.Minute); return err }},
		{"AddTally", func() error { _, err := st.AddTally(ctx, "k", 1, time.Minute); return err }},
		{"TakeTally", func() error { _, err := st.TakeTally(ctx, "k"); return err }},
		{"AddTallies", func() error {
			return st.AddTallies(ctx, []store.TallyAdd{{Key: "k", Delta: 1}, {Key: "l", Delta: 1}}, time.Minute)
		}},
		{"TakeLeases", func() error { _, err := st.TakeLeases(ctx, "h", []string{"k"}, time.Minute); return err }},
		{"AppendAudit", func() error {
			return st.AppendAudit(ctx, store.AuditRecord{Seq: 1, Hash: "h"})
		}},
		{"AppendAuditBatch", func() error {
			return st.AppendAuditBatch(ctx, []store.AuditRecord{{Seq: 1, Hash: "h"}, {Seq: 2, PrevHash: "h", Hash: "h2"}})
		}},
		{"UpdateOrder", func() error {
			o := NewOrder("x", "c", "u", time.Now())
			o.Version = 1
			return st.UpdateOrder(ctx, o, store.StatusAwaitingPayment)
		}},
		{"ListOrders", func() error { _, err := st.ListOrders(ctx, store.OrderFilter{}); return err }},
		{"AdvanceClaim", func() error { _, _, err := st.AdvanceClaim(ctx, "k", 1, "y", time.Minute); return err }},
		{"SeenNotification", func() error { _, err := st.SeenNotification(ctx, "n", time.Minute); return err }},
		{"PutRefundProposal", func() error { return st.PutRefundProposal(ctx, newProposal("rf", "u"), time.Minute) }},
		{"GetRefundProposal", func() error { _, err := st.GetRefundProposal(ctx, "rf"); return err }},
		{"RefundProposalState", func() error { _, _, err := st.RefundProposalState(ctx, "rf"); return err }},
		{"ExpireRefundProposal", func() error { _, _, err := st.ExpireRefundProposal(ctx, "rf"); return err }},
		{"ConsumeRefundProposal", func() error { _, err := st.ConsumeRefundProposal(ctx, "rf", "u"); return err }},
		{"CancelRefundProposal", func() error { _, err := st.CancelRefundProposal(ctx, "rf", "u"); return err }},
		{"OpenRefundProposals", func() error { _, err := st.OpenRefundProposals(ctx, "c", "u"); return err }},
		{"IncrCounter", func() error { _, err := st.IncrCounter(ctx, "k", time.Minute); return err }},
		{"DecrCounter", func() error { return st.DecrCounter(ctx, "k", "t") }},
		{"AllowWindow", func() error { _, err := st.AllowWindow(ctx, "k", 1, time.Minute, "t"); return err }},
		{"PutExchange", func() error { return st.PutExchange(ctx, "k", []byte("x"), time.Minute) }},
		{"GetExchange", func() error { _, err := st.GetExchange(ctx, "k"); return err }},
		{"PutRefundRecord", func() error { return st.PutRefundRecord(ctx, "o", 1, []byte("x"), time.Minute) }},
		{"GetOrCreateSecret", func() error {
			_, err := st.GetOrCreateSecret(ctx, "s", func() ([]byte, error) { return []byte("x"), nil })
			return err
		}},
		{"EnqueueEvents", func() error { return st.EnqueueEvents(ctx, store.Event{ID: "e", Kind: "webhook"}) }},
		{"EnqueueEventsOnce", func() error {
			_, err := st.EnqueueEventsOnce(ctx, []store.Event{{ID: "e", Kind: "webhook"}})
			return err
		}},
		{"DueEvents", func() error { _, err := st.DueEvents(ctx, time.Now(), 10); return err }},
		{"ClaimEvents", func() error { _, err := st.ClaimEvents(ctx, "webhook", time.Now(), time.Minute, 10); return err }},
		{"AckEvent", func() error { return st.AckEvent(ctx, "k", "e") }},
		{"AckEventAt", func() error { return st.AckEventAt(ctx, "k", "e", time.Now()) }},
		{"RetryEvent", func() error { return st.RetryEvent(ctx, "k", "e", time.Now(), 1, "x") }},
		{"RescheduleEvent", func() error { _, err := st.RescheduleEvent(ctx, "k", "e", time.Now(), time.Now()); return err }},
		{"OutboxStats", func() error { _, err := st.OutboxStats(ctx); return err }},
		{"OutboxHeads", func() error { _, err := st.OutboxHeads(ctx, "k"); return err }},
		{"OutboxHeadsApart", func() error { _, _, err := st.OutboxHeadsApart(ctx, "k"); return err }},
		{"AuditHead", func() error { _, err := st.AuditHead(ctx); return err }},
		{"ReadAudit", func() error { _, err := st.ReadAudit(ctx, 1, 10); return err }},
		{"PutAuditText", func() error { return st.PutAuditText(ctx, 1, "c", "u", []byte("x"), time.Now(), time.Hour) }},
		{"GetAuditText", func() error { _, err := st.GetAuditText(ctx, 1); return err }},
		{"EraseAuditText", func() error { _, err := st.EraseAuditText(ctx, "c", "u"); return err }},
		{"AuditErasedAt", func() error { _, err := st.AuditErasedAt(ctx, "c", "u"); return err }},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("got %v; want an error wrapping store.ErrUnavailable", err)
			}
		})
	}
	if err := st.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

// NewOrder returns a plausible order in awaiting_payment, for tests and
// benchmarks.
func NewOrder(no, client, user string, created time.Time) *store.Order {
	return &store.Order{
		OrderNo:     no,
		Client:      client,
		AppID:       "wx-app",
		User:        user,
		Session:     "s1",
		SKU:         "premium-monthly",
		Description: "Premium tier, 1 month",
		Quantity:    1,
		AmountFen:   4999,
		Currency:    "CNY",
		PayMethod:   "jsapi",
		Status:      store.StatusAwaitingPayment,
		ClaimKey:    "claim-" + no,
		Generation:  1,
		CreatedAt:   created,
		UpdatedAt:   created,
		ExpiresAt:   created.Add(2 * time.Hour),
		PrepayID:    "wx-prepay-" + no,
	}
}

func mustNil(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v; want %v", what, err, want)
	}
}

// uniq makes names unique within one store so subtests can share one.
func uniq(prefix string, i int) string { return fmt.Sprintf("%s-%03d", prefix, i) }
