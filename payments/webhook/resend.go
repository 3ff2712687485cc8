package webhook

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// ErrNothingToResend: the order is in a state no merchant event describes
// (being created, awaiting payment, a refund in flight); its next change
// will be announced.
var ErrNothingToResend = errors.New("no merchant event describes the order's current state")

// ErrNothingLost: a resend without force found nothing the merchant lost:
// no event announcing the order's current state was given up, and none
// waits at the head of the order's queue. That announcement was
// acknowledged (or waits behind the order's other pending events), and a
// merchant deduplicating by id would process a new one again (order.paid:
// deliver the goods twice). Events of an earlier state that were given up
// (a refund.failed, an order.approval_required) are not made up for by
// announcing the current state again.
var ErrNothingLost = errors.New("nothing to resend: the event announcing the order's current state was not given up; " +
	"it was delivered (or waits behind the order's other pending events); " +
	"add ?force=true if the merchant lost it (a new event with a new id, which a merchant that still has the order processes again)")

// ErrEventsHeld: a resend without force found no event announcing the
// order's current state waiting or given up, or only given-up ones, while
// the head of the order's queue was another kind of event (a transition's
// audit record, queued ahead of its webhook event, not yet sealed) for
// longer than heldWait: what waits behind it (the announcement itself,
// or a later refund's event the given-up ones must go ahead of) cannot be
// read, and neither a 409 "nothing lost", with its force, nor the dead
// letters queued behind it would be right. Nothing is queued; asked again
// once the record is sealed, the resend sees the queue.
var ErrEventsHeld = errors.New("the order's latest events wait in its queue behind its audit record, " +
	"which is not sealed yet; nothing was sent: try again in a moment")

// heldWait bounds how long a resend waits for an event of another kind at
// the head of the order's queue to leave it (ErrEventsHeld); heldPoll is
// how often it looks meanwhile. The audit worker, woken by the transition's
// commit, seals its record at once.
const (
	heldWait = 2 * time.Second
	heldPoll = 20 * time.Millisecond
)

// StateEvent is a fresh event announcing order o's current state, as the
// transition into it did: order.paid, order.approval_required,
// order.closed, order.needs_review, or refund.succeeded for a refunded
// order (its refund object covers all the money refunded so far). It has a
// new id: it is a new notice, and a receiver that deduplicates by id still
// processes it. (Resend without force gives it the id of the given-up event
// that announced this state, or resendID.)
func StateEvent(o *store.Order, at time.Time) (store.Event, error) {
	env, err := stateEnvelope(o)
	if err != nil {
		return store.Event{}, err
	}
	return encodeEvent(env, newEventID(), o.OrderNo, at), nil
}

// stateEnvelope is the body of StateEvent, without its id and time.
func stateEnvelope(o *store.Order) (Envelope, error) {
	var refund map[string]any
	typ := ""
	switch o.Status {
	case store.StatusPaid:
		typ = TypeOrderPaid
	case store.StatusApprovalRequired:
		typ = TypeOrderApprovalRequired
	case store.StatusClosed, store.StatusExpired, store.StatusRejected:
		typ = TypeOrderClosed
	case store.StatusNeedsReview:
		typ = TypeOrderNeedsReview
	case store.StatusRefunded, store.StatusPartiallyRefunded:
		typ = TypeRefundSucceeded
		// No refund named: the money refunded so far, settled as of the
		// order's last change.
		refund = outcomeObject(&store.RefundProposal{OrderNo: o.OrderNo, AmountFen: o.RefundedFen}, o, "succeeded")
	default:
		return Envelope{}, fmt.Errorf("order %s is %s: %w", o.OrderNo, o.Status, ErrNothingToResend)
	}
	return newEnvelope(typ, o, refund), nil
}

// resendID is the id of a resend without force of env when no given-up
// event announced env's state (see Resend): derived from what env
// announces (its type and data; not its id or time), so every such resend
// of one state of an order carries one id, however many operators, tabs or
// retries ask at once. A copy that slips through (see Resend) then reaches
// the merchant under an id it has already seen. json.Marshal sorts map
// keys, so one state always gives the same bytes.
func resendID(env Envelope) string {
	env.ID, env.CreatedAt = "", ""
	b, err := json.Marshal(env)
	if err != nil {
		panic("webhook: marshal event: " + err.Error())
	}
	sum := sha256.Sum256(append([]byte("paygate webhook resend\n"), b...))
	return "evt_" + hex.EncodeToString(sum[:12])
}

// stateOf is what an event body announces: its JSON without "id" and
// "created_at" (a retry, a resend and the original differ there at most),
// keys sorted and numbers as written, so that bodies rendered at different
// times, or by an earlier version, compare equal when they announce the
// same type and data. A refund.succeeded is compared without its refund
// object: the transition's names the refund (refund_id, reason, that
// refund's amount), which stateEnvelope, knowing only the order, cannot
// rebuild, and the order object (its refunded_fen grows with every refund)
// already tells which refund brought the order to its state. Compared
// whole, the given-up refund.succeeded never announced the current state,
// so a resend sent a new id that a merchant who had handled the lost one
// acted on again (revoking the goods twice), and one made while the
// original was still retried was refused. ok is false for a body that
// does not decode.
func stateOf(body []byte) (state string, ok bool) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil || m == nil {
		return "", false
	}
	delete(m, "id")
	delete(m, "created_at")
	if data, _ := m["data"].(map[string]any); data != nil && m["type"] == TypeRefundSucceeded {
		delete(data, "refund")
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// Resent is what Resend did.
type Resent struct {
	// Event announces the order's state: queued by this call or, when
	// AlreadyPending, one queued before and still undelivered: one
	// announcing the same state (type and data), or, for a refunded
	// order, the order.paid or an earlier refund's refund.succeeded the
	// announcement waits behind (Type is then that event's).
	Event store.Event
	Type  string
	// AlreadyPending: Event waited at the head of the order's queue (or,
	// announcing the state, was set back behind Queued).
	AlreadyPending bool
	// Queued are the events this call added to the order's queue, in the
	// order they leave: an operator told only "already pending" after a
	// resend that queued given-up events again (and set the waiting one
	// back behind them) would not know the merchant is about to get them.
	Queued []store.Event
}

// Resend announces order orderNo's current state to the merchant again
// (StateEvent's body), behind the order's other pending events: for an
// endpoint that was down past the retry window, or (force) a merchant who
// lost what it got. It returns store.ErrNotFound for an unknown order and
// ErrNothingToResend for a state no event describes.
//
// The README tells merchants to deduplicate by id and to deliver the goods
// on order.paid, so a resend under a new id that nothing needed makes them
// deliver twice. Hence, without force:
//
//   - It is refused (ErrNothingLost) unless the announcement of the
//     current state was lost: the order has a dead letter of its type
//     (order.paid for a paid order), or an event announcing the state waits
//     at the head of the order's intake or delivery queue (a resend, or the
//     original still being retried: AlreadyPending, nothing queued). A dead
//     letter of another type (a refund.failed given up while the order.paid
//     before it was delivered) does not count: the current state was
//     announced, and announcing it again under a new id would have the
//     merchant deliver twice. While the head of the order's intake queue is
//     an event of another kind (a transition's audit record, queued ahead
//     of its webhook event and not yet sealed), what waits behind it is not
//     read: the resend waits for it to leave (lostOrPendingUnheld), and is
//     refused with ErrEventsHeld, nothing queued, if it does not.
//   - A dead letter that announces the current state (same type and data)
//     is queued again as it was, under its own id: "given up" means no 2xx
//     came back, not that the merchant did not process it (it answered
//     after the timeout, or a proxy in front of it answered 502), and a
//     merchant that did discards it by id. Of several such dead letters the
//     oldest is taken, so concurrent resends pick the same. Only when none
//     announces the current state (the dead letter of its type was of an
//     earlier version of it) does the event get resendID, derived from the
//     state announced; an order.paid then gets its payment's id
//     (paidEventID), that of the given-up one, which a merchant that
//     acted on it discards (under resendID it delivered twice).
//   - A refunded order's given-up refund.succeeded events are all queued
//     again as they were, oldest first: each tells of its own refund
//     (data.refund.amount_fen is that refund's), which a later one, or one
//     rebuilt from the order carrying the total, does not stand for. Announcing only the current state
//     had a merchant that never got an earlier refund's event never revoke
//     it, and one that got the later one revoke it again inside the total.
//     A later refund's event still waiting at the head of the order's
//     queue is set back behind them (setBack; named, AlreadyPending):
//     queued behind it, they reached the merchant after it, whose last
//     word on the order was then an earlier, smaller refunded total.
//   - A refunded order's given-up order.paid is queued again too, as it
//     was and ahead of its refunds' events, when they go out again (given
//     up, or set back) or with force: it is the merchant's only word that
//     the order was paid (a refund.succeeded tells it to revoke, not to
//     deliver), and is cleared only once queued. Cleared with the refunds'
//     dead letters, the merchant never delivered what the payer still paid
//     for. With the refunds' events delivered, a resend without force is
//     refused and keeps it listed: alone, after them, it would have the
//     merchant deliver the goods of an order refunded in full. While it
//     waits at the head of the order's queue, a resend names it
//     (AlreadyPending), as it names an earlier refund's event waiting
//     there with nothing lost (refundAhead): the announcement waits behind
//     them, and a refusal offered a force that would have the merchant
//     revoke the total again.
//   - Either way the id is one for every resend of one state, not random:
//     concurrent and repeated resends are one event. It is queued with
//     EnqueueEventsOnce, which looks for the id and appends in one atomic
//     step in both drivers (one bbolt transaction, one Lua script), and the
//     relay moves it to the delivery queue the same way (move), so while it
//     waits undelivered no second copy is queued, and a resend that finds
//     it (or any event announcing the state) waiting at the head of the
//     order's intake or delivery queue queues nothing and returns it
//     (AlreadyPending). The one copy that can still go out is queued by a
//     resend that read the dead letter before a concurrent one's event was
//     delivered; it carries the same id, which the merchant discards.
//
// With force the event has a fresh id, like any new event, and is always
// queued: the merchant processes it whatever it processed before. Forced
// resends never collapse; each one is another delivery.
//
// A resend that queued events (forced or not) is audited: its record
// (Options.ResendEvents: action webhook.resent, the events queued, whether
// forced, the operator of ctx's payments.Actor) is queued in the same
// atomic step as the events, behind them (enqueue). One that queued
// nothing (refused, or AlreadyPending with nothing added) records nothing.
//
// Once the event is queued (or found waiting), the order's dead letters
// read before it was are cleared: the event supersedes them (and is kept as
// one in turn, should it be given up too; resending that dead letter queues
// it again under its own id). One given up since (on another replica) is
// superseded by nothing queued, and stays listed, as does one whose event
// was also read still queued (stillQueued: it may be buried onto that dead
// letter meanwhile).
func (r *Relay) Resend(ctx context.Context, orderNo string, force bool) (Resent, error) {
	o, err := r.store.GetOrder(ctx, orderNo)
	if err != nil {
		return Resent{}, fmt.Errorf("order %s: %w", orderNo, err)
	}
	env, err := stateEnvelope(o)
	if err != nil {
		return Resent{}, err
	}
	res := Resent{Type: env.Type}
	dead := 0
	var seen map[string]bool // the dead letters read before anything was queued
	if force {
		var paid *store.Event
		if seen, paid, err = r.deadIDs(ctx, orderNo); err != nil {
			return Resent{}, err
		}
		var queue []store.Event
		if paid != nil && env.Type == TypeRefundSucceeded {
			// Ahead of the new event: the order was paid before it was
			// refunded, and nothing else tells the merchant so.
			queue = append(queue, requeued(paid, o.OrderNo, r.now()))
		}
		res.Event = encodeEvent(env, newEventID(), o.OrderNo, r.now())
		if res.Queued, err = r.enqueue(ctx, o, append(queue, res.Event), true); err != nil {
			return Resent{}, err
		}
	} else {
		found, err := r.lostOrPendingUnheld(ctx, orderNo, env)
		setBack := false // the announcement waited, and was set back behind the earlier refunds
		if err != nil {
			return Resent{}, err
		}
		if p := found.pending; p != nil && (len(found.refunds) > 0 || found.paid != nil) &&
			gjson.GetBytes(p.Payload, "type").Str == TypeRefundSucceeded {
			// The latest refund's event still waits, the earlier ones'
			// (or the order.paid) were given up: it goes after them, so
			// that the merchant's last word on the order is its refunded
			// total.
			if err := r.setBack(ctx, *p, orderNo); err != nil {
				return Resent{}, err
			}
			found.refunds = append(found.refunds, p)
			found.seen[p.ID] = true
			found.dead++
			found.pending, setBack = nil, true
		}
		dead, seen = found.dead, found.seen
		// A refunded order's given-up order.paid goes out ahead of its
		// refunds' events, when they go out too. When they were
		// delivered it is not sent alone (the resend is refused, and the
		// dead letter kept): after them, the merchant would deliver the
		// goods of an order refunded in full, its last word on the order
		// being "paid, nothing refunded". A forced resend sends it ahead
		// of the order's state.
		var paid []store.Event
		if found.paid != nil && len(found.refunds) > 0 {
			paid = []store.Event{requeued(found.paid, o.OrderNo, r.now())}
			dead++ // lost, and cleared once queued, as one of env's type
		}
		switch {
		case found.pending != nil:
			res.Event, res.AlreadyPending = *found.pending, true
			res.Type = gjson.GetBytes(res.Event.Payload, "type").Str
			// Earlier refunds' given-up events still go out: the one
			// waiting tells of its own refund only. So does a given-up
			// order.paid: the one waiting tells of a refund, not that
			// the order was paid.
			for _, dl := range found.refunds {
				paid = append(paid, requeued(dl, o.OrderNo, r.now()))
			}
			if res.Queued, err = r.enqueue(ctx, o, paid, false); err != nil {
				return Resent{}, err
			}
		case dead == 0 && found.refundAhead != nil:
			// What a resend queued waits: the earlier refunds' events
			// ahead, the announcement behind them (set back, or given
			// up with them). This is that resend asked again (a
			// client's retry, another tab); refused, it offered a force
			// whose new id a merchant revoking each refund once would
			// revoke the whole total again on.
			res.Event, res.AlreadyPending = *found.refundAhead, true
		case dead == 0 && len(found.others) > 0:
			return Resent{}, fmt.Errorf("order %s is %s and its %s was not given up (given up: %s): %w",
				orderNo, o.Status, env.Type, strings.Join(found.others, ", "), ErrNothingLost)
		case dead == 0:
			return Resent{}, fmt.Errorf("order %s: %w", orderNo, ErrNothingLost)
		default:
			queue := paid
			switch {
			case len(found.refunds) > 0:
				// Every given-up refund.succeeded, oldest first, the
				// last announcing the current state when it was given
				// up too: each tells of its own refund, which a later
				// one does not stand for.
				for _, dl := range found.refunds {
					queue = append(queue, requeued(dl, o.OrderNo, r.now()))
				}
			case found.same != nil:
				queue = append(queue, requeued(found.same, o.OrderNo, r.now()))
			default:
				// An order.paid keeps its payment's id (paidEventID),
				// the one the given-up event of an earlier body was
				// sent under: the merchant may have acted on it.
				id := resendID(env)
				if env.Type == TypeOrderPaid && o.TransactionID != "" {
					id = paymentEventID(o.OrderNo, o.TransactionID)
				}
				queue = append(queue, encodeEvent(env, id, o.OrderNo, r.now()))
			}
			if res.Queued, err = r.enqueue(ctx, o, queue, false); err != nil {
				return Resent{}, err
			}
			res.Event = queue[len(queue)-1]
			// Nothing queued: it waits (a concurrent resend queued it).
			// Set back, it is still the event that waited (under its
			// id): named as found waiting, as before it was.
			res.AlreadyPending = len(res.Queued) == 0 || setBack
		}
	}
	cleared := 0
	if force || dead > 0 {
		// Cleared only after the enqueue: a failure between the two leaves
		// the dead letter listed (the operator may resend again), never an
		// order with neither a dead letter nor a fresh event.
		if cleared, err = r.clearDead(ctx, orderNo, seen); err != nil {
			r.log.WarnContext(ctx, "webhook resent, but its dead letters are still listed; sending the order again clears them",
				"event_id", res.Event.ID, "order_no", orderNo, "err", err)
		}
	}
	r.log.InfoContext(ctx, "webhook resent on an operator's request", "event_id", res.Event.ID, "order_no", orderNo,
		"status", o.Status, "forced", force, "already_pending", res.AlreadyPending, "dead_letters_cleared", cleared)
	r.Wake()
	return res, nil
}

// enqueue queues evs (all on order o's queue) but those whose id is
// pending there already (a concurrent resend queued them), and with them,
// in the same atomic step (store.Outbox.EnqueueEventsOnce), their audit
// record (Options.ResendEvents), which names exactly the events queued. A
// call that finds some of evs pending queues nothing, and the rest is
// queued again with a record naming them. It returns the events queued,
// in the order they leave; none, and no record, when all were pending.
func (r *Relay) enqueue(ctx context.Context, o *store.Order, evs []store.Event, forced bool) ([]store.Event, error) {
	for len(evs) > 0 {
		var rec []store.Event
		if f := r.opts.ResendEvents; f != nil {
			rec = f(ctx, o, evs, forced)
		}
		pending, err := r.store.EnqueueEventsOnce(ctx, evs, rec...)
		if err != nil {
			return nil, fmt.Errorf("enqueue resent event: %w", err)
		}
		if len(pending) == 0 {
			return evs, nil
		}
		evs = slices.DeleteFunc(slices.Clone(evs), func(e store.Event) bool { return slices.Contains(pending, e.ID) })
	}
	return nil, nil
}

// setBack takes event p, the latest refund's refund.succeeded waiting at
// the head of order orderNo's intake or delivery queue, off it, to be
// queued again after the earlier refunds' given-up events: queued behind
// it, they reached the merchant after it, and a merchant keeping the order
// as its events tell it (data.order, data.refund.refunded_fen) ended on
// the smaller total of an earlier refund. It is kept as a dead letter
// first, as bury keeps a given-up event, so that a failure (or a crash)
// before it is queued again leaves it listed for a resend, never lost. A
// relay posting it meanwhile records its outcome by id on no event, or on
// the copy queued again once a relay moved that to the delivery queue: its
// 2xx takes the copy off (the merchant has the event), a failure
// reschedules the copy or buries it onto a dead letter listed again.
//
// It takes off p itself (AckEventAt: its id and CreatedAt), not a copy
// queued since under its id: a concurrent resend may have set p back
// first, queued its copy (CreatedAt: when it was queued) and cleared the
// dead letter, and a relay moved that copy to p's queue. Taken off by id
// alone, that copy was gone, and this resend's own copy, queued while the
// relay's move still held the other on the order's queue, was not added:
// the move then took that one off too, and the later refund's event was
// neither queued nor listed.
//
// It takes p off both queues, the order's first: read on the order's
// queue, p may have been moved to the delivery queue since (its copy there
// keeps its id and CreatedAt), and taken off the order's queue alone it
// stayed there, ahead of the earlier refunds' events. Once p is off the
// order's queue only a move that claimed it before can still append its
// copy to the delivery queue; that copy goes out first, and the one queued
// again after the earlier refunds' events is discarded by id.
func (r *Relay) setBack(ctx context.Context, p store.Event, orderNo string) error {
	dl := p
	dl.Key = deadKey(orderNo, p.ID)
	dl.NextAt, dl.FailedAt = neverDue, r.now()
	if _, err := r.store.EnqueueEventsOnce(ctx, []store.Event{dl}); err != nil {
		return fmt.Errorf("keep the waiting refund.succeeded %s: %w", p.ID, err)
	}
	for _, key := range []string{orderNo, QueuePrefix + orderNo} {
		if err := r.store.AckEventAt(ctx, key, p.ID, p.CreatedAt); err != nil {
			return fmt.Errorf("take the waiting refund.succeeded %s off its queue: %w", p.ID, err)
		}
	}
	return nil
}

// requeued is given-up event dl as Resend queues it again on order
// orderNo: its id and body (every attempt sends the same bytes); CreatedAt
// is now, when it is queued again, which the backlog's age is judged from.
func requeued(dl *store.Event, orderNo string, now time.Time) store.Event {
	return store.Event{ID: dl.ID, Kind: Kind, Key: orderNo, Payload: dl.Payload, CreatedAt: now}
}

// lost is what lostOrPending found of an order's lost or pending
// announcements.
type lost struct {
	dead int          // dead letters of the current state's type
	same *store.Event // the oldest of them announcing the current state (type and data)
	// refunds are the given-up refund.succeeded events, in the order of
	// their refunds (the order's total refunded each tells of), when
	// the current state is announced by one: each tells of its own refund
	// (data.refund.amount_fen is that refund's), so a later one does not
	// stand for an earlier one, as a later order.needs_review stands for
	// an earlier version of the state.
	refunds []*store.Event
	// paid is the oldest given-up order.paid of an order now refunded
	// (partly or in full): it is the merchant's only word that the order
	// was paid (a refund.succeeded tells it to revoke, not to deliver), so
	// it is lost news of its own, queued again ahead of the refunds.
	paid    *store.Event
	others  []string        // the types of the order's other dead letters
	seen    map[string]bool // the ids of all the order's dead letters read
	pending *store.Event    // an event announcing the current state at the head of the intake or delivery queue
	// refundAhead is a refund.succeeded of a refunded order at the head of
	// its delivery (else intake) queue that does not announce the current
	// state: an earlier refund's, which a resend queued again ahead of the
	// later ones (TestResendAgainWhileTheRefundsWait). The announcement
	// waits behind it.
	refundAhead *store.Event
	// held: the head of the order's intake queue is an event of another
	// kind (a transition's audit record, queued ahead of its webhook
	// event), behind which the heads read do not show what waits.
	held bool
}

// lostOrPending reads the outbox for Resend: order orderNo's dead letters
// (of env's type, the oldest announcing env's state, the types of the
// others), and an event announcing env's state waiting at the head of the
// order's intake or delivery queue. It reads the keys starting with the
// order's number and queue and dead-letter prefixes (Outbox.OutboxHeads:
// also those of longer numbers, told apart below), all of them, however
// many other orders' events wait. A Redis outbox is read as a list of keys, then their
// heads, not in one step: a read made while a concurrent resend queued its
// event (listing its key) and then cleared the dead letters can see neither,
// and one made while a relay moved the event from the order's queue to its
// delivery queue (unlisted while empty) sees the dead letters and no event
// waiting, so that the given-up events were queued behind it (the merchant's
// last word an earlier refund's total). So before it reports no event
// waiting it reads once more: that read lists the keys after the first
// one's heads were read, so it sees the event (or the relay took it since).
// Were the event behind another on its queue, it is not seen: the resend
// is refused rather than queued twice (behind an event of another kind, an
// audit record, lostOrPendingUnheld waits for it to leave first).
// The second read can itself meet the other race: a concurrent resend
// queued the dead letters the first read found, then cleared them (or,
// the first read having met that, the relay the resend woke moved its
// event from the order's queue to the delivery queue). A second read that
// finds nothing at all is followed by a third, which lists the keys after
// both moves' copies. When the last read finds nothing lost and nothing
// waiting, the first read's answer stands (the dead letters are queued
// again under their own ids, which EnqueueEventsOnce finds still queued):
// refused, a resend answered 409 "delivered" while the event waited, and
// an operator forcing a new id had the merchant deliver twice.
func (r *Relay) lostOrPending(ctx context.Context, orderNo string, env Envelope) (lost, error) {
	want, ok := stateOf(encodeEvent(env, "", orderNo, time.Time{}).Payload)
	if !ok {
		return lost{}, fmt.Errorf("order %s: the %s event does not decode", orderNo, env.Type)
	}
	var l, first lost
	for i := range 3 {
		heads, err := r.store.OutboxHeads(ctx, deadKeys(orderNo), orderNo, QueuePrefix+orderNo)
		if err != nil {
			return lost{}, fmt.Errorf("read the outbox: %w", err)
		}
		l = lost{seen: map[string]bool{}}
		var paidFirst *store.Event
		for i := range heads {
			h := &heads[i]
			if h.Kind != Kind {
				l.held = l.held || h.Key == orderNo
				continue
			}
			state, _ := stateOf(h.Payload)
			if no, ok := deadOrder(h.Key, h.ID); ok {
				if no != orderNo {
					continue
				}
				l.seen[h.ID] = true
				if t := gjson.GetBytes(h.Payload, "type").Str; t != env.Type {
					if t == TypeOrderPaid && env.Type == TypeRefundSucceeded {
						l.paid = older(l.paid, h)
					}
					l.others = append(l.others, t)
					continue
				}
				l.dead++
				if env.Type == TypeRefundSucceeded {
					l.refunds = append(l.refunds, h)
				}
				if state == want && (l.same == nil || h.CreatedAt.Before(l.same.CreatedAt) ||
					h.CreatedAt.Equal(l.same.CreatedAt) && h.ID < l.same.ID) {
					l.same = h
				}
			} else if h.Key == orderNo || h.Key == QueuePrefix+orderNo {
				switch {
				case state == want:
					l.pending = h
				case paidFirst == nil && env.Type == TypeRefundSucceeded && gjson.GetBytes(h.Payload, "type").Str == TypeOrderPaid:
					// A refunded order's order.paid waiting (queued
					// again by a resend, or still retried) goes
					// ahead of its refunds' events: they are
					// queued behind it, or were delivered.
					paidFirst = h
				case env.Type == TypeRefundSucceeded && gjson.GetBytes(h.Payload, "type").Str == TypeRefundSucceeded &&
					(l.refundAhead == nil || h.Key == QueuePrefix+orderNo):
					l.refundAhead = h
				}
			}
		}
		if l.pending == nil {
			l.pending = paidFirst
		}
		stillQueued(l.seen, heads, orderNo)
		// In the order of the refunds: the order's total refunded, which
		// each refund raises, then when queued. The queue time alone is
		// not: one queued again by an earlier resend carries that resend's
		// time, later than a later refund's event it was queued behind.
		slices.SortFunc(l.refunds, func(a, b *store.Event) int {
			const total = "data.refund.refunded_fen"
			return cmp.Or(cmp.Compare(gjson.GetBytes(a.Payload, total).Int(), gjson.GetBytes(b.Payload, total).Int()),
				a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
		})
		if l.pending != nil {
			return l, nil
		}
		if i == 0 {
			first = l
		} else if l.dead > 0 || l.refundAhead != nil || len(l.others) > 0 || l.paid != nil {
			break
		}
	}
	if l.dead == 0 && l.refundAhead == nil && first.dead > 0 {
		return first, nil
	}
	return l, nil
}

// lostOrPendingUnheld is lostOrPending once the order's intake queue is
// not held: while an event of another kind heads it (held) and no event
// announcing env's state was found waiting, the events behind it are not
// read (OutboxHeads reads heads alone), and an order.paid waiting there
// was answered "nothing lost" (and forced, announced twice), a later
// refund's event waiting there had the given-up earlier ones queued behind
// it. A transition queues its audit record ahead of its webhook event
// (cmd/paygate withWebhookEvents), so that is every transition's state
// until the audit worker seals the record. It reads again until the head
// leaves, up to heldWait, and then refuses (ErrEventsHeld).
func (r *Relay) lostOrPendingUnheld(ctx context.Context, orderNo string, env Envelope) (lost, error) {
	deadline := time.Now().Add(heldWait)
	for {
		l, err := r.lostOrPending(ctx, orderNo, env)
		if err != nil || !l.held || l.pending != nil {
			return l, err
		}
		if !time.Now().Before(deadline) {
			return lost{}, fmt.Errorf("order %s: %w", orderNo, ErrEventsHeld)
		}
		t := time.NewTimer(heldPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return lost{}, ctx.Err()
		case <-t.C:
		}
	}
}

// ResendHandler serves POST /admin/api/orders/{order_no}/webhook (behind
// the admin token), Resend with ?force=true when asked: 202 with the
// queued event's event_id and type, 200 with those of an event still
// waiting (already_pending: true: one announcing the state, an identical
// resend or the original still retried, or a refunded order's order.paid
// or earlier refund's event it waits behind), 404 for an unknown
// order, 409 when no event describes its state or, without force, when
// nothing was lost (can_force: true: force=true would send it) or what
// waits behind the order's unsealed audit record cannot be read yet
// (ErrEventsHeld: try again), 400 for a
// force that is not a boolean or given twice, and for another parameter.
// Errors are the admin API's {"error": "…"}.
// Either 2xx lists in queued ({event_id, type}, in the order they leave)
// what the call added to the order's queue: a 200 may have queued given-up
// events ahead of the one it names (setting that one back behind them), and
// the operator must be told the merchant is about to get them.
func (r *Relay) ResendHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		force := false
		// Only force, once: ?force=true&force=false forced a new event,
		// the second value unread, and a misspelt ?Force=true was
		// answered as if unforced (the admin API refuses both elsewhere).
		q, ok := readQuery(w, req)
		if !ok {
			return
		}
		for k, vs := range q {
			switch {
			case k != "force":
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unknown query parameter " + strconv.Quote(k) + "; " + req.URL.Path + " takes force"})
				return
			case len(vs) > 1:
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": `"force" is given more than once`})
				return
			}
		}
		if q.Has("force") {
			f, err := strconv.ParseBool(q.Get("force"))
			if err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "force must be true or false"})
				return
			}
			force = f
		}
		res, err := r.Resend(req.Context(), req.PathValue("order_no"), force)
		switch {
		case clientGone(req, err):
			goneAnswer(w)
		case errors.Is(err, store.ErrNotFound):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		case errors.Is(err, ErrNothingLost):
			writeJSON(w, http.StatusConflict, map[string]any{"error": err.Error(), "can_force": true})
		case errors.Is(err, ErrNothingToResend), errors.Is(err, ErrEventsHeld):
			writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
		case err != nil:
			r.log.ErrorContext(req.Context(), "webhook resend failed", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": unavailableText(err, "the store did not answer; try again")})
		default:
			status := http.StatusAccepted
			if res.AlreadyPending {
				status = http.StatusOK
			}
			queued := make([]map[string]string, 0, len(res.Queued))
			for _, ev := range res.Queued {
				queued = append(queued, map[string]string{"event_id": ev.ID, "type": gjson.GetBytes(ev.Payload, "type").Str})
			}
			writeJSON(w, status, map[string]any{"event_id": res.Event.ID, "type": res.Type, "already_pending": res.AlreadyPending, "queued": queued})
		}
	})
}

// ResumeHandler serves POST /admin/api/webhooks/resume: Resume, an
// operator's end of the merchant's pause, answered {"paused_until": the end
// it had, or null when this process was not paused, "released": the events
// made due now}. Mounted behind the admin token and the console's CSRF
// guard, and proxy.AdminActor, whose actor (the operator's name and reason
// from the optional body) its log line names. No query parameter is taken
// (a ?dry_run=1 ends nothing, for real or not).
func (r *Relay) ResumeHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if refuseQuery(w, req) {
			return
		}
		res, err := r.Resume(req.Context())
		attrs := []any{"paused_until", res.PausedUntil, "released", res.Released}
		if a := payments.ActorFrom(req.Context()); a != nil {
			attrs = append(attrs, "request_id", a.RequestID, "remote_addr", a.RemoteAddr, "operator", a.Operator, "reason", a.Reason)
		}
		if err != nil {
			attrs = append(attrs, "err", err)
		}
		// At warn, as the pause it ends was logged.
		r.log.WarnContext(req.Context(), "merchant webhook endpoint's pause ended by an operator: webhooks are sent to it again", attrs...)
		switch {
		case clientGone(req, err):
			goneAnswer(w)
		case err != nil:
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": unavailableText(err,
				"the pause ended, but the store did not answer: events it held may still wait until the time the merchant named; try again")})
		default:
			var until any // in UTC, as every admin API time is (Stats)
			if !res.PausedUntil.IsZero() {
				until = res.PausedUntil.UTC()
			}
			writeJSON(w, http.StatusOK, map[string]any{"paused_until": until, "released": res.Released})
		}
	})
}

// DisabledResumeHandler answers the resume route when webhooks.url is
// empty.
func DisabledResumeHandler() http.Handler {
	return DisabledResendHandler()
}

// DisabledResendHandler answers the resend route when webhooks.url is empty.
func DisabledResendHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusConflict, map[string]string{"error": "merchant webhooks are off (webhooks.url is empty)"})
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
