package payments

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// Refund errors. A proposal of another user (or client) is store.ErrNotFound,
// a cancelled or expired one (or a used one whose refund was refused or
// undone: ConfirmRefund answers other repeats with the refund's state)
// store.ErrGone; callers map those to 404 and 410.
var (
	// ErrNotRefundable: the order is in no state to refund (unpaid, already
	// fully refunded, under review).
	ErrNotRefundable = errors.New("order cannot be refunded")
	// ErrRefundAmount: the amount is zero, malformed or more than what is left
	// of the payment.
	ErrRefundAmount = errors.New("refund amount out of range")
	// ErrRefundInProgress: another refund of the order is with WeChat Pay;
	// one refund at a time keeps the sum of refunds within what was paid.
	ErrRefundInProgress = errors.New("another refund of this order is in progress")
	// ErrRefundFailed: WeChat Pay refused the refund for good; the order is
	// back to its state before the confirmation (a refused refund whose
	// order could not be put back is RefundPending: the sweep sends it
	// again).
	ErrRefundFailed = errors.New("wechat pay refused the refund")
	// ErrRefundWindowPassed: the order was paid more than a year ago
	// (refundWindowEnds), and WeChat Pay takes no refund of it
	// (INVALID_REQUEST). It wraps ErrNotRefundable.
	ErrRefundWindowPassed = fmt.Errorf("%w: paid more than a year ago, WeChat Pay takes no refund of it", ErrNotRefundable)
	// ErrRefundConfirmed: a cancel of a proposal whose confirmation was
	// taken and whose refund went to WeChat Pay: nothing can stop it. It
	// comes as an *AlreadyConfirmedError naming where the refund stands.
	ErrRefundConfirmed = errors.New("the refund was already confirmed and cannot be cancelled")
)

// RefundInProgressError is a confirmation's refusal while another refund
// of the order is with WeChat Pay, when the proposal asks more than that
// refund leaves (AskedFen > LeftAfterFen): "try again when it is done"
// sent the user back to a tap that, once the other refund succeeded, was
// refused as more than is left. Should the other one be closed, the
// proposal can still go through, unless it asks more than is left now
// (Never): proposed before an earlier partial refund succeeded, it fits
// whatever the one in flight ends as. It wraps ErrRefundInProgress.
type RefundInProgressError struct {
	OrderNo, Currency string
	// InFlightFen is the refund with WeChat Pay, LeftAfterFen what the
	// order has left to refund once it succeeds, LeftNowFen what it has
	// left now (should that refund be refused or closed), AskedFen this
	// proposal's.
	InFlightFen, LeftAfterFen, LeftNowFen, AskedFen int64
}

// Never reports whether the proposal asks more than the order has left
// now: it cannot be confirmed whatever the refund in flight ends as.
func (e *RefundInProgressError) Never() bool { return e.AskedFen > e.LeftNowFen }

func (e *RefundInProgressError) Error() string {
	msg := fmt.Sprintf("%v: order %s: a refund of %s is with WeChat Pay; once it succeeds %s is left, less than the %s proposed",
		ErrRefundInProgress, e.OrderNo, FormatAmount(e.InFlightFen, e.Currency), FormatAmount(e.LeftAfterFen, e.Currency), FormatAmount(e.AskedFen, e.Currency))
	if e.Never() {
		msg += fmt.Sprintf(", more than the %s left now", FormatAmount(e.LeftNowFen, e.Currency))
	}
	return msg
}

func (e *RefundInProgressError) Unwrap() error { return ErrRefundInProgress }

// inProgressLeaves is err, ErrRefundInProgress of proposal p's
// confirmation, as a *RefundInProgressError when the refund order o is
// refunding for (its record read: the one in flight) leaves less than p
// asks. err as it is otherwise: p fits beside it, or what is in flight
// cannot be read (nothing recorded, another proposal's reservation, a read
// that failed).
func (s *Service) inProgressLeaves(ctx context.Context, o *store.Order, p *store.RefundProposal, err error) error {
	if !errors.Is(err, ErrRefundInProgress) || o.Status != store.StatusRefunding || o.RefundReservedBy == p.RefundID {
		return err
	}
	rec, rerr := s.loadInFlight(ctx, o.OrderNo)
	if rerr != nil || rec == nil || rec.Proposal.RefundID != o.RefundReservedBy || rec.OrderVersion != o.Version {
		return err
	}
	now := o.AmountFen - o.RefundedFen
	after := now - rec.Proposal.AmountFen
	if p.AmountFen <= after {
		return err
	}
	return &RefundInProgressError{OrderNo: o.OrderNo, Currency: o.Currency, InFlightFen: rec.Proposal.AmountFen,
		LeftAfterFen: max(after, 0), LeftNowFen: max(now, 0), AskedFen: p.AmountFen}
}

// AlreadyConfirmedError is CancelRefund's answer for a proposal the user
// already confirmed: Result is the refund as its order records it (pending,
// succeeded or closed). It wraps ErrRefundConfirmed and store.ErrGone (the
// proposal is used: a caller that knows no better answers it as ended).
type AlreadyConfirmedError struct{ Result *RefundResult }

func (e *AlreadyConfirmedError) Error() string {
	return fmt.Sprintf("refund proposal %s: %v; it is %s", e.Result.Proposal.RefundID, ErrRefundConfirmed, e.Result.Status)
}

func (e *AlreadyConfirmedError) Unwrap() []error { return []error{ErrRefundConfirmed, store.ErrGone} }

// refundWindowEnds is when WeChat Pay stops taking refunds of an order
// paid at paidAt (交易时间超过一年的订单无法提交退款): the same date and time
// a year later on WeChat Pay's clock, China Standard Time (29 February
// runs to 1 March). Counted as 365 days, an order paid in the year before
// a 29 February, or on the evening of 28 February UTC (1 March in
// Beijing), was refused a day early, its user told it was paid more than
// a year ago. Erring late costs a refund WeChat Pay refuses at the
// confirmation, which restores the order and tells the user so; erring
// early refused a refund the user was owed.
func refundWindowEnds(paidAt time.Time) time.Time {
	return paidAt.In(chinaTime).AddDate(1, 0, 0)
}

// inRefundWindow is ErrRefundWindowPassed when o's year has ended. The
// confirmation checks it too, before it reserves the order or goes on
// under a reservation held for its proposal: a proposal lives up to
// MaxRefundConfirmTTL, so one made in the year's last hours was confirmed
// after it, sent, and refused by WeChat Pay, the user told only that it
// was refused.
func (s *Service) inRefundWindow(o *store.Order) error {
	if o.PaidAt.IsZero() || !s.now().After(refundWindowEnds(o.PaidAt)) {
		return nil
	}
	return fmt.Errorf("%w: order %s paid %s", ErrRefundWindowPassed, o.OrderNo, o.PaidAt.UTC().Format(time.RFC3339))
}

// Refund progress reported by ConfirmRefund.
const (
	// RefundProcessing: WeChat Pay accepted the refund; its notification
	// moves the order to refunded or partially_refunded.
	RefundProcessing = "processing"
	// RefundSucceeded: WeChat Pay reported the money returned.
	RefundSucceeded = "succeeded"
	// RefundPending: WeChat Pay did not answer (or refused, and the order
	// could not be put back); the order stays refunding and the sweep asks
	// again and resends under the same out_refund_no. WeChat Pay's answer
	// ABNORMAL is pending too: the order goes to needs_review with the
	// refund open, for a person (and the sweep) to see it end. A repeated
	// confirmation of a refund the order is still refunding for (or went
	// to needs_review with it sent and still open) is answered so too: on
	// its way, its outcome still to come.
	RefundPending = "pending"
	// RefundClosed: WeChat Pay closed the refund; no money moved.
	RefundClosed = "closed"
)

const (
	// inFlightTTL keeps the record of a refund with WeChat Pay for longer
	// than a refund can stay open there (WeChat accepts refunds for a year).
	inFlightTTL = 400 * 24 * time.Hour
	// refundCallTimeout bounds one confirmation from its reservation on:
	// its writes and its call to WeChat Pay, retries with the same
	// out_refund_no included.
	refundCallTimeout = 30 * time.Second
	// refundQueryAfter: with a shared store, a refunding order untouched
	// this long is asked about by the sweep (a notification normally
	// arrives well before), once its refund was also recorded
	// recordedGrace ago; with the embedded store at once, the sweep
	// holding the order as its own (sweepRefund). An order in review with
	// a refund of paygate's open is asked about once untouched this long,
	// on either (sweepRefundsInReview).
	refundQueryAfter = time.Minute
	// maxRefundReason is WeChat Pay's limit on the reason (string[1,80]),
	// taken in bytes: its documents do not say whether that length counts
	// characters or bytes, and description's string[1,127] is bytes. 80
	// bytes is within the limit either way, where 80 characters of Chinese
	// (240 bytes) would be refused under the stricter reading and the
	// user's confirmed refund fail with PARAM_ERROR.
	maxRefundReason = 80
	// proposalSkew bounds how far a replica's clock may be behind another's
	// (takenGrace allows for it). A proposal's ExpiresAt is the proposing
	// replica's clock, and the store judges its expiry on a clock of its
	// own (Redis: the server's; store.RefundProposals.ExpireRefundProposal):
	// one lapsed by this replica's clock is ended in the store
	// (proposalFate) before anything is undone for it, so that no replica
	// can take it after, and one the store finds still open stays open.
	proposalSkew = time.Minute
)

// RefundRequest is a request_refund call: the order and amount to propose.
type RefundRequest struct {
	Client  string
	User    string
	OrderNo string
	Reason  string
	// AmountFen is the amount to refund; 0 means everything not yet refunded.
	AmountFen int64
}

// RefundResult is a confirmed refund and where it stands.
type RefundResult struct {
	Proposal *store.RefundProposal
	Order    *store.Order
	// Status is RefundProcessing, RefundSucceeded, RefundPending or
	// RefundClosed.
	Status string
}

// inFlight is the refund of a refunding order that went (or is about to go)
// to WeChat Pay, kept in store.Exchanges under store.RefundRecordKey. It counts
// only while the order is refunding at OrderVersion: a record left from an
// earlier refund never matches the order's current version. An order that
// went to needs_review with it open still names it (refundInReview).
type inFlight struct {
	Proposal     store.RefundProposal `json:"proposal"`
	OrderVersion int64                `json:"order_version"`
	ConfirmedAt  time.Time            `json:"confirmed_at"`
}

func inFlightKey(orderNo string) string { return store.RefundRecordKey(orderNo) }

// OutRefundNo derives WeChat Pay's out_refund_no from a proposal id, so every
// retry of one confirmed proposal uses the same number and no other proposal
// can share it.
func OutRefundNo(refundID string) string {
	return "RF" + strings.TrimPrefix(refundID, "rf_")
}

// newRefundID makes a proposal id: "rf_" and 24 base62 characters (142
// bits), unguessable because it is the capability in the confirm URL.
func newRefundID() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = base62[int(b[i])%len(base62)]
	}
	return "rf_" + string(b)
}

// refundable reports how much of o can still be refunded, or why nothing.
func refundable(o *store.Order) (int64, error) {
	switch o.Status {
	case store.StatusPaid, store.StatusPartiallyRefunded:
	case store.StatusRefunding:
		return 0, fmt.Errorf("%w: order %s", ErrRefundInProgress, o.OrderNo)
	default:
		return 0, fmt.Errorf("%w: order %s is %s", ErrNotRefundable, o.OrderNo, o.Status)
	}
	left := o.AmountFen - o.RefundedFen
	if left <= 0 {
		return 0, fmt.Errorf("%w: order %s is fully refunded", ErrNotRefundable, o.OrderNo)
	}
	return left, nil
}

// ErrProposalUnconfirmed: a refund proposal's write the store did not
// confirm (no answer, or not replicated in time), nor could it be read
// back: the proposal may stand, live for the user to confirm or cancel,
// with its refund.proposed recorded, or may not exist. Nothing was sent to
// WeChat Pay, which only the user's confirmation does. ProposeRefund
// returns the proposal it wrote with it; its claim stays with it, so
// asking for the same refund again returns that proposal if it stands or
// writes it under the same id, never a second.
var ErrProposalUnconfirmed = errors.New("the refund proposal may have been recorded")

// ProposeRefund records a refund proposal for the user's paid order: bound to
// the client, the user, the order and the amount, live for RefundConfirmTTL.
// No money moves: only ConfirmRefund, called on the user's own request,
// sends it to WeChat Pay. Another user's order is ErrNotOwner. While a
// proposal of the same amount of the order is open, that one is returned
// (with no second Proposed call or ProposalMade events), also when the
// order is held for it (heldOpen) within the order's year. An order held
// for a proposal that ended unused (a confirmation cut short, then the
// proposal expired) is freed first (releaseEnded): nothing was or can be
// sent under it. A write the store did not confirm and whose read-back
// failed is ErrProposalUnconfirmed, with the proposal written.
func (s *Service) ProposeRefund(ctx context.Context, req RefundRequest) (*store.RefundProposal, *store.Order, error) {
	if req.Client == "" || req.User == "" {
		return nil, nil, ErrUserRequired
	}
	o, err := s.Order(ctx, req.Client, req.User, req.OrderNo)
	if err != nil {
		return nil, nil, err
	}
	left, err := refundable(o)
	if err != nil {
		if p := s.heldOpen(ctx, req, o); p != nil {
			if werr := s.inRefundWindow(o); werr != nil {
				// Its tap is refused past the year (confirmRefund), and
				// the button offered again could only be refused.
				return nil, o, werr
			}
			return p, o, nil
		}
		if back := s.releaseEnded(ctx, o); back != nil {
			o = back
			left, err = refundable(o)
		}
		if err != nil {
			if o.Status == store.StatusRefunded {
				if done := s.askedAgain(ctx, req, o); done != nil {
					return nil, done.Order, s.alreadyConfirmed(ctx, done)
				}
			}
			if werr := s.inRefundWindow(o); werr != nil && s.UnsentRefunds(ctx, []*store.Order{o})[0].Status != store.StatusRefunding {
				// Held for a proposal of another amount whose confirmation
				// was cut short, nothing sent: "wait for that proposal"
				// had the user wait for a tap refused past the year.
				return nil, o, werr
			}
			return nil, o, err
		}
	}
	amount := req.AmountFen
	if amount == 0 {
		amount = left
	}
	if amount < 0 || amount > left {
		if done := s.askedAgain(ctx, req, o); done != nil {
			return nil, done.Order, s.alreadyConfirmed(ctx, done)
		}
		if err := s.inRefundWindow(o); err != nil {
			// Not "at most so much": nothing of it can be refunded, and
			// the user was asked about an amount.
			return nil, o, err
		}
		return nil, o, fmt.Errorf("%w: %s asked, %s refundable", ErrRefundAmount, FormatAmount(amount, o.Currency), FormatAmount(left, o.Currency))
	}
	if err := s.inRefundWindow(o); err != nil {
		// Proposed, the user would confirm a refund WeChat Pay can only
		// refuse, and hear so only after confirming.
		return nil, o, err
	}
	// One open proposal per (client, user, order, amount): a turn re-sent
	// (an SDK's retry after a timeout, a second replica) is answered with
	// the proposal its first run made, not a second one the user could
	// confirm as well (two taps refunded twice what was asked), with its
	// own refund.proposed webhook and audit record. A claim binds the
	// request to one refund id; whoever holds it writes that id's proposal,
	// which the store takes once (ErrExists for the others, who read it):
	// so a claimer that stalls or dies before writing leaves the next
	// caller nothing to wait for. Once the proposal is answered or expired
	// the claim moves on to a new id.
	key := proposalClaimKey(req.Client, req.User, o.OrderNo, amount)
	ttl := s.proposalClaimTTL()
	claim, _, err := s.store.ClaimPurchase(ctx, key, newRefundID(), ttl)
	if err != nil {
		return nil, o, fmt.Errorf("claim refund proposal: %w", err)
	}
	for range 6 {
		p := &store.RefundProposal{
			RefundID: claim.OrderNo, OrderNo: o.OrderNo, Client: req.Client, User: req.User,
			AmountFen: amount, Reason: clip(req.Reason, maxRefundReason), OutRefundNo: OutRefundNo(claim.OrderNo),
		}
		// The audit record of the proposal (and the turn that led to it)
		// and its refund.proposed webhook are written with it in one atomic
		// step: a proposal the user can confirm never lacks them, and when
		// the step fails, the model hears so.
		// The events are built before the store writes the proposal, so
		// its creation and expiry are stamped here, and the store keeps
		// them (store.ProposalExpiry): the merchant's refund.proposed
		// names when the user's button lapses, not the zero time, and
		// says the same created_at and expires_at as the user's
		// refund_proposed and the orders the user API reads.
		p.CreatedAt = s.now()
		p.ExpiresAt = p.CreatedAt.Add(s.opts.RefundConfirmTTL)
		made := *p
		err := s.store.PutRefundProposal(ctx, p, s.opts.RefundConfirmTTL, s.proposalEvents(ctx, ProposalMade, &made, o)...)
		got, rerr := s.proposedAfterAll(ctx, claim.OrderNo, req, o.OrderNo, amount, err)
		if got != nil {
			s.log.WarnContext(ctx, "refund proposal recorded though the store did not confirm it; answered as proposed",
				"refund_id", got.RefundID, "order_no", o.OrderNo, "err", err)
			p, err = got, nil
		}
		if rerr != nil {
			// Its claim stays with its id: an ask again returns it if it
			// was written, or writes it under that id, never a second.
			s.log.WarnContext(ctx, "refund proposal may have been recorded: the store did not confirm it and it could not be read back",
				"refund_id", p.RefundID, "order_no", o.OrderNo, "err", err, "read_err", rerr)
			return p, o, fmt.Errorf("%w: record refund proposal %s: %w", ErrProposalUnconfirmed, p.RefundID, err)
		}
		if err == nil {
			s.mm.refunds.WithLabelValues("proposed").Inc()
			s.log.InfoContext(ctx, "refund proposed; waiting for the user's confirmation", "refund_id", p.RefundID, "order_no", o.OrderNo,
				"amount_fen", amount, "expires_at", p.ExpiresAt)
			if s.opts.Proposed != nil {
				s.opts.Proposed(ctx, *p)
			}
			return p, o, nil
		}
		if !errors.Is(err, store.ErrExists) {
			return nil, o, fmt.Errorf("record refund proposal: %w", err)
		}
		open, err := s.openProposal(ctx, claim.OrderNo, req, o.OrderNo, amount)
		if err != nil {
			return nil, o, err
		}
		if open != nil {
			s.log.InfoContext(ctx, "refund proposed again while its proposal is open; the open one returned", "refund_id", open.RefundID,
				"order_no", o.OrderNo, "amount_fen", amount, "expires_at", open.ExpiresAt)
			return open, o, nil
		}
		var done *RefundResult
		if req.AmountFen != 0 {
			if done, err = s.confirmedWithinItsLife(ctx, claim.OrderNo, req); err != nil {
				return nil, o, err
			}
		}
		if done != nil {
			return nil, done.Order, s.alreadyConfirmed(ctx, done)
		}
		if claim, _, err = s.store.AdvanceClaim(ctx, key, claim.Generation, newRefundID(), ttl); err != nil {
			return nil, o, fmt.Errorf("claim refund proposal: %w", err)
		}
	}
	return nil, o, fmt.Errorf("record refund proposal: %w: its claim keeps moving", store.ErrConflict)
}

// proposedAfterAll is proposal id, whose write failed with err, when it
// was written all the same: the store did not confirm it (a lost reply, a
// write not on a replica in time: mayHaveApplied), and read back, it is
// open (openProposal). It is then live, its confirm button in the user's
// order list and its refund.proposed with the merchant: answered "nothing
// was changed", the model told the user no refund was asked for while a
// button to confirm one stood. nil otherwise; when the read fails, nil and
// the read's error: the proposal may stand or not (ErrProposalUnconfirmed).
func (s *Service) proposedAfterAll(ctx context.Context, id string, req RefundRequest, orderNo string, amount int64, err error) (*store.RefundProposal, error) {
	if !mayHaveApplied(err) {
		return nil, nil
	}
	return s.openProposal(ctx, id, req, orderNo, amount)
}

// confirmedWithinItsLife is the refund of proposal id, the one the claim of
// req's ask names, when the user confirmed it and it would still be open
// had they not (before its ExpiresAt): an ask of the same amount of the same
// order then is the turn that proposed it sent again (a bot's retry, a
// backend resending the user's message, a second tap), arriving after the
// user's answer. A new proposal offered the user a second confirm button
// for the refund they had asked for and confirmed once, which a tap turned
// into a second refund. nil when it was not confirmed, has lapsed since,
// or its refund came to nothing (WeChat Pay closed it, or it was refused or
// undone): a new ask is then a new refund. Only an ask naming its amount is
// read so (the caller's check): an ask of everything left that comes to
// the amount of an earlier refund ("the rest" of an order refunded by
// half) is a new refund, and one sent again after its confirmation finds
// nothing left, or the refund in progress, as it is.
func (s *Service) confirmedWithinItsLife(ctx context.Context, id string, req RefundRequest) (*RefundResult, error) {
	fate, p, err := s.proposalFate(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("read refund proposal %s: %w", id, err)
	}
	if fate != fateTaken || p == nil || !s.now().Before(p.ExpiresAt) {
		return nil, nil
	}
	res, ok, err := s.refundState(ctx, req.Client, req.User, id)
	if err != nil {
		return nil, err
	}
	if !ok || res.Status == RefundClosed {
		return nil, nil
	}
	return res, nil
}

// askedAgain is confirmedWithinItsLife for an ask naming an amount that
// order o can take no new proposal of: the order refunded in full, or less
// left than the amount (an order refunding is answered refund_in_progress,
// which names a proposal its cut confirmation left waiting for the user,
// and is true of the refund on its way). The ask is then read as the turn that
// proposed a refund the user confirmed, sent again, as when enough is left
// (ProposeRefund): its refund took what the ask would have needed (30.00
// of 49.99 refunded leaves 19.99, short of a second 30.00), and the turn
// was told "at most 19.99 can be refunded", asking the user to name another
// amount for the refund they already got, or "cannot be refunded" of an
// order whose refund they confirmed. nil for an ask of everything left, when
// no confirmed refund of that amount is within its life, or when the claim
// or proposal could not be read: the caller's answer stands.
func (s *Service) askedAgain(ctx context.Context, req RefundRequest, o *store.Order) *RefundResult {
	if req.AmountFen <= 0 {
		return nil
	}
	claim, _, err := s.store.ClaimPurchase(ctx, proposalClaimKey(req.Client, req.User, o.OrderNo, req.AmountFen), newRefundID(), s.proposalClaimTTL())
	if err != nil {
		s.log.WarnContext(ctx, "refund asked again: its claim could not be read; answered as the order stands", "order_no", o.OrderNo, "err", err)
		return nil
	}
	done, err := s.confirmedWithinItsLife(ctx, claim.OrderNo, req)
	if err != nil {
		s.log.WarnContext(ctx, "refund asked again: its proposal could not be read; answered as the order stands", "order_no", o.OrderNo, "err", err)
		return nil
	}
	return done
}

// alreadyConfirmed is ProposeRefund's answer to an ask of a refund the user
// confirmed within its proposal's life (confirmedWithinItsLife).
func (s *Service) alreadyConfirmed(ctx context.Context, done *RefundResult) error {
	s.log.InfoContext(ctx, "refund proposed again after the user confirmed it; answered with that refund, nothing proposed", "refund_id", done.Proposal.RefundID,
		"order_no", done.Proposal.OrderNo, "amount_fen", done.Proposal.AmountFen, "status", done.Status)
	return &AlreadyConfirmedError{Result: done}
}

// heldOpen is the proposal order o is refunding for when it is still open
// and is the one req asks for (its client, user and amount, or, req naming
// none, everything not yet refunded): a confirmation of it reserved the
// order and stopped before spending it, so nothing was sent, and a tap goes
// on under that reservation. It is proposed again as any open proposal of
// the request is; "a refund in progress" had the user wait for a refund
// nobody sent. nil otherwise (no reservation, another proposal's, a read
// that failed: ErrRefundInProgress stands).
func (s *Service) heldOpen(ctx context.Context, req RefundRequest, o *store.Order) *store.RefundProposal {
	if o.Status != store.StatusRefunding || o.RefundReservedBy == "" {
		return nil
	}
	p, err := s.store.GetRefundProposal(ctx, o.RefundReservedBy)
	if err != nil || !reservedFor(o, p) || p.Client != req.Client || p.User != req.User || p.OrderNo != o.OrderNo ||
		!s.now().Before(p.ExpiresAt) {
		return nil
	}
	if want := req.AmountFen; want != p.AmountFen && (want != 0 || p.AmountFen != o.AmountFen-o.RefundedFen) {
		return nil
	}
	s.log.InfoContext(ctx, "refund proposed again while its order is held for its open proposal; the open one returned", "refund_id", p.RefundID,
		"order_no", o.OrderNo, "amount_fen", p.AmountFen, "expires_at", p.ExpiresAt)
	return p
}

// proposalClaimKey is the claim key (store.Claims) of a refund proposal of
// amount of client's user's order: one open proposal per key. The "refund:"
// prefix keeps it apart from purchase claims (ClaimKey).
func proposalClaimKey(client, user, orderNo string, amount int64) string {
	h := sha256.New()
	for _, p := range []string{client, user, orderNo, strconv.FormatInt(amount, 10)} {
		h.Write([]byte(strconv.Itoa(len(p))))
		h.Write([]byte{':'})
		h.Write([]byte(p))
	}
	return "refund:" + hex.EncodeToString(h.Sum(nil)[:16])
}

// proposalClaimTTL is how long a refund proposal's claim lives after it was
// last asked for: past the life of any proposal (MaxRefundConfirmTTL from a
// write that follows the claim, judged by clocks up to proposalSkew apart),
// so a proposal never outlives its claim and a retry never finds it
// unclaimed. Not this config's RefundConfirmTTL: a proposal made under a
// longer one (before a restart that lowered confirm_ttl, or on a replica
// still running the old config) keeps its expiry, while an ask of it here
// slid its claim to the shorter life, and the claim lapsed with the
// proposal open: the next ask made a second open proposal of the same
// amount, which the user could confirm as well. A claim that outlives its
// proposal costs nothing: the next ask finds the proposal ended and moves
// the claim on (AdvanceClaim). It stays well inside TombstoneTTL, so that
// a claim never names an id whose proposal ended and was forgotten:
// written again, that id would be a second proposal under a used
// out_refund_no.
func (s *Service) proposalClaimTTL() time.Duration {
	return min(MaxRefundConfirmTTL+proposalSkew, store.TombstoneTTL/2)
}

// openProposal returns proposal id, found taken when this call went to
// write it, if it is open (not answered, not expired by this replica's
// clock, or not by the store's) and is the one asked for; nil when it is
// not. One lapsed by this replica's clock is ended in the store first
// (ExpireRefundProposal), so no replica confirms it besides the new one.
func (s *Service) openProposal(ctx context.Context, id string, req RefundRequest, orderNo string, amount int64) (*store.RefundProposal, error) {
	p, err := s.store.GetRefundProposal(ctx, id)
	switch {
	case errors.Is(err, store.ErrGone), errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read refund proposal %s: %w", id, err)
	}
	if p.Client != req.Client || p.User != req.User || p.OrderNo != orderNo || p.AmountFen != amount {
		return nil, nil // never: the claim's key is these
	}
	if s.now().Before(p.ExpiresAt) {
		return p, nil
	}
	got, state, err := s.store.ExpireRefundProposal(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("end lapsed refund proposal %s: %w", id, err)
	}
	if state == store.ProposalOpen {
		return got, nil // open by the store's clock after all
	}
	return nil, nil
}

// proposalEvents are Options.ProposalEvents' events for step of p.
func (s *Service) proposalEvents(ctx context.Context, step ProposalStep, p *store.RefundProposal, o *store.Order) []store.Event {
	if s.opts.ProposalEvents == nil {
		return nil
	}
	return s.opts.ProposalEvents(ctx, step, *p, o)
}

// proposal returns the live proposal id of this client and user. Another
// user's or client's proposal is store.ErrNotFound, even once used; a used,
// cancelled or expired one of this user is store.ErrGone.
func (s *Service) proposal(ctx context.Context, client, user, id string) (*store.RefundProposal, error) {
	p, err := s.store.GetRefundProposal(ctx, id)
	if errors.Is(err, store.ErrGone) {
		// A tombstone is read without its owner: its record is read to
		// check both the client and the user, so that another client's or
		// user's tap is not found, as before the proposal ended; "gone"
		// would tell them the id exists. (The consume step checked only
		// the user.) Past TombstoneTTL meanwhile, it is not found.
		t, _, serr := s.store.RefundProposalState(ctx, id)
		if serr != nil {
			return nil, fmt.Errorf("refund proposal %s: read its tombstone: %w", id, serr)
		}
		if t.Client != client || t.User != user {
			return nil, fmt.Errorf("refund proposal %s: %w", id, store.ErrNotFound)
		}
		return nil, fmt.Errorf("refund proposal %s: %w", id, store.ErrGone)
	}
	if err != nil {
		return nil, fmt.Errorf("refund proposal %s: %w", id, err)
	}
	if p.Client != client || p.User != user {
		return nil, fmt.Errorf("refund proposal %s: %w", id, store.ErrNotFound)
	}
	return p, nil
}

// CancelRefund is the user's "no": the proposal is withdrawn (a later confirm
// is store.ErrGone). Nothing was sent to WeChat Pay. The answer's events
// (its audit record, ProposalCancelled) are written with the tombstone, so
// a declined refund is told apart from one left to expire. An order a cut
// confirmation of it left reserved is freed with it (releaseCancelled).
//
// A cancel of a proposal this user already confirmed, whose refund went to
// WeChat Pay, is an *AlreadyConfirmedError with the refund's state: the
// refund goes on, and the user must hear that rather than store.ErrGone,
// which reads as "nothing will happen". A cancel of a proposal this user
// cancelled already (an SDK's retry of a cancel whose answer was lost) is
// answered as the first was, recording nothing, and frees what the first
// should have (releaseCancelled: it may have stopped short, answered 503):
// ErrGone read as the proposal having expired.
func (s *Service) CancelRefund(ctx context.Context, client, user, id string) (*store.RefundProposal, error) {
	live, err := s.proposal(ctx, client, user, id)
	if err == nil {
		var p *store.RefundProposal
		if p, err = s.store.CancelRefundProposal(ctx, id, user, s.proposalEvents(ctx, ProposalCancelled, live, nil)...); err == nil {
			s.mm.refunds.WithLabelValues("cancelled").Inc()
			s.log.InfoContext(ctx, "refund proposal cancelled by the user", "refund_id", id, "order_no", p.OrderNo)
			s.releaseCancelled(ctx, live)
			return p, nil
		}
		if p, ok := s.cancelledAfterAll(ctx, live, err); ok {
			s.mm.refunds.WithLabelValues("cancelled").Inc()
			s.log.WarnContext(ctx, "refund proposal cancelled by the user though the store did not confirm it; answered cancelled",
				"refund_id", id, "order_no", p.OrderNo, "err", err)
			s.releaseCancelled(ctx, live)
			return p, nil
		}
		err = fmt.Errorf("cancel refund proposal %s: %w", id, err)
	}
	if errors.Is(err, store.ErrGone) {
		// Ended before, or as this cancel ran (another tap won in the
		// store): by whose answer decides what the user is told.
		return s.cancelEnded(ctx, client, user, id, err)
	}
	return nil, err
}

// cancelledAfterAll reports whether the cancel of live, which failed with
// err, took effect all the same: the store did not confirm it (a lost
// reply, a write not on a replica in time: mayHaveApplied), and read back,
// the proposal is cancelled, its owner this cancel's. It returns the
// cancelled proposal. The store keeps no mark of which cancel ended it, so
// one that lost to a concurrent cancel of the same user is answered
// cancelled too, as its retry would be (cancelEnded). It was answered 503,
// the order a cut confirmation left reserved kept to the sweep, and the
// SDK's retry, answered cancelled, counted as a repeat; a confirm in the
// same spot reads its store back (consumedAfterAll). Any read that fails
// says no: the store's error stands.
func (s *Service) cancelledAfterAll(ctx context.Context, live *store.RefundProposal, err error) (*store.RefundProposal, bool) {
	if !mayHaveApplied(err) {
		return nil, false
	}
	p, state, serr := s.store.RefundProposalState(ctx, live.RefundID)
	if serr != nil || state != store.ProposalCancelled || p.Client != live.Client || p.User != live.User {
		return nil, false
	}
	return p, true
}

// cancelEnded answers a cancel of proposal id that found it ended (gone,
// the caller's error): cancelled by this client's user, it is cancelled, as
// before; confirmed by them, with its refund sent, it is an
// *AlreadyConfirmedError; otherwise (expired, its refund refused or
// undone) gone stands.
func (s *Service) cancelEnded(ctx context.Context, client, user, id string, gone error) (*store.RefundProposal, error) {
	p, state, err := s.store.RefundProposalState(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		s.mm.refunds.WithLabelValues("gone").Inc()
		return nil, gone
	}
	if err != nil {
		return nil, fmt.Errorf("refund proposal %s: read its state: %w", id, err)
	}
	if state == store.ProposalCancelled && p.Client == client && p.User == user {
		s.log.InfoContext(ctx, "refund proposal cancelled again; answered as before", "refund_id", id, "order_no", p.OrderNo)
		// The first may have stopped before freeing the order a cut
		// confirmation left reserved (its write not acknowledged in time,
		// answered 503): this answer says what the first would have, and
		// frees it as the first would have, not a sweep a minute on. A
		// reservation already undone is left as it is.
		s.releaseCancelled(ctx, p)
		s.mm.refunds.WithLabelValues("repeated").Inc()
		return p, nil
	}
	res, ok, err := s.refundState(ctx, client, user, id)
	if err != nil {
		return nil, err
	}
	if !ok {
		s.mm.refunds.WithLabelValues("gone").Inc()
		return nil, gone
	}
	s.mm.refunds.WithLabelValues("already_confirmed").Inc()
	s.log.InfoContext(ctx, "refund cancel refused: the user already confirmed it", "refund_id", id,
		"order_no", res.Proposal.OrderNo, "status", res.Status)
	return nil, &AlreadyConfirmedError{Result: res}
}

// releaseCancelled undoes the reservation a confirmation of p made and
// left (it stopped before spending the user's word: the replica died, the
// store failed), now that p is cancelled (releaseEnded), at once, not when
// the sweep next looks at it (a minute on, on Redis): the user's "no" left
// the order's refundable amount held meanwhile, and a new proposal refused
// as "another refund in progress". A failure is logged and left to the
// sweep, which undoes a reservation of an ended proposal
// (reconcileUnrecorded).
func (s *Service) releaseCancelled(ctx context.Context, p *store.RefundProposal) {
	o, err := s.store.GetOrder(ctx, p.OrderNo)
	if err != nil {
		s.log.WarnContext(ctx, "refund proposal cancelled; its order not read, any reservation left to the sweep", "refund_id", p.RefundID, "order_no", p.OrderNo, "err", err)
		return
	}
	if reservedFor(o, p) {
		s.releaseEnded(ctx, o)
	}
}

// releaseEnded undoes the reservation of refunding order o when its
// proposal ended unused (cancelled, or expired: lapsed by this replica's
// clock, it is ended in the store first, proposalFate) and was never
// taken: a refund is sent only by the confirmation that took its proposal,
// so nothing went or will go to WeChat Pay under the reservation, which a
// confirmation cut short left. The order goes back to what it was
// (refund.aborted, as the sweep records it) and is returned; nil when
// there is nothing to undo or it could not be done (left to the sweep:
// reconcileUnrecorded). The undo is a compare-and-set at o's version,
// against a confirmation of the proposal that reserved the order and lost
// its consumption, which undoes it too (notConsumed).
func (s *Service) releaseEnded(ctx context.Context, o *store.Order) *store.Order {
	if o.Status != store.StatusRefunding || o.RefundReservedBy == "" {
		return nil
	}
	fate, p, err := s.proposalFate(ctx, o.RefundReservedBy)
	if err != nil || fate != fateEnded || p == nil || !reservedFor(o, p) {
		return nil
	}
	if before, err := s.takenBefore(ctx, p, o.Version); err != nil || before {
		return nil // never, for a proposal not taken: left to the sweep
	}
	got, err := s.revertRefund(withRefund(ctx, p), inFlight{Proposal: *p, OrderVersion: o.Version}, CauseRefundAborted)
	if err != nil {
		s.log.WarnContext(ctx, "refund proposal ended unused; its reservation left to the sweep", "refund_id", p.RefundID, "order_no", o.OrderNo, "err", err)
		return nil
	}
	if got != nil && got.Status != store.StatusRefunding {
		s.log.InfoContext(ctx, "refund reservation undone with its proposal, which ended unused; nothing was sent under it",
			"refund_id", p.RefundID, "order_no", o.OrderNo, "status", got.Status)
	}
	return got
}

// ConfirmRefund executes the user's confirmation of proposal id exactly once,
// however many confirmations race: the order moves to refunding with a
// compare-and-set (one refund in flight per order, so refunds never add up to
// more than was paid), only then is the proposal consumed (single use), and
// WeChat Pay is asked to refund under the proposal's out_refund_no, the same
// number on every retry. A WeChat Pay that does not answer leaves the order
// refunding (RefundPending) for the sweep to ask about and resend.
//
// The order is reserved before the proposal is spent so that a confirmation
// that cannot run now (another proposal's refund in flight) leaves its
// proposal usable until it expires, as ErrRefundInProgress tells the user;
// consuming first spent it for nothing when two proposals of one order were
// confirmed at once.
//
// The reservation holds the order for the proposal, not for the request
// that made it: a confirmation that finds the order reserved for its own
// proposal goes on under that reservation, and the proposal's single use
// decides which one sends the refund. A replica that died after reserving
// and before spending the user's word (the proposal still live, nothing
// sent) would otherwise leave the user's next tap told "already used", with
// nothing refunded.
//
// A confirmation of a proposal this user already confirmed (a bot's retry
// after a timeout, an SDK's automatic retry, a second tap) sends nothing:
// it is answered with the state of the refund the first one started
// (confirmedAnswer), so the bot tells the user what is true. Only a
// proposal that was cancelled or expired, or whose refund never went out
// (refused, undone), is store.ErrGone.
func (s *Service) ConfirmRefund(ctx context.Context, client, user, id string) (*RefundResult, error) {
	res, err := s.confirmRefund(ctx, client, user, id)
	if !errors.Is(err, store.ErrGone) {
		return res, err
	}
	again, ok, aerr := s.confirmedAnswer(ctx, client, user, id)
	if aerr != nil {
		return nil, aerr
	}
	if ok {
		return again, nil
	}
	s.mm.refunds.WithLabelValues("gone").Inc()
	return res, err
}

// confirmedAnswer is the answer to a repeated confirmation of proposal id,
// which a confirmation of this client's user already took: the refund as
// its order records it. Succeeded when the order counts its out_refund_no,
// closed when WeChat Pay closed it, pending (on its way: WeChat Pay is
// asked, or is asked again by the sweep) while the order is refunding for
// it or went to needs_review with its refund sent and still open. ok is
// false otherwise (not used, another owner, its refund refused
// or undone): the caller's ErrGone stands. A read that failed is an
// error: which of those it is cannot be told, and "gone" (410, "ask again
// in the chat") would tell a user whose refund is on its way that it was
// refused or undone; the store's failure (503) is retried.
func (s *Service) confirmedAnswer(ctx context.Context, client, user, id string) (*RefundResult, bool, error) {
	res, ok, err := s.refundState(ctx, client, user, id)
	if ok {
		s.mm.refunds.WithLabelValues("repeated").Inc()
		s.log.InfoContext(ctx, "refund confirmed again; answered with the refund's state, nothing sent", "refund_id", id,
			"order_no", res.Proposal.OrderNo, "status", res.Status)
	}
	return res, ok, err
}

// refundState is where the refund of proposal id stands, which a
// confirmation of this client's user took (confirmedAnswer says how it is
// read); ok false when it was not taken, is another's, or its refund was
// refused or undone.
func (s *Service) refundState(ctx context.Context, client, user, id string) (*RefundResult, bool, error) {
	p, state, err := s.store.RefundProposalState(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("refund proposal %s: read its state: %w", id, err)
	}
	if state != store.ProposalUsed || p.Client != client || p.User != user {
		return nil, false, nil
	}
	o, err := s.store.GetOrder(ctx, p.OrderNo)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("refund proposal %s: read order %s: %w", id, p.OrderNo, err)
	}
	res := &RefundResult{Proposal: p, Order: o}
	// The refund's record is read only when the order's own word does not
	// answer (in review, its refund neither counted nor closed): read
	// first, its failure answered 503 for a refund the order counts.
	inReview := false
	if o.Status == store.StatusNeedsReview && !slices.Contains(o.RefundNos, p.OutRefundNo) &&
		!slices.Contains(o.ClosedRefundNos, p.OutRefundNo) {
		if inReview, err = s.sentInReview(ctx, o, p); err != nil {
			return nil, false, fmt.Errorf("refund proposal %s: %w", id, err)
		}
	}
	switch {
	case slices.Contains(o.RefundNos, p.OutRefundNo):
		res.Status = RefundSucceeded
	case slices.Contains(o.ClosedRefundNos, p.OutRefundNo):
		res.Status = RefundClosed
	case o.Status == store.StatusRefunding && o.RefundReservedBy == p.RefundID:
		res.Status = RefundPending
	case inReview:
		// Gone to review with its refund open at WeChat Pay (reported
		// ABNORMAL, or other money on the order): its outcome is still
		// to come, and WeChat Pay's SUCCESS of it is counted in review
		// too (noteRefundInReview).
		res.Status = RefundPending
	default:
		return nil, false, nil
	}
	return res, true, nil
}

// sentInReview reports whether order o, in needs_review, went there with
// p's refund recorded and still open (refundInReview): a refund that went
// to WeChat Pay, not a reservation whose refund was never recorded
// (refund_record_missing), of which nothing may have been sent.
func (s *Service) sentInReview(ctx context.Context, o *store.Order, p *store.RefundProposal) (bool, error) {
	rec, err := s.loadInFlight(ctx, o.OrderNo)
	if err != nil {
		return false, err
	}
	return rec != nil && rec.Proposal.RefundID == p.RefundID && refundInReview(o, rec), nil
}

// confirmRefund is ConfirmRefund's one confirmation; store.ErrGone when the
// proposal is no longer live.
func (s *Service) confirmRefund(ctx context.Context, client, user, id string) (*RefundResult, error) {
	p, err := s.proposal(ctx, client, user, id)
	if err != nil {
		return nil, err
	}
	// The order is worked on here from its reservation to WeChat Pay's
	// answer (orphaned: the sweep leaves it to this call), once a sweep
	// that holds it as its own has let go (workRefund).
	done, err := s.workRefund(ctx, p.OrderNo)
	if err != nil {
		return nil, err
	}
	defer done()
	o, err := s.store.GetOrder(ctx, p.OrderNo)
	if err != nil {
		return nil, fmt.Errorf("read order %s: %w", p.OrderNo, err)
	}
	if !reservedFor(o, p) {
		if err := checkRefund(o, p); err != nil {
			return s.notStarted(ctx, client, user, p, o, err)
		}
	}
	// Past the order's year also under a reservation held for p (a
	// confirmation cut short in the year's last minutes): WeChat Pay takes
	// no refund of it, and the tap that went on sent one, told "refused".
	// The reservation is the sweep's to undo once p ends.
	if err := s.inRefundWindow(o); err != nil {
		return s.notStarted(ctx, client, user, p, o, err)
	}
	// From the reservation on, finish (or undo) even if the caller leaves.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.refundCall)
	defer cancel()
	rctx := withRefund(ctx, p)
	got, reserved, err := s.update(rctx, p.OrderNo, "refund", "", func(c *store.Order) (*store.Order, error) {
		if reservedFor(c, p) {
			return nil, nil // held for p already: go on under it
		}
		if err := checkRefund(c, p); err != nil {
			return nil, err
		}
		c.Status = store.StatusRefunding
		c.RefundReservedBy = p.RefundID
		return c, nil
	})
	if err == nil && !reserved {
		// Held for p by an earlier confirmation (one refused because no
		// replica had its reservation in time, or one that died): gone on
		// with, the refund sent, only once a replica has the reservation
		// (on a cluster, spending p below waits for the replica of p's
		// primary, not of the order's).
		err = s.confirmReplicated(ctx, p.OrderNo)
	}
	if err != nil {
		if got == nil {
			got = o
		}
		return s.notStarted(ctx, client, user, p, got, err)
	}
	rec := inFlight{Proposal: *p, OrderVersion: got.Version, ConfirmedAt: s.now()}
	// Now spend the user's word. The confirmation's record
	// (ProposalConfirmed) rides the consumption, not the reservation: a
	// confirmation that lost to a cancel records none.
	// tookAfterAll: taken though the store did not confirm it, maybe by a
	// concurrent tap of p that goes on under the same reservation and
	// sends the same out_refund_no, its outcome perhaps unknown: a refusal
	// of this send then says nothing of that one (resendRefused).
	tookAfterAll := false
	if _, err := s.store.ConsumeRefundProposal(ctx, id, user, s.proposalEvents(ctx, ProposalConfirmed, p, got)...); err != nil {
		if !s.consumedAfterAll(ctx, p, rec, err) {
			return s.notConsumed(rctx, p, got, rec, reserved, err)
		}
		tookAfterAll = true
		s.log.WarnContext(ctx, "refund confirmation taken though the store did not confirm it; going on under the reservation",
			"refund_id", id, "order_no", p.OrderNo, "err", err)
	}
	s.mm.refunds.WithLabelValues("confirmed").Inc()
	if !reserved {
		s.log.InfoContext(ctx, "refund confirmed under the reservation an earlier confirmation of it left", "refund_id", id,
			"order_no", p.OrderNo, "order_version", got.Version, "reserved_at", got.UpdatedAt)
	}
	if err := s.putInFlight(ctx, &rec); errors.Is(err, store.ErrConflict) {
		// The order moved on from the reservation since it was made: this
		// confirmation was paused past its bound, and the sweep sent the
		// refund in its place (and it may have settled, another refund
		// been reserved and recorded since), or undid the reservation.
		// Written all the same, its record replaced a later refund's, and
		// the refund went out again under a reservation that ended.
		// Nothing is recorded or sent: gone, the caller answers with where
		// the refund stands (ConfirmRefund: confirmedAnswer), or 410.
		s.log.WarnContext(ctx, "refund confirmed by the user; the order moved on before the refund was recorded, nothing sent",
			"refund_id", id, "order_no", p.OrderNo, "order_version", rec.OrderVersion, "err", err)
		return &RefundResult{Proposal: p, Order: got}, fmt.Errorf("refund proposal %s: the order moved on before its refund was recorded: %w", id, store.ErrGone)
	} else if err != nil {
		if !s.recordedAfterAll(ctx, rec, err) {
			// Nothing went to WeChat Pay: undo, so the order is not stuck.
			back, _ := s.revertRefund(rctx, rec, CauseRefundAborted)
			return &RefundResult{Proposal: p, Order: back}, err
		}
		s.log.WarnContext(ctx, "refund recorded though the store did not confirm it; asking wechat pay",
			"refund_id", id, "order_no", p.OrderNo, "err", err)
	}
	s.log.InfoContext(ctx, "refund confirmed by the user; asking wechat pay", "refund_id", id, "order_no", p.OrderNo,
		"out_refund_no", p.OutRefundNo, "amount_fen", p.AmountFen)
	return s.sendRefund(rctx, got, rec, "refund", tookAfterAll)
}

// consumedAfterAll reports whether the consumption of p under the
// reservation rec, which failed with err, took p all the same: the store
// did not confirm it (a lost reply, a write not replicated in time:
// mayHaveApplied), and read back, p is used while the order is still
// reserved for it at rec's version, and no refund of p was recorded under
// an earlier reservation (takenBefore). The confirmation then goes on
// under the reservation and sends the refund: left to the sweep, the
// user's word was spent with nothing sent, their retry told "already
// used", and the order went to needs_review. Whether this confirmation or
// a concurrent one of p took it, both send the same refund (out_refund_no
// derives from p), which WeChat Pay makes once. Any read that fails says
// no: the reservation is left to the sweep, as before.
func (s *Service) consumedAfterAll(ctx context.Context, p *store.RefundProposal, rec inFlight, err error) bool {
	if !mayHaveApplied(err) {
		return false
	}
	if _, state, serr := s.store.RefundProposalState(ctx, p.RefundID); serr != nil || state != store.ProposalUsed {
		return false
	}
	cur, gerr := s.store.GetOrder(ctx, p.OrderNo)
	if gerr != nil || !reservedFor(cur, p) || cur.Version != rec.OrderVersion {
		return false
	}
	before, terr := s.takenBefore(ctx, p, rec.OrderVersion)
	return terr == nil && !before
}

// recordedAfterAll reports whether the record of refund rec, whose write
// failed with err, was written all the same: the store did not confirm it
// (mayHaveApplied), and read back, the order's refund in flight is rec's
// proposal at rec's version (this confirmation's record, or a concurrent
// one's of the same refund). The refund then goes to WeChat Pay: undoing
// the reservation spent the user's word for nothing.
func (s *Service) recordedAfterAll(ctx context.Context, rec inFlight, err error) bool {
	if !mayHaveApplied(err) {
		return false
	}
	got, lerr := s.loadInFlight(ctx, rec.Proposal.OrderNo)
	return lerr == nil && got != nil && got.Proposal.RefundID == rec.Proposal.RefundID && got.OrderVersion == rec.OrderVersion
}

// notStarted answers a confirmation that could not reserve its order: a
// confirmation of this same proposal that won the race and spent it since
// this one read it makes it "already used" (410), not "another refund in
// progress"; otherwise the proposal is untouched and err stands.
func (s *Service) notStarted(ctx context.Context, client, user string, p *store.RefundProposal, o *store.Order, err error) (*RefundResult, error) {
	if _, perr := s.proposal(ctx, client, user, p.RefundID); errors.Is(perr, store.ErrGone) {
		return nil, perr
	}
	err = s.inProgressLeaves(ctx, o, p, err)
	s.log.InfoContext(ctx, "confirmed refund not started", "refund_id", p.RefundID, "order_no", p.OrderNo, "err", err)
	return &RefundResult{Proposal: p, Order: o}, err
}

// notConsumed answers a confirmation that holds o's reservation for p (rec
// at its version) and could not spend p. The reservation is undone only
// when p was never taken and never will be (cancelled, unknown, or expired:
// lapsed by this replica's clock, it is ended in the store for every
// replica first, proposalFate): then nothing goes to WeChat Pay under it,
// and the order is refundable again at once, as the 410 the tap gets
// says. Taken by another confirmation of p, which goes on under the same
// reservation and sends the refund, it is "already used" and the order is
// left to that confirmation. Otherwise (the store did not answer) it is
// left to the sweep (reconcileUnrecorded), which waits for p's fate.
// made says this confirmation made the reservation: finding p taken then,
// or gone with what became of it unread, it notes so (foundTaken), for the
// sweep cannot tell that reservation from one whose confirmation took p
// and stopped.
func (s *Service) notConsumed(ctx context.Context, p *store.RefundProposal, o *store.Order, rec inFlight, made bool, err error) (*RefundResult, error) {
	err = fmt.Errorf("refund proposal %s: %w", p.RefundID, err)
	res := &RefundResult{Proposal: p, Order: o}
	if !errors.Is(err, store.ErrGone) && !errors.Is(err, store.ErrNotFound) {
		s.log.WarnContext(ctx, "refund confirmation not taken; the reservation is left to the sweep", "refund_id", p.RefundID, "order_no", p.OrderNo, "err", err)
		return res, err
	}
	fate, _, ferr := s.proposalFate(ctx, p.RefundID)
	if ferr == nil && fate == fateTaken {
		// Taken by a confirmation that goes on under this reservation,
		// or, before it was made, under an earlier one (this tap read the
		// proposal live, and its refund went out and settled before it
		// reserved the order again): then nothing will be sent under this
		// one, which is undone as for an ended proposal.
		var before bool
		if before, ferr = s.takenBefore(ctx, p, rec.OrderVersion); before {
			fate = fateEnded
		}
	}
	switch {
	case ferr != nil:
		s.log.WarnContext(ctx, "refund confirmation not taken; the reservation is left to the sweep", "refund_id", p.RefundID, "order_no", p.OrderNo, "err", err, "state_err", ferr)
		if made {
			// Gone, and whether taken, or taken before this reservation,
			// could not be read: noted all the same. The sweep reads both
			// first (proposalFate, takenBefore), and reads the note only
			// for a proposal taken under this reservation, which no
			// confirmation recorded; unnoted, it sent that refund.
			s.noteFoundTaken(ctx, p, rec.OrderVersion)
		}
	case fate == fateEnded:
		if back, _ := s.revertRefund(ctx, rec, CauseRefundAborted); back != nil {
			res.Order = back
		}
	case fate == fateTaken:
		s.log.InfoContext(ctx, "refund confirmation taken by a concurrent confirmation of it", "refund_id", p.RefundID, "order_no", p.OrderNo)
		if made {
			s.noteFoundTaken(ctx, p, rec.OrderVersion)
		}
	}
	return res, err
}

// foundTakenKey marks the reservation of orderNo at version as made by a
// confirmation that then found its proposal already taken (noteFoundTaken).
func foundTakenKey(orderNo string, version int64) string {
	return fmt.Sprintf("refund-found-taken:%s:%d", orderNo, version)
}

// noteFoundTaken records that this confirmation reserved p's order at
// version and found p taken already: by a concurrent tap that went on
// under this reservation (it records the refund at version, and sends
// it), or before it was made, by a confirmation whose refund ended since
// (refused, undone) and whose record a later refund's replaced, so that
// takenBefore cannot see it. Without the note the sweep took such a
// reservation for one whose confirmation took p and stopped, and sent
// a refund whose refusal the user had been told of (sendTaken). A failure
// is logged: the sweep then goes on as without it.
func (s *Service) noteFoundTaken(ctx context.Context, p *store.RefundProposal, version int64) {
	if err := s.store.PutExchange(ctx, foundTakenKey(p.OrderNo, version), []byte(p.RefundID), store.TombstoneTTL); err != nil {
		s.log.WarnContext(ctx, "refund confirmation found its proposal taken under the reservation it made; noting so failed",
			"refund_id", p.RefundID, "order_no", p.OrderNo, "order_version", version, "err", err)
	}
}

// foundTaken reports whether the confirmation that made o's reservation
// (at its version) for p found p taken already (noteFoundTaken).
func (s *Service) foundTaken(ctx context.Context, o *store.Order, p *store.RefundProposal) (bool, error) {
	b, err := s.store.GetExchange(ctx, foundTakenKey(o.OrderNo, o.Version))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read order %s's reservation found taken: %w", o.OrderNo, err)
	}
	return string(b) == p.RefundID, nil
}

// proposalFate is what became of a refund proposal, for a reservation made
// for it that has no refund recorded.
type proposalFate int

const (
	// fateOpen: it may still be taken (confirmed) or cancelled.
	fateOpen proposalFate = iota
	// fateTaken: a confirmation took it; that confirmation sends the
	// refund, after recording it.
	fateTaken
	// fateEnded: it was not taken and never will be: cancelled, expired
	// (ended in the store: store.ProposalExpired), or unknown to the store.
	fateEnded
)

// proposalFate reads what became of proposal id. An unknown id is
// fateEnded and p nil: no confirmation can take it. One still open past its
// ExpiresAt by this replica's clock is ended in the store
// (ExpireRefundProposal) before it is called ended: ExpiresAt is the
// proposing replica's clock and the store judges expiry on its own (Redis:
// the server's), so another replica could otherwise still take it, and
// send its refund under a reservation undone meanwhile; one the store
// finds not yet lapsed is open. Taken first, it is fateTaken.
func (s *Service) proposalFate(ctx context.Context, id string) (proposalFate, *store.RefundProposal, error) {
	p, state, err := s.store.RefundProposalState(ctx, id)
	if err == nil && state == store.ProposalOpen && !s.now().Before(p.ExpiresAt) {
		p, state, err = s.store.ExpireRefundProposal(ctx, id)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fateEnded, nil, nil
	case err != nil:
		return fateOpen, nil, err
	}
	switch state {
	case store.ProposalUsed:
		return fateTaken, p, nil
	case store.ProposalCancelled, store.ProposalExpired:
		return fateEnded, p, nil
	}
	return fateOpen, p, nil
}

// reservedFor reports whether o is refunding, held for proposal p.
func reservedFor(o *store.Order, p *store.RefundProposal) bool {
	return o.Status == store.StatusRefunding && o.RefundReservedBy == p.RefundID &&
		o.Client == p.Client && o.User == p.User
}

// checkRefund reports whether proposal p can run on order o now. A
// proposal whose refund the order already counts, or whose refund WeChat
// Pay closed (final for its out_refund_no), was used: a late tap that read
// it live must not reserve the order for it again. It is store.ErrGone, and
// the tap is answered as a repeat, with the refund's state (closed): held
// again, nobody would send under the reservation, a new proposal was
// refused as another refund in progress until the sweep undid it, and the
// user, told "closed", was then told the refund failed.
func checkRefund(o *store.Order, p *store.RefundProposal) error {
	if o.Client != p.Client || o.User != p.User {
		return fmt.Errorf("%w: order %s", ErrNotOwner, o.OrderNo)
	}
	if slices.Contains(o.RefundNos, p.OutRefundNo) {
		return fmt.Errorf("refund %s already applied to order %s: %w", p.OutRefundNo, o.OrderNo, store.ErrGone)
	}
	if slices.Contains(o.ClosedRefundNos, p.OutRefundNo) {
		return fmt.Errorf("refund %s of order %s closed by wechat pay: %w", p.OutRefundNo, o.OrderNo, store.ErrGone)
	}
	left, err := refundable(o)
	if err != nil {
		return err
	}
	if p.AmountFen <= 0 || p.AmountFen > left {
		return fmt.Errorf("%w: %s proposed, %s refundable", ErrRefundAmount, FormatAmount(p.AmountFen, o.Currency), FormatAmount(left, o.Currency))
	}
	return nil
}

// sendRefund asks WeChat Pay for the in-flight refund of the refunding order
// o and applies what it answers.
//
// unknownBefore says another send of the refund under the same
// out_refund_no may have reached WeChat Pay (the sweep's resend of a
// recorded refund; a confirmation that took the user's word though the
// store did not confirm it, which a concurrent tap may have taken and
// sent): a refusal of this send then says nothing of that one
// (resendRefused).
func (s *Service) sendRefund(ctx context.Context, o *store.Order, rec inFlight, cause string, unknownBefore bool) (*RefundResult, error) {
	p := rec.Proposal
	// The reason is cut again: a proposal stored by a release that cut it
	// to 80 characters (open across an upgrade, or proposed on a replica
	// not yet upgraded) may hold 240 bytes, which WeChat Pay may refuse.
	r, err := s.backend.CreateRefund(ctx, wechatpay.RefundRequest{
		OutTradeNo: o.OrderNo, OutRefundNo: p.OutRefundNo, Reason: clip(p.Reason, maxRefundReason), Refund: p.AmountFen, Total: o.AmountFen,
	})
	res := &RefundResult{Proposal: &p, Order: o}
	switch {
	case err == nil:
		s.mm.refunds.WithLabelValues("sent").Inc()
		got, aerr := s.applyAnswer(ctx, res, r, cause)
		if aerr != nil && cause == "refund" {
			// WeChat Pay has the refund; only its answer is not recorded
			// (the store failed). The order stays refunding with the
			// refund recorded, which the sweep asks WeChat Pay about, as
			// for an answer that never came: the user's tap is told it is
			// on its way, not that payments are unavailable, which had the
			// bot tell them their refund had not gone through.
			s.log.WarnContext(ctx, "refund sent; recording wechat pay's answer failed, the sweep will ask wechat pay again",
				"order_no", o.OrderNo, "out_refund_no", p.OutRefundNo, "wechatpay_status", r.Status, "err", aerr)
			got.Status = RefundPending
			return got, nil
		}
		return got, aerr
	case !refusedByWeChatPay(err):
		// Unknown outcome: the order stays refunding; the sweep asks by the
		// same out_refund_no and resends only if WeChat Pay has no such refund.
		// Only the client's refusal says WeChat Pay did not take the refund:
		// anything else (ErrTemporary, an unverifiable answer, a bare
		// context.Canceled or DeadlineExceeded or an error no sentinel names,
		// from another backend or a wrapper) may have reached it, and read
		// as a refusal it put the order back and told the user nothing was
		// refunded while WeChat Pay might have made the refund.
		s.mm.refunds.WithLabelValues("pending").Inc()
		s.log.WarnContext(ctx, "refund outcome unknown; the sweep will ask wechat pay again", "order_no", o.OrderNo, "out_refund_no", p.OutRefundNo, "err", err)
		res.Status = RefundPending
		if cause == "refund" { // a confirmation's answer; the sweep's resend keeps the order it read
			s.endedBeforeItsAnswer(ctx, res)
		} else if wechatpay.RateLimited(err) {
			// The sweep's resend, answered FREQUENCY_LIMITED through
			// its retries: its error ends the sweep's pass there
			// (sweepLimitedAt), as a query so answered does. Answered
			// pending and nil, the pass went on resending the other
			// late refunds into a WeChat Pay asking for fewer calls.
			// The order stays refunding, its outcome unknown.
			return res, err
		}
		return res, nil
	case unknownBefore:
		return s.resendRefused(ctx, res, rec, cause, err)
	default:
		var failed []func(*store.Order)
		if cause != "refund" {
			// Refused on the sweep's resend: the user was told it was on
			// its way (pending), and hears otherwise in their next turn.
			// A confirmation refused at once is answered so (502).
			failed = append(failed, func(c *store.Order) { s.noteOutcome(c, &p, p.AmountFen, store.RefundFailed) })
		}
		back, rerr := s.revertRefund(ctx, rec, "refund_failed", failed...)
		if rerr != nil {
			cur, held := s.stillHeld(ctx, rec)
			if held {
				// Not put back: the order is refunding with its refund
				// recorded, which the sweep asks WeChat Pay about and,
				// not found there, sends again under the same number.
				// "Refused, nothing was refunded" would be false if that
				// goes through: it is pending, as an unknown outcome is.
				s.mm.refunds.WithLabelValues("pending").Inc()
				s.log.ErrorContext(ctx, "wechat pay refused the refund and the order could not be restored; the sweep will ask wechat pay again and resend",
					"order_no", o.OrderNo, "out_refund_no", p.OutRefundNo, "err", err, "restore_err", rerr)
				res.Status = RefundPending
				return res, nil
			}
			back = cur // put back after all (the write's reply was lost), or moved on
		}
		if cause == "refund" && back != nil && refundInReview(back, &rec) {
			// In review meanwhile, the order is left as it is
			// (revertRefund), but this refusal ends the refund: its
			// reservation ends here, the user told by this answer.
			// Left to the sweep (endUnmadeInReview), it kept the
			// refund failed, and the user's next turn told them so a
			// second time.
			back, _, rerr = s.update(ctx, o.OrderNo, "refund_failed", "", func(c *store.Order) (*store.Order, error) {
				if !refundInReview(c, &rec) {
					return nil, nil
				}
				c.RefundReservedBy = ""
				return c, nil
			})
			if rerr != nil {
				s.log.WarnContext(ctx, "wechat pay refused the refund of an order in review; ending its reservation failed, the sweep will",
					"order_no", o.OrderNo, "out_refund_no", p.OutRefundNo, "err", rerr)
			}
		}
		if back != nil {
			res.Order = back
		}
		s.mm.refunds.WithLabelValues("failed").Inc()
		s.log.ErrorContext(ctx, "wechat pay refused the refund; order restored", "order_no", o.OrderNo, "out_refund_no", p.OutRefundNo, "err", err)
		return res, fmt.Errorf("%w: %w", ErrRefundFailed, err)
	}
}

// resendRefused answers the sweep's resend of rec's refund, whose earlier
// send's outcome was unknown, that WeChat Pay refused (err: NOT_ENOUGH,
// NO_AUTH, USER_ACCOUNT_ABNORMAL...). The refusal is of this send only:
// the earlier one may have made the refund, which a query at a replica
// behind the one that made it does not find yet (the WeChat Pay client
// holds the same within one call, stillUnknown). Put back to paid with
// the refund noted failed, the order took a new proposal, a new
// out_refund_no, and WeChat Pay made two refunds for the user's one. The
// order goes to needs_review instead (the merchant hears
// order.needs_review) with the refund kept in flight: its record still
// names it, so its SUCCESS is counted when it comes (noteRefundInReview),
// and the review sweep asks WeChat Pay about it again; not found there
// says no more than here, so its reservation then ends with no outcome
// noted (endUnmadeInReview). The user's refund is pending, as they were
// told; their order is under review. The same holds for a confirmation's
// send refused after a concurrent tap of the same proposal may have sent
// it (confirmRefund's tookAfterAll; cause "refund"): that tap's send is
// the earlier one, and this tap is answered pending.
func (s *Service) resendRefused(ctx context.Context, res *RefundResult, rec inFlight, cause string, err error) (*RefundResult, error) {
	no := rec.Proposal.OutRefundNo
	reason := resendRefusedNote(no) + refusalCode(err) + "; check the merchant platform for the refund before settling the order"
	got, changed, uerr := s.update(ctx, rec.Proposal.OrderNo, cause, "", func(c *store.Order) (*store.Order, error) {
		if c.Status != store.StatusRefunding || c.Version != rec.OrderVersion {
			return nil, nil
		}
		c.Status = store.StatusNeedsReview
		c.ReviewReason = reason
		return c, nil
	})
	if got != nil {
		res.Order = got
	}
	res.Status = RefundPending
	s.mm.refunds.WithLabelValues("pending").Inc()
	if uerr != nil {
		// Left refunding with its record: the next sweep asks and resends
		// again, under the same number.
		s.log.ErrorContext(ctx, "wechat pay refused the resend of a refund whose first send's outcome is unknown; the order could not be sent to review, the sweep will ask again",
			"order_no", rec.Proposal.OrderNo, "out_refund_no", no, "err", err, "review_err", uerr)
		return res, fmt.Errorf("send refund %s to review: %w", no, uerr)
	}
	if changed {
		s.alertRefundReview(ctx, rec.Proposal.OrderNo, no, "refund_resend_refused", "err", err)
	}
	return res, nil
}

// resendRefusedNote begins the review reason of resendRefused for the
// refund outRefundNo: what endUnmadeInReview tells it by.
func resendRefusedNote(outRefundNo string) string {
	return "refund_resend_refused: wechat pay refund " + outRefundNo + ": outcome of the first send unknown, resend refused: "
}

// refusalCode is WeChat Pay's error code in err, or "refused" when err
// carries none.
func refusalCode(err error) string {
	var apiErr *wechatpay.APIError
	if errors.As(err, &apiErr) && apiErr.Code != "" {
		return apiErr.Code
	}
	return "refused"
}

// refusedByWeChatPay reports whether err, from a call that may have
// reached WeChat Pay, is the WeChat Pay client's word that the request was
// refused, so WeChat Pay surely did not carry it out: ErrRejected, ErrNotFound,
// ErrInvalidNumber, ErrOrderClosed or ErrOrderPaid (a 400 with its code, an
// answer that made nothing, as the refusals before this check were read), and none of the sentinels of an
// unknown outcome (ErrTemporary, ErrUnverified) nor an ended context with
// it. Any other error, a bare context.Canceled or DeadlineExceeded
// included, is not a refusal: its outcome is unknown. ErrNumberUsed is
// not one either: WeChat Pay holds something under the out_refund_no, a
// refund it may have made, which the sweep's query by that number finds;
// read as a refusal, the order was put back for a new proposal, a second
// refund under another number.
func refusedByWeChatPay(err error) bool {
	if err == nil || errors.Is(err, wechatpay.ErrTemporary) || errors.Is(err, wechatpay.ErrUnverified) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	for _, refused := range []error{wechatpay.ErrRejected, wechatpay.ErrNotFound, wechatpay.ErrInvalidNumber, wechatpay.ErrOrderClosed, wechatpay.ErrOrderPaid} {
		if errors.Is(err, refused) {
			return true
		}
	}
	return false
}

// stillHeld reports whether the order of refund rec may still be refunding
// for it at rec's version, where the sweep would ask WeChat Pay about it and
// send it again: yes unless a read shows otherwise. It returns the order
// read.
func (s *Service) stillHeld(ctx context.Context, rec inFlight) (*store.Order, bool) {
	cur, err := s.store.GetOrder(ctx, rec.Proposal.OrderNo)
	if err != nil {
		return nil, true
	}
	return cur, cur.Status == store.StatusRefunding && cur.Version == rec.OrderVersion
}

// applyAnswer applies a refund's status as WeChat Pay's API reported it.
func (s *Service) applyAnswer(ctx context.Context, res *RefundResult, r *wechatpay.Refund, cause string) (*RefundResult, error) {
	switch r.Status {
	case wechatpay.RefundProcessing:
		res.Status = RefundProcessing
		if cause == "refund" { // a confirmation's answer; the sweep's keeps the order it read
			s.endedBeforeItsAnswer(ctx, res)
		}
		return res, nil
	case wechatpay.RefundSuccess:
		res.Status = RefundSucceeded
	case wechatpay.RefundClosed:
		res.Status = RefundClosed
	default:
		// ABNORMAL (or a status paygate does not know, applied as one):
		// the order goes to needs_review with the refund open, its
		// outcome still to come, as a repeated confirmation reads it
		// (refundState). "processing" said its notification would settle
		// the order.
		res.Status = RefundPending
	}
	got, _, _, err := s.applyRefund(ctx, refundFact{
		OutTradeNo: res.Order.OrderNo, OutRefundNo: r.OutRefundNo, Status: r.Status,
		MchID: s.opts.MchID, RefundFen: r.Refund, TotalFen: r.Total,
	}, cause, "")
	if got != nil {
		res.Order = got
	}
	return res, err
}

// endedBeforeItsAnswer gives res, a refund WeChat Pay answered PROCESSING
// or whose call's outcome is unknown (pending), the order as it stands
// now, and the refund's end when the order records it: WeChat Pay's
// notification of the refund (SUCCESS or CLOSED) can arrive and be
// applied before the create call's own answer gets back, or while that
// answer is lost. Answered "processing" or "pending" with the order still
// refunding, the user was told a refund already made, or closed with
// nothing refunded, was on its way, and a second tap of the same
// confirmation (refundState) was told how it ended. A read that fails
// leaves res as it was. The read has time of its own (finishTimeout): a
// call that ran out the confirmation's (refundCallTimeout), the likeliest
// lost answer and the longest window for the notification, left ctx done,
// and read under it the order was never read on either store.
func (s *Service) endedBeforeItsAnswer(ctx context.Context, res *RefundResult) {
	if res.Order == nil || res.Proposal == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	cur, err := s.store.GetOrder(ctx, res.Order.OrderNo)
	if err != nil {
		return
	}
	res.Order = cur
	switch {
	case slices.Contains(cur.RefundNos, res.Proposal.OutRefundNo):
		res.Status = RefundSucceeded
	case slices.Contains(cur.ClosedRefundNos, res.Proposal.OutRefundNo):
		res.Status = RefundClosed
	}
}

// putInFlight records rec, only while its order is at rec.OrderVersion
// (store.RefundRecords): store.ErrConflict when the order moved on. The
// record is one per order, so a writer paused between its read of the
// order and its write (a confirmation past its bound, a sweep) would
// otherwise replace the record of a refund made since.
func (s *Service) putInFlight(ctx context.Context, rec *inFlight) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode refund in flight: %w", err)
	}
	if err := s.store.PutRefundRecord(ctx, rec.Proposal.OrderNo, rec.OrderVersion, b, inFlightTTL); err != nil {
		return fmt.Errorf("record refund in flight: %w", err)
	}
	return nil
}

// loadInFlight returns the order's refund record, or nil when there is none.
func (s *Service) loadInFlight(ctx context.Context, orderNo string) (*inFlight, error) {
	b, err := s.store.GetExchange(ctx, inFlightKey(orderNo))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read refund in flight: %w", err)
	}
	var rec inFlight
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("decode refund in flight: %w", err)
	}
	return &rec, nil
}

// revertRefund puts a refunding order back where it was before rec's
// refund (paid, or partially_refunded when money went back before): for a
// refund that never reached WeChat Pay or that it refused or closed. also
// adds to the order in the same write (a refused refund's outcome).
func (s *Service) revertRefund(ctx context.Context, rec inFlight, cause string, also ...func(*store.Order)) (*store.Order, error) {
	got, _, err := s.update(ctx, rec.Proposal.OrderNo, cause, "", func(c *store.Order) (*store.Order, error) {
		if c.Status != store.StatusRefunding || c.Version != rec.OrderVersion {
			return nil, nil
		}
		for _, a := range also {
			a(c)
		}
		endRefund(c)
		return c, nil
	})
	return got, err
}

// endRefund ends c's refund: its status is what it has refunded, and the
// reservation (RefundReservedBy) is cleared, as every way out of refunding
// but review must.
func endRefund(c *store.Order) {
	c.Status = settledRefundStatus(c)
	c.RefundReservedBy = ""
}

// settledRefundStatus is a paid order's status for what it has refunded.
func settledRefundStatus(c *store.Order) store.OrderStatus {
	switch {
	case c.RefundedFen <= 0:
		return store.StatusPaid
	case c.RefundedFen >= c.AmountFen:
		return store.StatusRefunded
	}
	return store.StatusPartiallyRefunded
}

// refundFact is WeChat Pay's word about one refund, from a notification or
// an API answer.
type refundFact struct {
	OutTradeNo, OutRefundNo string
	Status                  string // wechatpay.Refund* statuses
	MchID                   string
	RefundFen, TotalFen     int64
	TransactionID           string
}

// applyRefund commits WeChat Pay's word about a refund exactly once. Only the
// refund in flight counts (its out_refund_no, recorded at confirmation, at
// the order's current version): a late copy of an earlier refund's
// notification changes nothing, so refunded_fen never counts a refund twice.
// A refund WeChat reports that contradicts the record puts the order in
// needs_review; its word about a refund of an order already there is noted
// on it (noteRefundInReview). It returns the order after, the outcome and,
// for review, why.
func (s *Service) applyRefund(ctx context.Context, f refundFact, cause, noteID string) (*store.Order, string, string, error) {
	rec, err := s.loadInFlight(ctx, f.OutTradeNo)
	if err != nil {
		return nil, "", "", err
	}
	rctx := ctx
	if rec != nil && rec.Proposal.OutRefundNo == f.OutRefundNo {
		rctx = withRefund(ctx, &rec.Proposal)
	}
	outcome, reason := OutcomeDuplicate, ""
	got, changed, err := s.update(rctx, f.OutTradeNo, cause, noteID, func(c *store.Order) (*store.Order, error) {
		outcome, reason = OutcomeDuplicate, ""
		if c.Status == store.StatusNeedsReview {
			var own *store.RefundProposal
			if rec != nil && rec.Proposal.OutRefundNo == f.OutRefundNo {
				own = &rec.Proposal
			}
			next, r := s.noteRefundInReview(c, f, own)
			if next != nil {
				outcome, reason = OutcomeReview, r
			}
			return next, nil
		}
		if c.Status == store.StatusClosed && c.TransactionID != "" && refundNoted(c, f) {
			// Resolved as closed (Resolve) with this word on it: a copy.
			return nil, nil
		}
		review := func(r string) (*store.Order, error) {
			outcome, reason = OutcomeReview, r
			c.Status = store.StatusNeedsReview
			c.ReviewReason = r + ": " + f.said()
			return c, nil
		}
		switch {
		case f.MchID != s.opts.MchID:
			return review("mchid_mismatch")
		case f.TotalFen != c.AmountFen:
			return review("amount_mismatch")
		case countedOtherwise(c, f):
			// A refund counted already, told again of another amount:
			// not a copy, as the refund in flight's word of another
			// amount is not its refund.
			return review("refund_amount_mismatch")
		case (f.Status == wechatpay.RefundClosed || f.Status == wechatpay.RefundAbnormal) &&
			slices.Contains(c.RefundNos, f.OutRefundNo):
			// A refund counted already (its SUCCESS is final at WeChat
			// Pay), told CLOSED or ABNORMAL: WeChat Pay's word contradicts
			// the record of money that went back. A person looks;
			// refunded_fen and the refund's outcome stay as they were. It
			// was acknowledged as a late copy, unseen.
			return review("refund_contradicted")
		}
		// unasked: money went back that paygate neither applied nor has in
		// flight (the merchant platform?). Orders refunded before refund
		// numbers were kept (RefundedFen without RefundNos) cannot tell, and
		// keep treating such word as a late copy.
		unasked := f.Status == wechatpay.RefundSuccess && !slices.Contains(c.RefundNos, f.OutRefundNo) &&
			(c.RefundedFen == 0 || len(c.RefundNos) > 0)
		// unknown: a CLOSED or ABNORMAL refund paygate never made, neither
		// counted nor the one it last sent for the order: a refund started
		// elsewhere (the merchant platform), as unasked's SUCCESS is, and
		// raised the same way; ABNORMAL money left the merchant and reached
		// no one. It was acknowledged as a late copy, unseen.
		// A CLOSED of one of paygate's own refunds that it applied
		// (ClosedRefundNos) is a late copy, also once a later refund is
		// the one in flight: WeChat Pay sends a notification again until
		// it is acknowledged, and a query may have found the close first.
		unknown := (f.Status == wechatpay.RefundClosed && !slices.Contains(c.ClosedRefundNos, f.OutRefundNo) ||
			f.Status == wechatpay.RefundAbnormal) &&
			!slices.Contains(c.RefundNos, f.OutRefundNo) && (rec == nil || rec.Proposal.OutRefundNo != f.OutRefundNo) &&
			(c.RefundedFen == 0 || len(c.RefundNos) > 0)
		switch c.Status {
		case store.StatusRefunding:
			if unknown || unasked && (rec == nil || rec.Proposal.OutRefundNo != f.OutRefundNo) {
				// Not the refund in flight, or none is (a confirmation
				// reserved the order and stopped before recording its
				// refund, so nothing went to WeChat Pay): money went
				// back that paygate never asked for.
				return review("refund_not_requested")
			}
			if rec == nil || rec.OrderVersion != c.Version || rec.Proposal.OutRefundNo != f.OutRefundNo {
				return nil, nil // another refund's late word; not the one in flight
			}
		case store.StatusRefunded, store.StatusPartiallyRefunded, store.StatusPaid:
			if unasked || unknown {
				return review("refund_not_requested")
			}
			return nil, nil // a late copy of an applied refund
		default:
			return review("refund_on_" + string(c.Status))
		}
		switch f.Status {
		case wechatpay.RefundSuccess:
			total := c.RefundedFen + f.RefundFen
			if f.RefundFen != rec.Proposal.AmountFen || total > c.AmountFen {
				return review("refund_amount_mismatch")
			}
			if slices.Contains(c.RefundNos, f.OutRefundNo) {
				// Counted already, and in flight again: the order was
				// reserved twice for one refund. Never counted twice.
				return review("refund_counted_twice")
			}
			outcome = OutcomeApplied
			c.RefundedFen = total
			c.RefundNos = append(c.RefundNos, f.OutRefundNo)
			s.noteOutcome(c, &rec.Proposal, f.RefundFen, store.RefundSucceeded)
			endRefund(c)
			return c, nil
		case wechatpay.RefundClosed:
			outcome = OutcomeApplied
			if !slices.Contains(c.ClosedRefundNos, f.OutRefundNo) {
				c.ClosedRefundNos = append(c.ClosedRefundNos, f.OutRefundNo)
			}
			s.noteOutcome(c, &rec.Proposal, rec.Proposal.AmountFen, store.RefundClosed)
			endRefund(c)
			return c, nil
		case wechatpay.RefundProcessing:
			return nil, nil
		default: // ABNORMAL: the money is stuck; a person must act
			s.noteOutcome(c, &rec.Proposal, rec.Proposal.AmountFen, store.RefundAbnormal)
			return review("refund_abnormal")
		}
	})
	if err != nil {
		return got, "", "", err
	}
	if !changed {
		outcome = OutcomeDuplicate
	}
	if outcome == OutcomeApplied {
		s.log.InfoContext(ctx, "refund settled", "order_no", f.OutTradeNo, "out_refund_no", f.OutRefundNo,
			"refund_status", f.Status, "status", got.Status, "refunded_fen", got.RefundedFen)
	}
	if outcome == OutcomeReview {
		s.alertRefundReview(ctx, f.OutTradeNo, f.OutRefundNo, reason)
	}
	return got, outcome, reason, nil
}

// errOrphanNotRecorded marks applyRefundNote's failure to record the orphan
// a refund of an unknown order implies (the store's error is wrapped too).
var errOrphanNotRecorded = errors.New("orphan not recorded")

// applyRefundNote applies a refund notification's fact through applyRefund.
// A refund of an order paygate does not know is WeChat Pay's word on real
// money, as a payment for one is: the payment it implies is recorded as an
// orphan in review (recordOrphan, as applyPayment does), and the refund
// itself goes onto the orphan's record, as a later refund's word would:
// acknowledged, it is never sent again, and the person reviewing must see
// the money that went back, not only the payment it implies. The refund is
// on the orphan's record as it is written, in one step, so a copy of the
// notification racing this one finds it there. It then answers
// with the orphan's outcome and reason, and orphan true, or, when a
// concurrent notification recorded the orphan first, with the refund's
// outcome and reason on it; an orphan that could not be recorded is
// errOrphanNotRecorded.
func (s *Service) applyRefundNote(ctx context.Context, f refundFact, noteID string) (outcome, reason string, orphan bool, err error) {
	_, outcome, reason, err = s.applyRefund(ctx, f, "notification", noteID)
	if !errors.Is(err, store.ErrNotFound) {
		return outcome, reason, false, err
	}
	s.log.ErrorContext(ctx, "ALERT: refund notification for an unknown order", "alert", true,
		"notification_id", noteID, "out_trade_no", f.OutTradeNo, "out_refund_no", f.OutRefundNo, "refund_fen", f.RefundFen)
	pf := paymentFact{OutTradeNo: f.OutTradeNo, TransactionID: f.TransactionID, MchID: f.MchID, Total: f.TotalFen}
	// The refund is on the orphan as it is written, as a later word of it
	// would be noted on it (noteRefundInReview, none of paygate's in
	// flight): a copy of this notification racing it finds the refund
	// there, a duplicate. Put on in a second step, a copy landing between
	// the two put it on itself and was counted a review as well as this
	// one an orphan: two for one refund.
	withRefund := func(o *store.Order) {
		if next, _ := s.noteRefundInReview(o, f, nil); next != nil {
			*o = *next
		}
	}
	_, outcome, reason, err = s.recordOrphan(ctx, pf, "notification", noteID, withRefund)
	if err != nil {
		return "", "", false, fmt.Errorf("%w: %w", errOrphanNotRecorded, err)
	}
	if outcome != OutcomeDuplicate {
		return outcome, reason, true, nil
	}
	// The orphan was there: a concurrent notification recorded it (the
	// payment's, or a copy of this one) since applyRefund found none. This
	// one does what applyRefund says, as it would have after it.
	_, rOutcome, rReason, err := s.applyRefund(ctx, f, "notification", noteID)
	if err != nil {
		return "", "", false, err
	}
	return rOutcome, rReason, false, nil
}

// noteRefundInReview records WeChat Pay's word about a refund on an order
// already in needs_review, without moving it: a person decides, and must see
// all WeChat Pay said since. A SUCCESS not yet counted is money that went
// back (the merchant re-handled an ABNORMAL refund through WeChat Pay's
// abnormal-refund API under the same out_refund_no, or refunded on the
// merchant platform): it is added to refunded_fen and refund_nos so the
// record of the money is right when the person settles the order; it was
// once acknowledged and dropped as a duplicate. A CLOSED or ABNORMAL refund,
// and a SUCCESS that contradicts the record (merchant, order total, more
// than is left, or the refund in flight with another amount than its
// proposal's), go into the review reason without counting. Either is
// reported as review with its reason. own is the refund paygate had in
// flight, when f is about it (nil otherwise); how it ended is kept on the
// order (noteOutcome). The refund paygate had in flight when
// the order went to review ends its reservation (RefundReservedBy) once
// counted or CLOSED (a CLOSED one is kept among ClosedRefundNos, as
// outside review), so the admin's refunds list no longer shows it in
// flight. A fact already noted (its refund number and status are in the
// reason, or a SUCCESS is in refund_nos) changes nothing (nil), so copies
// stay duplicates and nothing counts twice.
func (s *Service) noteRefundInReview(c *store.Order, f refundFact, own *store.RefundProposal) (*store.Order, string) {
	if refundNoted(c, f) {
		return nil, ""
	}
	// A refund paygate applied (counted, or CLOSED: final at WeChat Pay for
	// its out_refund_no) is no longer in flight, though its record is
	// still the order's last: WeChat Pay's later word of it contradicts
	// the record and is noted for the person, changing neither
	// refunded_fen nor the refund's outcome, as outside review (a SUCCESS
	// of a closed one is applyRefund's refund_not_requested, a CLOSED or
	// ABNORMAL of a counted one its refund_contradicted). Taken as in flight, a
	// closed one's SUCCESS was counted, and a counted one's CLOSED put it
	// among the closed refunds with a closed outcome, the user's next turn
	// told that a refund that went back moved no money: the record
	// depended on whether the order had gone to review for something
	// else first.
	inFlight := own != nil && !slices.Contains(c.ClosedRefundNos, f.OutRefundNo) &&
		!slices.Contains(c.RefundNos, f.OutRefundNo)
	said := f.said()
	var reason string
	switch {
	case f.Status == wechatpay.RefundProcessing:
		return nil, "" // still with WeChat Pay: nothing new
	case f.MchID != s.opts.MchID:
		reason = "mchid_mismatch"
	case f.TotalFen != c.AmountFen:
		reason = "amount_mismatch"
	case (f.Status == wechatpay.RefundClosed || f.Status == wechatpay.RefundAbnormal) &&
		slices.Contains(c.RefundNos, f.OutRefundNo):
		reason = "refund_contradicted" // as outside review
	case f.Status == wechatpay.RefundClosed:
		reason = "refund_closed"
		if inFlight {
			// The refund paygate sent is over, closed as outside review:
			// a repeated confirmation of it is told so (confirmedAnswer).
			c.RefundReservedBy = ""
			if !slices.Contains(c.ClosedRefundNos, f.OutRefundNo) {
				c.ClosedRefundNos = append(c.ClosedRefundNos, f.OutRefundNo)
			}
			s.noteOutcome(c, own, own.AmountFen, store.RefundClosed)
		}
	case f.Status != wechatpay.RefundSuccess:
		reason = "refund_abnormal"
		if inFlight {
			s.noteOutcome(c, own, own.AmountFen, store.RefundAbnormal)
		}
	case f.RefundFen <= 0 || c.RefundedFen+f.RefundFen > c.AmountFen ||
		inFlight && f.RefundFen != own.AmountFen:
		// More than is left, or the refund in flight of another amount
		// than the user confirmed: noted, not counted, as outside review
		// (applyRefund's refund_amount_mismatch).
		reason = "refund_amount_mismatch"
	case !inFlight:
		// Not the refund paygate has in flight: money went back that
		// paygate never asked for (the merchant platform), or a late copy of
		// a refund from before refund numbers were kept, which cannot be
		// told apart. Noted, not counted, as outside review (applyRefund's
		// refund_not_requested), so the record does not depend on whether
		// the word came before or after the order went to review.
		reason = "refund_not_requested"
		said += ", not added to refunded_fen: not the refund paygate asked for"
	default:
		reason = "refunded_while_in_review"
		c.RefundedFen += f.RefundFen
		c.RefundNos = append(c.RefundNos, f.OutRefundNo)
		c.RefundReservedBy = ""
		s.noteOutcome(c, own, f.RefundFen, store.RefundSucceeded)
	}
	c.ReviewReason += "; " + reason + ": " + said
	return c, reason
}

// noteOutcome keeps on c how the user's refund p ended (status, for amount
// fen), once per refund and status, for the user's next turn to tell of
// (store.Order.RefundOutcomes). Only paygate's own refunds are kept: one
// the user confirmed.
func (s *Service) noteOutcome(c *store.Order, p *store.RefundProposal, fen int64, status string) {
	if slices.ContainsFunc(c.RefundOutcomes, func(r store.RefundOutcome) bool {
		return r.OutRefundNo == p.OutRefundNo && r.Status == status
	}) {
		return
	}
	c.RefundOutcomes = append(c.RefundOutcomes, store.RefundOutcome{
		OutRefundNo: p.OutRefundNo, RefundID: p.RefundID, AmountFen: fen, Status: status, At: s.now(),
		Reason: p.Reason, ProposedAt: p.CreatedAt,
	})
}

// countedOtherwise reports whether f is a SUCCESS of a refund counted on c
// (refund_nos) for another amount than its recorded outcome's. An order
// whose outcome was not kept (refunded before outcomes were) cannot tell.
func countedOtherwise(c *store.Order, f refundFact) bool {
	if f.Status != wechatpay.RefundSuccess || !slices.Contains(c.RefundNos, f.OutRefundNo) {
		return false
	}
	i := slices.IndexFunc(c.RefundOutcomes, func(r store.RefundOutcome) bool {
		return r.OutRefundNo == f.OutRefundNo && r.Status == store.RefundSucceeded
	})
	return i >= 0 && c.RefundOutcomes[i].AmountFen != f.RefundFen
}

// refundNoted reports whether WeChat Pay's word f is on order c already,
// noted while c was in review: a SUCCESS counted in refund_nos, a CLOSED
// among the closed refunds (applied before c went to review, as outside
// it: the notification a query overtook still comes), or the refund and
// its status in the review reason. Its copies change nothing,
// in review or once a person resolved the order as closed, which
// otherwise took a copy as a refund on a dead order (refund_on_closed) and
// sent the order back to review, the merchant told of it again.
func refundNoted(c *store.Order, f refundFact) bool {
	return f.Status == wechatpay.RefundSuccess && slices.Contains(c.RefundNos, f.OutRefundNo) ||
		f.Status == wechatpay.RefundClosed && slices.Contains(c.ClosedRefundNos, f.OutRefundNo) ||
		strings.Contains(c.ReviewReason, f.fact())
}

// fact names the refund and its status in a review reason: what tells a
// fact already noted from a new one.
func (f refundFact) fact() string {
	return fmt.Sprintf("wechat pay refund %s (%s)", f.OutRefundNo, f.Status)
}

// said is what WeChat Pay reported of the refund, for a review reason.
func (f refundFact) said() string {
	return fmt.Sprintf("%s of %d fen, order total %d fen, mchid %s", f.fact(), f.RefundFen, f.TotalFen, f.MchID)
}

// alertRefundReview raises a refund WeChat Pay reports that contradicts the
// order record, one alert whether a refund notification or a query
// (trade_state REFUND, outRefundNo unknown) said so.
func (s *Service) alertRefundReview(ctx context.Context, orderNo, outRefundNo, reason string, attrs ...any) {
	s.log.ErrorContext(ctx, "ALERT: wechat pay's refund disagrees with the order record; order needs review",
		append([]any{"alert", true, "order_no", orderNo, "out_refund_no", outRefundNo, "reason", reason}, attrs...)...)
}

// sweepRefunds asks WeChat Pay about refunds whose notification has not
// arrived: refunding orders untouched for refundQueryAfter. A refund WeChat
// Pay does not know (the confirmation's call never reached it) is sent again
// under the same out_refund_no; the user confirmed it, and the number makes
// it the same refund. An order whose confirmation stopped before recording
// its refund goes where its proposal says (reconcileUnrecorded). With a
// shared store the replicas divide these orders as they divide the
// pending ones (sweepLeases): each replica asked WeChat Pay about every
// late refund on its own tick. A query, or a resend, WeChat Pay answers
// FREQUENCY_LIMITED ends the pass there, the next going on past that
// order (sweepResumable), as for pending orders: the pass queried every
// late refund three times over while WeChat Pay asked for fewer. The
// refund is left as it was, refunding, for that next pass.
func (s *Service) sweepRefunds(ctx context.Context, st *SweepStats) error {
	return s.sweepResumable(ctx, store.StatusRefunding, func(page []*store.Order) error {
		due := page
		taken := s.now()
		if !s.opts.SoleWriter {
			// With a shared store, one replica asks about a late refund
			// per interval (sweepLeases), not each.
			due = nil
			for _, o := range page {
				if s.now().Sub(o.UpdatedAt) >= refundQueryAfter {
					due = append(due, o)
				}
			}
			due = s.sweepLeases(ctx, due)
		}
		for i, o := range due {
			if err := ctx.Err(); err != nil {
				s.releaseSweepLease(ctx, due[i:]...)
				return err
			}
			if !s.keepLease(ctx, o.OrderNo, taken) {
				continue
			}
			if err := s.sweepRefund(ctx, st, o); ctx.Err() == nil && wechatpay.RateLimited(err) {
				return s.sweepLimitedAt(ctx, due[i:])
			}
		}
		return nil
	})
}

// sweepRefundsInReview asks WeChat Pay about the refunds of paygate's still
// open on orders in needs_review (refundInReview: the order went to review
// with the user's confirmed refund sent, WeChat Pay having reported it
// ABNORMAL, or other money going back, meanwhile) whose order is untouched
// for refundQueryAfter, and records its word there (noteRefundInReview), as
// its notification would: a SUCCESS is counted and ends the reservation,
// a CLOSED ends it. Only the sweep of refunding orders asked about a
// refund: one whose notification was lost kept its order in review held
// for good, and Resolve refused it ("wait for its outcome") for an outcome
// nobody would ever ask about. Nothing is sent again for an order in
// review (a person handles it): a refund WeChat Pay does not know ends its
// reservation instead (endUnmadeInReview). With a shared store the
// replicas divide these orders as they divide the others (sweepLeases).
// A query WeChat Pay answers FREQUENCY_LIMITED ends the pass there, as in
// sweepRefunds.
func (s *Service) sweepRefundsInReview(ctx context.Context, st *SweepStats) error {
	return s.sweepResumable(ctx, store.StatusNeedsReview, func(page []*store.Order) error {
		var due []*store.Order
		for _, o := range page {
			if o.RefundReservedBy != "" && s.now().Sub(o.UpdatedAt) >= refundQueryAfter {
				due = append(due, o)
			}
		}
		taken := s.now()
		mine := s.sweepLeases(ctx, due)
		for i, o := range mine {
			if err := ctx.Err(); err != nil {
				s.releaseSweepLease(ctx, mine[i:]...)
				return err
			}
			if !s.keepLease(ctx, o.OrderNo, taken) {
				continue
			}
			if err := s.sweepRefundInReview(ctx, st, o); ctx.Err() == nil && wechatpay.RateLimited(err) {
				return s.sweepLimitedAt(ctx, mine[i:])
			}
		}
		return nil
	})
}

// sweepRefundInReview is sweepRefundsInReview's work on one order o in
// review, as its page listed it: read again, and left alone if it moved on,
// holds no refund recorded as sent (a reservation with no refund record
// is Resolve's to end, unrecordedReservation), or has its refund's SUCCESS
// noted uncounted (refundHeard: nothing more comes of it). It returns the
// error of WeChat Pay's reconcile, if one failed.
func (s *Service) sweepRefundInReview(ctx context.Context, st *SweepStats, o *store.Order) error {
	cur, done, ok := s.relisted(ctx, st, o, store.StatusNeedsReview, "sweep: refund in review not reconciled")
	if !ok {
		return nil
	}
	defer done()
	rec, err := s.loadInFlight(ctx, o.OrderNo)
	if err != nil {
		s.sweepReadFailed(ctx, st, o, "sweep: refund in review not reconciled", err)
		return nil
	}
	if rec == nil || !refundInReview(cur, rec) || refundHeard(cur, rec) {
		// Its SUCCESS noted uncounted (refundHeard) is WeChat Pay's last
		// word on the refund, and any other word of it is noted already:
		// asked again on every pass, nothing it answered changed the
		// order, which waits for a person (Resolve ends the reservation).
		return nil
	}
	st.Checked++
	octx, cancel := context.WithTimeout(ctx, s.opts.BackgroundQueryTimeout)
	got, err := s.reconcileRefundInReview(octx, cur, rec)
	cancel()
	if err != nil {
		if ctx.Err() == nil { // stopped, nothing failed
			st.Errors++
			s.log.WarnContext(ctx, "sweep: refund in review not reconciled", "order_no", o.OrderNo, "out_refund_no", rec.Proposal.OutRefundNo, "err", err)
		}
		s.releaseSweepLease(ctx, o)
		return err
	}
	if got != nil && got.Version != cur.Version {
		st.Changed++
	}
	return nil
}

// reconcileRefundInReview asks WeChat Pay about rec's refund, open on order
// o in review, and records what it says (applyAnswer). A panic is an error,
// as in reconcileRefundSafely. A refund WeChat Pay does not know is not sent
// again (the order is a person's): its reservation is ended
// (endUnmadeInReview).
func (s *Service) reconcileRefundInReview(ctx context.Context, o *store.Order, rec *inFlight) (got *store.Order, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.ErrorContext(ctx, "sweep: refund in review reconcile panicked", "order_no", o.OrderNo, "panic", p, "stack", string(debug.Stack()))
			s.m.reconcile.WithLabelValues("refund_review", "error").Inc()
			got, err = o, fmt.Errorf("reconcile refund in review of %s: panic: %v", o.OrderNo, p)
		}
	}()
	r, err := s.backend.QueryRefund(ctx, rec.Proposal.OutRefundNo)
	if errors.Is(err, wechatpay.ErrNotFound) {
		s.m.reconcile.WithLabelValues("refund_review", "not_found").Inc()
		return s.endUnmadeInReview(ctx, o, rec)
	}
	if err != nil {
		s.reconcileFailed(ctx, "refund_review")
		return o, fmt.Errorf("query refund %s: %w", rec.Proposal.OutRefundNo, err)
	}
	s.m.reconcile.WithLabelValues("refund_review", strings.ToLower(r.Status)).Inc()
	res, err := s.applyAnswer(ctx, &RefundResult{Proposal: &rec.Proposal, Order: o}, r, "sweep")
	return res.Order, err
}

// endUnmadeInReview ends the reservation of order o, in review, for rec's
// refund, which WeChat Pay does not know: refused when the confirmation
// sent it (revertRefund leaves an order in review as it is; sendRefund ends
// the reservation then, unless that write failed), or never sent (the
// confirmation stopped after recording it). Nothing is sent for an
// order in review, and no notification will ever end the reservation, so
// it held the order for good and Resolve refused it both ways. It is ended
// only once no confirmation can still be sending the refund: with a
// shared store, recordedGrace after its ConfirmedAt (refundCallTimeout
// bounds that call); a sole writer's sweep holds the order (adopt), so
// none of its confirmations is at it. The refund's outcome, failed, is
// kept for the user's next turn (noteOutcome), but for a refund in review
// because its resend was refused after a send whose outcome was unknown
// (resendRefused): not found says nothing of that send either, and the
// user is told nothing; the review reason is left as it is, for the
// person. A SUCCESS of it that came all the same would
// still be counted: the order's refund record still names it.
func (s *Service) endUnmadeInReview(ctx context.Context, o *store.Order, rec *inFlight) (*store.Order, error) {
	if !s.opts.SoleWriter && s.now().Sub(rec.ConfirmedAt) < recordedGrace {
		return o, nil
	}
	got, changed, err := s.update(withRefund(ctx, &rec.Proposal), o.OrderNo, "sweep", "", func(c *store.Order) (*store.Order, error) {
		if !refundInReview(c, rec) {
			return nil, nil
		}
		if !strings.Contains(c.ReviewReason, resendRefusedNote(rec.Proposal.OutRefundNo)) {
			// In review for its resend's refusal (resendRefused), the
			// refund may have been made by its first send: not found
			// says nothing of that either, and "failed" told the user
			// nothing was refunded. The reservation ends all the same,
			// so a person can settle the order.
			s.noteOutcome(c, &rec.Proposal, rec.Proposal.AmountFen, store.RefundFailed)
		}
		c.RefundReservedBy = ""
		return c, nil
	})
	if err != nil {
		return got, err
	}
	if changed {
		s.log.WarnContext(ctx, "sweep: the refund in flight on an order in review is unknown to wechat pay; its reservation ended, nothing sent, the order left to a person",
			"order_no", o.OrderNo, "refund_id", rec.Proposal.RefundID, "out_refund_no", rec.Proposal.OutRefundNo)
	}
	return got, nil
}

// sweepReadFailed is a refund sweep's read of order o, before anything
// was asked or done about it, that failed with err: counted in st and
// logged with msg, and o's sweep lease given back, so the next pass of any
// replica takes it. A read the sweep's stop (ctx ended: a shutdown) cut
// is no failure of the order, neither counted nor logged as one; the lease
// goes back all the same, as for the orders the stopped sweep had not come
// to yet.
func (s *Service) sweepReadFailed(ctx context.Context, st *SweepStats, o *store.Order, msg string, err error) {
	if ctx.Err() == nil {
		st.Errors++
		s.log.WarnContext(ctx, msg, "order_no", o.OrderNo, "err", err)
	}
	s.releaseSweepLease(ctx, o)
}

// relisted reads again an order o a sweep's page listed with status, first
// taking it as this call's with the embedded store (adopt: no confirmation
// of this process is at it meanwhile), and reports whether it is still as
// listed: not moved on since, and readable (a failed read counts in st and
// is logged with msg, and gives o's lease back: sweepReadFailed). done
// gives the order back; call it once ok.
func (s *Service) relisted(ctx context.Context, st *SweepStats, o *store.Order, status store.OrderStatus, msg string) (cur *store.Order, done func(), ok bool) {
	done = func() {}
	if s.opts.SoleWriter {
		if done, ok = s.adopt(o.OrderNo); !ok {
			return nil, nil, false // a confirmation works on it
		}
	}
	cur, err := s.store.GetOrder(ctx, o.OrderNo)
	if err != nil {
		done()
		s.sweepReadFailed(ctx, st, o, msg, err)
		return nil, nil, false
	}
	if cur.Status != status || cur.Version != o.Version {
		done()
		return nil, nil, false // moved on since it was listed
	}
	return cur, done, true
}

// sweepRefund is sweepRefunds' work on one refunding order o, as its page
// listed it. It returns the error of WeChat Pay's reconcile, if one
// failed.
func (s *Service) sweepRefund(ctx context.Context, st *SweepStats, o *store.Order) error {
	// One no call here works on was left refunding by a process that
	// died (Options.SoleWriter): its refund is asked about, and sent
	// if WeChat Pay never got it, at once, not a minute on.
	//
	// The order as the page listed it may be stale: a confirmation
	// at WeChat Pay then may have ended since (its refund refused,
	// the order put back to paid, the user told nothing was
	// refunded), and its refund, asked about, is unknown there and
	// would be sent again. It is read again, and left alone if it
	// moved on. With the embedded store it is first taken as this
	// call's (adopt), so no confirmation of this process is at it
	// meanwhile either, however old its reservation (a tap going on
	// under a dead process's writes nothing to the order). With a
	// shared store, only one untouched for refundQueryAfter comes here,
	// and its refund is asked about only once it was recorded
	// recordedGrace ago (reconcileRefund): such a tap's order looks
	// untouched.
	_, done, ok := s.relisted(ctx, st, o, store.StatusRefunding, "sweep: refund not reconciled")
	if !ok {
		return nil
	}
	defer done()
	st.Checked++
	octx, cancel := context.WithTimeout(ctx, s.opts.BackgroundQueryTimeout)
	got, err := s.reconcileRefundSafely(octx, o)
	cancel()
	// A resend WeChat Pay refused put the order back (paid, or
	// partially_refunded) and is told as an error, with its own line:
	// the pass changed the order, and reconciled it. Counted as an error
	// and not changed, the sweep's line said changed 0 for it.
	changed := got != nil && got.Status != o.Status
	if changed {
		st.Changed++
	}
	if err != nil {
		if ctx.Err() == nil && !changed { // stopped: nothing failed; changed: reconciled
			st.Errors++
			s.log.WarnContext(ctx, "sweep: refund not reconciled", "order_no", o.OrderNo, "err", err)
		}
		s.releaseSweepLease(ctx, o)
		return err
	}
	return nil
}

// reconcileRefundSafely is reconcileRefund with a panic (in the SDK, or
// here) logged and returned as an error, as reconcileSafely does for an
// order: the sweep goes on with the other refunds, and gives this one's
// lease back.
func (s *Service) reconcileRefundSafely(ctx context.Context, o *store.Order) (got *store.Order, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.ErrorContext(ctx, "sweep: refund reconcile panicked", "order_no", o.OrderNo, "panic", p, "stack", string(debug.Stack()))
			s.m.reconcile.WithLabelValues("refund", "error").Inc()
			got, err = o, fmt.Errorf("reconcile refund of %s: panic: %v", o.OrderNo, p)
		}
	}()
	return s.reconcileRefund(ctx, o)
}

// reconcileRefund brings one refunding order in line with WeChat Pay.
func (s *Service) reconcileRefund(ctx context.Context, o *store.Order) (*store.Order, error) {
	rec, err := s.loadInFlight(ctx, o.OrderNo)
	if err != nil {
		return o, err
	}
	if rec == nil || rec.OrderVersion != o.Version {
		return s.reconcileUnrecorded(ctx, o)
	}
	if !s.opts.SoleWriter && s.now().Sub(rec.ConfirmedAt) < recordedGrace {
		// Recorded less than recordedGrace ago: the confirmation that
		// recorded it may be at WeChat Pay now (refundCallTimeout bounds
		// it), on any replica, whose clock, which ConfirmedAt is, may be
		// up to proposalSkew behind this one's. A tap that goes on under
		// an earlier reservation writes nothing to the order, which looks
		// as old as that reservation: asked about then, the refund was
		// unknown (the tap's call on its way) and sent beside it, and a
		// refusal of one of the two put the order back to paid while the
		// other went through. A later sweep asks.
		s.m.reconcile.WithLabelValues("refund", "recently_recorded").Inc()
		return o, nil
	}
	rctx := withRefund(ctx, &rec.Proposal)
	r, err := s.backend.QueryRefund(ctx, rec.Proposal.OutRefundNo)
	if errors.Is(err, wechatpay.ErrNotFound) {
		s.m.reconcile.WithLabelValues("refund", "resend").Inc()
		res, serr := s.sendRefund(rctx, o, *rec, "sweep", true)
		if res != nil && res.Order != nil {
			return res.Order, serr
		}
		return o, serr
	}
	if err != nil {
		s.reconcileFailed(ctx, "refund")
		return o, fmt.Errorf("query refund %s: %w", rec.Proposal.OutRefundNo, err)
	}
	s.m.reconcile.WithLabelValues("refund", strings.ToLower(r.Status)).Inc()
	res, err := s.applyAnswer(rctx, &RefundResult{Proposal: &rec.Proposal, Order: o}, r, "sweep")
	return res.Order, err
}

// reconcileUnrecorded resolves a refunding order with no refund recorded at
// its version: a confirmation reserved it and has not recorded its refund
// (it stopped, or is still on its way). A refund is always recorded before
// WeChat Pay is asked for it, so what happens next is its proposal's
// (RefundReservedBy):
//   - ended unused (cancelled, expired): no confirmation will ever take it,
//     so none will send under the reservation: it is undone, the order back
//     to paid or partially_refunded (refund.aborted; the merchant hears
//     nothing, as of the reservation);
//   - open: a confirmation of it may be taking it now, on any replica, and
//     would send under this reservation: the order stays held for it until
//     it is taken or ends (confirm_ttl at most), and is looked at again;
//   - taken under an earlier reservation (the refund record names it at an
//     earlier version: a late tap reserved the order again for a refund
//     already sent and settled): nothing will be sent under this one, which
//     is undone;
//   - taken, and not recorded: the confirmation that took it is between
//     its two writes, or stopped there, before anything went to WeChat
//     Pay. With a shared store it is given takenGrace from the first
//     sweep that saw it so, past the bound of that confirmation's writes
//     and call (refundCallTimeout); then, as with the embedded store at
//     once (the sweep adopted the order: that confirmation died), the
//     sweep records and sends the refund itself (sendTaken), under the
//     proposal's one out_refund_no: the user confirmed it and was told
//     it is on its way. A reservation whose maker found p taken already
//     (noteFoundTaken) is undone instead: p may have been taken before
//     it, its refund ended since.
//
// A reservation that names no proposal (made by an earlier version) or one
// the store no longer knows goes to needs_review.
func (s *Service) reconcileUnrecorded(ctx context.Context, o *store.Order) (*store.Order, error) {
	var p *store.RefundProposal
	var also []func(*store.Order) // written with the undoing of the reservation
	fate := fateEnded
	if o.RefundReservedBy != "" {
		var err error
		fate, p, err = s.proposalFate(ctx, o.RefundReservedBy)
		if err != nil {
			return o, err
		}
	}
	if p != nil && (p.OrderNo != o.OrderNo || p.Client != o.Client || p.User != o.User ||
		p.AmountFen <= 0 || p.AmountFen > o.AmountFen-o.RefundedFen) {
		p = nil // not a refund of this order as it stands: for a person
	}
	if p != nil && fate == fateTaken {
		before, err := s.takenBefore(ctx, p, o.Version)
		if err != nil {
			return o, err
		}
		if before {
			fate = fateEnded // nothing will be sent under this reservation
		} else {
			if !s.opts.SoleWriter {
				// The tap that took it may be between its two writes (it
				// goes on under a reservation whose UpdatedAt says nothing
				// of when it came, so refundQueryAfter does not cover it):
				// the order is given takenGrace from the sweep that first
				// saw it so, past any confirmation's refundCallTimeout,
				// before the sweep sends the refund in its place.
				if waited, err := s.waitedFor(ctx, o); err != nil || !waited {
					return o, err
				}
			}
			found, err := s.foundTaken(ctx, o, p)
			if err != nil {
				return o, err
			}
			if !found {
				return s.sendTaken(ctx, o, p)
			}
			// Made by a tap that found p taken (noteFoundTaken), and no
			// tap that went on under it recorded a refund (takenGrace
			// passed, or the sweep holds the order as its own): p was
			// taken before it, its refund ended (refused, undone) and the
			// user told so, or a tap that went on under it stopped before
			// recording. Which cannot be told; sent, the first was a
			// refund the user had been told had failed. The reservation
			// is undone, nothing sent, and the refund noted failed for the
			// user's next turn: the tap that made it answered pending.
			fate = fateEnded
			also = append(also, func(c *store.Order) { s.noteOutcome(c, p, p.AmountFen, store.RefundFailed) })
		}
	}
	if p == nil {
		s.log.ErrorContext(ctx, "ALERT: refunding order has no refund record; order needs review", "alert", true,
			"order_no", o.OrderNo, "refund_id", o.RefundReservedBy)
		got, _, err := s.update(ctx, o.OrderNo, "sweep", "", func(c *store.Order) (*store.Order, error) {
			if c.Status != store.StatusRefunding || c.Version != o.Version {
				return nil, nil
			}
			c.Status = store.StatusNeedsReview
			c.ReviewReason = "refund_record_missing: refunding without a recorded refund; check the merchant platform"
			return c, nil
		})
		return got, err
	}
	if fate == fateOpen {
		s.m.reconcile.WithLabelValues("refund", "awaiting_confirmation").Inc()
		return o, nil
	}
	rec := inFlight{Proposal: *p, OrderVersion: o.Version}
	got, err := s.revertRefund(withRefund(ctx, p), rec, CauseRefundAborted, also...)
	if err != nil {
		return o, err
	}
	s.m.reconcile.WithLabelValues("refund", "released").Inc()
	s.log.InfoContext(ctx, "sweep: refund reservation undone; nothing was sent under it",
		"order_no", o.OrderNo, "refund_id", p.RefundID, "status", got.Status)
	return got, nil
}

// sendTaken records and sends the refund of proposal p, taken under o's
// reservation (at its version) and never recorded: the confirmation that
// took it spent the user's word and stopped before recording the refund,
// so before any call to WeChat Pay. With the embedded store
// (Options.SoleWriter) the sweep holds o as its own (relisted's adopt, so
// no confirmation of this process works on it, nor can start) and no other
// process writes the file: that confirmation died with its process. With a
// shared store the sweep comes here takenGrace after it first saw o so,
// past refundCallTimeout, which bounds every write and call of a
// confirmation from its reservation on. It is recorded and sent here,
// under p's one out_refund_no, as that confirmation would have: the user
// confirmed it, and a tap again is told it is on its way, a cancel that
// it can no longer be stopped. Left to a person (needs_review), the refund
// the user confirmed was never sent.
//
// The record is one per order, so the sweep writes it only while the
// order is still at o's version (store.RefundRecords, one step with the
// order's check): read first, a record at o's version or later (written
// since this sweep read o: that confirmation's after all, or a later
// refund's) is left as it is; an order moved on from o's version by the
// write (its refund settled or ended, another reserved and recorded) is
// left to whoever moved it, nothing written, nothing sent. Written
// unconditionally, the record of a sweep paused between its read and its
// write replaced a later refund's, whose SUCCESS then sent the order to
// review. A confirmation slower than its bound records its own the same
// way: while the order is still at o's version it sends as well, the same
// out_refund_no, which WeChat Pay makes one refund; once the order moved
// on it records and sends nothing (confirmRefund).
func (s *Service) sendTaken(ctx context.Context, o *store.Order, p *store.RefundProposal) (*store.Order, error) {
	was, err := s.loadInFlight(ctx, o.OrderNo)
	if err != nil {
		return o, err
	}
	if was != nil && was.OrderVersion >= o.Version {
		s.m.reconcile.WithLabelValues("refund", "recently_recorded").Inc()
		return o, nil
	}
	rec := inFlight{Proposal: *p, OrderVersion: o.Version, ConfirmedAt: s.now()}
	moved := false
	if err := s.putInFlight(ctx, &rec); errors.Is(err, store.ErrConflict) {
		moved = true
	} else if err != nil {
		return o, err
	}
	cur, err := s.store.GetOrder(ctx, o.OrderNo)
	if err != nil {
		// Recorded: a later sweep asks WeChat Pay about it, and sends it
		// if unknown there, as for a refund its confirmation recorded.
		return o, fmt.Errorf("read order %s after recording its refund: %w", o.OrderNo, err)
	}
	if moved || !reservedFor(cur, p) || cur.Version != o.Version {
		s.log.WarnContext(ctx, "sweep: refund confirmed by the user and left unrecorded; the order moved on as it was recorded, nothing sent",
			"order_no", o.OrderNo, "refund_id", p.RefundID, "out_refund_no", p.OutRefundNo, "order_version", o.Version,
			"status", cur.Status, "now_version", cur.Version, "reserved_by", cur.RefundReservedBy)
		return cur, nil
	}
	s.m.reconcile.WithLabelValues("refund", "resend").Inc()
	s.log.WarnContext(ctx, "sweep: refund confirmed by the user, left unrecorded by a confirmation that stopped; recorded and sent",
		"order_no", o.OrderNo, "refund_id", p.RefundID, "out_refund_no", p.OutRefundNo, "amount_fen", p.AmountFen)
	res, err := s.sendRefund(withRefund(ctx, p), cur, rec, "sweep", false)
	if res != nil && res.Order != nil {
		return res.Order, err
	}
	return cur, err
}

// recordedGrace is how long after its ConfirmedAt a recorded refund is
// left to the confirmation that recorded it before a sweep with a shared
// store asks WeChat Pay about it (and sends it if unknown there):
// refundCallTimeout bounds that confirmation's call, and ConfirmedAt is its
// replica's clock, up to proposalSkew behind the sweeping one's. A refund
// whose confirmation stopped after recording it is sent by the sweep that
// long after (plus any skew the other way); one recorded by an older
// build, with no ConfirmedAt, at once.
const recordedGrace = refundCallTimeout + proposalSkew

// takenGrace is how long a refunding order whose proposal was taken and
// whose refund is not recorded is left to the confirmation that took it,
// from the sweep that first saw it so: longer than refundCallTimeout, which
// bounds that confirmation's writes, with proposalSkew for clocks.
const takenGrace = refundCallTimeout + proposalSkew

// waitedFor reports whether takenGrace has passed since a sweep first saw
// order o (at its version) taken and unrecorded; the first sight is kept in
// the store, so any replica's later sweep judges it.
func (s *Service) waitedFor(ctx context.Context, o *store.Order) (bool, error) {
	key := fmt.Sprintf("refund-unrecorded:%s:%d", o.OrderNo, o.Version)
	b, err := s.store.GetExchange(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		now := s.now()
		if err := s.store.PutExchange(ctx, key, []byte(now.UTC().Format(time.RFC3339Nano)), 24*time.Hour); err != nil {
			return false, fmt.Errorf("mark order %s taken and unrecorded: %w", o.OrderNo, err)
		}
		s.m.reconcile.WithLabelValues("refund", "awaiting_record").Inc()
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read order %s taken and unrecorded: %w", o.OrderNo, err)
	}
	first, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil || s.now().Sub(first) >= takenGrace {
		return true, nil
	}
	s.m.reconcile.WithLabelValues("refund", "awaiting_record").Inc()
	return false, nil
}

// takenBefore reports whether proposal p, taken, was taken under a
// reservation before the one at version: the order's refund record names
// it at an earlier version. A confirmation that takes p under the
// reservation at version records it at that version (or has not yet).
func (s *Service) takenBefore(ctx context.Context, p *store.RefundProposal, version int64) (bool, error) {
	rec, err := s.loadInFlight(ctx, p.OrderNo)
	if err != nil {
		return false, err
	}
	return rec != nil && rec.Proposal.RefundID == p.RefundID && rec.OrderVersion < version, nil
}

type refundKey struct{}

// withRefund carries the refund behind an order change into Transition.Refund.
func withRefund(ctx context.Context, p *store.RefundProposal) context.Context {
	return context.WithValue(ctx, refundKey{}, p)
}

func refundFrom(ctx context.Context) *store.RefundProposal {
	p, _ := ctx.Value(refundKey{}).(*store.RefundProposal)
	return p
}

// clip cuts s to at most n bytes between characters as the user reads
// them in WeChat Pay's refund notice (cutCharacters: "👨‍👩‍👧" was kept as
// 👨). Invalid UTF-8 is dropped first: JSON, as the stores keep a
// proposal, turns each such byte into a 3-byte U+FFFD, and 80 bytes cut
// here came back as up to 240. Line breaks and other control characters
// become spaces (oneLine).
func clip(s string, n int) string {
	return cutCharacters(oneLine(strings.ToValidUTF8(s, "")), n)
}

// oneLine is a reason the model wrote as WeChat Pay shows it, on one line
// of the user's refund notice: in a reason that holds a line break or
// another control character (C0, DEL, C1; a model's "\u0000" went to
// WeChat Pay as it was), each run of them and of spaces is one space, and
// none is at either end; a reason without one is kept as it is. It is
// cleaned, not refused, as a catalog name with them is: the reason is the
// user's, and a clarification had the model ask them for it again.
func oneLine(s string) string {
	broken := func(r rune) bool { return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' }
	if !strings.ContainsFunc(s, broken) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if broken(r) || r == ' ' {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// requestRefund is the request_refund tool: it records a proposal and returns
// the refund_proposed action for the bot to show as a confirm button. No
// money moves; the tool result says so, so the model does not claim a refund
// happened.
func (t *Tools) requestRefund(ctx context.Context, c Caller, args string) Outcome {
	res := gjson.GetMany(args, "order_no", "reason", "amount")
	no, reason, amt := res[0], res[1], res[2]
	no.Str = strings.TrimSpace(no.Str) // as query_order reads it
	if no.Type != gjson.String || no.Str == "" {
		return clarify("order_no is missing")
	}
	if reason.Type != gjson.String || strings.TrimSpace(clip(reason.Str, len(reason.Str))) == "" {
		return clarify("reason is missing: ask the user why they want the refund")
	}
	var fen int64
	if amt.Exists() && amt.Type != gjson.Null {
		text := amt.Str
		if amt.Type == gjson.Number {
			text = amt.Raw
		}
		text = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(text), "CNY"))
		v, err := ParseFen(text)
		if (amt.Type != gjson.String && amt.Type != gjson.Number) || err != nil || v <= 0 {
			return clarify(`amount must be a decimal amount in CNY such as "20.00", or left out to refund everything not yet refunded`)
		}
		fen = v
	} else if name := numberOutside(args, refundArgs); name != "" {
		return clarify(fmt.Sprintf(`the argument %q is not a name this tool takes, and without "amount" everything not yet refunded would be proposed, so nothing was done: give a partial amount as "amount" (a decimal in CNY such as "20.00"), or leave every amount out to refund everything left`, echo(name)))
	}
	p, o, err := t.svc.ProposeRefund(ctx, RefundRequest{Client: c.Client, User: c.User, OrderNo: no.Str, Reason: reason.Str, AmountFen: fen})
	said := echo(no.Str) // the model's words, quoted where no order of the user's bore them out
	out := Outcome{MoneyMoving: true, Executed: true}
	var confirmed *AlreadyConfirmedError
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotFound), errors.Is(err, ErrNotOwner):
		out.Result = resultJSON(map[string]any{"order_no": said, "status": "not_found", "error": "this user has no order with that number"})
		return out
	case errors.Is(err, ErrRefundAmount):
		left := o.AmountFen - o.RefundedFen
		out = clarify(fmt.Sprintf("at most %s of order %s can be refunded", FormatAmount(left, o.Currency), o.OrderNo))
		out.MoneyMoving = true
		return out
	case errors.Is(err, ErrRefundInProgress):
		r := map[string]any{"order_no": said, "status": "refund_in_progress",
			"error": "a refund of this order is already being processed; tell the user to wait for it"}
		if u := t.svc.UnsentRefunds(ctx, []*store.Order{o})[0]; u.Status != store.StatusRefunding {
			// Held for a proposal whose confirmation was cut short before
			// anything was sent (UnsentRefunds, as query_order and the
			// payment state read it): "being processed" had the user wait
			// for a refund nobody sent. What was sent for that proposal
			// is said, not of the order: refunds of it made before stand
			// (order_status), and "no refund of this order has been sent"
			// had the model deny a partially refunded order's money.
			r["order_status"] = string(u.Status)
			r["error"] = "nothing has been sent for the refund proposed earlier: that proposal is still waiting for the user's confirmation, " +
				"and no refund of another amount can be proposed until it is confirmed or lapses; no money has moved for it, so do not tell the user a refund is on its way " +
				"(refunds of this order made before it stand, as order_status says)"
		}
		out.Result = resultJSON(r)
		return out
	case errors.As(err, &confirmed):
		// The turn that proposed it, sent again after the user's answer:
		// no second button for the refund they confirmed once. The ask
		// may also be the user's own for a second refund of the amount
		// (a second item): the model is told both readings, so "tell the
		// user it is done" is not taken for a second refund made.
		p, st := confirmed.Result.Proposal, confirmed.Result.Status
		o := confirmed.Result.Order
		amount := FormatAmount(p.AmountFen, o.Currency)
		msg := "nothing was proposed or refunded by this request: the user already confirmed a refund of " + amount + " of this order, and it is on its way. If the user meant that refund, do not propose it again, and tell them it is being refunded"
		if st == RefundSucceeded {
			msg = "nothing was proposed or refunded by this request: the user already confirmed a refund of " + amount + " of this order, and it has been refunded. If the user meant that refund, do not propose it again, and tell them it is done"
		}
		// What a further refund can be: the order may have less left
		// than this one (or nothing), which no wait changes.
		left := o.AmountFen - o.RefundedFen
		if st == RefundPending {
			left -= p.AmountFen // not yet counted by the order
		}
		switch {
		case left <= 0:
			msg += "; if they ask for a further refund besides it, tell them none was made: nothing more of this order can be refunded"
		case left < p.AmountFen:
			msg += "; if they ask for a further refund besides it, tell them none was made: at most " + FormatAmount(left, o.Currency) + " more of this order can be refunded"
		default:
			msg += "; if they ask for a second refund of " + amount + " besides it, tell them it was not made and can be asked for after " + p.ExpiresAt.UTC().Format(time.RFC3339)
		}
		out.Result = resultJSON(map[string]any{"refund_id": p.RefundID, "order_no": p.OrderNo, "amount": amount,
			"status": "refund_already_confirmed", "refund_status": st, "message": msg})
		return out
	case errors.Is(err, ErrRefundWindowPassed):
		// The order as the model reads it elsewhere (UnsentRefunds): held
		// for a proposal whose confirmation was cut short, it is what it
		// was, not "refunding".
		shown := t.svc.UnsentRefunds(ctx, []*store.Order{o})[0]
		out.Result = resultJSON(map[string]any{"order_no": said, "status": "not_refundable", "order_status": string(shown.Status),
			"error": "this order was paid more than a year ago, and WeChat Pay accepts no refund of it: no refund can be made here"})
		return out
	case errors.Is(err, ErrNotRefundable):
		msg := "this order cannot be refunded in its current state (" + string(o.Status) + ")"
		if o.Status == store.StatusNeedsReview {
			// A person settles it: WeChat Pay's word on its payment or a
			// refund (one the user confirmed and it answered ABNORMAL,
			// say) needs a check. "Cannot be refunded" had the model tell
			// the user no refund can be made of it.
			msg = "this order is being reviewed by staff (WeChat Pay reported something about its payment or a refund of it that a person must check, " +
				"such as a refund it could not complete): no refund can be proposed here until they settle it; tell the user staff will handle it, not that no refund can be made"
		}
		out.Result = resultJSON(map[string]any{"order_no": said, "status": "not_refundable", "order_status": string(o.Status), "error": msg})
		return out
	case errors.Is(err, ErrProposalUnconfirmed):
		// The proposal may stand, its confirm button live: "nothing was
		// changed" had the model tell the user no refund was asked for
		// while one they could confirm stood. No button is offered for a
		// proposal that may not exist; the ask again returns it if it does.
		out.Failed = true // logged by ProposeRefund, with the read's error
		expires := p.ExpiresAt.UTC().Format(time.RFC3339)
		out.Result = resultJSON(map[string]any{"refund_id": p.RefundID, "order_no": p.OrderNo, "amount": FormatAmount(p.AmountFen, o.Currency),
			"status": "unknown", "expires_at": expires,
			"error": "refunds are temporarily unavailable and this refund proposal could not be confirmed: it may have been recorded or not, so tell the user neither that a refund was proposed nor that none was. " +
				"No money has moved: nothing is refunded unless the user taps its confirmation button themselves. If it was recorded, it is listed with the user's order as a refund awaiting their confirmation until " + expires +
				", where they can confirm or cancel it; asking for the same refund again in a moment returns that proposal with its button if it was recorded (never a second one)"})
		return out
	default:
		// The order as read, not the model's words: a failure before
		// it was read names none.
		attrs := []any{"client", c.Client}
		if o != nil {
			attrs = append(attrs, "order_no", o.OrderNo)
		}
		t.log.WarnContext(ctx, "request_refund failed", append(attrs, "err", err)...)
		out.Failed = true
		out.Result = resultJSON(map[string]any{"order_no": said, "status": "failed", "error": "refunds are temporarily unavailable; nothing was changed"})
		return out
	}
	amount := FormatAmount(p.AmountFen, o.Currency)
	out.Action = resultJSON(map[string]any{"type": "refund_proposed", "refund": ProposalView(p, o.Currency)})
	out.Result = resultJSON(map[string]any{
		"refund_id": p.RefundID, "order_no": p.OrderNo, "amount": amount,
		"status":     RefundAwaitingConfirmation,
		"expires_at": p.ExpiresAt.UTC().Format(time.RFC3339),
		"message":    "no money has moved: the user must tap the confirmation button (" + RefundLabel(p.AmountFen, o.Currency) + ") themselves; do not say the refund is done",
	})
	return out
}

// chineseNumerals are the characters of an amount written in Chinese:
// the everyday numerals, the financial (大写) ones a receipt uses, and 半
// (half), simplified and traditional (兩, 貳, 參, 陸: "兩塊" held none of
// the simplified ones).
const chineseNumerals = "〇零一二两三四五六七八九十百千万壹贰叁肆伍陆柒捌玖拾佰仟萬半兩貳參陸"

// numberOutside names the first member of the arguments object args
// outside schema whose value holds a digit (a number, "10.00", "１０", an
// object with one inside), or "". request_refund without "amount" proposes
// everything not yet refunded, the largest reading of a call: a model that
// put the user's "refund 10 of it" under a name of its own ("amount_fen",
// "refund_amount", "quantity": 1 of two) had it ignored as outside the
// schema, and the user was offered the whole payment back. Which the model
// meant is not paygate's to guess where money goes back, as with a member
// in another case (ambiguousArg); a member without a digit (a currency, a
// note) says no amount and is still only ignored.
//
// Chinese numerals are a number as digits are: a model answering "退我十块"
// wrote {"退款金额":"十元"}, which held no digit, was ignored, and the user
// was offered the whole payment back. A note that holds one ("买多了一杯")
// is asked about too, where being wrong costs a question, not a refund.
// So are English words for an amount ({"refund_amount":"ten yuan"},
// "half"): amountWords, and 部分 (a part: "部分退款", a partial refund).
// A flag says it by its name: {"partial":true} or {"full_refund":false}
// (partFlag) was ignored, the whole payment proposed, while the same
// flag inside an object ({"meta":{"partial":true}}) was asked about; so
// was {"full_refund":false} inside an object or a JSON string, read as
// create_order's arguments are (nestedIn), and 部份, 部分 written the
// other way.
func numberOutside(args string, schema map[string]bool) string {
	name := ""
	gjson.Parse(args).ForEach(func(k, v gjson.Result) bool {
		text := v.Raw // a number, or an object or array with one inside
		if v.Type == gjson.String {
			text = v.Str // decoded: "\u0031" is a digit, "\u00e9" none
		}
		if !schema[k.String()] && (strings.IndexFunc(text, unicode.IsDigit) >= 0 || strings.ContainsAny(text, chineseNumerals) ||
			strings.Contains(text, "部分") || strings.Contains(text, "部份") || nestedIn(k.String(), v, maxNestedDepth, partFlag) ||
			slices.ContainsFunc(nameWords(text), func(w string) bool { return manyWords[w] || amountWords[w] })) {
			name = k.String()
			return false
		}
		return true
	})
	return name
}

// amountWords are the English words for an amount that manyWords, words
// for a count above one, leave out: "one yuan" and "half" name an amount
// to refund as "ten" does, and "a fifth", "partial" and "part of the
// order" less than everything, which without "amount" is what is proposed.
var amountWords = map[string]bool{"one": true, "half": true, "quarter": true, "third": true,
	"fifth": true, "sixth": true, "seventh": true, "eighth": true, "ninth": true, "tenth": true,
	"part": true, "partial": true, "partially": true, "portion": true}

// wholeWords are the words of a flag's name that ask for everything back
// ("full_refund", "refund_all"): false, the flag says less than that.
var wholeWords = map[string]bool{"full": true, "all": true, "whole": true, "entire": true, "everything": true}

// partFlagWords are the words of a flag's name that ask for less than
// everything back ("partial", "half_refund"): amountWords without those
// that, in a flag's name, say another thing ("one_time", "third_party",
// each asked about as a partial refund).
var partFlagWords = map[string]bool{"part": true, "partial": true, "partially": true, "portion": true, "half": true, "quarter": true}

// partFlag reports whether the member key of value v is a flag (flagSet:
// true, false, "true", "no") saying a refund of less than everything
// left: set under a name with a word of partFlagWords ("partial",
// "isPartial", "half") or 部分 ("部分退款"), or unset under one of
// wholeWords ("full_refund": false) or 全额, 全部 ("全额退款": a full
// refund).
func partFlag(key string, v gjson.Result) bool {
	set, ok := flagSet(v)
	if !ok {
		return false
	}
	words, han := wholeWords, []string{"全额", "全額", "全部"}
	if set {
		words, han = partFlagWords, []string{"部分", "部份"}
	}
	return slices.ContainsFunc(nameWords(key), func(w string) bool { return words[w] }) ||
		slices.ContainsFunc(han, func(h string) bool { return strings.Contains(key, h) })
}

// OpenRefunds returns the user's refund proposals that can still be
// confirmed, oldest first, in one store read for all of the user's orders
// (store.RefundProposals.OpenRefundProposals): the order list shows each
// on its order, for a bot whose SDK drops the paygate object.
func (s *Service) OpenRefunds(ctx context.Context, client, user string) ([]*store.RefundProposal, error) {
	if client == "" || user == "" {
		return nil, ErrUserRequired
	}
	ps, err := s.store.OpenRefundProposals(ctx, client, user)
	if err != nil {
		return nil, fmt.Errorf("list open refund proposals: %w", err)
	}
	return ps, nil
}

// RefundLabel is the confirm button's text: "Confirm refund of 49.99 CNY".
func RefundLabel(fen int64, currency string) string {
	return "Confirm refund of " + FormatAmount(fen, currency)
}

// ConfirmPath is where the user's client confirms proposal id.
func ConfirmPath(id string) string { return "/v1/paygate/refunds/" + id + "/confirm" }

// Confirmable reports whether a confirmation of open proposal p of order o
// could be carried out as the order stands: o is within its year
// (inRefundWindow, by this Service's clock), and refundable (paid or
// partially refunded, no refund in flight) with p asking no more than is
// left, or held for p already (a confirmation of p reserved it and stopped
// before spending p: nothing was sent, and a tap goes on under that
// reservation, as confirmRefund does). A proposal that is not is still
// open (another refund may be undone), but its confirmation would answer
// 409: one made in the year's last minutes was listed after the year
// ended, for up to its confirm_ttl, its button refused as paid more than
// a year ago.
func (s *Service) Confirmable(o *store.Order, p *store.RefundProposal) bool {
	if s.inRefundWindow(o) != nil {
		return false
	}
	if reservedFor(o, p) {
		return true
	}
	left, err := refundable(o)
	return err == nil && p.AmountFen <= left
}

// RefundAwaitingConfirmation is the status of a refund proposed and not
// yet answered: the refund object's of a proposal, and request_refund's
// result's.
const RefundAwaitingConfirmation = "awaiting_user_confirmation"

// RefundView is the refund object every surface gives of refund p of an
// order in currency (""; CNY, the only one paygate prepays in) as status
// says it stands (RefundAwaitingConfirmation, cancelled, a confirmation's
// RefundResult.Status, a store.RefundOutcome's): refund_id, order_no,
// amount_fen, currency, status, reason and created_at (when it was
// proposed). What is not known is null, never left out: the refund_id,
// reason and created_at of a merchant event a resend rebuilt from the
// order alone, the reason and created_at of an outcome recorded before
// they were kept. What a surface adds is added to it: ProposalView's
// proposal members, an outcome's settled_at. It names neither the user
// nor the client, and nothing WeChat Pay signs with.
func RefundView(p *store.RefundProposal, currency, status string) map[string]any {
	if currency == "" {
		currency = "CNY"
	}
	orNull := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	var created any
	if !p.CreatedAt.IsZero() {
		created = p.CreatedAt.UTC().Format(time.RFC3339)
	}
	return map[string]any{
		"refund_id": orNull(p.RefundID), "order_no": p.OrderNo, "amount_fen": p.AmountFen, "currency": currency,
		"status": status, "reason": orNull(p.Reason), "created_at": created,
	}
}

// ProposalView is the refund object of SPEC 2.3's refund_proposed action
// (and of the refund.proposed webhook and an order's refunds_proposed):
// RefundView, awaiting the user's confirmation, with the button's label,
// its confirm_url and when it lapses.
func ProposalView(p *store.RefundProposal, currency string) map[string]any {
	v := RefundView(p, currency, RefundAwaitingConfirmation)
	v["label"] = RefundLabel(p.AmountFen, currency)
	v["confirm_url"] = ConfirmPath(p.RefundID)
	v["expires_at"] = p.ExpiresAt.UTC().Format(time.RFC3339)
	return v
}

// OutcomeView is the refund object of how refund r of order o ended
// (a refund_succeeded action and its kin, refund_closed, refund_abnormal
// and refund_failed): RefundView of the refund as recorded with its
// outcome, in r's status, with settled_at, when paygate learnt it.
func OutcomeView(o *store.Order, r *store.RefundOutcome) map[string]any {
	p := store.RefundProposal{RefundID: r.RefundID, OrderNo: o.OrderNo, AmountFen: r.AmountFen, Reason: r.Reason, CreatedAt: r.ProposedAt}
	v := RefundView(&p, o.Currency, r.Status)
	v["settled_at"] = r.At.UTC().Format(time.RFC3339)
	return v
}

// RefundEntry is an order with money going or gone back, for the admin API.
type RefundEntry struct {
	Order *store.Order
	// InFlight is the confirmed refund paygate sent to WeChat Pay and has
	// not settled: while the order is refunding, and when it went to
	// needs_review with that refund still open (refundInReview); nil
	// otherwise.
	InFlight    *store.RefundProposal
	ConfirmedAt time.Time
}

// Refunds lists orders that are refunding, partially refunded or refunded,
// and those in needs_review with money refunded or a refund of paygate's
// still open (hasRefund), newest first (store.SortListed), at most limit
// (0: store.DefaultListLimit), each with the refund in flight, if any: the
// first page of RefundsPage.
func (s *Service) Refunds(ctx context.Context, limit int) ([]RefundEntry, error) {
	return s.RefundsPage(ctx, Page{Limit: limit})
}

// RefundsPage lists a page of what Refunds lists. Each status is read from
// the cursor on, a page's worth each, and the merge cut to the page: the
// orders listed next among all of them are among those. Proposals not yet
// confirmed are not listed: they live only until confirm_ttl and moved no
// money.
func (s *Service) RefundsPage(ctx context.Context, p Page) ([]RefundEntry, error) {
	if p.Limit <= 0 {
		p.Limit = store.DefaultListLimit
	}
	p.Limit = min(p.Limit, store.MaxListLimit)
	limit := p.Limit
	// Each status is its own read, and a refund can change status between
	// two of them: refunding, then refunded or partially_refunded (or
	// needs_review) as its notification is applied, or back to refunding
	// as a second refund of a partly refunded order is confirmed. The
	// refunding orders are read first and again last, so an order that
	// moved either way is read in at least one of its statuses, and an
	// order read twice is listed once, as its newer record stands: the
	// page neither lists a refund twice nor leaves one off every page.
	var all []*store.Order
	for _, st := range []store.OrderStatus{store.StatusRefunding, store.StatusPartiallyRefunded, store.StatusRefunded, store.StatusNeedsReview, store.StatusRefunding} {
		var page []*store.Order
		var err error
		if st == store.StatusNeedsReview {
			page, err = s.refundsInReview(ctx, p)
		} else {
			page, err = s.ListOrders(ctx, p.filter(st))
		}
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
	}
	newest := make(map[string]*store.Order, len(all))
	for _, o := range all {
		if n, ok := newest[o.OrderNo]; !ok || o.Version > n.Version {
			newest[o.OrderNo] = o
		}
	}
	all = all[:0]
	for _, o := range newest {
		all = append(all, o)
	}
	store.SortListed(all)
	if len(all) > limit {
		all = all[:limit]
	}
	out := make([]RefundEntry, 0, len(all))
	for _, o := range all {
		e := RefundEntry{Order: o}
		if o.Status == store.StatusRefunding || o.Status == store.StatusNeedsReview && o.RefundReservedBy != "" {
			rec, err := s.loadInFlight(ctx, o.OrderNo)
			if err != nil {
				return nil, err
			}
			if rec != nil && (o.Status == store.StatusRefunding && rec.OrderVersion == o.Version || refundInReview(o, rec)) {
				p := rec.Proposal
				e.InFlight, e.ConfirmedAt = &p, rec.ConfirmedAt
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// refundsInReview is the first p.Limit orders in needs_review past p's
// cursor that hasRefund, read a page of the status at a time: orders in
// review without one (orphan payments, money on a dead order) take no place
// in the list.
func (s *Service) refundsInReview(ctx context.Context, p Page) ([]*store.Order, error) {
	var out []*store.Order
	limit := p.Limit
	f := p.filter(store.StatusNeedsReview)
	for {
		page, err := s.ListOrders(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, o := range page {
			if hasRefund(o) {
				out = append(out, o)
			}
			if len(out) == limit {
				return out, nil
			}
		}
		if len(page) < limit {
			return out, nil
		}
		last := page[len(page)-1]
		f.Before, f.BeforeOrderNo = last.CreatedAt, last.OrderNo
	}
}

// hasRefund reports whether an order in needs_review belongs in the refunds
// list: money went back that its record counts, or it went to review while
// a refund of paygate's was reserved (RefundReservedBy is cleared when a
// refund ends).
func hasRefund(o *store.Order) bool {
	return o.RefundedFen > 0 || o.RefundReservedBy != ""
}

// refundInReview reports whether rec is the refund an order in
// needs_review went there with, still open as far as its record knows: the
// reservation it made, not counted in refund_nos (WeChat Pay's SUCCESS of
// it, noted in review, counts it; its CLOSED clears the reservation).
func refundInReview(o *store.Order, rec *inFlight) bool {
	return o.Status == store.StatusNeedsReview && o.RefundReservedBy == rec.Proposal.RefundID &&
		!slices.Contains(o.RefundNos, rec.Proposal.OutRefundNo)
}
