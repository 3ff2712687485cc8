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

// Outcomes of applying WeChat Pay's word to an order (also metric labels).
const (
	OutcomeApplied   = "applied"
	OutcomeDuplicate = "duplicate"
	OutcomeReview    = "review"
	OutcomeOrphan    = "orphan"
)

// paymentFact is what WeChat Pay says about a payment, from a notification or
// a query.
type paymentFact struct {
	OutTradeNo    string
	TransactionID string
	MchID         string
	AppID         string
	Total         int64
	Currency      string
	TradeType     string
	PayerOpenID   string
	PaidAt        time.Time
	// Refunded: a query answered trade_state REFUND, paid and since refunded
	// in part or in full. Only a query says so; notifications of the payment
	// say SUCCESS and the refund comes as its own notification.
	Refunded bool
}

func factFromTx(tx *wechatpay.Transaction) paymentFact {
	return paymentFact{
		OutTradeNo: tx.OutTradeNo, TransactionID: tx.TransactionID, MchID: tx.MchID, AppID: tx.AppID,
		Total: tx.Total, Currency: tx.Currency, TradeType: tx.TradeType, PayerOpenID: tx.PayerOpenID, PaidAt: tx.SuccessTime,
		Refunded: tx.TradeState == wechatpay.TradeRefund,
	}
}

func factFromResource(r *wechatpay.TransactionResource) paymentFact {
	f := paymentFact{
		OutTradeNo: r.OutTradeNo, TransactionID: r.TransactionID, MchID: r.MchID, AppID: r.AppID,
		Total: r.Amount.Total, Currency: r.Amount.Currency, TradeType: r.TradeType, PayerOpenID: r.Payer.OpenID,
	}
	if t, err := time.Parse(time.RFC3339, r.SuccessTime); err == nil {
		f.PaidAt = t
	}
	return f
}

// applyPayment commits WeChat Pay's word that order no is paid, exactly once.
// A fact that disagrees with the record (mchid, appid, amount, currency, a
// dead order, a refund paygate never made) is still WeChat's word about real
// money: the order goes to needs_review. A payment for an order already in
// needs_review is recorded on it (noteInReview); only the transaction on
// record is a duplicate (on a paid order, only one that agrees with the
// record: copyDisagreement), also on an order closed with it (a person
// resolved it out of review, Resolve: a copy of its payment is not money
// on a dead order, and sent back to review as paid_after_closed under a
// reason that lost what the person saw, a refund on the merchant platform
// say, it could be settled as paid). An unknown order gets an orphan
// record. It returns the order after, the outcome and, for review/orphan,
// the reason.
func (s *Service) applyPayment(ctx context.Context, no string, f paymentFact, cause, noteID string) (*store.Order, string, string, error) {
	outcome, reason := OutcomeDuplicate, ""
	got, changed, err := s.update(ctx, no, cause, noteID, func(c *store.Order) (*store.Order, error) {
		outcome, reason = OutcomeDuplicate, ""
		if c.TransactionID != "" && c.TransactionID == f.TransactionID && (PaidOrLater(c.Status) || c.Status == store.StatusNeedsReview || c.Status == store.StatusClosed) &&
			!paymentUnheard(c, f) {
			if r := s.copyDisagreement(c, f); r != "" {
				// The recorded transaction, told again otherwise: WeChat
				// Pay's word contradicts the paid record, not a copy.
				outcome, reason = OutcomeReview, r
				return toReview(c, r, f), nil
			}
			return nil, nil // already applied
		}
		if c.Status == store.StatusNeedsReview {
			next, r := s.noteInReview(c, f)
			if next != nil {
				outcome, reason = OutcomeReview, r
			}
			return next, nil
		}
		if r := s.disagreement(c, f); r != "" {
			outcome, reason = OutcomeReview, r
			return toReview(c, r, f), nil
		}
		switch {
		case Pending(c.Status) && f.Refunded:
			// Paid and refunded while the notifications were lost, and no
			// refund of paygate's: the same disagreement the refund's own
			// notification would have raised (applyRefund), not a plain paid
			// order whose refunded_fen says nothing went back.
			outcome, reason = OutcomeReview, "refund_not_requested"
			return toReview(c, reason, f), nil
		case Pending(c.Status):
			outcome = OutcomeApplied
			c.Status = store.StatusPaid
			c.TransactionID = f.TransactionID
			c.PaidAt = f.PaidAt
			if c.PaidAt.IsZero() {
				c.PaidAt = s.now()
			}
			return c, nil
		case PaidOrLater(c.Status):
			// Paid before under another transaction id: impossible for one
			// out_trade_no unless records are wrong.
			outcome, reason = OutcomeReview, "transaction_mismatch"
			return toReview(c, reason, f), nil
		default: // closed, expired, rejected, approval_required: money on a dead order
			outcome, reason = OutcomeReview, "paid_after_"+string(c.Status)
			return toReview(c, reason, f), nil
		}
	})
	if errors.Is(err, store.ErrNotFound) {
		return s.recordOrphan(ctx, f, cause, noteID)
	}
	if err != nil {
		return got, "", "", err
	}
	if !changed && outcome != OutcomeDuplicate {
		outcome = OutcomeDuplicate
	}
	if outcome == OutcomeReview && reason == "refund_not_requested" {
		s.alertRefundReview(ctx, no, "", reason, "trade_state", wechatpay.TradeRefund, "transaction_id", f.TransactionID)
	} else if outcome == OutcomeReview {
		s.log.ErrorContext(ctx, "ALERT: wechat pay disagrees with the order record; order needs review",
			"alert", true, "order_no", no, "reason", reason, "transaction_id", f.TransactionID,
			"wechat_total_fen", f.Total, "order_total_fen", got.AmountFen, "wechat_currency", f.Currency, "order_currency", got.Currency,
			"wechat_mchid", f.MchID, "wechat_appid", f.AppID)
	}
	return got, outcome, reason, nil
}

// disagreement names the first field in which WeChat's fact contradicts the
// order ("" when consistent). The currency counts as much as the total: 4999
// in another currency is not the 4999 fen asked for, and a fact that names
// no currency does not confirm it. payer_total is not compared: coupons and
// discounts make what the payer paid differ from the order's total. The
// payer of a JSAPI order is: it was prepaid for the order's user alone
// (payer.openid), so another payer means the record is wrong, and marking
// it paid would confirm to the user a payment someone else made. A native
// order is paid by whoever scans its code, and a fact naming no payer
// contradicts nothing.
func (s *Service) disagreement(o *store.Order, f paymentFact) string {
	switch {
	case f.MchID != s.opts.MchID:
		return "mchid_mismatch"
	case f.AppID != o.AppID:
		return "appid_mismatch"
	case f.Total != o.AmountFen:
		return "amount_mismatch"
	case f.Currency != orderCurrency(o):
		return "currency_mismatch"
	case f.PayerOpenID != "" && f.PayerOpenID != o.User && strings.EqualFold(f.TradeType, string(wechatpay.MethodJSAPI)) &&
		o.PayMethod != string(wechatpay.MethodNative):
		return "payer_mismatch"
	}
	return ""
}

// copyDisagreement names what a word of the transaction on record says
// otherwise than paid order o ("" for a copy, or when o is not paid or
// later): a second notification (or a query) of one transaction is checked
// against the stored order as the first was (SPEC 2.4). Another amount,
// currency or merchant always counts: no order in review for one is
// settled as paid (unpayableReview). Another app id or payer counts only
// on an order never in review: one a person settled as paid from review
// for either (Resolve) keeps hearing copies of that payment.
func (s *Service) copyDisagreement(o *store.Order, f paymentFact) string {
	if !PaidOrLater(o.Status) {
		return ""
	}
	r := s.disagreement(o, f)
	switch r {
	case "mchid_mismatch", "amount_mismatch", "currency_mismatch":
		return r
	case "appid_mismatch", "payer_mismatch":
		if o.ReviewReason == "" {
			return r
		}
		// Settled from review: the fields a person may not settle past
		// still count.
		switch {
		case f.MchID != s.opts.MchID:
			return "mchid_mismatch"
		case f.Total != o.AmountFen:
			return "amount_mismatch"
		case f.Currency != orderCurrency(o):
			return "currency_mismatch"
		}
	}
	return ""
}

// orderCurrency is o's currency; records without one are CNY, the only
// currency paygate prepays in.
func orderCurrency(o *store.Order) string {
	if o.Currency == "" {
		return "CNY"
	}
	return o.Currency
}

// noteInReview records a payment WeChat Pay reports for an order already in
// needs_review, without moving it: a person decides. An order sent to review
// before any payment (a refund notification that came first:
// refund_on_awaiting_payment) gets its transaction id and payment time, the
// money that arrived; another transaction than the one on record is added to
// the review reason. Either is reported as review with its reason; a fact
// already recorded changes nothing (nil).
func (s *Service) noteInReview(c *store.Order, f paymentFact) (*store.Order, string) {
	reason := "paid_while_in_review"
	switch {
	case paymentUnheard(c, f):
		// An orphan recorded from a refund's word: the payment's own
		// brings the app, the time and the payer, which no refund says.
		c.PaidAt = f.PaidAt
		if c.AppID == "" {
			c.AppID = f.AppID
		}
		if c.PayMethod == "" {
			c.PayMethod = strings.ToLower(f.TradeType)
		}
		c.ReviewReason += "; " + reason + ": " + f.said()
		if f.PayerOpenID != "" {
			c.ReviewReason += payerNote + f.PayerOpenID
		}
		return c, reason
	case c.TransactionID == "" && f.TransactionID != "":
		c.TransactionID = f.TransactionID
		if c.PaidAt.IsZero() {
			c.PaidAt = f.PaidAt
		}
		if c.PaidAt.IsZero() {
			c.PaidAt = s.now()
		}
	case strings.Contains(c.ReviewReason, "transaction "+f.TransactionID):
		return nil, "" // this payment is already noted
	default:
		reason = "transaction_mismatch"
	}
	also := ""
	if r := s.disagreement(c, f); r != "" {
		also = ", " + r
	}
	c.ReviewReason += "; " + reason + also + ": " + f.said()
	return c, reason
}

// payerNote precedes the payer's OpenID in a review reason (noteInReview).
const payerNote = ", payer "

// loggedReviewReason is review reason r as a log line prints it: each
// payer's OpenID it names (noteInReview) is left out, since an OpenID is the
// end user's identifier, which paygate keeps out of its logs. The stored
// reason keeps it, for the person who reviews the order (the admin API).
func loggedReviewReason(r string) string {
	var b strings.Builder
	for {
		i := strings.Index(r, payerNote)
		if i < 0 {
			b.WriteString(r)
			return b.String()
		}
		b.WriteString(r[:i+len(payerNote)])
		b.WriteString("(OpenID not logged)")
		r = r[i+len(payerNote):]
		if j := strings.Index(r, "; "); j >= 0 { // the next note
			r = r[j:]
		} else {
			r = ""
		}
	}
}

// paymentUnheard reports whether f is the first word of its payment on
// order c in review that knows of the transaction only from a refund: the
// orphan a refund notification of an unknown order records (applyRefundNote)
// holds the transaction id the refund names, and no time of payment, appid
// or payer, which only the payment's notification (or a query) says. Taken
// for a copy, WeChat Pay's only word on who paid was acknowledged and
// dropped for good.
func paymentUnheard(c *store.Order, f paymentFact) bool {
	return c.Status == store.StatusNeedsReview && c.Client == "" && c.PaidAt.IsZero() && !f.PaidAt.IsZero() &&
		c.TransactionID == f.TransactionID
}

// said is what WeChat Pay reported of the payment, for a review reason.
func (f paymentFact) said() string {
	refunded := ""
	if f.Refunded {
		refunded = " and refunded since (trade_state REFUND)"
	}
	return fmt.Sprintf("wechat pay says paid %d (currency %s)%s, mchid %s, appid %s, transaction %s",
		f.Total, f.Currency, refunded, f.MchID, f.AppID, f.TransactionID)
}

func toReview(c *store.Order, reason string, f paymentFact) *store.Order {
	c.Status = store.StatusNeedsReview
	c.ReviewReason = reason + ": " + f.said()
	if c.TransactionID == "" {
		c.TransactionID = f.TransactionID
	}
	if c.PaidAt.IsZero() {
		c.PaidAt = f.PaidAt
	}
	return c
}

// recordOrphan keeps a payment for an order paygate does not know, as a
// needs_review record under WeChat's number, so a person can match or refund
// it. A concurrent copy of the same notification finds it already recorded;
// a payment that finds the orphan a concurrent refund notification recorded
// is applied to it (noteInReview), as when it comes after the refund.
// A record the store did not confirm is kept for its announcement
// (noteUnacked), as an order's creation is: WeChat Pay's retry finds it
// written, a duplicate, and announces it then (settleUnacked), with its
// alert; otherwise an orphan so recorded was never raised. also, when
// given, adds to the record before it is written (the refund a refund
// notification's orphan is recorded for: applyRefundNote).
func (s *Service) recordOrphan(ctx context.Context, f paymentFact, cause, noteID string, also ...func(*store.Order)) (*store.Order, string, string, error) {
	now := s.now()
	o := &store.Order{
		OrderNo: f.OutTradeNo, AppID: f.AppID, User: f.PayerOpenID, Description: "orphan payment",
		AmountFen: f.Total, Currency: f.Currency, PayMethod: strings.ToLower(f.TradeType),
		Status: store.StatusNeedsReview, TransactionID: f.TransactionID, PaidAt: f.PaidAt,
		CreatedAt: now, UpdatedAt: now,
		ReviewReason: fmt.Sprintf("unknown_order: wechat pay says paid %d fen, mchid %s, appid %s, transaction %s", f.Total, f.MchID, f.AppID, f.TransactionID),
	}
	if o.Currency == "" {
		o.Currency = "CNY"
	}
	for _, a := range also {
		a(o)
	}
	tr := Transition{After: *o, Cause: "orphan", NotificationID: noteID, Turn: TurnFrom(ctx)}
	sent := s.now()
	err := s.store.CreateOrder(ctx, o, s.events(tr)...)
	if errors.Is(err, store.ErrExists) {
		got, gerr := s.store.GetOrder(ctx, f.OutTradeNo)
		if gerr != nil {
			return nil, "", "", fmt.Errorf("read orphan %s: %w", f.OutTradeNo, gerr)
		}
		s.settleUnacked(ctx, got)
		if got.TransactionID == f.TransactionID && !paymentUnheard(got, f) {
			return got, OutcomeDuplicate, "", nil
		}
		// The order appeared meanwhile, or the orphan a refund
		// notification recorded meanwhile, which knows nothing of the
		// payment but its transaction id (paymentUnheard): apply normally.
		return s.applyPayment(ctx, f.OutTradeNo, f, cause, noteID)
	}
	if err != nil {
		if mayHaveApplied(err) {
			s.noteUnacked(ctx, tr, o, 1, sent)
		}
		return nil, "", "", fmt.Errorf("record orphan %s: %w", f.OutTradeNo, err)
	}
	s.m.transitions.WithLabelValues("", string(store.StatusNeedsReview), "orphan").Inc()
	s.committed(tr)
	attrs := []any{"alert", true, "out_trade_no", f.OutTradeNo, "transaction_id", f.TransactionID, "total_fen", f.Total, "mchid", f.MchID, "appid", f.AppID}
	if made, ok := OrderNoTime(f.OutTradeNo); ok {
		// paygate records every order before WeChat Pay sees it: an order
		// number of its own that the store lacks is an order the store
		// lost (a backup or snapshot put back, a store moved), whose
		// purchase may be asked again and paid twice meanwhile.
		attrs = append(attrs, "made_at", made.Format(time.RFC3339), "hint",
			"the order number is one paygate made, and this store does not have it: was the store restored from an older copy or moved? See Restoring a backup in the README")
	}
	s.log.ErrorContext(ctx, "ALERT: wechat pay reports a payment for an unknown order; orphan recorded", attrs...)
	return o, OutcomeOrphan, "unknown_order", nil
}
