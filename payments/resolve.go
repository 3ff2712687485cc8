package payments

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// CauseResolve is Transition.Cause of an operator taking an order out of
// needs_review (Resolve).
const CauseResolve = "resolve"

// ErrNotInReview: the order exists but is not in needs_review (a person
// already resolved it, or it never needed review).
var ErrNotInReview = errors.New("order is not in review")

// ErrCannotResolve: the order is in review but cannot be settled the way
// asked (a refund still in flight, no payment to settle as paid).
var ErrCannotResolve = errors.New("order cannot be resolved so")

// unrecordedReservation is the refund reservation of orderNo, when it is
// to be closed, that no refund is in flight under and none will be: no
// refund record names it, and its proposal is taken (an earlier version's
// sweep sent such an order to review as refund_record_missing past
// takenGrace, where this one sends its refund: whether money went back is
// for the person to find on the merchant platform; else once tapOver),
// ended or unknown; or the refund recorded under it was heard of, its SUCCESS noted
// in the review reason and not counted (refundHeard). Such a reservation
// never ends by itself (only a refund paygate has in flight does,
// noteRefundInReview), so refusing it as in flight kept the order in
// review for good. "" otherwise: a refund recorded and not heard of is
// still to come, and an open proposal may still be confirmed.
func (s *Service) unrecordedReservation(ctx context.Context, orderNo string, to store.OrderStatus) (string, error) {
	if to != store.StatusClosed {
		return "", nil
	}
	o, err := s.store.GetOrder(ctx, orderNo)
	if err != nil || o.Status != store.StatusNeedsReview || o.RefundReservedBy == "" {
		return "", err
	}
	rec, err := s.loadInFlight(ctx, orderNo)
	if err != nil {
		return "", err
	}
	if rec != nil && rec.Proposal.RefundID == o.RefundReservedBy {
		if !refundHeard(o, rec) {
			return "", nil
		}
		return o.RefundReservedBy, nil
	}
	fate, _, err := s.proposalFate(ctx, o.RefundReservedBy)
	if err != nil || fate == fateOpen {
		return "", err
	}
	if fate == fateTaken && !tapOver(o, s.now()) {
		return "", nil
	}
	return o.RefundReservedBy, nil
}

// tapOver reports whether no confirmation can still be between taking the
// proposal o is reserved for and recording its refund: the sweep waited
// takenGrace before its refund_record_missing, or takenGrace has passed
// since the order last changed. A confirmation goes on only while the order
// is refunding under its reservation, and within refundCallTimeout from
// then, so it ended before the order went to review, and a close that
// ended its reservation before it would be followed by its refund going
// out on the closed order (an order sent to review meanwhile by WeChat
// Pay's word of a refund made on the merchant platform, say).
func tapOver(o *store.Order, now time.Time) bool {
	return strings.HasPrefix(o.ReviewReason, "refund_record_missing:") || now.Sub(o.UpdatedAt) >= takenGrace
}

// refundHeard reports whether the review reason of o records WeChat Pay's
// SUCCESS of rec's refund: its last word, which went to review instead of
// being counted (another amount than the user confirmed, counted once
// already) and kept the reservation; noteRefundInReview notes such a copy
// and ends nothing. Nothing more comes of that refund, so its reservation
// never ends by itself either, and the order would stay in review for
// good. An ABNORMAL is not its last word: the merchant may re-handle it
// under the same number, and the SUCCESS then counts.
func refundHeard(o *store.Order, rec *inFlight) bool {
	no := rec.Proposal.OutRefundNo
	return no != "" && strings.Contains(o.ReviewReason, refundFact{OutRefundNo: no, Status: wechatpay.RefundSuccess}.fact())
}

// Resolve is an operator's way out of needs_review, which nothing else
// leaves (state.go): the order is settled as paid (WeChat Pay reported a
// payment for it and the person judged it good: the merchant hears
// order.paid and delivers) or closed (nothing to deliver: the money, if
// any, was returned on the merchant platform or is being). It is audited
// with the actor on ctx. Refused with ErrCannotResolve while a confirmed
// refund is in flight (its outcome is still to come; a reservation no
// refund is in flight under is ended by closing, unrecordedReservation), and as paid when
// WeChat Pay reported no payment for it, or not its price paid once to this
// merchant (unpayableReview) or with a second transaction named in its
// review (otherTransaction), when money was already refunded
// on it or its review reason records WeChat Pay's word of a refund (one not
// counted in refunded_fen: paid and refunded while notifications were lost,
// a refund made on the merchant platform, one that came before the payment,
// a refund closed or stuck; a person settles that money on the merchant
// platform, and delivering would be for money the payer may have back), or
// for a payment paygate had no order of (no client, SKU or user to deliver
// to), or in review for a reason not judged to leave its price paid
// (unjudgedReview). ErrNotInReview, with the order as it stands, when it is
// not in review (a retry of a resolution made); store.ErrNotFound for an
// unknown order.
func (s *Service) Resolve(ctx context.Context, orderNo string, to store.OrderStatus) (*store.Order, error) {
	if to != store.StatusPaid && to != store.StatusClosed {
		return nil, fmt.Errorf("%w: an order in review is settled as paid or closed, not %s", ErrCannotResolve, to)
	}
	unrecorded, err := s.unrecordedReservation(ctx, orderNo, to)
	if err != nil {
		return nil, err
	}
	got, _, err := s.update(ctx, orderNo, CauseResolve, "", func(c *store.Order) (*store.Order, error) {
		switch {
		case c.Status != store.StatusNeedsReview:
			return nil, fmt.Errorf("%w: %s is %s", ErrNotInReview, c.OrderNo, c.Status)
		case c.RefundReservedBy != "" && c.RefundReservedBy == unrecorded:
			c.RefundReservedBy = "" // nothing is, or will be, sent under it
		case c.RefundReservedBy != "":
			return nil, fmt.Errorf("%w: refund %s is in flight on %s; wait for its outcome", ErrCannotResolve, c.RefundReservedBy, c.OrderNo)
		case to == store.StatusPaid && c.TransactionID == "":
			return nil, fmt.Errorf("%w: WeChat Pay reported no payment for %s, so it cannot be settled as paid", ErrCannotResolve, c.OrderNo)
		case to == store.StatusPaid && c.RefundedFen > 0:
			return nil, fmt.Errorf("%w: %d fen were refunded on %s, so it cannot be settled as paid", ErrCannotResolve, c.RefundedFen, c.OrderNo)
		case to == store.StatusPaid && strings.Contains(c.ReviewReason, "refund"):
			return nil, fmt.Errorf("%w: %s is in review with WeChat Pay's word of a refund not counted on it (money that may be back with the payer); settle it on the merchant platform and close it", ErrCannotResolve, c.OrderNo)
		case to == store.StatusPaid && otherTransaction(c.ReviewReason, c.TransactionID) != "":
			return nil, fmt.Errorf("%w: %s is in review with a second payment from WeChat Pay (transaction %s) besides %s; refund it on the merchant platform and close it", ErrCannotResolve, c.OrderNo, otherTransaction(c.ReviewReason, c.TransactionID), c.TransactionID)
		case to == store.StatusPaid && unpayableReview(c.ReviewReason) != "":
			return nil, fmt.Errorf("%w: %s is in review for %s: WeChat Pay did not report this order's price paid once to this merchant; refund it on the merchant platform and close it", ErrCannotResolve, c.OrderNo, unpayableReview(c.ReviewReason))
		case to == store.StatusPaid && c.Client == "":
			return nil, fmt.Errorf("%w: %s is a payment paygate had no order of; refund it on the merchant platform and close it", ErrCannotResolve, c.OrderNo)
		case to == store.StatusPaid && unjudgedReview(c.ReviewReason) != "":
			return nil, fmt.Errorf("%w: %s is in review for %s, which is not known to leave its price paid once to this merchant; settle it on the merchant platform and close it", ErrCannotResolve, c.OrderNo, unjudgedReview(c.ReviewReason))
		}
		c.Status = to
		return c, nil
	})
	if errors.Is(err, ErrNotInReview) || errors.Is(err, ErrCannotResolve) {
		return got, err
	}
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "order in review resolved by an operator", "order_no", got.OrderNo, "status", got.Status, "amount_fen", got.AmountFen)
	return got, nil
}

// unpayableReview is the first review reason of an order that rules out
// settling it as paid, or "": another amount or currency (its amount_fen
// would say a price was paid that was not, and a refund of it would be
// wrong), another merchant (the money is not this merchant's), or a second
// transaction (paid twice: one is to be returned). Another app id of this
// merchant, or a payment that came after the order went to review, does
// not.
func unpayableReview(reason string) string {
	for _, r := range []string{"amount_mismatch", "currency_mismatch", "mchid_mismatch", "transaction_mismatch"} {
		if strings.Contains(reason, r) {
			return r
		}
	}
	return ""
}

// otherTransaction is the first WeChat Pay transaction a review reason
// names other than txid, the one on record, or "". A second payment is
// named transaction_mismatch only when no other disagreement comes first:
// a paid order's second payment from another payer or app id of this
// merchant goes to review as payer_mismatch or appid_mismatch, and settled
// as paid it would be paid twice (order.paid again, the second payment
// never returned).
func otherTransaction(reason, txid string) string {
	const word = "transaction "
	for rest := reason; ; {
		i := strings.Index(rest, word)
		if i < 0 {
			return ""
		}
		rest = rest[i+len(word):]
		id := rest
		if j := strings.IndexFunc(rest, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == ')' }); j >= 0 {
			id = rest[:j]
		}
		if id != "" && id != txid {
			return id
		}
	}
}

// paidReviews are the review reasons that leave one payment of the
// order's price with this merchant, which a person may settle as paid:
// another app id of this merchant or another payer (once: a second
// transaction is refused, otherTransaction), a payment on an order that
// had gone to review, expired, closed, or been held or rejected.
var paidReviews = map[string]bool{
	"appid_mismatch": true, "payer_mismatch": true, "paid_while_in_review": true,
	"paid_after_closed": true, "paid_after_expired": true, "paid_after_rejected": true,
	"paid_after_approval_required": true,
}

// unjudgedReview is the first reason named in a review reason (each
// "; "-separated note starts with its reasons, ", "-separated, before
// ": ") that is not in paidReviews, or "". Settling as paid is allowed for
// reasons judged to leave the price paid, not refused for those known not
// to: a reason added later is refused until it is judged, where a list of
// the refused ones let it through.
func unjudgedReview(reason string) string {
	for _, note := range strings.Split(reason, "; ") {
		head, _, ok := strings.Cut(note, ": ")
		if !ok {
			continue // prose of the note before (refund_record_missing's)
		}
		for _, r := range strings.Split(head, ", ") {
			if r != "" && strings.Trim(r, "abcdefghijklmnopqrstuvwxyz_") == "" && !paidReviews[r] {
				return r
			}
		}
	}
	return ""
}
