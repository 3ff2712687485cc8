package webhook

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// Kind is the store.Event kind of merchant webhooks. Other outbox consumers
// (the audit appender) must leave events of this kind alone, and the Relay
// leaves theirs alone.
const Kind = "webhook"

// QueuePrefix starts the outbox key of an order's delivery queue
// ("webhook:<order_no>"). Order numbers never contain a colon.
const QueuePrefix = "webhook:"

// Event types (SPEC 2.6).
const (
	// TypeOrderPaid: the money arrived (also when a person settles a
	// needs_review order as paid): deliver the goods.
	TypeOrderPaid = "order.paid"
	// TypeOrderApprovalRequired: the order waits for an operator's approval
	// before the user can pay.
	TypeOrderApprovalRequired = "order.approval_required"
	// TypeOrderClosed: the order will not be paid. data.order.status says
	// why: closed (by paygate, WeChat Pay or a person), expired (unpaid in
	// time) or rejected (an operator refused the approval).
	TypeOrderClosed = "order.closed"
	// TypeOrderNeedsReview: WeChat Pay's word disagrees with paygate's record
	// (amount, merchant, app, a payment on a dead or unknown order, a refund
	// nobody asked for); a person must look. data.review_reason says what.
	// It comes again, with the order as it now is, each time more of WeChat
	// Pay's word is recorded on an order in review (a payment, a refund).
	TypeOrderNeedsReview = "order.needs_review"
	// TypeRefundProposed: the user was offered a refund to confirm; no money
	// moved yet.
	TypeRefundProposed = "refund.proposed"
	// TypeRefundSucceeded: WeChat Pay returned money to the user.
	TypeRefundSucceeded = "refund.succeeded"
	// TypeRefundFailed: a refund paygate asked for was closed by WeChat Pay;
	// the money stays with the merchant.
	TypeRefundFailed = "refund.failed"
)

// Types lists every event type.
func Types() []string {
	return []string{TypeOrderPaid, TypeOrderApprovalRequired, TypeOrderClosed, TypeOrderNeedsReview,
		TypeRefundProposed, TypeRefundSucceeded, TypeRefundFailed}
}

// Envelope is the JSON body of every delivery, the bytes that are signed.
// Receivers may decode into it.
type Envelope struct {
	ID        string `json:"id"`         // "evt_…", the same on every retry: deduplicate by it
	Type      string `json:"type"`       // one of Types()
	CreatedAt string `json:"created_at"` // RFC 3339, when the change was committed
	Data      Data   `json:"data"`
}

// Data is the event's subject. Order is the order object of SPEC 2.3, the
// same as in the paygate response extension and GET /v1/paygate/orders
// (DecodeOrder gives it typed).
// Refund is set for refund.* events. The other fields say whose order it is
// (the order object deliberately carries no user), because the merchant must
// know whom to deliver to.
type Data struct {
	Order  map[string]any `json:"order"`
	Refund map[string]any `json:"refund,omitempty"`
	// Client is the paygate client (bot) the order was made through, AppID
	// the WeChat app and OpenID the payer's OpenID within that app.
	Client string `json:"client,omitempty"`
	AppID  string `json:"app_id,omitempty"`
	OpenID string `json:"openid,omitempty"`
	// TransactionID is WeChat Pay's number of the payment, once known.
	TransactionID string `json:"transaction_id,omitempty"`
	// ReviewReason is set on order.needs_review.
	ReviewReason string `json:"review_reason,omitempty"`
}

// Order is data.order, SPEC 2.3's order object, typed for Go receivers
// (Data.DecodeOrder): amounts exact integers in fen (Data.Order's map gives
// float64), times parsed, a time not yet known (paid_at before the
// payment) nil.
type Order struct {
	OrderNo     string     `json:"order_no"`
	SKU         string     `json:"sku"`
	Description string     `json:"description"`
	Quantity    int        `json:"quantity"`
	AmountFen   int64      `json:"amount_fen"`
	Currency    string     `json:"currency"`
	PayMethod   string     `json:"pay_method"`
	Status      string     `json:"status"` // SPEC 2.3's order statuses: paid, closed, expired, …
	CreatedAt   *time.Time `json:"created_at"`
	ExpiresAt   *time.Time `json:"expires_at"`
	PaidAt      *time.Time `json:"paid_at"`
	RefundedFen int64      `json:"refunded_fen"`
}

// DecodeOrder returns data.order as an Order.
func (d Data) DecodeOrder() (Order, error) {
	var o Order
	b, err := json.Marshal(d.Order)
	if err == nil {
		err = json.Unmarshal(b, &o)
	}
	return o, err
}

// Events is the payments.Options.Events hook: it turns one committed order
// transition into the merchant events it causes (none or one). The returned
// events are written with the transition, atomically, on the order's outbox
// key. It is pure and fast, as the hook must be.
//
// Mapping: into paid → order.paid (from refunding: refund.failed); into
// approval_required → order.approval_required; into closed, expired or
// rejected → order.closed (except a duplicate `creating` record closed as
// superseded, and a number recorded closed from the start as abandoned,
// neither of which reached WeChat Pay); into needs_review, or
// within it when WeChat Pay's word is noted on the order (review_reason,
// transaction_id or refunded_fen changes) → order.needs_review; refunding → refunded or partially_refunded with more
// money refunded → refund.succeeded, with no more → refund.failed; the
// refund object then names the confirmed refund (Transition.Refund); a
// reservation undone before WeChat Pay was asked (cause refund_aborted)
// sends nothing, as the reservation sent nothing.
func Events(tr payments.Transition) []store.Event {
	typ, refund := classify(tr)
	if typ == "" {
		return nil
	}
	at := tr.After.UpdatedAt
	if at.IsZero() {
		at = time.Now()
	}
	id := paidEventID(typ, tr)
	if id == "" {
		id = refundOutcomeID(typ, tr)
	}
	if id == "" {
		id = newEventID()
	}
	return []store.Event{encodeEvent(newEnvelope(typ, &tr.After, refund), id, tr.After.OrderNo, at)}
}

// paidEventID is the id of the order.paid of an order's payment: derived
// from the order number and WeChat Pay's transaction rather than drawn, so
// that a store that announces the same payment again sends the id the
// merchant already handled. That happens when the store goes back to an
// earlier state: the embedded file restored from a backup or a volume
// snapshot, a Redis that lost its last writes. An order restored payable
// is found paid by the sweep and announced again; one restored in review
// (paid from another app id, or by another payer) is resolved paid again
// by a manager who finds the payment on the merchant platform. With a
// fresh id the merchant, deduplicating by id, delivered the goods twice.
// Either road, one transaction on one order is one payment, one delivery:
// both take the same id. "" (a drawn id) for any other event, and for an
// order.paid without a transaction.
func paidEventID(typ string, tr payments.Transition) string {
	if typ != TypeOrderPaid {
		return ""
	}
	return paymentEventID(tr.After.OrderNo, tr.After.TransactionID)
}

// paymentEventID is the id of the order.paid of transaction txid on order
// orderNo (paidEventID); "" without a transaction.
func paymentEventID(orderNo, txid string) string {
	if txid == "" {
		return ""
	}
	h := sha256.Sum256([]byte("paygate order.paid\x00" + orderNo + "\x00" + txid))
	return "evt_" + hex.EncodeToString(h[:12])
}

// refundOutcomeID is the id of the refund.succeeded or refund.failed that
// ends a confirmed refund (Transition.Refund): derived from the order
// number and the refund's id, as paidEventID is from the payment's, so
// that a store gone back to an earlier state (a copy made while the
// refund was in flight, put back after it ended and its outcome was
// announced) announces the same outcome under the id the merchant
// handled. With a fresh id the merchant revoked the refunded goods (or
// debited a ledger) a second time. A refund ends once, either way: "" (a
// drawn id) for any other event, and for an outcome without its refund.
func refundOutcomeID(typ string, tr payments.Transition) string {
	if (typ != TypeRefundSucceeded && typ != TypeRefundFailed) || tr.Refund == nil || tr.Refund.RefundID == "" {
		return ""
	}
	h := sha256.Sum256([]byte("paygate " + typ + "\x00" + tr.After.OrderNo + "\x00" + tr.Refund.RefundID))
	return "evt_" + hex.EncodeToString(h[:12])
}

func classify(tr payments.Transition) (string, map[string]any) {
	b, a := tr.Before, tr.After
	if a.Status == b.Status {
		if a.Status == store.StatusNeedsReview && notedInReview(b, a) {
			return TypeOrderNeedsReview, nil
		}
		return "", nil
	}
	if b.Status == store.StatusRefunding && tr.Cause == payments.CauseRefundAborted {
		// A confirmation's reservation undone before anything went to
		// WeChat Pay (the user cancelled as it ran): no refund started for
		// the merchant (the reservation sends nothing), so none failed.
		return "", nil
	}
	switch a.Status {
	case store.StatusPaid:
		if b.Status == store.StatusRefunding {
			return TypeRefundFailed, refundOutcome(tr, "failed")
		}
		return TypeOrderPaid, nil
	case store.StatusApprovalRequired:
		return TypeOrderApprovalRequired, nil
	case store.StatusClosed, store.StatusExpired, store.StatusRejected:
		if b.Status == store.StatusCreating && tr.Cause == "superseded" ||
			b.Status == "" && tr.Cause == "abandoned" {
			return "", nil // a number given up before any payment was asked for
		}
		return TypeOrderClosed, nil
	case store.StatusNeedsReview:
		return TypeOrderNeedsReview, nil
	case store.StatusRefunded, store.StatusPartiallyRefunded:
		if b.Status != store.StatusRefunding {
			return "", nil
		}
		if a.RefundedFen > b.RefundedFen {
			return TypeRefundSucceeded, refundOutcome(tr, "succeeded")
		}
		return TypeRefundFailed, refundOutcome(tr, "failed")
	}
	return "", nil
}

// notedInReview reports whether WeChat Pay's word was recorded on an order
// that stays in needs_review (a payment that came after a refund put it
// there, a refund re-handled after ABNORMAL, another transaction): the
// merchant hears of it through order.needs_review again, or never learns
// that money arrived or went back.
func notedInReview(b, a store.Order) bool {
	return a.ReviewReason != b.ReviewReason || a.TransactionID != b.TransactionID || a.RefundedFen != b.RefundedFen
}

// refundOutcome is the refund object of a refund.succeeded or refund.failed
// (outcomeObject) of the confirmed refund behind the change
// (Transition.Refund) when known, else of what the order change shows (the
// amount it refunded). status stays this event's word: a refund WeChat Pay
// closed is "failed" here, as the event's type says.
func refundOutcome(tr payments.Transition, status string) map[string]any {
	b, a := tr.Before, tr.After
	r := tr.Refund
	if r == nil {
		r = &store.RefundProposal{OrderNo: a.OrderNo, AmountFen: a.RefundedFen - b.RefundedFen}
	}
	return outcomeObject(r, &a, status)
}

// outcomeObject is the refund object of every surface (payments.RefundView)
// of refund r of order a as it stands after the refund ended, with
// settled_at, when paygate learnt the outcome (the one the order records of
// that refund, which the user's refund_succeeded action gives; else, for a
// refund it does not name, the order's last change), and refunded_fen, the
// order's total refunded (as data.order says; kept for receivers that read
// it here).
func outcomeObject(r *store.RefundProposal, a *store.Order, status string) map[string]any {
	m := payments.RefundView(r, a.Currency, status)
	m["refunded_fen"] = a.RefundedFen
	settled := a.UpdatedAt
	for _, o := range slices.Backward(a.RefundOutcomes) {
		if r.RefundID != "" && o.RefundID == r.RefundID && (o.Status == store.RefundSucceeded) == (status == "succeeded") {
			settled = o.At
			break
		}
	}
	if settled.IsZero() {
		settled = time.Now()
	}
	m["settled_at"] = settled.UTC().Format(time.RFC3339)
	return m
}

func currency(c string) string {
	if c == "" {
		return "CNY"
	}
	return c
}

// NewEvent builds one merchant event about order o, ready for the outbox:
// a fresh "evt_" id, Kind webhook, keyed by the order number so it is
// delivered in order with the order's other events. refund is the refund
// object of refund.* events (nil for order events); at is when the change
// happened. The body is rendered now and never again, so every retry sends
// the same bytes.
func NewEvent(typ string, o *store.Order, refund map[string]any, at time.Time) store.Event {
	return encodeEvent(newEnvelope(typ, o, refund), newEventID(), o.OrderNo, at)
}

// newEnvelope is the body of a typ event about order o, without its id and
// time (encodeEvent adds them).
func newEnvelope(typ string, o *store.Order, refund map[string]any) Envelope {
	env := Envelope{
		Type: typ,
		Data: Data{
			Order: payments.OrderView(o), Refund: refund,
			Client: o.Client, AppID: o.AppID, OpenID: o.User, TransactionID: o.TransactionID,
		},
	}
	if o.Status == store.StatusNeedsReview {
		env.Data.ReviewReason = o.ReviewReason
	}
	return env
}

// encodeEvent renders env with id and at as the outbox event on key.
func encodeEvent(env Envelope, id, key string, at time.Time) store.Event {
	env.ID, env.CreatedAt = id, at.UTC().Format(time.RFC3339)
	body, err := json.Marshal(env)
	if err != nil {
		// Only strings, numbers, nil and nested maps of them are marshalled.
		panic("webhook: marshal event: " + err.Error())
	}
	return store.Event{ID: id, Kind: Kind, Key: key, Payload: body, CreatedAt: at}
}

// ProposalEvents is payments.Options.ProposalEvents for webhooks: the
// refund.proposed event of a proposal made (payments.ProposalMade) of order
// o, written in the proposal's own atomic step, keyed by the proposal
// (store.ProposalEventKey), so a proposal the user can confirm never lacks
// its notice, as an order's events ride its transitions. The Relay moves
// it to its order's delivery queue (orderOf) like any intake event. The
// user's answer adds none: what it does to the order reaches the merchant
// through the order's own events.
func ProposalEvents(_ context.Context, step payments.ProposalStep, p store.RefundProposal, o *store.Order) []store.Event {
	if step != payments.ProposalMade || o == nil {
		return nil
	}
	ev := ProposalEvent(p, o)
	ev.Key = store.ProposalEventKey(p.RefundID)
	return []store.Event{ev}
}

// ProposalEvent is the refund.proposed event of proposal p on order o: no
// order changes when the model proposes a refund, so it is not born in a
// transition but in the proposal's write (ProposalEvents), keyed by the
// order. refund is SPEC 2.3's refund object (payments.ProposalView).
func ProposalEvent(p store.RefundProposal, o *store.Order) store.Event {
	at := p.CreatedAt
	if at.IsZero() {
		at = time.Now()
	}
	return NewEvent(TypeRefundProposed, o, payments.ProposalView(&p, currency(o.Currency)), at)
}

func newEventID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "evt_" + hex.EncodeToString(b[:])
}
