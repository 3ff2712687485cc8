package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/paygate/paygate/store"
)

// ErrNothingToResend: the order is in a state no merchant event describes
// (being created, awaiting payment, a refund in flight); its next change
// will be announced.
var ErrNothingToResend = errors.New("no merchant event describes the order's current state")

// StateEvent is a fresh event announcing order o's current state, as the
// transition into it did: order.paid, order.approval_required,
// order.closed, order.needs_review, or refund.succeeded for a refunded
// order (its refund object covers all the money refunded so far). It has a
// new id: it is a new notice, and a receiver that deduplicates by id still
// processes it.
func StateEvent(o *store.Order, at time.Time) (store.Event, error) {
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
		return store.Event{}, fmt.Errorf("order %s is %s: %w", o.OrderNo, o.Status, ErrNothingToResend)
	}
	return NewEvent(typ, o, refund, at), nil
}

// Resend announces order orderNo's current state to the merchant again
// (StateEvent), behind the order's other pending events: for an endpoint
// that was down past the retry window, or a merchant who lost what it got.
// Once the event is queued, the order's dead letters are cleared: the fresh
// event supersedes them (and is kept as one in turn, should it be given up
// too). It returns the event enqueued; store.ErrNotFound for an unknown
// order.
func (r *Relay) Resend(ctx context.Context, orderNo string) (store.Event, error) {
	o, err := r.store.GetOrder(ctx, orderNo)
	if err != nil {
		return store.Event{}, fmt.Errorf("order %s: %w", orderNo, err)
	}
	ev, err := StateEvent(o, r.now())
	if err != nil {
		return store.Event{}, err
	}
	if err := r.store.EnqueueEvents(ctx, ev); err != nil {
		return store.Event{}, fmt.Errorf("enqueue resent event: %w", err)
	}
	// Cleared only after the enqueue: a failure between the two leaves the
	// dead letter listed (the operator may resend again), never an order
	// with neither a dead letter nor a fresh event.
	cleared, err := r.clearDead(ctx, orderNo)
	if err != nil {
		r.log.WarnContext(ctx, "webhook resent, but its dead letters are still listed; sending the order again clears them",
			"event_id", ev.ID, "order_no", orderNo, "err", err)
	}
	r.log.InfoContext(ctx, "webhook resent on an operator's request", "event_id", ev.ID, "order_no", orderNo,
		"status", o.Status, "dead_letters_cleared", cleared)
	r.Wake()
	return ev, nil
}

// ResendHandler serves POST /admin/api/orders/{order_no}/webhook (behind
// the admin token): 202 with the event's id and type, 404 for an unknown
// order, 409 when no event describes its state.
func (r *Relay) ResendHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ev, err := r.Resend(req.Context(), req.PathValue("order_no"))
		switch {
		case errors.Is(err, store.ErrNotFound):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		case errors.Is(err, ErrNothingToResend):
			writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
		case err != nil:
			r.log.ErrorContext(req.Context(), "webhook resend failed", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the store did not take the event; try again"})
		default:
			var env Envelope
			_ = json.Unmarshal(ev.Payload, &env)
			writeJSON(w, http.StatusAccepted, map[string]string{"event_id": ev.ID, "type": env.Type})
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
