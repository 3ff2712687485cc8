package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/paygate/paygate/internal/jsonscan"
)

// Sentinel errors. Drivers wrap them with context; callers test with errors.Is.
var (
	// ErrNotFound: no such record, or it expired, or it belongs to someone else
	// (a refund proposal of another user is not revealed to exist).
	ErrNotFound = errors.New("store: not found")
	// ErrExists: a create found the key already taken (an order number in use).
	ErrExists = errors.New("store: already exists")
	// ErrConflict: a compare-and-set lost (the order was not in the expected
	// status, the audit head moved). The caller re-reads and decides.
	ErrConflict = errors.New("store: conflict")
	// ErrGone: the refund proposal was used, cancelled or expired; its tombstone
	// says so for at least TombstoneTTL, so a late confirmation gets 410 Gone.
	ErrGone = errors.New("store: gone")
	// ErrUnavailable: the backend cannot be reached (connection refused, timeout,
	// closed store, Redis cluster down, a money write not replicated in time).
	// Chat goes on without payment state; payment tools fail closed.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrDataLost: the backend lost data this process saw written (a Redis
	// restarted without persistence, flushed, or gone back to an earlier
	// state), and every command is refused, with ErrUnavailable, until the
	// process restarts. Its own error, so that /readyz can tell an operator
	// to restart the replicas rather than look for a network fault: the
	// backend answers.
	ErrDataLost = errors.New("store: lost its data")
	// ErrWritesFail: the backend answers reads but its writes fail (the
	// embedded file on a full disk or a filesystem gone read-only; a Redis
	// that refuses writes: OOM, MISCONF, NOREPLICAS, READONLY). It
	// wraps ErrUnavailable: no order or notification can be recorded.
	// Its own error, so that /readyz sends an operator to the disk, not
	// to the network.
	ErrWritesFail = fmt.Errorf("store: writes fail: %w", ErrUnavailable)
	// ErrOtherDeployment: the backend's keys belong to another paygate
	// deployment (a Redis shared under one key prefix by deployments of
	// another payments backend or merchant), and every command is
	// refused, with ErrUnavailable, until the process restarts with a
	// prefix of its own. Its own error, so that /readyz names the
	// setting to change.
	ErrOtherDeployment = errors.New("store: another deployment's keys")
)

// DataLostAdvice is what an operator is told of ErrDataLost, by /readyz
// and by every admin API route that reads the store (orders, audit,
// webhooks): the store answers, so "unavailable" or "try again" would send
// them to the network or to retries the replica refuses until it is
// restarted.
const DataLostAdvice = "the store lost its data: restart every replica, then reconcile payments against WeChat Pay"

// TombstoneTTL is how long a used or expired refund proposal is remembered.
const TombstoneTTL = 7 * 24 * time.Hour

// GenerationRetention is how long a purchase claim's generation counter outlives
// the claim, so a later claim of the same purchase gets a fresh generation rather
// than generation 1 again.
const GenerationRetention = 30 * 24 * time.Hour

// UserStateOrders bounds LoadUserState: it returns the user's
// UserStateOrders most recently created orders and the UserStateOrders most
// recently updated ones (by UpdatedAt), each order once, so at most
// 2*UserStateOrders. The second set is what a turn needs to announce an
// order paid, or approved, after the user created UserStateOrders newer
// ones: the newest-created cut alone never showed it again.
const UserStateOrders = 20

// OrderStatus is the state of an order (SPEC 4); the values are the wire strings
// used in the paygate response extension, the order API and webhooks.
type OrderStatus string

// Order statuses.
const (
	StatusCreating          OrderStatus = "creating"
	StatusAwaitingPayment   OrderStatus = "awaiting_payment"
	StatusPaid              OrderStatus = "paid"
	StatusClosed            OrderStatus = "closed"
	StatusExpired           OrderStatus = "expired"
	StatusApprovalRequired  OrderStatus = "approval_required"
	StatusRejected          OrderStatus = "rejected"
	StatusRefunding         OrderStatus = "refunding"
	StatusPartiallyRefunded OrderStatus = "partially_refunded"
	StatusRefunded          OrderStatus = "refunded"
	StatusNeedsReview       OrderStatus = "needs_review"
)

// Statuses lists every OrderStatus, for drivers that index by status and for
// validation.
func Statuses() []OrderStatus {
	return []OrderStatus{
		StatusCreating, StatusAwaitingPayment, StatusPaid, StatusClosed,
		StatusExpired, StatusApprovalRequired, StatusRejected, StatusRefunding,
		StatusPartiallyRefunded, StatusRefunded, StatusNeedsReview,
	}
}

// Valid reports whether s is one of the known statuses.
func (s OrderStatus) Valid() bool {
	for _, v := range Statuses() {
		if s == v {
			return true
		}
	}
	return false
}

// Order is one purchase as paygate records it. Amounts are integer fen so no
// float ever touches money. Client and User are immutable after creation.
type Order struct {
	OrderNo     string      `json:"order_no"` // out_trade_no at WeChat Pay
	Client      string      `json:"client"`   // client key name (the bot)
	AppID       string      `json:"app_id"`
	User        string      `json:"user"` // the end user's OpenID
	Session     string      `json:"session,omitempty"`
	SKU         string      `json:"sku"`
	Description string      `json:"description"`
	Quantity    int         `json:"quantity"`
	AmountFen   int64       `json:"amount_fen"`
	Currency    string      `json:"currency"`
	PayMethod   string      `json:"pay_method"` // jsapi | native
	Status      OrderStatus `json:"status"`
	ClaimKey    string      `json:"claim_key,omitempty"`
	Generation  int         `json:"generation,omitempty"`
	CreatedAt   time.Time   `json:"created_at"`
	UpdatedAt   time.Time   `json:"updated_at"`
	ExpiresAt   time.Time   `json:"expires_at,omitzero"`
	PaidAt      time.Time   `json:"paid_at,omitzero"`
	RefundedFen int64       `json:"refunded_fen"`
	// RefundNos are the out_refund_no of the refunds counted in
	// RefundedFen, oldest first, so a refund WeChat Pay reports that paygate
	// never asked for is told apart from a late copy of one it applied.
	RefundNos []string `json:"refund_nos,omitempty"`
	// ClosedRefundNos are the out_refund_no of paygate's own refunds of
	// the order that WeChat Pay closed (no money moved), so a late copy of
	// one's REFUND.CLOSED, after another refund replaced it in flight, is
	// told apart from a refund paygate never made.
	ClosedRefundNos []string `json:"closed_refund_nos,omitempty"`
	PrepayID        string   `json:"prepay_id,omitempty"`
	CodeURL         string   `json:"code_url,omitempty"`
	TransactionID   string   `json:"transaction_id,omitempty"`
	ReviewReason    string   `json:"review_reason,omitempty"`
	// ApprovedFen is the amount a manager approved this order at (0: none
	// did). A switch of pay method carries the approval to the replacement
	// only at that same amount, and records it there too; it is never
	// inferred from the approval threshold, which another replica or an
	// older config may have judged differently.
	ApprovedFen int64 `json:"approved_fen,omitempty"`
	// RefundReservedBy is the refund proposal whose confirmation moved the
	// order to refunding. Another confirmation of the same proposal goes on
	// under the reservation (the proposal's single use decides which one
	// sends the refund; the others are told "already used"); one of another
	// proposal is told "another refund in progress" (its proposal is still
	// usable). It is cleared when that refund ends (settled, closed, refused
	// or undone); an order that went to needs_review while refunding keeps
	// it, naming the refund still open for the person reviewing (the
	// admin's refunds list). Records written before it was cleared may keep
	// an ended refund's.
	RefundReservedBy string `json:"refund_reserved_by,omitempty"`
	// RefundOutcomes are how paygate's own refunds of the order ended at
	// WeChat Pay, in the order they ended: each refund once per outcome
	// (an ABNORMAL one that later succeeded has both). They are kept on
	// the order, which the user's turn reads anyway (UserState), so that
	// the user's next turn can tell of each once (Announcements, a kind
	// per refund and outcome), as it tells of a payment, with no other
	// read: the order's status alone says neither which refund nor how
	// much (a closed refund leaves it paid).
	RefundOutcomes []RefundOutcome `json:"refund_outcomes,omitempty"`
	// Version is set by the store: 1 on create, incremented by every write. It
	// orders copies of the record (the Redis user copy) and tells readers which
	// write they saw.
	Version int64 `json:"version"`
	// later are the members of the stored record this version does not
	// know, as a later version wrote them (a rolling upgrade runs both on
	// one store), raw, so that this version's rewrite of the order keeps
	// them: the members paygate adds are what a later version's money
	// rules read (refund_outcomes, closed_refund_nos were such), and a
	// rewrite that dropped them made that version misread its own order.
	// Set by UnmarshalJSON, written back by MarshalJSON.
	later map[string]json.RawMessage
}

// orderFields is Order without its JSON methods.
type orderFields Order

// orderMembers are the JSON names of Order's members.
var orderMembers = func() map[string]bool {
	m := map[string]bool{}
	t := reflect.TypeFor[Order]()
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			m[name] = true
		}
	}
	return m
}()

// orderMember reports whether k names one of Order's members as
// json.Unmarshal reads it: by its name, or by one that differs in case
// alone ("Status"), which it reads into the same field. Such a member is
// read, not unknown: kept in Order.later it was written back after the
// order's own members, and every later read took its old value over this
// version's write (a refund's status and refunded_fen lost).
func orderMember(k string) bool {
	if orderMembers[k] {
		return true
	}
	for name := range orderMembers {
		if strings.EqualFold(name, k) {
			return true
		}
	}
	return false
}

// UnmarshalJSON decodes an order and keeps the members it does not know
// (Order.later), as DecodeOrder does.
func (o *Order) UnmarshalJSON(b []byte) error { return DecodeOrder(b, o) }

// DecodeOrder decodes the order record b into o, keeping the members it
// does not know (Order.later): json.Unmarshal into an Order does the same
// through UnmarshalJSON, after a pass of its own over the record that
// checks and skips it, and then a second decode with its own state. The
// drivers decode with this, once: LoadUserState reads the user's orders on
// every turn, where those passes cost a third more time per order.
func DecodeOrder(b []byte, o *Order) error {
	if err := json.Unmarshal(b, (*orderFields)(o)); err != nil {
		return err
	}
	o.later = laterMembers(b)
	return nil
}

// laterMembers returns the members of the order record b (valid JSON) that
// Order does not know, or nil. It reads b in place and allocates only for
// a member it keeps (nearly no record has one); the names and values kept
// are copies, as b may be a store's memory (a bbolt page) that is gone
// after the read.
func laterMembers(b []byte) map[string]json.RawMessage {
	s := unsafe.String(unsafe.SliceData(b), len(b))
	i := jsonscan.SkipSpace(s, 0)
	if i >= len(s) || s[i] != '{' {
		return nil // null
	}
	var later map[string]json.RawMessage
	for i++; ; {
		m, ok := jsonscan.NextMember(s, i, true)
		if !ok {
			return later
		}
		i = m.End
		if k := jsonscan.KeyName(m.Key); !orderMember(k) {
			if later == nil {
				later = map[string]json.RawMessage{}
			}
			// The last of a repeated one, as json.Unmarshal takes.
			later[strings.Clone(k)] = json.RawMessage(s[m.At:m.End])
		}
	}
}

// MarshalJSON encodes an order with the members a later version wrote
// (Order.later) after its own, in name order.
func (o Order) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal((*orderFields)(&o))
	if err != nil || len(o.later) == 0 {
		return b, err
	}
	b = b[:len(b)-1]
	for _, k := range slices.Sorted(maps.Keys(o.later)) {
		kj, _ := json.Marshal(k)
		b = append(append(append(append(b, ','), kj...), ':'), o.later[k]...)
	}
	return append(b, '}'), nil
}

// RefundOutcome is how one of paygate's refunds of an order ended
// (Order.RefundOutcomes).
type RefundOutcome struct {
	OutRefundNo string `json:"out_refund_no"`
	// RefundID is the proposal the user confirmed.
	RefundID  string `json:"refund_id,omitempty"`
	AmountFen int64  `json:"amount_fen"`
	// Status is RefundSucceeded, RefundClosed, RefundAbnormal or
	// RefundFailed.
	Status string `json:"status"`
	// At is when paygate learnt it.
	At time.Time `json:"at"`
	// Reason and ProposedAt are the refund's proposal's (RefundProposal's
	// Reason and CreatedAt), so that the user's turn that tells of the
	// outcome gives the same refund object as every other surface
	// (payments.OutcomeView); outcomes recorded before they were kept
	// have neither.
	Reason     string    `json:"reason,omitempty"`
	ProposedAt time.Time `json:"proposed_at,omitzero"`
}

// Refund outcomes (RefundOutcome.Status): WeChat Pay's SUCCESS, CLOSED and
// ABNORMAL of a refund, in the words of paygate's API, and failed: nothing
// was refunded of a refund the user was told was on its way (the sweep's
// first send of one a confirmation took and never sent, refused; a
// reservation undone). A refused resend of one whose first request had no
// answer is not failed: that request may have made it (the order goes to
// review, payments.resendRefused).
const (
	RefundSucceeded = "succeeded"
	RefundClosed    = "closed"
	RefundAbnormal  = "abnormal"
	RefundFailed    = "failed"
)

// OrderFilter selects orders for ListOrders. Zero fields do not filter. Results
// are newest first (by CreatedAt), orders created at the same instant by
// OrderNo descending (OrderListedBefore), so that a page's last order is an
// exact cursor for the next page.
type OrderFilter struct {
	Client string
	User   string // requires Client or NoClient
	// NoClient selects the orders recorded without a client (Client
	// empty): payments WeChat Pay reported for an order paygate did not
	// know (payments' orphans), kept under the payer's OpenID as User. With
	// User, that user's such orders. It cannot be set with Client.
	NoClient bool
	Status   OrderStatus
	// Before, when set, returns only orders created strictly before it, or,
	// with BeforeOrderNo, orders listed after (Before, BeforeOrderNo): pass
	// the previous page's last CreatedAt and OrderNo. A time alone skips the
	// orders created at that same instant that did not fit on the page;
	// the pair never skips or repeats one.
	Before        time.Time
	BeforeOrderNo string // only with Before
	// Limit caps the result; 0 means DefaultListLimit, and it is capped at
	// MaxListLimit.
	Limit int
}

// Check reports a filter ListOrders refuses: a user without a client or
// NoClient (a user's orders are indexed per client), or NoClient with a
// client.
func (f OrderFilter) Check() error {
	switch {
	case f.NoClient && f.Client != "":
		return errors.New("a filter on orders without a client names no client")
	case f.User != "" && f.Client == "" && !f.NoClient:
		return errors.New("a user filter needs a client")
	}
	return nil
}

// ClientMatches reports whether o is of the client f selects: any (no
// Client), Client's, or none (NoClient).
func (f OrderFilter) ClientMatches(o *Order) bool {
	if f.NoClient {
		return o.Client == ""
	}
	return f.Client == "" || o.Client == f.Client
}

// OrderListedBefore reports whether ListOrders lists a before b: a was
// created later, or at the same instant with a greater order number.
func OrderListedBefore(a, b *Order) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.After(b.CreatedAt)
	}
	return a.OrderNo > b.OrderNo
}

// SortListed sorts orders into ListOrders' order (OrderListedBefore), which
// is also UserState.Orders'.
func SortListed(orders []*Order) {
	slices.SortStableFunc(orders, func(a, b *Order) int {
		switch {
		case OrderListedBefore(a, b):
			return -1
		case OrderListedBefore(b, a):
			return 1
		}
		return 0
	})
}

// PastCursor reports whether o belongs after f's cursor (Before,
// BeforeOrderNo); true for every order when f has no cursor.
func (f OrderFilter) PastCursor(o *Order) bool {
	switch {
	case f.Before.IsZero():
		return true
	case o.CreatedAt.Equal(f.Before):
		return f.BeforeOrderNo != "" && o.OrderNo < f.BeforeOrderNo
	default:
		return o.CreatedAt.Before(f.Before)
	}
}

// Listing limits for ListOrders.
const (
	DefaultListLimit = 50
	MaxListLimit     = 1000
)

// MaxDueBytes bounds the payload bytes one Outbox.DueEvents returns. An
// audit event carries its turn's whole conversation, a third more in
// base64: a WeChat bot that sends its history every turn makes events of
// megabytes (up to about 11 MB at the default 8 MiB body limit), and a
// backlog of them read a thousand at a time held gigabytes, and on Redis
// a reply so large that the read timed out and the backlog was never
// drained.
const MaxDueBytes = 32 << 20

// dueBytes is the bound DueEvents applies when a test lowered it (0:
// MaxDueBytes). A test that crosses 32 MiB several times, through Redis and
// the JSON and base64 of every event, took 50 s (426 s under -race); with
// the bound lowered, events of tens of KB cross it as often in seconds.
var dueBytes atomic.Int64

// DueBytes is the payload bytes one Outbox.DueEvents reads at most:
// MaxDueBytes, unless a test lowered it (LowerDueBytesForTest).
func DueBytes() int {
	if n := dueBytes.Load(); n > 0 {
		return int(n)
	}
	return MaxDueBytes
}

// LowerDueBytesForTest makes DueBytes n until t's cleanup. For tests
// only: the bound is the process's, so such a test must not run in
// parallel with others that read the outbox.
func LowerDueBytesForTest(t interface{ Cleanup(func()) }, n int) {
	dueBytes.Store(int64(n))
	t.Cleanup(func() { dueBytes.Store(0) })
}

// Orders stores orders by number with compare-and-set transitions.
type Orders interface {
	// CreateOrder stores a new order (Version becomes 1; UpdatedAt, and
	// CreatedAt when zero, become the store's time) and enqueues events in the
	// same atomic step. ErrExists if the number is taken.
	CreateOrder(ctx context.Context, o *Order, events ...Event) error
	// GetOrder returns the order or ErrNotFound.
	GetOrder(ctx context.Context, orderNo string) (*Order, error)
	// UpdateOrder writes o only if the stored order is still the version o
	// was read at (o.Version) and its status equals expect (ErrConflict
	// otherwise, ErrNotFound if there is no such order), atomically with
	// enqueuing events in the order's outbox. The version, not the status
	// alone, is what is compared: an order can leave a status and come back
	// to it (partially_refunded → refunding → partially_refunded), and a
	// write decided on the earlier record must not overwrite what changed in
	// between (refunded_fen). o must carry the stored Client, User and
	// CreatedAt (it is a record read from the store, changed).
	// On success o.Version is the new version and o.UpdatedAt the store's time.
	// Events passed here are keyed by the order: their Key must be empty or
	// o.OrderNo.
	UpdateOrder(ctx context.Context, o *Order, expect OrderStatus, events ...Event) error
	// ListOrders lists orders for the admin API and the user's order list.
	ListOrders(ctx context.Context, f OrderFilter) ([]*Order, error)
}

// UserState is what one turn needs to know about one user's payments.
type UserState struct {
	Client string
	User   string
	// Orders are the user's UserStateOrders most recently created orders
	// merged with their UserStateOrders most recently updated ones, each
	// order once, newest created first (OrderListedBefore): at most
	// 2*UserStateOrders. The update index was added to existing stores
	// after their orders were written; an order not written since (each
	// driver says when that can be) may be missing from the second set, and
	// is still in the first while it is among the newest created.
	Orders []*Order
	// Now is the store's clock when the state was read: the clock its
	// counters' expiries are judged by, so a caller that must act before a
	// counter it set expires (announcements) measures with it.
	Now time.Time
	// Announced are the announcements recorded (Announcements) of the
	// orders in Orders and live at Now, read in the same round trip as
	// the orders: a turn knows from them, with no write and no other read,
	// which orders it must not announce again. Nil when there are none.
	Announced map[Announcement]bool
}

// Announcement names one announcement of one order (Announcements): its
// kind, as the caller names it, and the order's number.
type Announcement struct {
	Kind    string
	OrderNo string
}

// UserStates loads a user's payment state for a turn.
type UserStates interface {
	// LoadUserState costs exactly one backend round trip (one Lua script on
	// Redis, one read transaction on bbolt), also for a user with no state, for
	// whom it returns an empty UserState and no error.
	LoadUserState(ctx context.Context, client, user string) (*UserState, error)
}

// Announcements records what a turn told a user of an order on its own
// (SPEC 2.3: payment_confirmed for an order paid since, the payment
// parameters of one that became payable outside a turn), once per order
// and kind, so that no later turn on any replica tells it again: bots
// deliver goods on payment_confirmed, so a second one can deliver twice.
//
// The record is kept beside the user's orders, not on the order: so that
// LoadUserState returns it in its one round trip, and so that recording
// it writes no order. An order write raises the order's Version and
// UpdatedAt, which payments reads (a refund in flight counts only while
// its order is at the version its reservation wrote; the refund sweep
// waits on UpdatedAt; a transition committing at the same time would lose
// its compare-and-set), and a turn must not move either to note what it
// said.
type Announcements interface {
	// ClaimAnnouncement records that kind was announced of order orderNo
	// of (client, user), for ttl, and reports whether this call recorded
	// it first: of any number of concurrent callers, on any replica,
	// exactly one gets true while the record lives. LoadUserState returns
	// the record (UserState.Announced) while it lives.
	//
	// It is a money write, as durable as an order write: on Redis it is
	// replicated per Options.WaitReplicas and raises the generation
	// counter, so that once a Redis that went back to an earlier state (a
	// restart from an older snapshot, a failover to a lagging replica) is
	// found, the claim is refused (ErrUnavailable) rather than granted a
	// second time. On an error the caller must not announce: the record
	// may be in place.
	//
	// Earlier versions claimed with the counter kind+orderNo
	// (Counters.IncrCounter). A live count there is an earlier claim: the
	// record is written and false returned, so an order announced before
	// an upgrade is not announced again after it.
	ClaimAnnouncement(ctx context.Context, client, user, kind, orderNo string, ttl time.Duration) (first bool, err error)
}

// Claim is the order a purchase is currently bound to (SPEC 4 idempotency).
type Claim struct {
	OrderNo    string
	Generation int
}

// Claims binds a purchase key (client, user, sku, quantity, pay_method) to one
// order across concurrent requests and replicas.
type Claims interface {
	// ClaimPurchase returns the live claim of key and slides its TTL, or, when
	// there is none, binds key to candidateOrderNo with the next generation
	// (1 for a key never seen within GenerationRetention) and reports created.
	// Exactly one of any number of concurrent callers gets created == true; the
	// others get the winner's claim. created says that this call bound the
	// key, not that the claim names candidateOrderNo: a call that finds the
	// claim live gets false also when the claim is bound to its candidate
	// (callers pass order numbers already bound).
	ClaimPurchase(ctx context.Context, key, candidateOrderNo string, ttl time.Duration) (c Claim, created bool, err error)
	// AdvanceClaim moves key from generation fromGeneration to a new generation
	// bound to newOrderNo, for a caller who found the claimed order closed or
	// expired. It is a compare-and-set: when the claim is no longer at
	// fromGeneration (another caller advanced it) the current claim is returned
	// with advanced == false and its TTL slid, also when it is bound to
	// newOrderNo. A key whose claim expired is claimed afresh (advanced ==
	// true).
	AdvanceClaim(ctx context.Context, key string, fromGeneration int, newOrderNo string, ttl time.Duration) (c Claim, advanced bool, err error)
}

// Notifications remembers WeChat Pay notification ids (replay protection).
type Notifications interface {
	// SeenNotification records id and reports whether this is its first sighting
	// within ttl.
	SeenNotification(ctx context.Context, id string, ttl time.Duration) (first bool, err error)
}

// RefundProposal is a refund the model proposed; no money moves until the user
// who proposed it confirms it, once, before ExpiresAt.
type RefundProposal struct {
	RefundID    string    `json:"refund_id"`
	OrderNo     string    `json:"order_no"`
	Client      string    `json:"client"`
	User        string    `json:"user"`
	AmountFen   int64     `json:"amount_fen"`
	Reason      string    `json:"reason"`
	CreatedAt   time.Time `json:"created_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	OutRefundNo string    `json:"out_refund_no"`
}

// ProposalExpiry is when proposal p, put at now to live for ttl, lapses:
// p.ExpiresAt when the caller stamped one after now and no later than
// now+ttl, else now+ttl. A caller that renders the proposal before it is
// stored (its refund.proposed webhook, written in the same step) stamps
// the expiry it renders, so that the stored proposal, and every answer
// read from it, says the same instant; the store's own, a moment later,
// would differ from it by a second now and then once cut to RFC 3339's
// seconds. An expiry the store keeps is never later than its own.
func ProposalExpiry(p *RefundProposal, now time.Time, ttl time.Duration) time.Time {
	if exp := now.Add(ttl); p.ExpiresAt.After(now) && !p.ExpiresAt.After(exp) {
		return p.ExpiresAt
	}
	return now.Add(ttl)
}

// ProposalEventKeyPrefix starts the outbox key of events enqueued with a
// refund proposal (ProposalEventKey). An order number never contains ':'
// (WeChat Pay's out_trade_no allows none), so no order's key looks like one.
const ProposalEventKeyPrefix = "refund:"

// ProposalEventKey is the outbox key (Event.Key) of the events enqueued with
// refund proposal refundID (RefundProposals.PutRefundProposal) and with its
// consumption or cancellation. In Redis their queue shares the proposal's
// hash tag, which is what lets the two be written in one atomic step; the
// order's own queue is on another tag.
func ProposalEventKey(refundID string) string { return ProposalEventKeyPrefix + refundID }

// KeyEvents returns copies of events, written with a record, keyed by that
// record's key (an order number, or a proposal's ProposalEventKey): an event
// may leave its Key empty or name that key, never another, since its queue
// is written in the record's atomic step. what names the record in the
// error. Both drivers use it for order and proposal writes.
func KeyEvents(events []Event, key, what string) ([]Event, error) {
	out := make([]Event, len(events))
	for i, e := range events {
		if e.Key != "" && e.Key != key {
			return nil, fmt.Errorf("event %s keyed %q cannot ride on %s", e.ID, e.Key, what)
		}
		e.Key = key
		out[i] = e
	}
	return out, nil
}

// ProposalState is what became of a refund proposal
// (RefundProposals.RefundProposalState).
type ProposalState string

// Proposal states.
const (
	// ProposalOpen: neither used nor cancelled. Before its ExpiresAt it can
	// still be confirmed or cancelled; after it, never.
	ProposalOpen ProposalState = "open"
	// ProposalUsed: ConsumeRefundProposal took it; the user's confirmation
	// was taken (its events were enqueued).
	ProposalUsed ProposalState = "used"
	// ProposalCancelled: CancelRefundProposal ended it; it never will be
	// used.
	ProposalCancelled ProposalState = "cancelled"
	// ProposalExpired: ExpireRefundProposal ended it, past its expiry as
	// the store judges it (see there); it never will be used, by a caller
	// whose clock is behind either.
	ProposalExpired ProposalState = "expired"
)

// RefundProposals keeps refund proposals with a TTL, single-use consumption and
// tombstones.
type RefundProposals interface {
	// PutRefundProposal stores p, live for ttl (ExpiresAt is set to
	// ProposalExpiry: now+ttl, or the caller's own earlier stamp; CreatedAt
	// to now when zero), and enqueues events in the same atomic
	// step, so a live proposal never lacks them (its audit record). Events
	// passed here are keyed by the proposal: their Key must be empty or
	// ProposalEventKey(p.RefundID). ErrExists if the id is taken (also by a
	// tombstone); then nothing is enqueued.
	PutRefundProposal(ctx context.Context, p *RefundProposal, ttl time.Duration, events ...Event) error
	// GetRefundProposal returns a live proposal; ErrGone for a tombstone,
	// ErrNotFound for an unknown id.
	GetRefundProposal(ctx context.Context, id string) (*RefundProposal, error)
	// RefundProposalState returns proposal id, live or a tombstone, and
	// what became of it: used, cancelled, or still open (its ExpiresAt then
	// says whether it can still be taken, judged by the caller, whose clock
	// may differ from the one that takes it). ErrGone cannot tell a used
	// proposal from an ended one; this can, for the reconciler that must
	// know whether a user's confirmation was taken. It checks no owner: the
	// caller holds the id from its own record (the order it reserved).
	// ErrNotFound for an unknown id, or a tombstone past TombstoneTTL.
	RefundProposalState(ctx context.Context, id string) (*RefundProposal, ProposalState, error)
	// ExpireRefundProposal ends proposal id if it is open and past its
	// expiry, in one atomic step against the proposal's consumption. The
	// embedded store judges expiry by its clock; the Redis store by its
	// server's, onto which each replica's Store carries its own, so that a
	// proposal lapses ttl after it was put whatever the replicas' clocks,
	// while ExpiresAt is the proposing replica's reading. A caller whose
	// clock finds ExpiresAt past ends it here before undoing anything for
	// it: after it, no caller can take it; a store that finds it not yet
	// lapsed leaves it open. It returns the proposal and what became of
	// it, as RefundProposalState does: ProposalExpired (ended now, or
	// before), ProposalUsed or ProposalCancelled (ended before; left as it
	// is), or ProposalOpen when it has not expired as the store judges it
	// (left as it is). It checks no owner, as RefundProposalState, and enqueues
	// nothing: an expiry is no answer of the user's. ErrNotFound for an
	// unknown id.
	ExpireRefundProposal(ctx context.Context, id string) (*RefundProposal, ProposalState, error)
	// ConsumeRefundProposal takes the proposal for confirmation: exactly one of
	// any number of concurrent callers gets it, the proposal becomes a tombstone.
	// ErrGone when used, cancelled or expired; ErrNotFound for an unknown id or
	// another user's proposal (which stays untouched). events are enqueued in
	// the same atomic step as the tombstone, on the proposal's queue, keyed as
	// for PutRefundProposal (empty or ProposalEventKey(id)): only the caller
	// that gets the proposal enqueues its events (ErrGone or ErrNotFound
	// enqueue nothing), so the record of a confirmation (its audit event)
	// exists exactly when the confirmation was taken.
	ConsumeRefundProposal(ctx context.Context, id, user string, events ...Event) (*RefundProposal, error)
	// CancelRefundProposal is ConsumeRefundProposal for the user's "no"; its
	// events (the refund.cancelled audit record) likewise ride the tombstone.
	CancelRefundProposal(ctx context.Context, id, user string, events ...Event) (*RefundProposal, error)
	// OpenRefundProposals returns client's user's proposals that can still
	// be confirmed (neither used nor cancelled, not expired), oldest first,
	// from an index of the user's proposals: one read for all of them, so
	// that the user's order list (SPEC 2.3: what a bot whose SDK drops the
	// paygate object learns of a proposal) costs no read per order. The
	// index is kept by PutRefundProposal; a proposal an earlier version
	// put is not listed (it can still be confirmed until it expires).
	OpenRefundProposals(ctx context.Context, client, user string) ([]*RefundProposal, error)
}

// Counters counts events per window (orders per user per day, rate limits).
type Counters interface {
	// IncrCounter adds one to key and returns the new value. The first increment
	// of a window starts a window of ttl; after it the count starts again at 1.
	IncrCounter(ctx context.Context, key string, ttl time.Duration) (int64, error)
	// DecrCounter gives back one count of key's current window, for an event
	// counted before it was tried that then did not happen (an order WeChat
	// Pay refused). It never takes the count below zero, never creates key,
	// and does nothing once the window is over. token names the give-back:
	// a second call with the same token in the window (a call re-sent after
	// a lost reply, or two callers giving back one count) takes nothing.
	DecrCounter(ctx context.Context, key, token string) error
	// AllowWindow admits one event of key when fewer than limit events were
	// admitted in the window that ends now (a sliding window: any window
	// of that length holds at most limit), and records it; a refused event
	// is not recorded, so a caller refused now is admitted once the oldest
	// admitted event is a window old. token names the event: a call re-sent
	// with the same token after a lost reply is admitted again, not twice.
	AllowWindow(ctx context.Context, key string, limit int, window time.Duration, token string) (bool, error)
}

// Leases divide recurring work among replicas sharing a store, such as the
// payment sweep's orders: a replica takes an order's lease before it asks
// WeChat Pay about it, so that between them each order is asked about once
// per sweep interval, not once per replica. The holder renews its own
// lease at its next pass; one that stops (it died) loses its leases when
// they run out, and another replica takes them.
type Leases interface {
	// TakeLeases takes, for holder, each of keys that no other holder has
	// live, until ttl from now, and extends those holder already has; a
	// lease another holder has live is left as it is. It reports, for each
	// key, whether holder has it now. One round trip for all keys (one
	// transaction on the embedded store; one pipeline on Redis, each key's
	// step atomic, the batch not). A call re-sent after a lost reply
	// answers as the first did: the holder has what it took.
	TakeLeases(ctx context.Context, holder string, keys []string, ttl time.Duration) ([]bool, error)
}

// Tallies keep running sums that every replica adds to, such as a
// conversation's LLM cost (accounting). An add is one atomic step in the
// backend: two replicas adding at once never lose either's amount, which a
// read and a write of the sum (Exchanges) would.
type Tallies interface {
	// AddTally adds delta to key's sum (zero when absent or expired) and
	// returns the new sum. The sum expires ttl after its last add, and
	// stops at int64's ends rather than wrap.
	AddTally(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)
	// AddTallies makes each add as AddTally does, in one write of the
	// backend (one transaction, one round trip), for a writer that keeps
	// many sums at once: an embedded store's every write waits for the disk.
	// Adds to one key add up. On an error none was made (embedded), or some
	// (Redis: each add is atomic, the batch is not).
	AddTallies(ctx context.Context, adds []TallyAdd, ttl time.Duration) error
	// TakeTally returns key's sum (zero when absent or expired) and removes
	// it in the same step: an add racing with it counts in the sum taken or
	// in the next one, never in both and never in neither.
	TakeTally(ctx context.Context, key string) (int64, error)
}

// TallyAdd is one add of Tallies.AddTallies.
type TallyAdd struct {
	Key   string
	Delta int64
}

// Exchanges parks opaque blobs, such as a payment tool exchange keyed by the
// client's tool-call ids (SPEC 3.7).
type Exchanges interface {
	// PutExchange stores data under key for ttl, replacing any previous value.
	PutExchange(ctx context.Context, key string, data []byte, ttl time.Duration) error
	// GetExchange returns the data, or ErrNotFound when absent or expired.
	GetExchange(ctx context.Context, key string) ([]byte, error)
}

// RefundRecordKeyPrefix starts the Exchanges key of an order's refund
// record (RefundRecordKey): the refund the payments service sent, or is
// about to send, to WeChat Pay for a refunding order.
const RefundRecordKeyPrefix = "refund-inflight:"

// RefundRecordKey is the Exchanges key of order orderNo's refund record. A
// driver keeps the record with its order (in Redis on the order's hash
// tag), so that RefundRecords can write it in one step with a check of the
// order; PutExchange and GetExchange write and read it as any exchange.
// Every record of an order is written with the same ttl: a driver that
// finds an order's record in two places (Redis: where an earlier version
// kept it) reads the one whose expiry is the later as the later written.
func RefundRecordKey(orderNo string) string { return RefundRecordKeyPrefix + orderNo }

// RefundRecords writes an order's refund record only while the order is at
// a version, so that a writer that read the order at that version and was
// paused since cannot replace the record of a refund made after it.
type RefundRecords interface {
	// PutRefundRecord stores data under RefundRecordKey(orderNo) for ttl, as
	// PutExchange does, in one step with a check that order orderNo is at
	// version. Nothing is written when it is at another version
	// (ErrConflict) or there is no such order (ErrNotFound).
	PutRefundRecord(ctx context.Context, orderNo string, version int64, data []byte, ttl time.Duration) error
}

// Secrets keeps process-generated secrets shared by all replicas.
type Secrets interface {
	// GetOrCreateSecret returns the secret called name, creating it with gen when
	// absent. When replicas race, the first writer wins and every caller gets the
	// winner's value.
	GetOrCreateSecret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error)
}

// Event is one message that must leave the process (a merchant webhook, an audit
// record to append), kept in a durable outbox until acknowledged.
type Event struct {
	ID   string `json:"id"`   // stable across retries: the webhook's "id"
	Kind string `json:"kind"` // e.g. "webhook", "audit"
	// Key orders delivery: events of one key leave one at a time, in enqueue
	// order. Usually the order number; empty means DefaultEventKey.
	Key       string    `json:"key"`
	Payload   []byte    `json:"payload"`
	Attempts  int       `json:"attempts"`
	NextAt    time.Time `json:"next_at"` // not handed out before; zero: at once
	CreatedAt time.Time `json:"created_at"`
	LastError string    `json:"last_error,omitempty"`
	// FailedAt is when RetryEvent last recorded a failure, one that raised
	// Attempts (set by the store).
	FailedAt time.Time `json:"failed_at,omitzero"`
}

// DefaultEventKey is the ordering key of events enqueued with an empty Key and
// no order.
const DefaultEventKey = "_"

// OutboxStats summarises the outbox for the admin API and metrics.
type OutboxStats struct {
	Pending     int       // events not yet acknowledged
	Keys        int       // ordering keys with pending events
	Oldest      time.Time // CreatedAt of the oldest pending event; zero if none
	LastError   string    // most recent failure among the pending heads
	LastErrorAt time.Time // FailedAt of that event
	// Heads are the first pending event of each key, oldest first. Past
	// MaxListLimit keys they are MaxListLimit of them, not the oldest
	// (Oldest is of all; the drivers keep different ones): a reader that
	// must see every head reads them with Outbox.OutboxHeads or
	// OutboxHeadsApart.
	Heads []Event
}

// Outbox is the durable queue of events. Events tied to an order are enqueued by
// Orders.CreateOrder/UpdateOrder in the same atomic step as the order write.
type Outbox interface {
	// EnqueueEvents adds events not tied to an order write. Each is appended to
	// its Key's queue; events of one key keep their order.
	EnqueueEvents(ctx context.Context, events ...Event) error
	// EnqueueEventsOnce appends events, then with, all of one Key (an
	// error otherwise), to that key's queue in one atomic step, unless an
	// event with the ID of one of events is pending there already: then it
	// appends nothing and returns those IDs. Copying an event from one key
	// to another with it (the one event, nothing with it) is idempotent by
	// id. A webhook resend queues what it sends with it, and its audit
	// record as with, which names exactly what was queued: never an event
	// queued without its record, nor a record of an event the resend did
	// not queue.
	EnqueueEventsOnce(ctx context.Context, events []Event, with ...Event) (pending []string, err error)
	// DueEvents returns at most limit events, at most the first pending event of
	// each key, whose NextAt is not after now, the longest due first. An event
	// stays pending (and is returned again) until AckEvent; the caller
	// serialises delivery. Given kinds, it returns heads of those kinds only,
	// and heads of other kinds neither count against limit nor hide the
	// wanted ones, however many of them are due before them: a consumer of
	// one kind is never crowded out by due events nothing here consumes.
	// It stops once the payloads it returns reach DueBytes (the first
	// event is returned whatever its size), so fewer than limit does not
	// say that no more are due.
	DueEvents(ctx context.Context, now time.Time, limit int, kinds ...string) ([]Event, error)
	// ClaimEvents is DueEvents for a consumer that runs beside others (one per
	// replica): it returns at most limit due events of kind kind, at most the
	// first pending event of each key, and leases each one it returns in the
	// atomic step that found it due (per event; a batch need not be one
	// step): its NextAt becomes now+lease, so neither DueEvents nor
	// ClaimEvents hands it out again, to anyone, before the lease runs out.
	// The claimer settles it with AckEvent or RetryEvent (whose NextAt
	// replaces the lease); a claimer that dies meanwhile loses only the lease,
	// and the event comes due again after it. Heads of other kinds are neither
	// returned nor touched. The events are returned as leased.
	//
	// now is the caller's clock, as DueEvents' and RetryEvent's nextAt are.
	// A store that replicas share compares the times one replica wrote
	// with those of another on one clock: the Redis driver carries now,
	// NextAt and the lease's end onto its server's clock (the offset of the
	// Store's clock to the server's), so a replica whose clock runs ahead by
	// more than the lease still finds an event another replica just leased
	// leased. NextAt as returned and stored stays on the caller's clock.
	ClaimEvents(ctx context.Context, kind string, now time.Time, lease time.Duration, limit int) ([]Event, error)
	// AckEvent removes a delivered event. Acknowledging an unknown id is not an
	// error (it was acknowledged before).
	AckEvent(ctx context.Context, key, id string) error
	// AckEventAt is AckEvent of the very event a caller read: it removes
	// the event queued on key under id only when its CreatedAt is
	// createdAt, and otherwise nothing. A copy of that event (the same id,
	// another CreatedAt) queued on key after it was removed stays queued,
	// where AckEvent would remove it, the id being all it compares. It is
	// not an error when nothing is removed.
	AckEventAt(ctx context.Context, key, id string, createdAt time.Time) error
	// RetryEvent reschedules a failed event: its Attempts, NextAt and LastError
	// are replaced, and FailedAt is stamped when attempts exceeds the stored
	// count (a new failure). A call that keeps the count, such as a claimer
	// giving its lease back on stop, keeps FailedAt: the operator's view
	// shows no failure that never was. ErrNotFound if it is no longer pending.
	RetryEvent(ctx context.Context, key, id string, nextAt time.Time, attempts int, lastErr string) error
	// RetryClaimedEvent is RetryEvent by the claimer of a lease: it writes
	// only while the event's NextAt is still leasedUntil, the NextAt its
	// claim (ClaimEvents) returned, compared in the same atomic step.
	// Claimed again since (the lease ran out under a stalled claimer),
	// retried, given back or moved: nothing is written, ErrConflict. A
	// stalled claimer's write replaced the new claimer's lease, and a
	// third replica claimed and sent the event while the new claimer's
	// send was still in flight. A call whose very write is there already
	// (re-sent after its reply was lost) is reported done. ErrNotFound if
	// it is no longer pending.
	RetryClaimedEvent(ctx context.Context, key, id string, leasedUntil, nextAt time.Time, attempts int, lastErr string) error
	// RescheduleEvent moves pending event id of key's queue from NextAt
	// from to NextAt to, its attempts, last error and FailedAt kept, only
	// while its NextAt is still from (compared in the same atomic step), and
	// reports whether it did. A claim since (its NextAt became the lease's
	// end), a retry, or another move leaves it as that made it: the caller
	// moves only what it read. A leased event (claimed, not yet acknowledged
	// or given back by RetryEvent) is never moved, whatever NextAt the
	// caller read: that is its lease's end, and moved, it was claimed and
	// sent again while its claimer still handled it. An event already at to
	// is reported moved (a call re-sent after its reply was lost finds its
	// own move). Not pending: false, no error. An operator's end of a
	// merchant's pause (webhook Relay.Resume) makes the events it held due
	// with it, and a claim of one meanwhile is not undone.
	RescheduleEvent(ctx context.Context, key, id string, from, to time.Time) (bool, error)
	// OutboxStats reports pending count, oldest event and last error.
	OutboxStats(ctx context.Context) (OutboxStats, error)
	// OutboxHeads returns the first pending event of every key that starts
	// with one of prefixes, oldest first, however many there are: unlike
	// OutboxStats.Heads, which stops at MaxListLimit, it is for a caller
	// that must see every key of a family (one order's queues, every dead
	// letter), whose prefix bounds the list.
	OutboxHeads(ctx context.Context, prefixes ...string) ([]Event, error)
	// OutboxHeadsApart returns the first pending event of every key that
	// starts with none of apart, oldest first, however many there are, and
	// counts the keys that start with one of apart without reading their
	// events. It is for a periodic reader of the backlog (the webhook
	// relay's gauges, every 15 s) that needs how many dead letters there
	// are, not what they hold: reading each, as OutboxStats and OutboxHeads
	// do, cost half a second at 30,000 of them. The count is of the keys the
	// store's index names; one emptied the instant before may still be
	// counted.
	OutboxHeadsApart(ctx context.Context, apart ...string) (heads []Event, keysApart int, err error)
	// OutboxStatsApart is OutboxStats of the keys that start with none of
	// apart; those that do are not read, and are counted (keysApart) as
	// OutboxHeadsApart counts them. It is for a reader that reads the keys
	// apart itself (the webhook admin view, its dead letters with
	// OutboxHeads): with OutboxStats, each was read twice.
	OutboxStatsApart(ctx context.Context, apart ...string) (st OutboxStats, keysApart int, err error)
}

// OneKey is Outbox.EnqueueEventsOnce's check that events, filled in (an
// empty Key made DefaultEventKey), are all of one key.
func OneKey(events []Event) error {
	for _, e := range events[min(1, len(events)):] {
		if e.Key != events[0].Key {
			return fmt.Errorf("enqueue events once: events of keys %q and %q; one atomic step takes one key", events[0].Key, e.Key)
		}
	}
	return nil
}

// Local is implemented by a store whose calls never wait on another
// process (the embedded bbolt file), so that no deadline is needed to keep
// a caller from hanging on it, and closing it under a write only fails the
// write: a turn reads it without a deadline, and shutdown never cuts it.
type Local interface{ Local() bool }

// Replicated is implemented by a store whose writes reach a primary before
// its replicas (Redis with store.redis.wait_replicas), which reports a
// money write applied there but not replicated in time as ErrUnavailable.
// A caller that then finds that write applied (WeChat Pay's retry of a
// notification answered FAIL finds the order paid) must not acknowledge
// it while a failover could still lose it: ConfirmOrder returns nil once
// what the store holds of order orderNo is on as many replicas as a money
// write must reach, and an error wrapping ErrUnavailable when it is not
// in time, as the write's own report was. A store that waits for no
// replica returns nil at once. ConfirmAudit is the same for the audit
// chain as the store holds it: the audit worker that finds an event's
// record in the chain (appended by a call reported failed, by this
// process or another) keeps its text and acknowledges the event only
// once it returns nil.
type Replicated interface {
	ConfirmOrder(ctx context.Context, orderNo string) error
	ConfirmAudit(ctx context.Context) error
}

// OfKind reports whether e is of one of kinds; every event is when kinds is
// empty (Outbox.DueEvents).
func OfKind(e Event, kinds []string) bool {
	return len(kinds) == 0 || slices.Contains(kinds, e.Kind)
}

// HasAnyPrefix reports whether key starts with one of prefixes
// (Outbox.OutboxHeads).
func HasAnyPrefix(key string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// AuditHead is the end of the audit chain: published so a cut from the end is
// caught. The empty chain has Seq 0 and Hash "".
type AuditHead struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// AuditRecord is one link of the chain. Body is the canonical JSON written (and
// hashed) by payments; the store does not interpret it.
type AuditRecord struct {
	Seq      uint64 `json:"seq"`
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
	Body     []byte `json:"body"`
	User     string `json:"user,omitempty"`
}

// CorruptAuditRecordError is ReadAudit's error for a stored record that
// does not decode as an AuditRecord: Seq is the place it is stored at.
type CorruptAuditRecordError struct {
	Seq uint64
	Err error
}

func (e *CorruptAuditRecordError) Error() string {
	return fmt.Sprintf("audit record %d does not decode: %v", e.Seq, e.Err)
}

func (e *CorruptAuditRecordError) Unwrap() error { return e.Err }

// AuditStrays is implemented by a store that can say where a record stored
// after the head lies. On Redis (one hash field per record) ReadAudit
// reads a place only when asked for it, so a record stored after the head
// with an empty place before it is not seen by reading on from the head;
// the embedded store's read seeks the next record stored, but neither it
// nor the record's seq (its own claim) says at which place.
// AuditStrayAfterHead returns, read at once with the head, the first place
// after the head that holds a value, 0 when none does: a value there was
// stored outside the chain's append.
type AuditStrays interface {
	AuditStrayAfterHead(ctx context.Context) (uint64, error)
}

// Audit keeps the append-only, hash-linked audit chain and, beside it, the
// conversation text that the chain covers only by hash, erasable per client
// and user: an OpenID is per app, so one string under two clients is two
// users, and erasing one must not touch the other's texts.
//
// Texts and erasure marks written by earlier versions are keyed by the user
// alone. An erasure of (client, user) also erases such a text when the
// chain record it belongs to names that client (AuditRecordClient), and
// when that record does not decode (edited by hand: verify names it), as
// its client cannot be told and an erasure the user asked for errs toward
// erasing, not toward keeping another client's text of the same id; such a
// mark keeps applying to every client of its user (AuditErasedAt,
// PutAuditText), as it did when it was set.
type Audit interface {
	// AuditHead returns the current head.
	AuditHead(ctx context.Context) (AuditHead, error)
	// AppendAudit appends rec only if rec.Seq == head.Seq+1 and rec.PrevHash ==
	// head.Hash; otherwise ErrConflict and the caller re-reads the head, rebuilds
	// the record and retries. The chain is therefore gap-free. It never writes
	// over a stored record: one already stored at rec.Seq (the head moved
	// back with the records after it left in place, by hand or from an older
	// copy) refuses the append with ErrExists, for good, and the record's
	// event waits in the outbox. That record may be the only trace of a money
	// action whose event was acknowledged long ago; `paygate audit verify`
	// names it.
	AppendAudit(ctx context.Context, rec AuditRecord) error
	// AppendAuditBatch appends recs in one atomic step, as AppendAudit
	// would one after another with nothing between them: recs[0] must
	// follow the head as AppendAudit's rec must (else ErrConflict), and
	// each later record the one before it (Seq+1, PrevHash its Hash; a
	// batch that breaks its own chain is refused with an error that is
	// neither ErrConflict nor ErrExists). A refusal appends no record of
	// the batch: ErrConflict, ErrExists (a record already stored at any
	// of its places) or any other error leaves the chain as it was, but
	// for ErrUnavailable, which may have appended the whole batch (never
	// part of it): a Redis write whose replica wait timed out, or whose
	// reply was lost (Replicated). An empty batch appends nothing and
	// returns nil. It is the audit
	// worker's append of what has queued up: one write (one bbolt
	// transaction, one Redis script) for the lot, not one per record.
	AppendAuditBatch(ctx context.Context, recs []AuditRecord) error
	// ReadAudit returns up to limit records from fromSeq on, in sequence order.
	// A stored record that does not decode (the file or the key edited by
	// hand) ends the read: the records before it are returned with a
	// *CorruptAuditRecordError naming its place, so a verification names it
	// as the first bad record rather than failing the whole page's read.
	ReadAudit(ctx context.Context, fromSeq uint64, limit int) ([]AuditRecord, error)
	// PutAuditText keeps the conversation text of record seq, said at said
	// by user of client, for ttl; ErrExists if seq's text belongs to another
	// user. A text said at or before the last EraseAuditText of (client,
	// user) (or an earlier version's erasure of user) is not kept and nil
	// is returned: the text waits in the outbox until its record is
	// appended, so an erasure that ran meanwhile would otherwise be undone.
	// said and the erasure's time come from two replicas' clocks; the
	// audit worker passes the earliest said may be on the eraser's.
	PutAuditText(ctx context.Context, seq uint64, client, user string, text []byte, said time.Time, ttl time.Duration) error
	// GetAuditText returns the text of record seq, or ErrNotFound when never
	// kept, erased or expired.
	GetAuditText(ctx context.Context, seq uint64) ([]byte, error)
	// EraseAuditText deletes every text of user under client (the chain is
	// untouched; the same user string under another client keeps its
	// texts) and reports how many were erased. It also remembers the time
	// of the erasure, without expiry, so texts said before it and written
	// later are refused (see PutAuditText). With an error, the count is of
	// the texts erased before it (none where the erasure is one
	// transaction): the audit worker records it in the chain.
	EraseAuditText(ctx context.Context, client, user string) (int, error)
	// AuditErasedAt returns the time of the last EraseAuditText of (client,
	// user), or of an earlier version's erasure of user if later, or the
	// zero time when neither happened.
	AuditErasedAt(ctx context.Context, client, user string) (time.Time, error)
}

// CheckAuditBatch is AppendAuditBatch's check, before the store is asked,
// that recs link up among themselves: each record after the first is the
// next place after the one before it and names its hash, and every record
// has a hash. Whether recs[0] follows the head is the store's to judge.
func CheckAuditBatch(recs []AuditRecord) error {
	for i, r := range recs {
		if r.Hash == "" {
			return fmt.Errorf("audit batch: record %d needs a hash", r.Seq)
		}
		if i == 0 {
			continue
		}
		if p := recs[i-1]; r.Seq != p.Seq+1 || r.PrevHash != p.Hash {
			return fmt.Errorf("audit batch: record %d (prev hash %q) does not follow record %d (hash %q) before it in the batch",
				r.Seq, r.PrevHash, p.Seq, p.Hash)
		}
	}
	return nil
}

// AuditRecordClient is the client a stored record's body names (its
// "client" field), "" when none or unreadable. The drivers use it only to
// tell the client of a text an earlier version indexed by user alone.
func AuditRecordClient(body []byte) string {
	var b struct {
		Client string `json:"client"`
	}
	if json.Unmarshal(body, &b) != nil {
		return ""
	}
	return b.Client
}

// AuditRecordTime is the time a stored record's body names (its "time"
// field: the turn's), zero when none or unreadable. The drivers use it to
// apply a shortened retention to texts kept under a longer one
// (AuditTextRetention), judged as verify judges them: by the record's time.
func AuditRecordTime(body []byte) time.Time {
	var b struct {
		Time time.Time `json:"time"`
	}
	if json.Unmarshal(body, &b) != nil {
		return time.Time{}
	}
	return b.Time
}

// AuditTextRetention is implemented by a store that applies the retention
// in force (audit.retain_text) to the texts it already keeps. A text's
// expiry is fixed when it is written, so without it a retention shortened
// between restarts (4320h to 720h, or to 0) left every text kept until the
// longer one ended.
type AuditTextRetention interface {
	// RetainAuditTexts deletes every kept text whose record's time is
	// retain or more before now (retain 0: every text), as its expiry
	// would, and brings the expiry of the others forward to their
	// record's time plus retain; no expiry is made later. It reports how
	// many texts it deleted. Texts are read whole once, when retain is
	// shorter than the retention the store recorded at its last call (or
	// none is recorded, the first call after an upgrade, and again by the
	// call after that one on Redis, where replicas share the texts), at
	// most once per process; other calls read only what was kept since
	// the last ones (the texts an earlier version's replica, or one with a
	// longer retention, wrote meanwhile), or nothing where no other
	// process writes texts (the embedded store).
	RetainAuditTexts(ctx context.Context, retain time.Duration) (int, error)
}

// Store is every role together, for wiring in cmd/ and for the drivers.
// Consumers should accept the narrowest role they use.
type Store interface {
	Orders
	UserStates
	Announcements
	Claims
	Notifications
	RefundProposals
	Counters
	Leases
	Tallies
	Exchanges
	RefundRecords
	Secrets
	Outbox
	Audit
	// Ping reports whether the backend answers (for /readyz); errors wrap
	// ErrUnavailable.
	Ping(ctx context.Context) error
	// Close releases the backend and stops background work. Calls after Close
	// fail with ErrUnavailable.
	Close() error
}
