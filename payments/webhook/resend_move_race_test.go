package webhook_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// indexReadHook runs the armed function once, right after the next read of
// a Redis store's key list (a ZRANGE: the first step of OutboxHeads, before
// the heads of the keys it lists are read).
type indexReadHook struct {
	armed atomic.Pointer[func(context.Context)]
}

func (h *indexReadHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *indexReadHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		if strings.EqualFold(cmd.Name(), "zrange") {
			if f := h.armed.Swap(nil); f != nil {
				(*f)(ctx)
			}
		}
		return err
	}
}

func (h *indexReadHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// hookedRedis is a Redis store with an indexReadHook on its client; the
// test is skipped without Redis (the embedded store reads the outbox in one
// transaction: none of these races exists there).
func hookedRedis(t *testing.T) (store.Store, *indexReadHook) {
	t.Helper()
	if !slices.Contains(testdrivers.Names(t), "redis") {
		t.Skip("needs Redis: the embedded store reads the outbox in one transaction")
	}
	st := testdrivers.Open(t, "redis", nil)
	rs, ok := st.(interface {
		Client() goredis.UniversalClient
	})
	if !ok {
		t.Fatalf("the redis driver's store %T has no client", st)
	}
	hook := &indexReadHook{}
	rs.Client().AddHook(hook)
	return st, hook
}

// relayMove moves ev, the head of order no's queue, to the order's delivery
// queue as a relay does: a fresh copy appended there, then the original
// acknowledged.
func relayMove(ctx context.Context, st store.Store, no string, ev store.Event) error {
	cp := ev
	cp.Key = webhook.QueuePrefix + no
	cp.Attempts, cp.NextAt, cp.LastError, cp.FailedAt = 0, time.Time{}, "", time.Time{}
	if _, err := st.EnqueueEventsOnce(ctx, []store.Event{cp}); err != nil {
		return err
	}
	return st.AckEvent(ctx, no, ev.ID)
}

// TestResendFindsTheRefundMovedWhileItReads: with the first refund's
// refund.succeeded given up, a resend reads the order's queues while
// another replica's relay moves the second refund's event from the
// order's queue to its (empty) delivery queue. A Redis outbox is read as
// a list of keys, then their heads: the delivery queue was not listed yet
// and the order's queue was empty by its read, so the resend saw the dead
// letter and nothing waiting, and read no more (it read again only when it
// found neither). It queued the first refund's event behind the second's:
// the merchant got 1500 refunded and then 1000, and kept 1000. Finding
// nothing waiting, it now reads again, finds the second's event and sets
// it back behind the first, so the merchant's last word is the order's
// refunded total.
func TestResendFindsTheRefundMovedWhileItReads(t *testing.T) {
	st, hook := hookedRedis(t)
	clk := newClock()
	rc, up := downReceiver(t, clk.Now)
	no := "PGRESENDMOVE"
	r := newRelay(t, st, rc.URL, clk.Now, shortWindow)
	secondRefundWaiting(orders{t, st}, r, clk, up, no)
	ev, ok := head(t, st, no)
	if !ok || gjson.GetBytes(ev.Payload, "data.refund.refund_id").Str != "rf_second" {
		t.Fatalf("the order's queue's head: %+v, %v; want rf_second's refund.succeeded", ev, ok)
	}
	if _, ok := head(t, st, webhook.QueuePrefix+no); ok {
		t.Fatal("the delivery queue holds an event: the race needs it empty")
	}
	// Another replica's relay moves it, as relays do: a copy appended to
	// the delivery queue, then the original acknowledged.
	moved := make(chan error, 1)
	move := func(ctx context.Context) { moved <- relayMove(ctx, st, no, ev) }
	hook.armed.Store(&move)
	if a := postResend(t, r, no, ""); a.code/100 != 2 || a.Type != webhook.TypeRefundSucceeded {
		t.Fatalf("resend while rf_second moves: %+v; want it accepted", a)
	}
	select {
	case err := <-moved:
		if err != nil {
			t.Fatalf("the move: %v", err)
		}
	default:
		t.Fatal("the resend read no key list: the race was not run")
	}
	up.Store(true)
	runFor(t, r, clk, 10*time.Second)
	got, last := refundsAccepted(rc)
	if !slices.Equal(got, []string{"rf_first", "rf_second"}) {
		t.Errorf("the merchant accepted refunds %v; want rf_first then rf_second, once each", got)
	}
	if total := gjson.GetBytes(last, "data.order.refunded_fen").Int(); total != 1500 {
		t.Errorf("the merchant's last word on the order: %d fen refunded; want 1500", total)
	}
}

// TestResendReadingAgainMeetsAnotherResend: the order.paid was given up
// and two resends run at once. The first reads the dead letter and no
// event waiting, so it reads again (a relay may have been moving one);
// between that read's key list and its heads the second resend queues
// the dead letter's event and clears it, so the second read sees neither
// (the order's queue was not listed yet, the dead letter was gone). Taken
// as nothing lost, it answered 409 "delivered" while the event waited
// undelivered (TestConcurrentResendsCollapse failed so, now and then, on
// Redis). Now the first read's answer stands: it is told the one event
// both queued, and the merchant gets it once.
func TestResendReadingAgainMeetsAnotherResend(t *testing.T) {
	st, hook := hookedRedis(t)
	clk := newClock()
	rc, up := downReceiver(t, clk.Now)
	o, r := paidAndGivenUp(t, st, rc, clk, "PGRESENDREREAD")
	before := len(rc.arrivals())

	var other resendAnswer
	ran := false
	// On the resend's second key-list read, the other resend runs whole
	// (the hook is disarmed by then: its reads run no hook).
	concurrent := func(context.Context) {
		ran = true
		other = postResend(t, r, o.OrderNo, "")
	}
	firstRead := func(context.Context) { hook.armed.Store(&concurrent) }
	hook.armed.Store(&firstRead)
	a := postResend(t, r, o.OrderNo, "")
	if !ran {
		t.Fatal("the resend read the key list once: the race was not run")
	}
	if other.code != http.StatusAccepted || other.Type != webhook.TypeOrderPaid {
		t.Fatalf("the other resend: %+v; want 202 queueing the order.paid", other)
	}
	if a.code != http.StatusOK || !a.AlreadyPending || a.EventID != other.EventID {
		t.Fatalf("the resend that read again: %+v; want 200 naming the other's %s", a, other.EventID)
	}
	if q := queuedFor(t, st, o.OrderNo); len(q) != 1 || q[0] != other.EventID {
		t.Fatalf("queued for %s: %v; want %s once", o.OrderNo, q, other.EventID)
	}
	up.Store(true)
	drain(t, r)
	got := rc.arrivals()[before:]
	if len(got) != 1 || got[0].id != other.EventID || got[0].status != http.StatusOK {
		t.Errorf("delivered after the two resends: %+v; want %s once", got, other.EventID)
	}
}

// TestConcurrentResendsRepeatTheFirstRefundUnderItsID: with the first
// refund's refund.succeeded given up, one resend's first read is torn (a
// relay moves the second refund's event to the empty delivery queue
// between the key list and the heads: it sees the dead letter and nothing
// waiting), and before its second read lists the keys' heads a concurrent
// resend sets the second's event back behind the first's, and both are
// delivered. Its later reads find nothing, so the first read's answer
// stands and it queues the first refund's event again: the merchant gets
// it after the second's. It carries the id the merchant already handled,
// so a merchant deduplicating by id, as the README asks, discards it:
// each refund is processed once and its last processed word on the order
// is the full refunded total. (Only one that processes every delivery,
// ignoring ids, ends on the earlier total; Resend's doc names this copy.)
// The embedded store reads the outbox in one transaction: a read that sees
// the dead letter and not the waiting event sees the set-back one's dead
// letter too, and both refunds go out again in their order.
func TestConcurrentResendsRepeatTheFirstRefundUnderItsID(t *testing.T) {
	st, hook := hookedRedis(t)
	clk := newClock()
	rc, up := downReceiver(t, clk.Now)
	no := "PGRESENDREPEAT"
	r := newRelay(t, st, rc.URL, clk.Now, shortWindow)
	other := newRelay(t, st, rc.URL, clk.Now, shortWindow) // another replica's
	secondRefundWaiting(orders{t, st}, r, clk, up, no)
	ev, ok := head(t, st, no)
	if !ok || gjson.GetBytes(ev.Payload, "data.refund.refund_id").Str != "rf_second" {
		t.Fatalf("the order's queue's head: %+v, %v; want rf_second's refund.succeeded", ev, ok)
	}

	var otherAnswer resendAnswer
	ran := false
	concurrent := func(context.Context) {
		ran = true
		otherAnswer = postResend(t, other, no, "")
		up.Store(true)
		drain(t, other)
	}
	move := func(ctx context.Context) {
		if err := relayMove(ctx, st, no, ev); err != nil {
			t.Errorf("the move: %v", err)
		}
		hook.armed.Store(&concurrent)
	}
	hook.armed.Store(&move)
	a := postResend(t, r, no, "")
	if !ran {
		t.Fatal("the resend read the key list once: the race was not run")
	}
	if otherAnswer.code != http.StatusOK || otherAnswer.EventID != ev.ID {
		t.Fatalf("the concurrent resend: %+v; want 200 naming rf_second's %s, set back", otherAnswer, ev.ID)
	}
	if a.code/100 != 2 {
		t.Fatalf("the torn resend: %+v; want it accepted", a)
	}
	drain(t, r)
	got, last := refundsAccepted(rc)
	if !slices.Equal(got, []string{"rf_first", "rf_second"}) {
		t.Errorf("a merchant deduplicating by id processed refunds %v; want rf_first then rf_second, once each", got)
	}
	if total := gjson.GetBytes(last, "data.order.refunded_fen").Int(); total != 1500 {
		t.Errorf("its last processed word on the order: %d fen refunded; want 1500", total)
	}
	seen := map[string]bool{}
	for _, a := range rc.arrivals() {
		if a.status/100 == 2 && seen[a.id] {
			t.Logf("delivered again under its id, discarded: %s %s", a.typ, gjson.GetBytes(a.body, "data.refund.refund_id").Str)
		}
		seen[a.id] = seen[a.id] || a.status/100 == 2
	}
}
