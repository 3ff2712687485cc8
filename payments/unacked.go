package payments

import (
	"context"
	"encoding/json"
	"time"

	"github.com/paygate/paygate/store"
)

// An order write the store reported unavailable may have applied all the
// same: Redis applied it and WAIT saw too few replicas in time
// (store.redis.wait_replicas), or its reply was lost. Its events (audit,
// webhooks) went with it, atomically; what did not is Options.Committed
// (the ledger's completed transaction, the outbox wake-ups) and the
// transitions metric: WeChat Pay's retry of a notification answered 500
// finds the order paid already, a duplicate, and nothing announced the
// payment. So this replica keeps such writes (noteUnacked), and the first
// later read of the order here that finds that very write applied (a
// retry, any other call's update, or the sweep, which reads each kept
// order: a retry may reach another replica) announces it, once
// (settleUnacked).
//
// "That very write": at the version it would have made, with the record
// it wrote, and when the store reported the write applied (WAIT; the
// record carries its new version and time) at the store's time it
// reported. A write whose reply was lost reported nothing: it is taken for
// the record at its version, with its content, updated while the write
// was on its way. Another replica writing the same change at the same
// version after the write failed (WeChat Pay's retry reaching it) is not
// taken for it, and announces its own; only one writing it while this
// write was on its way, whose own write then won, would be announced by
// both (the ledger still counts a paid order once: its paid-counted mark).
// What is kept lives in this process only, so a restart forgets it, as it
// forgot it before; and a write found overtaken (a later version, another
// record) is forgotten unannounced, as before. The announced Transition's
// Turn, if any, lacks its Messages and Params (not kept).

// unackedWrite is one write the store reported unavailable.
type unackedWrite struct {
	tr      Transition
	version int64 // the version the write makes
	// exact: the store reported the write applied, at updated (its time).
	// Otherwise the record's time is within [sent, failed].
	exact          bool
	updated        time.Time
	sent, failed   time.Time
	noted          time.Time
	writtenContent []byte
}

const (
	// unackedKept bounds how long a kept write waits for a read of its
	// order (WeChat Pay retries a notification for about 24h).
	unackedKept = 24 * time.Hour
	// maxUnacked bounds the writes kept; past it, new ones are not kept
	// (logged), so a long outage cannot grow the map without end.
	maxUnacked = 4096
)

// noteUnacked keeps tr, whose write of written (to make version) failed
// with a store error that may have applied it; sent is when the write was
// sent. ctx is the write's, whose request id a line about it carries.
func (s *Service) noteUnacked(ctx context.Context, tr Transition, written *store.Order, version int64, sent time.Time) {
	if tr.Turn != nil {
		// The turn's messages and parameters can be large, and went with
		// the write (its audit record): kept for hours, many of them, they
		// are not held on to.
		t := *tr.Turn
		t.Messages, t.Params = nil, nil
		tr.Turn = &t
	}
	u := unackedWrite{tr: tr, version: version, sent: sent, failed: s.now(), noted: s.now(),
		writtenContent: orderContent(written)}
	if written.Version == version {
		u.exact, u.updated = true, written.UpdatedAt
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.unacked[written.OrderNo]; !ok && len(s.unacked) >= s.maxUnacked {
		s.log.WarnContext(ctx, "unconfirmed order write not kept for its announcement: too many kept", "order_no", written.OrderNo, "kept", len(s.unacked))
		return
	}
	s.unacked[written.OrderNo] = u
}

// forgetUnacked drops what is kept for order no: this replica's write of
// it just succeeded, so an earlier one of the same version did not apply,
// and one of an earlier version was settled by the read before it.
func (s *Service) forgetUnacked(no string) {
	s.mu.Lock()
	delete(s.unacked, no)
	s.mu.Unlock()
}

// settleUnacked announces the kept write of cur's order if cur is it
// (Options.Committed, the transitions metric, a log line), once. cur at
// an earlier version keeps it (the write did not apply, or not yet); at a
// later version or another record, it is forgotten. A write that put
// WeChat Pay's disagreeing word on the order (into needs_review, or a new
// fact noted there) also raises the alert its caller never logged, having
// returned the store's error: the retry that finds it is a duplicate.
func (s *Service) settleUnacked(ctx context.Context, cur *store.Order) {
	s.mu.Lock()
	u, ok := s.unacked[cur.OrderNo]
	if !ok || cur.Version < u.version {
		s.mu.Unlock()
		return
	}
	delete(s.unacked, cur.OrderNo)
	s.mu.Unlock()
	if !u.is(cur) {
		return
	}
	tr := u.tr
	tr.After = *cur
	s.m.transitions.WithLabelValues(string(tr.Before.Status), string(tr.After.Status), tr.Cause).Inc()
	s.log.InfoContext(ctx, "order transition found applied after the store did not confirm it", "order_no", cur.OrderNo,
		"from", tr.Before.Status, "to", tr.After.Status, "cause", tr.Cause, "version", cur.Version)
	if tr.After.Status == store.StatusNeedsReview && tr.After.ReviewReason != tr.Before.ReviewReason {
		s.log.ErrorContext(ctx, "ALERT: wechat pay disagrees with the order record; order needs review (its write was found applied after the store did not confirm it)",
			"alert", true, "order_no", cur.OrderNo, "cause", tr.Cause, "notification_id", tr.NotificationID,
			"transaction_id", cur.TransactionID, "review_reason", loggedReviewReason(cur.ReviewReason))
	}
	s.committed(tr)
}

// is reports whether cur is the record u wrote.
func (u unackedWrite) is(cur *store.Order) bool {
	if cur.Version != u.version || len(u.writtenContent) == 0 || string(orderContent(cur)) != string(u.writtenContent) {
		return false
	}
	if u.exact {
		return cur.UpdatedAt.Equal(u.updated)
	}
	return !cur.UpdatedAt.Before(u.sent) && !cur.UpdatedAt.After(u.failed)
}

// orderContent is o's record without what the store sets on a write (its
// version and time).
func orderContent(o *store.Order) []byte {
	c := *o
	c.Version, c.UpdatedAt = 0, time.Time{}
	b, err := json.Marshal(&c)
	if err != nil {
		return nil // never equal to a record read back
	}
	return b
}

// sweepUnacked reads the order of every write kept (settleUnacked), so a
// write found applied is announced even when no other call of this
// replica reads its order again (WeChat Pay's retry reached another
// replica). Kept past unackedKept, a write is forgotten.
func (s *Service) sweepUnacked(ctx context.Context) {
	s.mu.Lock()
	nos := make([]string, 0, len(s.unacked))
	for no, u := range s.unacked {
		if s.now().Sub(u.noted) > unackedKept {
			delete(s.unacked, no)
			continue
		}
		nos = append(nos, no)
	}
	s.mu.Unlock()
	for _, no := range nos {
		if ctx.Err() != nil {
			return
		}
		cur, err := s.store.GetOrder(ctx, no)
		if err != nil {
			continue // still unreadable: the next sweep asks again
		}
		s.settleUnacked(ctx, cur)
	}
}
