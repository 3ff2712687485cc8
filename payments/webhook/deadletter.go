package webhook

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/store"
)

// DeadPrefix starts the outbox key of a dead letter: a webhook the relay
// gave up on, kept in the store ("webhook-dead:<order_no>/<event_id>") so
// that the admin API and the console name it, across restarts, until an
// operator resends the order. A lost order.paid means goods never delivered;
// it must not be findable only in a log.
//
// One key per event rather than per order, because OutboxStats shows only
// the head of each key and every given-up event must be listed. It is kept
// once however often it is buried (see bury); a copy made by an earlier
// version lands behind its twin on the same key, so it is listed once and
// cleared with it.
const DeadPrefix = "webhook-dead:"

// neverDue is a dead letter's NextAt: DueEvents never hands it out, so
// neither the relay nor the audit worker (which sets aside webhook events no
// relay took when webhooks are off) ever sees it, and it holds back no one,
// being alone on its key. A whole second, so that Redis's millisecond score keeps it
// exactly.
var neverDue = time.Date(9999, time.January, 1, 0, 0, 0, 0, time.UTC)

func deadKey(orderNo, eventID string) string { return deadKeys(orderNo) + eventID }

// deadKeys is the prefix of order orderNo's dead-letter keys.
func deadKeys(orderNo string) string { return DeadPrefix + orderNo + "/" }

// deadOrder reports the order number of dead-letter key holding event id,
// and whether key is a dead letter's at all.
func deadOrder(key, id string) (string, bool) {
	rest, ok := strings.CutPrefix(key, DeadPrefix)
	if !ok {
		return "", false
	}
	return strings.TrimSuffix(rest, "/"+id), true
}

// DeadLetter is a webhook the relay gave up on, as GET /admin/api/webhooks
// lists it. It stays until POST /admin/api/orders/{order_no}/webhook
// announces its order again.
type DeadLetter struct {
	OrderNo   string    `json:"order_no"`
	EventID   string    `json:"event_id"`
	Type      string    `json:"type"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error,omitempty"`
	CreatedAt time.Time `json:"created_at"` // when the event was committed
	GivenUpAt time.Time `json:"given_up_at,omitzero"`
}

func deadLetter(orderNo string, e store.Event) DeadLetter {
	return DeadLetter{
		OrderNo: orderNo, EventID: e.ID, Type: gjson.GetBytes(e.Payload, "type").Str, Attempts: e.Attempts,
		LastError: e.LastError, CreatedAt: e.CreatedAt.UTC(), GivenUpAt: e.FailedAt.UTC(),
	}
}

// errSettled: the event to bury was no longer queued; another relay
// settled it (its POST got a 2xx) after this one's lease ran out.
var errSettled = errors.New("the event was acknowledged meanwhile")

// errClaimedElsewhere: the event to bury was claimed by another relay after
// this one's lease ran out; that relay records its outcome.
var errClaimedElsewhere = errors.New("another relay claimed the event meanwhile")

// bury keeps ev, given up after attempt attempts that ended in lastErr, as
// a dead letter, then removes it from its order's delivery queue so that
// the order's next event can go. The failure is recorded on the queued
// event first, which also renews its lease; were the event gone from the
// queue (acknowledged by another relay), errSettled is returned and nothing
// is buried. Kept second, removed third: a crash in between leaves ev at the
// head of the queue, posted once more when its lease runs out and buried
// again onto the same dead letter (it is kept once), never an event given
// up without a trace. On another error ev may still be in the queue.
//
// It takes off ev itself (AckEventAt: its id and CreatedAt), not a copy
// queued since under its id: a resend between the keep and the take-off
// finds the dead letter and ev still waiting, sets ev back (setBack: takes
// it off, queues a copy stamped when it is queued, clears the dead letter),
// and a relay moves that copy to ev's queue. Taken off by id alone, that
// copy was gone too, and the event was neither queued nor listed.
//
// The failure is recorded only under ev's own claim (retryClaimed): once
// ev's lease ran out under a stalled POST and another relay claimed it,
// errClaimedElsewhere is returned and nothing is buried. Written under the
// other's lease, the burial took the event that relay was POSTing off its
// queue, and an event the merchant then had was listed as given up, with
// an ALERT.
func (r *Relay) bury(ctx context.Context, ev store.Event, orderNo string, attempt int, lastErr string) error {
	if err := r.retryClaimed(ctx, ev, r.now().Add(r.opts.Lease), attempt, lastErr); err != nil {
		switch {
		case errors.Is(err, store.ErrNotFound):
			return errSettled
		case errors.Is(err, store.ErrConflict):
			return errClaimedElsewhere
		}
		return fmt.Errorf("record the last attempt: %w", err)
	}
	dl := ev
	dl.Key = deadKey(orderNo, ev.ID)
	dl.Attempts, dl.NextAt, dl.LastError, dl.FailedAt = attempt, neverDue, lastErr, r.now()
	if _, err := r.store.EnqueueEventsOnce(ctx, []store.Event{dl}); err != nil {
		return fmt.Errorf("keep dead letter: %w", err)
	}
	if err := r.store.AckEventAt(ctx, ev.Key, ev.ID, ev.CreatedAt); err != nil {
		// The take-off may have been applied all the same (the store's
		// reply lost): ev is then off its queue, never tried or buried
		// again, and this burial is its give-up, the only one to count it
		// and raise the alert, unless a resend set it back (below), which
		// also leaves it off its queue. Still queued, or unknown, it is
		// buried again once its lease runs out.
		if queued, qerr := r.stillAtHead(ctx, ev); qerr != nil || queued {
			return fmt.Errorf("kept as a dead letter, but not removed from the delivery queue: %w", err)
		}
	}
	if kept, err := r.stillDead(ctx, dl); err == nil && !kept {
		// A resend set ev back between the keep and the take-off: it
		// cleared the dead letter and queued ev again, so nothing is
		// given up (the take-off found nothing to take off, or failed
		// on nothing).
		return errSetBack
	}
	return nil
}

// errSetBack: a resend set the event to bury back meanwhile (its dead
// letter cleared, the event queued again): it is sent again, not given up.
var errSetBack = errors.New("a resend queued the event again meanwhile")

// stillDead reports whether dead letter dl is still kept.
func (r *Relay) stillDead(ctx context.Context, dl store.Event) (bool, error) {
	heads, err := r.store.OutboxHeads(ctx, dl.Key)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(heads, func(h store.Event) bool { return h.Key == dl.Key && h.ID == dl.ID }), nil
}

// stillAtHead reports whether ev itself (its id and CreatedAt, not a copy
// queued since under its id) is still at the head of its queue.
func (r *Relay) stillAtHead(ctx context.Context, ev store.Event) (bool, error) {
	heads, err := r.store.OutboxHeads(ctx, ev.Key)
	if err != nil {
		return false, err
	}
	for _, h := range heads {
		if h.Key == ev.Key && h.ID == ev.ID && h.CreatedAt.Equal(ev.CreatedAt) {
			return true, nil
		}
	}
	return false, nil
}

// maxClearPasses bounds clearDead's passes: one per copy of a dead letter
// (crash-made copies are rare; a few passes clear them all).
const maxClearPasses = 4

// deadIDs reads the ids of order orderNo's dead letters that a resend may
// clear (see stillQueued), and the oldest of them that is an order.paid
// (nil when none is).
func (r *Relay) deadIDs(ctx context.Context, orderNo string) (map[string]bool, *store.Event, error) {
	heads, err := r.store.OutboxHeads(ctx, deadKeys(orderNo), orderNo, QueuePrefix+orderNo)
	if err != nil {
		return nil, nil, fmt.Errorf("read dead letters: %w", err)
	}
	ids := map[string]bool{}
	var paid *store.Event
	for i := range heads {
		h := &heads[i]
		if no, _ := deadOrder(h.Key, h.ID); no == orderNo && h.Kind == Kind {
			ids[h.ID] = true
			if gjson.GetBytes(h.Payload, "type").Str == TypeOrderPaid {
				paid = older(paid, h)
			}
		}
	}
	stillQueued(ids, heads, orderNo)
	return ids, paid, nil
}

// stillQueued removes from ids, the dead letters of order orderNo a resend
// read, those whose event heads (tried since it was queued) were also read
// at the head of the order's intake or delivery queue: a given-up event
// that its relay kept as a dead letter and then failed to take off its
// queue (a crash, or a store error, between bury's two writes). Its next
// failure buries it onto that very dead letter, kept once, so nothing is
// added, and takes it off the queue: cleared after that, in the
// milliseconds between the resend's read and its clearing, the event was
// neither queued nor listed, and its news never reached the merchant.
// Such a dead letter stays listed, to be resent (under its own id, which
// a merchant that got the event meanwhile discards).
func stillQueued(ids map[string]bool, heads []store.Event, orderNo string) {
	for _, h := range heads {
		if h.Kind == Kind && h.Attempts > 0 && (h.Key == orderNo || h.Key == QueuePrefix+orderNo) {
			delete(ids, h.ID)
		}
	}
}

// older is the older of dead letters a (nil: none yet) and b, by when
// they were queued, then by id, so that every reader picks the same.
func older(a, b *store.Event) *store.Event {
	if a == nil || b.CreatedAt.Before(a.CreatedAt) || b.CreatedAt.Equal(a.CreatedAt) && b.ID < a.ID {
		return b
	}
	return a
}

// clearDead removes order orderNo's dead letters of the events seen, once
// an event announcing its state is queued: the operator has dealt with
// them. Only those seen, read before that event was queued: one given up
// since (another replica's relay burying the event the resend found still
// retried, or one behind it) is superseded by nothing queued, and cleared
// it was never told to the merchant, with nothing listed to resend. A copy
// sits behind its twin on the same key and is only a head once the twin is
// gone, hence the passes. It reports the dead letters (event ids) cleared.
func (r *Relay) clearDead(ctx context.Context, orderNo string, seen map[string]bool) (int, error) {
	cleared := map[string]bool{}
	for range maxClearPasses {
		heads, err := r.store.OutboxHeads(ctx, deadKeys(orderNo))
		if err != nil {
			return len(cleared), fmt.Errorf("read dead letters: %w", err)
		}
		found := 0
		for _, h := range heads {
			if no, _ := deadOrder(h.Key, h.ID); no != orderNo || h.Kind != Kind || !seen[h.ID] {
				continue
			}
			if err := r.store.AckEvent(ctx, h.Key, h.ID); err != nil {
				return len(cleared), fmt.Errorf("clear dead letter %s: %w", h.ID, err)
			}
			cleared[h.ID] = true
			found++
		}
		if found == 0 {
			break
		}
	}
	return len(cleared), nil
}
