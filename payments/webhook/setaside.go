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
// are on again. Like a relay's move, it takes off that very event (its id
// and CreatedAt), never a copy another replica's resend queued since under
// its id. Delivery queues and dead letters are never touched, and no
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
		if _, err := st.EnqueueEventsOnce(ctx, []store.Event{queued(ev)}); err != nil {
			return false, err
		}
		// ev itself, not a copy a resend queued since under its id (see
		// move).
		if err := st.AckEventAt(ctx, ev.Key, ev.ID, ev.CreatedAt); err != nil {
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

// mustFollow reports whether intake event ev must wait for other queues'
// events (other names them) to keep its order's sequence: an order's events
// are on its own queue and on the queues of its refund proposals (each
// refund.proposed rides its proposal's write), moved separately (by a
// relay's workers, or set aside), and they reach the order's delivery
// queue in the order they are moved.
//
//   - A refund.proposed that rode its proposal's write waits for its
//     order's own intake events made before the proposal (its order.paid,
//     left by a relay that was down), and for the queues of the order's
//     other proposals while they hold anything made before it (an earlier
//     proposal's refund.proposed, held back behind its audit record or a
//     dead relay's lease).
//   - Any other event of the order waits for the queues of the order's
//     proposals to hold nothing made before it: not only the outcome of a
//     refund (refund.succeeded, refund.failed) for its own proposal, but
//     that of a second proposal made after the first expired or was
//     cancelled, and an order.needs_review, so that the merchant never
//     hears of a refund's outcome or a review before a refund.proposed
//     made ahead of it. A refund.proposed on the order's own queue (enqueued
//     there by an earlier version) waits the same way. These are the types
//     an order's queue holds next after a proposal was made: the order
//     was paid then, and it leaves paid (or partially_refunded) only
//     through a refund's outcome or a review, so an order.paid (after a
//     review), order.closed or order.approval_required made after a
//     proposal is queued behind one of them, and those read nothing: an
//     outbox read per event of every order (OutboxHeads reads every
//     queue's head) would make a backlog of paid orders quadratic to move.
//
// A wait on the order's own queue compares with "not after", from the
// time waitsFrom gives its head (a refund's outcome counts from its own
// proposal's head when that is later), one on a proposal's queue with
// "before", so every wait is for something stamped no later than the
// waiter and no events wait for each other in a ring, whatever the
// replicas' clocks. A proposal queue's head is of the order its body names
// (proposalQueueOrder). Any other event never waits.
//
// Times are the replicas' clocks, which may differ by a minute, and a
// refund's outcome can be recorded within seconds of its proposal by a
// replica whose clock runs behind the proposer's: stamped before the
// refund.proposed of the very refund it settles, it waited for no
// proposal and reached the merchant first. So cause is followed where it is
// known: a refund.succeeded or refund.failed that names its refund waits
// for that proposal's queue while it holds anything (the proposal's notice
// and audit records, all made before the outcome), whatever the times, and
// that refund.proposed does not wait for its own refund's outcome on the
// order's queue (each would wait for the other for good). Likewise a
// refund.proposed waits for the order's queue while its head is one that
// never waits for a proposal (an order.paid, an audit record) whatever
// the times: the proposal was made on a paid order, and a proposer's clock
// behind the payment's stamped it before the order.paid it follows.
// err: the queues could not be read.
func mustFollow(ctx context.Context, st store.Outbox, ev store.Event) (other string, wait bool, err error) {
	no := orderOf(ev)
	onProposal := strings.HasPrefix(ev.Key, store.ProposalEventKeyPrefix)
	if strings.HasPrefix(ev.Key, QueuePrefix) || strings.HasPrefix(ev.Key, DeadPrefix) || no == "" {
		return "", false, nil
	}
	// refund is the refund whose proposal ev announces (on a proposal's
	// queue), or whose outcome it tells (own: that proposal's queue).
	refund := gjson.GetBytes(ev.Payload, "data.refund.refund_id").Str
	own := ""
	if !onProposal {
		switch gjson.GetBytes(ev.Payload, "type").Str {
		case TypeRefundSucceeded, TypeRefundFailed:
			if refund != "" {
				own = store.ProposalEventKey(refund)
			}
		case TypeOrderNeedsReview, TypeRefundProposed:
		default:
			return "", false, nil
		}
	}
	prefixes := []string{store.ProposalEventKeyPrefix}
	other = "the queues of the refund proposals of order " + no
	if onProposal {
		prefixes = append(prefixes, no)
		other = "order " + no + "'s queue and " + other
	}
	heads, err := st.OutboxHeads(ctx, prefixes...)
	if err != nil {
		return other, false, fmt.Errorf("read %s: %w", other, err)
	}
	for _, h := range heads {
		switch {
		case h.Key == ev.Key:
		case h.Key == no:
			wait = wait || onProposal && !settles(h, refund) && (!waitsFrom(h, heads).After(ev.CreatedAt) || !waitsForProposals(h))
		case h.Key == own:
			wait = true
		case strings.HasPrefix(h.Key, store.ProposalEventKeyPrefix) && proposalQueueOrder(h) == no:
			wait = wait || h.CreatedAt.Before(ev.CreatedAt)
		}
	}
	return other, wait, nil
}

// waitsFrom is when head h of its order's queue counts as made for a
// proposal that would wait for it: its own time, or, for a refund's outcome
// whose proposal's queue still holds anything (the outcome waits for that
// queue whatever the times), the time of that queue's head when later. The
// outcome cannot go ahead of that queue, so a proposal stamped between the
// two that waited for the outcome by its own time (rA's outcome stamped
// before rB's proposal, itself stamped before rA's proposal by a clock
// ahead) could wait in a ring: rB's proposal for rA's outcome, the outcome
// for rA's proposal, rA's proposal for rB's (made before it). Compared
// from the later time, every wait is for something stamped no later than
// the waiter, and the one wait between equal times (an outcome for its own
// proposal) is never answered by a wait back (settles).
func waitsFrom(h store.Event, heads []store.Event) time.Time {
	at := h.CreatedAt
	if h.Kind != Kind {
		return at
	}
	switch gjson.GetBytes(h.Payload, "type").Str {
	case TypeRefundSucceeded, TypeRefundFailed:
	default:
		return at
	}
	refund := gjson.GetBytes(h.Payload, "data.refund.refund_id").Str
	if refund == "" {
		return at
	}
	own := store.ProposalEventKey(refund)
	for _, p := range heads {
		if p.Key == own && p.CreatedAt.After(at) {
			at = p.CreatedAt
		}
	}
	return at
}

// waitsForProposals reports whether event h, at the head of its order's
// queue, may itself wait for the order's proposal queues (mustFollow): a
// refund.proposed waits for any other head there whatever the times (an
// order.paid stamped by a clock ahead of the proposer's, the audit record
// ahead of it), as such a head waits for nothing and no ring can form.
func waitsForProposals(h store.Event) bool {
	if h.Kind != Kind {
		return false
	}
	switch gjson.GetBytes(h.Payload, "type").Str {
	case TypeRefundSucceeded, TypeRefundFailed, TypeOrderNeedsReview, TypeRefundProposed:
		return true
	}
	return false
}

// settles reports whether h is the webhook telling the outcome of refund
// (refund.succeeded or refund.failed naming it).
func settles(h store.Event, refund string) bool {
	if h.Kind != Kind || refund == "" {
		return false
	}
	switch gjson.GetBytes(h.Payload, "type").Str {
	case TypeRefundSucceeded, TypeRefundFailed:
		return gjson.GetBytes(h.Payload, "data.refund.refund_id").Str == refund
	}
	return false
}

// proposalQueueOrder is the order whose refund proposal's queue holds event
// h: a webhook (refund.proposed) names it in data.order.order_no, the
// proposal's audit records (payments/audit) in action.order_no; "" when h
// names none (it is then waited for by no order).
func proposalQueueOrder(h store.Event) string {
	if h.Kind == Kind {
		return gjson.GetBytes(h.Payload, "data.order.order_no").Str
	}
	return gjson.GetBytes(h.Payload, "action.order_no").Str
}
