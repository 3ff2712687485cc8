package webhook

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/store"
)

// DefaultAbandonedAfter is how long a webhook event may wait on its order's
// own queue (the intake) before a process that runs no relay sets it aside
// (SetAside): far longer than a live relay takes to move it (its poll,
// default 1s, and at worst a lease, Timeout plus a margin, after a relay
// died holding it).
const DefaultAbandonedAfter = 10 * time.Minute

// SetAside is the audit worker's SetAside hook for a process that runs no
// relay (webhooks.url empty). Such a process must leave webhook events alone:
// other replicas sharing the store may run relays, and the events are
// theirs to move and deliver. A webhook event that no relay took off its
// order's queue within after (a run with webhooks on ended, or webhooks
// were turned off everywhere, leaving it) would however hold back that
// order's later audit events for good. Only such an event is set aside: it
// is moved to the order's delivery queue as a relay moves it (appended
// there unless a copy is queued already, then acknowledged on the intake),
// once the events it must follow there have gone ahead (mustFollow), where
// it holds back no one and waits for a relay, now or once webhooks
// are on again. Delivery queues and dead letters are never touched, and no
// event is dropped. now is the clock (nil: time.Now).
func SetAside(st store.Outbox, after time.Duration, now func() time.Time) func(context.Context, store.Event) (bool, error) {
	if now == nil {
		now = time.Now
	}
	return func(ctx context.Context, ev store.Event) (bool, error) {
		if ev.Kind != Kind || strings.HasPrefix(ev.Key, QueuePrefix) || strings.HasPrefix(ev.Key, DeadPrefix) ||
			now().Sub(ev.CreatedAt) < after {
			return false, nil
		}
		// Moved ahead of the events it must follow (they are older, so
		// set aside by a later pass), it would be delivered before them.
		if _, wait, err := mustFollow(ctx, st, ev); wait || err != nil {
			return false, err
		}
		if _, err := st.EnqueueEventOnce(ctx, queued(ev)); err != nil {
			return false, err
		}
		if err := st.AckEvent(ctx, ev.Key, ev.ID); err != nil {
			return false, err
		}
		return true, nil
	}
}

// queued is intake event ev as its order's delivery queue holds it: same id
// and payload, not yet attempted.
func queued(ev store.Event) store.Event {
	cp := ev
	cp.Key = QueuePrefix + orderOf(ev)
	cp.Attempts, cp.NextAt, cp.LastError, cp.FailedAt = 0, time.Time{}, "", time.Time{}
	return cp
}

// orderOf is the order number of webhook event ev: its key, less the
// delivery queue's prefix, or, for the refund.proposed that rode its
// proposal's write (keyed by the proposal, store.ProposalEventKey), the
// order its body names, so that it is delivered in its order's sequence.
func orderOf(ev store.Event) string {
	if strings.HasPrefix(ev.Key, store.ProposalEventKeyPrefix) {
		if no := gjson.GetBytes(ev.Payload, "data.order.order_no").Str; no != "" {
			return no
		}
	}
	return strings.TrimPrefix(ev.Key, QueuePrefix)
}

// mustFollow reports whether intake event ev must wait for another queue's
// events (other) to keep its order's sequence: the two queues are moved
// separately (by a relay's workers, or set aside), and their events reach
// the order's delivery queue in the order they are moved.
//
//   - A refund.proposed that rode its proposal's write waits for its
//     order's own intake events made before the proposal (its order.paid,
//     left by a relay that was down).
//   - An event of the order about a refund it proposed (refund.succeeded,
//     refund.failed: data.refund.refund_id) waits for that proposal's queue
//     to hold nothing made before it, its refund.proposed included (held
//     back there behind the proposal's audit record, or by the wait above),
//     so the merchant never hears of a refund's outcome before its
//     proposal. A refund.proposed on the order's own queue (enqueued there
//     by an earlier version) is in its order's sequence already and waits
//     for nothing.
//
// The first compares with "not after", the second with "before", so two
// events never wait for each other, whatever the replicas' clocks. Any
// other event never waits. err: other could not be read.
func mustFollow(ctx context.Context, st store.Outbox, ev store.Event) (other string, wait bool, err error) {
	var earlier func(h store.Event) bool
	if strings.HasPrefix(ev.Key, store.ProposalEventKeyPrefix) {
		other = orderOf(ev)
		earlier = func(h store.Event) bool { return !h.CreatedAt.After(ev.CreatedAt) }
	} else if res := gjson.GetManyBytes(ev.Payload, "type", "data.refund.refund_id"); res[0].Str != TypeRefundProposed && res[1].Str != "" {
		other = store.ProposalEventKey(res[1].Str)
		earlier = func(h store.Event) bool { return h.CreatedAt.Before(ev.CreatedAt) }
	} else {
		return "", false, nil
	}
	heads, err := st.OutboxHeads(ctx, other)
	if err != nil {
		return other, false, fmt.Errorf("read the queue of %s: %w", other, err)
	}
	for _, h := range heads {
		wait = wait || h.Key == other && earlier(h)
	}
	return other, wait, nil
}
