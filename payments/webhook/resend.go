package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/store"
)

// ErrNothingToResend: the order is in a state no merchant event describes
// (being created, awaiting payment, a refund in flight); its next change
// will be announced.
var ErrNothingToResend = errors.New("no merchant event describes the order's current state")

// ErrNothingLost: a resend without force found nothing the merchant lost:
// no event announcing the order's current state was given up, and no
// resend of it waits. That announcement was acknowledged (or is still being
// delivered), and a merchant deduplicating by id would process a new one
// again (order.paid: deliver the goods twice). Events of an earlier state
// that were given up (a refund.failed, an order.approval_required) are not
// made up for by announcing the current state again.
var ErrNothingLost = errors.New("nothing to resend: the event announcing the order's current state was not given up; " +
	"it was delivered (or is still being delivered); " +
	"add ?force=true if the merchant lost it (a new event with a new id, which a merchant that still has the order processes again)")

// StateEvent is a fresh event announcing order o's current state, as the
// transition into it did: order.paid, order.approval_required,
// order.closed, order.needs_review, or refund.succeeded for a refunded
// order (its refund object covers all the money refunded so far). It has a
// new id: it is a new notice, and a receiver that deduplicates by id still
// processes it. (Resend without force gives it resendID instead.)
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
		refund = map[string]any{
			"order_no": o.OrderNo, "status": "succeeded",
			"amount_fen": o.RefundedFen, "refunded_fen": o.RefundedFen, "currency": currency(o.Currency),
		}
	default:
		return Envelope{}, fmt.Errorf("order %s is %s: %w", o.OrderNo, o.Status, ErrNothingToResend)
	}
	return newEnvelope(typ, o, refund), nil
}

// resendID is the id of a resend without force of env: derived from what
// env announces (its type and data; not its id or time), so every such
// resend of one state of an order carries one id, however many operators,
// tabs or retries ask at once. A copy that slips through (see Resend) then
// reaches the merchant under an id it has already seen. json.Marshal sorts
// map keys, so one state always gives the same bytes.
func resendID(env Envelope) string {
	env.ID, env.CreatedAt = "", ""
	b, err := json.Marshal(env)
	if err != nil {
		panic("webhook: marshal event: " + err.Error())
	}
	sum := sha256.Sum256(append([]byte("paygate webhook resend\n"), b...))
	return "evt_" + hex.EncodeToString(sum[:12])
}

// Resent is what Resend did.
type Resent struct {
	// Event announces the order's state: queued by this call or, when
	// AlreadyPending, an identical one queued before and still undelivered.
	Event store.Event
	Type  string
	// AlreadyPending: an identical resend waited in the order's queue;
	// nothing was queued.
	AlreadyPending bool
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
//     (order.paid for a paid order), or a resend of it is still pending
//     (next point). A dead letter of another type (a refund.failed given up
//     while the order.paid before it was delivered) does not count: the
//     current state was announced, and announcing it again under a new id
//     would have the merchant deliver twice.
//   - Its id is resendID, derived from the state announced, not random:
//     concurrent and repeated resends of one state are one event. It is
//     queued with EnqueueEventOnce, which looks for the id and appends in
//     one atomic step in both drivers (one bbolt transaction, one Lua
//     script), and the relay moves it to the delivery queue the same way
//     (move), so while it waits undelivered no second copy is queued, and
//     a resend that finds it waiting at the head of the order's intake or
//     delivery queue queues nothing and returns it (AlreadyPending). The
//     one copy that can still go out is queued by a resend that read the
//     dead letter before a concurrent one's event was delivered; it
//     carries the same id, which the merchant discards.
//
// With force the event has a fresh id, like any new event, and is always
// queued: the merchant processes it whatever it processed before. Forced
// resends never collapse; each one is another delivery.
//
// Once the event is queued (or found waiting), the order's dead letters are
// cleared: the event supersedes them (and is kept as one in turn, should it
// be given up too; resending that dead letter queues it again under its own
// id, so a merchant that processed it without answering 2xx discards it).
func (r *Relay) Resend(ctx context.Context, orderNo string, force bool) (Resent, error) {
	o, err := r.store.GetOrder(ctx, orderNo)
	if err != nil {
		return Resent{}, fmt.Errorf("order %s: %w", orderNo, err)
	}
	env, err := stateEnvelope(o)
	if err != nil {
		return Resent{}, err
	}
	id := resendID(env)
	if force {
		id = newEventID()
	}
	res := Resent{Type: env.Type, Event: encodeEvent(env, id, o.OrderNo, r.now())}
	dead := 0
	if force {
		if err := r.store.EnqueueEvents(ctx, res.Event); err != nil {
			return Resent{}, fmt.Errorf("enqueue resent event: %w", err)
		}
	} else {
		var pending bool
		var others []string
		dead, others, pending, err = r.lostOrPending(ctx, orderNo, res.Event.ID, env.Type)
		switch {
		case err != nil:
			return Resent{}, err
		case pending:
			res.AlreadyPending = true
		case dead == 0 && len(others) > 0:
			return Resent{}, fmt.Errorf("order %s is %s and its %s was not given up (given up: %s): %w",
				orderNo, o.Status, env.Type, strings.Join(others, ", "), ErrNothingLost)
		case dead == 0:
			return Resent{}, fmt.Errorf("order %s: %w", orderNo, ErrNothingLost)
		default:
			added, err := r.store.EnqueueEventOnce(ctx, res.Event)
			if err != nil {
				return Resent{}, fmt.Errorf("enqueue resent event: %w", err)
			}
			res.AlreadyPending = !added
		}
	}
	cleared := 0
	if force || dead > 0 {
		// Cleared only after the enqueue: a failure between the two leaves
		// the dead letter listed (the operator may resend again), never an
		// order with neither a dead letter nor a fresh event.
		if cleared, err = r.clearDead(ctx, orderNo); err != nil {
			r.log.WarnContext(ctx, "webhook resent, but its dead letters are still listed; sending the order again clears them",
				"event_id", res.Event.ID, "order_no", orderNo, "err", err)
		}
	}
	r.log.InfoContext(ctx, "webhook resent on an operator's request", "event_id", res.Event.ID, "order_no", orderNo,
		"status", o.Status, "forced", force, "already_pending", res.AlreadyPending, "dead_letters_cleared", cleared)
	r.Wake()
	return res, nil
}

// lostOrPending reads the outbox for Resend: how many dead letters of type
// typ order orderNo has, the types of its others, and whether event id
// waits at the head of the order's intake or delivery queue. It reads the
// keys starting with the order's number and queue and dead-letter prefixes
// (Outbox.OutboxHeads: also those of longer numbers, told apart below), all
// of them, however many other orders' events wait. A Redis outbox is read as a list of keys, then their
// heads, not in one step: a read made while a concurrent resend queued its
// event (listing its key) and then cleared the dead letters can see neither.
// So before it reports neither it reads once more: that read lists the keys
// after the first one's heads were read, so it sees the event (or the
// relay took it since). Were the event behind another on its queue, it is
// not seen: the resend is refused rather than queued twice.
func (r *Relay) lostOrPending(ctx context.Context, orderNo, id, typ string) (dead int, others []string, pending bool, err error) {
	for range 2 {
		heads, err := r.store.OutboxHeads(ctx, deadKeys(orderNo), orderNo, QueuePrefix+orderNo)
		if err != nil {
			return 0, nil, false, fmt.Errorf("read the outbox: %w", err)
		}
		others = others[:0]
		for _, h := range heads {
			if h.Kind != Kind {
				continue
			}
			if no, ok := deadOrder(h.Key, h.ID); ok {
				if no != orderNo {
					continue
				}
				if t := gjson.GetBytes(h.Payload, "type").Str; t == typ {
					dead++
				} else {
					others = append(others, t)
				}
			} else if h.ID == id && (h.Key == orderNo || h.Key == QueuePrefix+orderNo) {
				pending = true
			}
		}
		if dead > 0 || pending {
			return dead, others, pending, nil
		}
	}
	return 0, others, false, nil
}

// ResendHandler serves POST /admin/api/orders/{order_no}/webhook (behind
// the admin token), Resend with ?force=true when asked: 202 with the
// queued event's event_id and type, 200 with those of an identical resend
// still waiting (already_pending: true; nothing queued), 404 for an unknown
// order, 409 when no event describes its state or, without force, when
// nothing was lost (can_force: true: force=true would send it), 400 for a
// force that is not a boolean. Errors are the admin API's {"error": "…"}.
func (r *Relay) ResendHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		force := false
		if q := req.URL.Query(); q.Has("force") {
			f, err := strconv.ParseBool(q.Get("force"))
			if err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "force must be true or false"})
				return
			}
			force = f
		}
		res, err := r.Resend(req.Context(), req.PathValue("order_no"), force)
		switch {
		case errors.Is(err, store.ErrNotFound):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		case errors.Is(err, ErrNothingLost):
			writeJSON(w, http.StatusConflict, map[string]any{"error": err.Error(), "can_force": true})
		case errors.Is(err, ErrNothingToResend):
			writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
		case err != nil:
			r.log.ErrorContext(req.Context(), "webhook resend failed", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the store did not answer; try again"})
		default:
			status := http.StatusAccepted
			if res.AlreadyPending {
				status = http.StatusOK
			}
			writeJSON(w, status, map[string]any{"event_id": res.Event.ID, "type": res.Type, "already_pending": res.AlreadyPending})
		}
	})
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
