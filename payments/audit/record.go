package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/paygate/paygate/store"
)

// FormatVersion is the record format written in every record's "v".
const FormatVersion = 1

// Action is one money action as the audit records it: who, what, which ids,
// how much, and the conversation turn that caused it. Amounts are integer fen.
type Action struct {
	// Time is when the action happened (the order's UpdatedAt), UTC.
	Time time.Time `json:"time"`
	// Name is what happened: order.created, order.approved, order.rejected,
	// order.awaiting_payment, order.paid, order.closed, order.expired,
	// order.needs_review, payment.orphan, refund.proposed, refund.cancelled,
	// refund.confirmed, refund.reserved, refund.succeeded, refund.failed,
	// refund.aborted, order.updated, audit.text_erased (ActionTextErased),
	// webhook.resent (ActionWebhookResent; the README lists the same,
	// checked by
	// TestREADMEListsEveryAuditAction). (Records written before
	// refund.reserved existed name the reservation refund.confirmed, with
	// cause "refund".)
	Name string `json:"action"`
	// Cause is why (payments.Transition.Cause: create, prepay, notification,
	// query, sweep, close, expire, approve, reject, refund, …).
	Cause          string `json:"cause,omitempty"`
	Client         string `json:"client,omitempty"`
	User           string `json:"user,omitempty"`
	Session        string `json:"session,omitempty"`
	OrderNo        string `json:"order_no,omitempty"`
	RefundID       string `json:"refund_id,omitempty"`
	NotificationID string `json:"notification_id,omitempty"`
	TransactionID  string `json:"transaction_id,omitempty"`
	StatusBefore   string `json:"status_before,omitempty"`
	Status         string `json:"status,omitempty"`
	SKU            string `json:"sku,omitempty"`
	Quantity       int    `json:"quantity,omitempty"`
	AmountFen      int64  `json:"amount_fen,omitempty"` // the order's amount
	// RefundFen is the amount of the refund this action is about;
	// RefundedFen the order's refunded total after it.
	RefundFen   int64  `json:"refund_fen,omitempty"`
	RefundedFen int64  `json:"refunded_fen,omitempty"`
	Currency    string `json:"currency,omitempty"`
	Reason      string `json:"reason,omitempty"`
	// TextsErased is how many conversation texts an audit.text_erased
	// record's erasure deleted.
	TextsErased int `json:"texts_erased,omitempty"`
	// Webhooks are the merchant events a webhook.resent record's resend
	// queued, in the order they leave; Forced says it was forced (a new
	// event, which the merchant processes again: order.paid delivers the
	// goods again).
	Webhooks []Webhook `json:"webhooks,omitempty"`
	Forced   bool      `json:"forced,omitempty"`
	// The turn: which provider and upstream model made the call, with which
	// sampling parameters. Empty for actions no turn caused. Params are kept
	// exactly as the bot sent them: json.RawMessage from TurnFromRequest,
	// json.Number once decoded (never float64, which would change a large
	// integer such as a seed).
	Provider string         `json:"provider,omitempty"`
	Model    string         `json:"model,omitempty"`
	Params   map[string]any `json:"params,omitempty"`
	// Actor is who made the change by hand, and why: an operator's approval
	// or rejection through the admin API (payments.Actor), or a webhook
	// resend (webhook.resent). Absent for what a
	// turn, WeChat Pay or paygate itself did, and in records written before
	// it was recorded, which verify as they were sealed (the hash covers the
	// body's bytes).
	Actor *Actor `json:"actor,omitempty"`
}

// Actor is an Action's actor as recorded: kind "admin", the admin request's
// id (the key to its log line) and remote address, and the operator's name
// and reason when they gave them.
type Actor struct {
	Kind       string `json:"kind"`
	RequestID  string `json:"request_id,omitempty"`
	RemoteAddr string `json:"remote_addr,omitempty"`
	Operator   string `json:"operator,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// Webhook is a merchant event as a webhook.resent record names it.
type Webhook struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// Record is the body of one chain link, as hashed. The chain fields (V, Seq,
// PrevHash) are inside the hashed bytes, so a record cannot be moved or
// relinked without changing its hash. EventID names the outbox event the
// record came from (the Worker's duplicate check). TextSHA256 and TextBytes
// cover the conversation text kept beside the chain.
type Record struct {
	V          int       `json:"v"`
	Seq        uint64    `json:"seq"`
	PrevHash   string    `json:"prev_hash"`
	EventID    string    `json:"event_id"`
	AppendedAt time.Time `json:"appended_at"`
	Action
	TextSHA256 string `json:"text_sha256,omitempty"`
	TextBytes  int    `json:"text_bytes,omitempty"`
}

// Hash is the chain hash of a body: hex SHA-256 of its exact bytes.
func Hash(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// TextHash is the hash a record keeps of its conversation text.
func TextHash(text []byte) string { return Hash(text) }

// Seal encodes r canonically and returns the store record that follows head:
// r.Seq and r.PrevHash are set from head.
func Seal(head store.AuditHead, r Record) (store.AuditRecord, error) {
	r.V = FormatVersion
	r.Seq = head.Seq + 1
	r.PrevHash = head.Hash
	r.Time = r.Time.UTC()
	r.AppendedAt = r.AppendedAt.UTC()
	body, err := Canonical(r)
	if err != nil {
		return store.AuditRecord{}, fmt.Errorf("encode audit record: %w", err)
	}
	return store.AuditRecord{Seq: r.Seq, PrevHash: r.PrevHash, Hash: Hash(body), Body: body, User: r.User}, nil
}

// Decode parses a record body. Numbers in Params are json.Number, exactly
// as recorded.
func Decode(body []byte) (Record, error) {
	var r Record
	if err := unmarshalExact(body, &r); err != nil {
		return r, fmt.Errorf("decode audit record: %w", err)
	}
	return r, nil
}
