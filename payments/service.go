package payments

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rivo/uniseg"

	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// Store is the part of store.Store that payments uses.
type Store interface {
	store.Orders
	store.Claims
	store.Notifications
	store.RefundProposals
	store.Counters  // rules: calls per minute, orders per day
	store.Leases    // the sweep's orders, divided among replicas (sweepLeases)
	store.Exchanges // the refund in flight of each refunding order
	// RefundRecords: the record of a refund a confirmation or the sweep
	// sends, written only while the order is at the version it read
	// (putInFlight).
	store.RefundRecords
	// UserStates: a user's most recently updated orders, among them one
	// paid within the dedupe window though made long before (openBefore).
	store.UserStates
}

// Backend is WeChat Pay as payments uses it; *wechatpay.Client implements it
// (against the real API or the simulator).
type Backend interface {
	Prepay(ctx context.Context, req wechatpay.PrepayRequest) (*wechatpay.PrepayResult, error)
	RequestPayment(ctx context.Context, appID, prepayID string) (*wechatpay.RequestPayment, error)
	QueryOrder(ctx context.Context, outTradeNo string) (*wechatpay.Transaction, error)
	CloseOrder(ctx context.Context, outTradeNo string) error
	CreateRefund(ctx context.Context, req wechatpay.RefundRequest) (*wechatpay.Refund, error)
	QueryRefund(ctx context.Context, outRefundNo string) (*wechatpay.Refund, error)
}

var _ Backend = (*wechatpay.Client)(nil)

// Errors of the Service. Store errors pass through wrapped (store.ErrUnavailable
// means fail closed).
var (
	ErrUserRequired = errors.New("payments need a known user")
	ErrPayMethod    = errors.New("unknown pay method")
	// ErrInProgress: another request is creating this purchase's order right
	// now; asking again shortly returns it.
	ErrInProgress = errors.New("order is being created")
	// ErrPayerPaying: asked for another pay method, or again past its
	// deadline, the purchase's open order is being paid right now (WeChat
	// Pay says USERPAYING): it is returned as it is, with no payment, and
	// no order of the other method (or in its place) is made.
	ErrPayerPaying = errors.New("the user is paying this order right now")
	// ErrPaymentUnavailable: WeChat Pay could not be reached or answered with a
	// temporary error. The order is kept in `creating` and the reconciler
	// resolves it; no second order is made.
	ErrPaymentUnavailable = errors.New("wechat pay unavailable")
	// ErrPrepayRejected: WeChat Pay refused the order for good; it is closed
	// (left creating for the reconciler when its close could not be
	// recorded).
	ErrPrepayRejected = errors.New("wechat pay refused the order")
	// errMovedOn joins ErrPrepayRejected when the refused order had been
	// moved on meanwhile by another caller (closed for a switch of pay
	// method): the refusal is of that order as it now stands.
	errMovedOn = errors.New("the order was moved on meanwhile")
	// ErrNotOwner: the order exists but belongs to someone else. Callers
	// should present it as not found.
	ErrNotOwner = errors.New("order belongs to another user")
	// ErrBadCursor: the order a user's list should continue after is not
	// one of that user's orders at that client. An unknown number and
	// someone else's order are the same error, so that a cursor tells
	// nothing about other users' orders.
	ErrBadCursor = errors.New("the cursor is not one of the user's orders")
)

// Defaults of Options.
const (
	DefaultDedupeWindow           = 10 * time.Minute
	DefaultOrderTTL               = 30 * time.Minute
	DefaultPrepayTimeout          = 15 * time.Second
	DefaultActiveQueryAfter       = 5 * time.Second
	DefaultActiveQueryDeadline    = 300 * time.Millisecond
	DefaultBackgroundQueryTimeout = 10 * time.Second
	DefaultSweepInterval          = 30 * time.Second
	DefaultCreatingGrace          = 30 * time.Second
	DefaultNotificationTTL        = 48 * time.Hour
	DefaultNotifyReadTimeout      = 30 * time.Second
	DefaultRefundConfirmTTL       = 15 * time.Minute
	// MaxRefundConfirmTTL is the longest RefundConfirmTTL: a proposal's
	// claim must outlive it (proposalClaimTTL), and the claim is kept well
	// inside store.TombstoneTTL (half of it, 3.5 days). A longer one let the
	// claim lapse while its proposal was open, and the same request then
	// made a second open proposal of the same amount, which the user could
	// confirm as well.
	MaxRefundConfirmTTL = 72 * time.Hour
	DefaultApprovalTTL  = 72 * time.Hour
)

// Options configures a Service. cmd/ maps config onto it.
type Options struct {
	Store   Store   // required
	Backend Backend // required
	// Notify verifies and decrypts notifications (wechatpay.Client.NotifyVerifier);
	// required for NotifyHandler.
	Notify  *wechatpay.NotifyVerifier
	Catalog *Catalog // required
	// MchID is the merchant notifications must name; AppID the default appid of
	// orders (a client's own app_id wins).
	MchID string
	AppID string
	// PayMethods, when set, gives the pay methods a client's model is
	// offered (payments.pay_methods, clients[].pay_methods), the first the
	// default; nil or empty: both. A manager's approval prepays a held
	// order of a method its client is no longer offered in the client's
	// first: nothing of it is at WeChat Pay yet, and prepaid as held, a
	// QR order of a merchant without Native Pay was refused (NO_AUTH),
	// closed as failed and paged for.
	PayMethods func(client string) []string

	// DedupeWindow is how long a purchase claim lives after it was last asked
	// for (payments.dedupe_window, default 10m). A purchase whose order is
	// still open when its claim lapses gets that order back all the same,
	// and one whose order was paid less than DedupeWindow ago gets it back
	// as paid (already_paid).
	DedupeWindow time.Duration
	// OrderTTL is how long an order awaits payment before it expires and is
	// closed (default 30m); sent to WeChat Pay as time_expire.
	OrderTTL time.Duration
	// PrepayTimeout bounds the prepay call of CreateOrder, retries included
	// (default 15s).
	PrepayTimeout time.Duration
	// ActiveQueryAfter: a pending order younger than this is not queried
	// actively (default 5s), nor, by an order read (not the user's message),
	// is one queried actively less than this ago, by this replica or, when
	// the store is shared, another (reconcile.go: noteQueried,
	// askedElsewhere). ActiveQueryDeadline bounds how long a turn waits
	// for those queries (default 300ms); a query still running past it goes on
	// in the background for up to BackgroundQueryTimeout (default 10s) and its
	// answer lands for the next turn.
	ActiveQueryAfter       time.Duration
	ActiveQueryDeadline    time.Duration
	BackgroundQueryTimeout time.Duration
	// SweepInterval is the background sweep's period (default 30s);
	// with a shared store (not SoleWriter) it is also how long a replica's
	// sweep holds each pending order (or late refund) it reconciles, so
	// that between the replicas each is swept once per interval
	// (sweepLeases); never less than twice BackgroundQueryTimeout, so a
	// lease outlasts the query it is taken for (sweepLease).
	// CreatingGrace how old a `creating` order must be before the sweep resolves
	// it (default 30s), so it never races a CreateOrder in flight.
	SweepInterval time.Duration
	CreatingGrace time.Duration
	// SoleWriter: no other process writes the store (the embedded driver,
	// whose file one process holds locked). A purchase's claimed number
	// or a `creating` order that this process is not working on then
	// belongs to a process that died (SIGKILL, OOM) between its claim or
	// record and its prepay's outcome: it is resolved at once (the number
	// taken over, the order queried and prepaid again under its number)
	// rather than waited for as if its claimer were alive; so is a
	// `refunding` one left by a confirmation that died (the sweep asks
	// WeChat Pay about its refund at once, or records and sends it if
	// that confirmation took the user's word and recorded nothing,
	// sendTaken). With a shared
	// store (Redis replicas) another replica may be working on it, and the
	// waits and CreatingGrace apply (such a refund is sent past
	// takenGrace).
	SoleWriter bool
	// NotificationTTL is how long notification ids are remembered (default
	// 48h; WeChat retries for about 24h).
	NotificationTTL time.Duration
	// NotifyReadTimeout bounds reading a notification's whole body, from
	// the handler's start, wherever the route is mounted (default
	// DefaultNotifyReadTimeout). The route faces the internet, and the bots'
	// listener, which serves it unless server.notify_listen is set, bounds
	// only each wait for body bytes: a client trickling a declared body a
	// byte at a time held its connection and goroutine until the last byte.
	NotifyReadTimeout time.Duration

	// Rules are the limits checked before any WeChat Pay call (rules.go);
	// the zero value checks nothing.
	Rules Rules
	// RefundConfirmTTL is how long a refund proposal may be confirmed
	// (payments.refunds.confirm_ttl, default 15m).
	RefundConfirmTTL time.Duration

	// Events returns the events (audit records, merchant webhooks) to enqueue
	// atomically with a transition; nil enqueues none. It must be fast and must
	// not block: it runs inside the notify path.
	Events func(Transition) []store.Event
	// Committed is called after each committed transition (also creations),
	// e.g. to wake an outbox deliverer; nil: nothing. It must not block. A
	// write the store reported unavailable that applied all the same is
	// announced when a later read on this replica finds it (WeChat Pay's
	// retry, the sweep), once (unacked.go).
	Committed func(Transition)
	// ProposalEvents returns the events (audit records, the refund.proposed
	// webhook) to enqueue atomically with a write of refund proposal p,
	// keyed by the proposal (store.ProposalEventKey); nil enqueues none. o
	// is p's order as the step read it (nil for a cancel, which reads none).
	// For ProposalMade, p's ExpiresAt is this replica's now plus
	// RefundConfirmTTL (the store stamps its own as it writes). No order changes in
	// these writes, so there is no Transition; step says which write it is:
	// ProposalMade, the proposal itself (ctx carries the turn, TurnFrom; if
	// the proposal cannot be written with its events, it fails: no live
	// proposal lacks its record), or the user's answer, ProposalCancelled or
	// ProposalConfirmed, whose events ride the proposal's tombstone: they are
	// enqueued exactly when the answer ends the proposal, so a proposal
	// records at most one answer, and a confirmation that lost to a cancel
	// records none. It must be fast and must not block.
	ProposalEvents func(ctx context.Context, step ProposalStep, p store.RefundProposal, o *store.Order) []store.Event
	// Proposed is called after a refund proposal is recorded, to wake the
	// outbox consumers of the events it carried. ctx carries the turn
	// (TurnFrom). nil: nothing. It must not block.
	Proposed func(ctx context.Context, p store.RefundProposal)

	Registerer prometheus.Registerer // nil: a private registry
	Logger     *slog.Logger          // nil: discard
	Now        func() time.Time      // nil: time.Now
	// NewOrderNo makes out_trade_no values (nil: NewOrderNo).
	NewOrderNo func(now time.Time) string
}

// ProposalStep is a write of a refund proposal that Options.ProposalEvents
// adds events to.
type ProposalStep string

// Proposal steps.
const (
	// ProposalMade: the model proposed the refund (ProposeRefund).
	ProposalMade ProposalStep = "proposed"
	// ProposalCancelled: the user said no (CancelRefund); nothing went to
	// WeChat Pay.
	ProposalCancelled ProposalStep = "cancelled"
	// ProposalConfirmed: the user's confirmation was taken for the refund
	// (ConfirmRefund, once the order is reserved and before WeChat Pay is
	// asked).
	ProposalConfirmed ProposalStep = "confirmed"
)

// CauseRefundAborted is the Transition.Cause of a refund reservation undone
// before the refund went to WeChat Pay (the user cancelled as the
// confirmation ran, or the refund could not be recorded, or the sweep found
// the reservation of a confirmation that stopped before taking the user's
// word, whose proposal then ended unconfirmed): the audit names it
// refund.aborted, and the merchant hears nothing, as of the reservation.
const CauseRefundAborted = "refund_aborted"

// Transition is one committed order change, handed to Options.Events.
type Transition struct {
	Before         store.Order // zero for a creation
	After          store.Order
	Cause          string // create, prepay, notification, query, sweep, close, expire, orphan, superseded
	NotificationID string
	// Turn is the conversation turn whose payment call caused the change (see
	// WithTurn); nil for notifications, sweeps and admin actions.
	Turn *Turn
	// Actor is the operator whose admin request caused the change (see
	// WithActor); nil otherwise.
	Actor *Actor
	// Refund is the user-confirmed refund behind a refund transition (to
	// refunding, and from it to refunded, partially_refunded or back); nil
	// otherwise.
	Refund *store.RefundProposal
}

// Service creates, queries, closes and reconciles orders, and serves the notify
// route. It is safe for concurrent use; Close stops its background work.
type Service struct {
	opts    Options
	store   Store
	backend Backend
	catalog *Catalog
	log     *slog.Logger
	now     func() time.Time
	newNo   func(time.Time) string
	m       *metrics
	mm      *moneyMetrics
	notify  http.Handler
	// sweepPage is how many orders a sweep reads at a time (tests make it
	// small to page through ties).
	sweepPage int
	// holder names this Service's sweep leases (sweepLeases): random, so
	// a restarted replica is another holder.
	holder string
	// switchWait is how long a switch of pay method that finds another
	// caller counting the same switch waits for its count
	// (countReplacement) before it answers ErrInProgress.
	switchWait time.Duration
	// refundCall bounds a confirmation's refund, from its reservation to
	// WeChat Pay's answer (refundCallTimeout; tests make it short).
	refundCall time.Duration

	mu       sync.Mutex
	inflight map[string]*refresh // background queries by order number
	// queried is when this replica last queried each order actively, by
	// order number (noteQueried); queriedPrune the size at which it is next
	// pruned.
	queried      map[string]time.Time
	queriedPrune int
	// limitedAt is when WeChat Pay last answered a query of this
	// replica's FREQUENCY_LIMITED (or 429) through its retries
	// (noteLimited): active queries are held back for ActiveQueryAfter
	// from then (queriesHeld).
	limitedAt time.Time
	// sweepFrom is, by status, the order at which the sweep's last pass
	// ended when WeChat Pay said it was rate limited: the next pass starts
	// past it and comes round to it last (sweepResumable).
	sweepFrom map[store.OrderStatus]store.OrderFilter
	// sweepWarns paces the sweep's warning of an order not reconciled,
	// by kind of failure (sweepFailed).
	sweepWarns logging.Paced
	// working counts, by order number, this process's calls that hold a
	// purchase's fresh claim or record or prepay an order (claimed,
	// creating), or confirm a refund of it (refunding): with
	// Options.SoleWriter, a number no call here works on was left by a
	// process that died (orphaned).
	working map[string]int
	// adopted are the order numbers the sweep holds as its own (adopt),
	// each closed when it lets go: a refund confirmation waits for it
	// (workRefund) rather than send beside it.
	adopted map[string]chan struct{}
	// unacked are this replica's order writes that the store reported
	// unavailable and that may have applied, by order number (unacked.go).
	unacked map[string]unackedWrite
	// maxUnacked bounds len(unacked) (the constant; a test's smaller one).
	maxUnacked int
	stop       chan struct{}
	stopOnce   sync.Once
	wg         sync.WaitGroup
}

// New validates opts, registers the metrics and returns a Service.
func New(opts Options) (*Service, error) {
	if opts.Store == nil || opts.Backend == nil || opts.Catalog == nil {
		return nil, errors.New("payments: Store, Backend and Catalog are required")
	}
	if opts.MchID == "" {
		return nil, errors.New("payments: MchID is required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.DedupeWindow, DefaultDedupeWindow)
	def(&opts.OrderTTL, DefaultOrderTTL)
	def(&opts.PrepayTimeout, DefaultPrepayTimeout)
	def(&opts.ActiveQueryAfter, DefaultActiveQueryAfter)
	def(&opts.ActiveQueryDeadline, DefaultActiveQueryDeadline)
	def(&opts.BackgroundQueryTimeout, DefaultBackgroundQueryTimeout)
	def(&opts.SweepInterval, DefaultSweepInterval)
	def(&opts.CreatingGrace, DefaultCreatingGrace)
	def(&opts.NotificationTTL, DefaultNotificationTTL)
	def(&opts.NotifyReadTimeout, DefaultNotifyReadTimeout)
	def(&opts.RefundConfirmTTL, DefaultRefundConfirmTTL)
	if opts.RefundConfirmTTL > MaxRefundConfirmTTL {
		return nil, fmt.Errorf("payments: refund confirm TTL %v is above %v: a proposal must not outlive the claim that keeps it the only open one of its amount", opts.RefundConfirmTTL, MaxRefundConfirmTTL)
	}
	def(&opts.Rules.ApprovalTTL, DefaultApprovalTTL)
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	mm, err := newMoneyMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Service{
		opts: opts, store: opts.Store, backend: opts.Backend, catalog: opts.Catalog,
		log: opts.Logger, now: opts.Now, newNo: opts.NewOrderNo, m: m, mm: mm,
		inflight: map[string]*refresh{}, queried: map[string]time.Time{}, queriedPrune: minQueriedPrune, working: map[string]int{}, adopted: map[string]chan struct{}{}, unacked: map[string]unackedWrite{}, maxUnacked: maxUnacked, stop: make(chan struct{}), sweepPage: defaultSweepPage, sweepWarns: logging.Paced{Every: sweepWarnEvery},
		switchWait: defaultSwitchWait, refundCall: refundCallTimeout, holder: rand.Text(),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.newNo == nil {
		s.newNo = NewOrderNo
	}
	s.notify = newNotifyHandler(s)
	return s, nil
}

// work marks order number no as worked on by this process until the
// returned done is called.
func (s *Service) work(no string) (done func()) {
	s.mu.Lock()
	s.working[no]++
	s.mu.Unlock()
	return s.release(no, nil)
}

// release returns the done of a mark work, adopt or workRefund made on
// order number no (its working count already raised, under s.mu): it
// lowers the count once however often it is called and, for the sweep's
// adoption (let not nil), lets a waiting confirmation go.
func (s *Service) release(no string, let chan struct{}) (done func()) {
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			if s.working[no]--; s.working[no] <= 0 {
				delete(s.working, no)
			}
			if let != nil {
				delete(s.adopted, no)
				close(let)
			}
			s.mu.Unlock()
		})
	}
}

// orphaned reports whether order number no (a claimed number not yet
// recorded, a `creating` or `refunding` order) was left by a process that died: the
// store has no other writer (Options.SoleWriter) and no call of this
// process works on it.
func (s *Service) orphaned(no string) bool {
	if !s.opts.SoleWriter {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.working[no] == 0
}

// adopt marks order number no as worked on by this process, as work does,
// if it is orphaned, in one step: a call that then reads the order knows no
// other call of this process is changing it meanwhile, nor was when it
// read, and a refund confirmation that comes meanwhile waits until done
// (workRefund). ok is false (done nil) when it is not orphaned.
func (s *Service) adopt(no string) (done func(), ok bool) {
	if !s.opts.SoleWriter {
		return nil, false
	}
	s.mu.Lock()
	if s.working[no] != 0 {
		s.mu.Unlock()
		return nil, false
	}
	s.working[no]++
	let := make(chan struct{})
	s.adopted[no] = let
	s.mu.Unlock()
	return s.release(no, let), true
}

// workRefund is work for a refund confirmation of order number no: when
// the sweep holds the order as its own (adopt), it first waits until the
// sweep lets go, or ctx ends. A confirmation that went on beside it (a tap
// under the reservation a stopped one left) sent its refund while the
// sweep, which had read the refund record, asked WeChat Pay about it,
// found it unknown (the tap's call on its way) and sent it too: one
// refused and the other taken, the sweep put back to paid an order whose
// refund went through, or the tap told the user it failed.
func (s *Service) workRefund(ctx context.Context, no string) (done func(), err error) {
	logged := false
	for {
		s.mu.Lock()
		let, held := s.adopted[no]
		if !held {
			s.working[no]++
			s.mu.Unlock()
			return s.release(no, nil), nil
		}
		s.mu.Unlock()
		if !logged {
			logged = true
			s.log.InfoContext(ctx, "refund confirmation waits for the sweep's reconciliation of its order", "order_no", no)
		}
		select {
		case <-let:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for the sweep's reconciliation of order %s: %w", no, ctx.Err())
		}
	}
}

// Catalog is the Service's price list.
func (s *Service) Catalog() *Catalog { return s.catalog }

// Close stops background queries and waits for them. The sweeper stops with
// the context given to RunSweeper.
func (s *Service) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	s.wg.Wait()
	return nil
}

// CreateRequest is one create_order call. Everything in it comes from paygate's
// own records (client key, verified user, catalog SKU), never a price.
type CreateRequest struct {
	Client    string // client key name
	AppID     string // the client's app_id; empty: Options.AppID
	User      string // the end user's OpenID
	Session   string
	SKU       string
	Quantity  int    // 0 means 1
	PayMethod string // "jsapi" (default) or "native"
	// KeepPayMethod: no pay method was asked for (create_order without
	// pay_method, or null): the purchase's open order keeps its own
	// rather than being switched to PayMethod, and a new order is of
	// PayMethod. A model asking again for a purchase whose QR code the
	// user has usually leaves pay_method out; read as jsapi, the QR
	// order was closed and a jsapi order opened in its place.
	KeepPayMethod bool
	// PayMethods are the pay methods the caller is offered
	// (Caller.PayMethods); empty: both. With KeepPayMethod, an order of
	// the purchase held for a manager in another method takes PayMethod:
	// nothing of it is at WeChat Pay yet, and kept, its approval prepaid
	// a method the merchant had taken off (NO_AUTH without Native Pay:
	// closed as failed, the operator paged). An order open at WeChat Pay
	// keeps its method.
	PayMethods []string
	// CountCall, when set, is called before a new order of the purchase
	// is made (createFresh, not a switch's replacement), and its error
	// refuses it as the daily limit's does: a create_order taken for a
	// repeat of its purchase's order (RepeatsPurchase), so not counted
	// toward max_payment_calls_per_minute, counts after all when that
	// order expired or was closed before CreateOrder read it again. Its
	// renewal in its last minute (three WeChat Pay calls) is counted too,
	// once; refused (ErrRateLimited), the order is handed back as it
	// stands (NoRenew).
	CountCall func(context.Context) error
	// NoRenew hands the purchase's open order back as it stands within
	// its last minute too, rather than renewing it (a query, a close and
	// a prepay at WeChat Pay): the caller is past
	// max_payment_calls_per_minute (RenewsPurchase), and the order is
	// still payable for its last seconds, as at the day's order limit.
	NoRenew bool
}

// offers reports whether method is one of the pay methods req's caller is
// offered (PayMethods; empty: both).
func (req CreateRequest) offers(method string) bool {
	return len(req.PayMethods) == 0 || slices.Contains(req.PayMethods, method)
}

// CreateResult is the order of the purchase and what the payer needs. When
// CreateOrder returns no error and Order.Status is awaiting_payment, Payment
// (jsapi) or CodeURL (native) is set; with an error (ErrPayerPaying,
// ErrInProgress, ErrPaymentUnavailable) the open order comes as it stands,
// with neither.
// A paid status (or refunding, partially_refunded: money still kept) means the
// user already paid within the window.
type CreateResult struct {
	Order    *store.Order
	Payment  *wechatpay.RequestPayment
	CodeURL  string
	Existing bool // the purchase's live order, returned again
	// Closed, with no Order, is the purchase's open order this call closed
	// at WeChat Pay for a switch of pay method before the store failed (at
	// the close's record, or before the replacement was made): no order of
	// the purchase can be paid, and payment parameters handed for the
	// closed one are stale.
	Closed string
}

// CreateOrder creates the purchase's order idempotently (SPEC 4): claim the
// purchase, commit the order as `creating`, prepay at WeChat Pay, commit
// `awaiting_payment`. A repeated call within the dedupe window returns the same
// order, and so does one after it while that order is still open (creating,
// awaiting payment or held for approval: it could still be paid, so a second
// order would be a second charge); once it is closed, expired, rejected or
// refunded in full a new generation gets a new number.
func (s *Service) CreateOrder(ctx context.Context, req CreateRequest) (res *CreateResult, err error) {
	// switched is the order a switch of pay method closed here; a call
	// that then fails with no order names it (CreateResult.Closed).
	var switched string
	defer func() {
		if switched != "" && err != nil && (res == nil || res.Order == nil) {
			res = &CreateResult{Closed: switched}
		}
	}()
	if req.Client == "" || req.User == "" {
		return nil, ErrUserRequired
	}
	if req.Quantity == 0 {
		req.Quantity = 1
	}
	switch req.PayMethod {
	case "":
		req.PayMethod = string(wechatpay.MethodJSAPI)
	case string(wechatpay.MethodJSAPI), string(wechatpay.MethodNative):
	default:
		return nil, fmt.Errorf("%w: %q", ErrPayMethod, req.PayMethod)
	}
	if req.AppID == "" {
		req.AppID = s.opts.AppID
	}
	item, amount, err := s.catalog.Price(req.SKU, req.Quantity)
	if err != nil {
		return nil, err
	}
	key := ClaimKey(req.Client, req.User, req.SKU, req.Quantity)
	// The numbers this call claims fresh are worked on here until it
	// returns (orphaned): it records and prepays them before it does.
	var dones []func()
	defer func() {
		for _, d := range dones {
			d()
		}
	}()
	claimed := func(no string) string {
		dones = append(dones, s.work(no))
		return no
	}
	claim, created, err := s.store.ClaimPurchase(ctx, key, claimed(s.newNo(s.now())), s.opts.DedupeWindow)
	if err != nil {
		return nil, fmt.Errorf("claim purchase: %w", err)
	}
	// approved: the order closed for a switch of pay method had been
	// approved by a manager at the amount the purchase costs now (its
	// ApprovedFen); the same purchase's next order is not held for a
	// second approval.
	approved := false
	// replFrom is the order a switch of pay method closed (""; none): the
	// next order replaces it, and was counted against the daily limit
	// before that close (repl: that count, given back if WeChat Pay
	// refuses the replacement). Only its claim's next generation is its
	// replacement: another caller's switch of the same order may have made
	// one meanwhile, which the purchase then moved on to; an order made
	// after that is a new one, counted as such.
	var replFrom string
	var repl dayCount
	for round := 0; round < 6; round++ {
		if created {
			// A new generation: the claim lapsed (it lives dedupe_window
			// from the last ask, an order order_ttl or approval_ttl) or its
			// order settled. An order of the purchase still open must be
			// returned, not joined by a second payable one, and one paid
			// within dedupe_window answered as paid (SPEC 4: a user who has
			// just paid gets already_paid, also one who took longer than
			// the window to pay): bind the claim to it. Only this caller
			// holds the new generation, so no other can start an order
			// meanwhile.
			open, last, err := s.boundOrderOf(ctx, req, claim.OrderNo)
			if err != nil {
				s.releaseClaim(ctx, key, claim)
				return nil, err
			}
			if open == nil && replFrom == "" && last != nil {
				// The purchase's last order may be one a switch of pay
				// method closed and a process that died (or a store that
				// failed) left without its replacement: the next order is
				// that replacement, as it would have been.
				if counted, ok, err := s.cutSwitch(ctx, req, last); err != nil {
					s.releaseClaim(ctx, key, claim)
					return nil, err
				} else if ok {
					approved = last.ApprovedFen != 0 && last.ApprovedFen == amount
					repl, replFrom = counted, last.OrderNo
					if req.KeepPayMethod {
						// No method named: the one the cut switch or
						// renewal was making it in (a renewal keeps its
						// order's), not the caller's first.
						if m := s.switchedTo(ctx, last.OrderNo); m != "" && req.offers(m) {
							req.PayMethod = m
						}
					}
				}
			}
			if open != nil {
				s.log.InfoContext(ctx, "purchase asked again past its claim; its open or just paid order returned", "order_no", open.OrderNo, "status", open.Status)
				if claim, _, err = s.store.AdvanceClaim(ctx, key, claim.Generation, open.OrderNo, s.opts.DedupeWindow); err != nil {
					return nil, fmt.Errorf("bind claim to order %s: %w", open.OrderNo, err)
				}
				created = false
				continue
			}
			res, next, err := s.createFresh(ctx, req, item, amount, key, claim, approved, replFrom != "", repl)
			if next == nil {
				return res, err
			}
			claim, created = *next, false
			continue
		}
		var o *store.Order
		var err error
		if released(claim) {
			err = store.ErrNotFound // a refused purchase's claim: judge afresh
		} else {
			var moved *movedClaim
			o, moved, err = s.awaitClaimed(ctx, key, claim, claimed)
			if moved != nil {
				claim, created = moved.claim, moved.created
				continue
			}
		}
		if errors.Is(err, store.ErrNotFound) {
			// The claimer never recorded its order (it died, or stalls): take
			// over. A stalled claimer may still record and prepay its number
			// after the wait above, so the number is first recorded as
			// abandoned; the store's create is atomic with the number's
			// absence, so either that claimer's record or this one exists,
			// never both.
			if !released(claim) {
				if err := s.abandon(ctx, req, item, amount, key, claim); errors.Is(err, store.ErrExists) {
					continue // recorded meanwhile: read it again
				} else if err != nil {
					return nil, err
				}
			}
			claim, created, err = s.store.AdvanceClaim(ctx, key, claim.Generation, claimed(s.newNo(s.now())), s.opts.DedupeWindow)
			if err != nil {
				return nil, fmt.Errorf("advance claim: %w", err)
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if o.Status == store.StatusCreating {
			if s.now().Sub(creatingSince(o)) < s.opts.CreatingGrace && !s.orphaned(o.OrderNo) {
				return &CreateResult{Order: o, Existing: true}, ErrInProgress
			}
			if o, err = s.resolveCreating(ctx, o, "query"); errors.Is(err, errMovedOn) {
				// Another ask moved the order on while this one's prepay
				// was on its way (closed it for a switch of pay method,
				// then made the replacement): judged afresh as it now
				// stands, not answered as a refused purchase.
				continue
			} else if err != nil {
				return &CreateResult{Order: o, Existing: true}, fmt.Errorf("%w: %w", ErrPaymentUnavailable, err)
			}
		}
		if o.Status == store.StatusAwaitingPayment && s.expired(o) {
			// Asked first, as the sweep does: a payer entering their
			// password (USERPAYING) keeps the order, which is returned;
			// closing it under them opened a second one.
			if o, err = s.reconcile(ctx, o, "expire"); err != nil {
				return &CreateResult{Order: o, Existing: true}, fmt.Errorf("%w: %w", ErrPaymentUnavailable, err)
			}
			if o.Status == store.StatusAwaitingPayment && s.expired(o) {
				// Kept open for its payer (USERPAYING), and past its
				// time_expire: no payment to hand (PayableParams gives
				// none either). Re-signed, it went to the bot as a new
				// order_created, and the payment sheet opened again over
				// the one in progress for an order WeChat Pay no longer
				// takes a new payment of.
				return &CreateResult{Order: o, Existing: true}, ErrPayerPaying
			}
		}
		if o.Status == store.StatusApprovalRequired && s.heldExpired(o) {
			if o, err = s.expireHeld(ctx, o.OrderNo); err != nil {
				return nil, err
			}
		}
		switch o.Status {
		case store.StatusAwaitingPayment:
			// renew: the same purchase asked again within its order's last
			// minute (lastMinute). Handed back, its payment parameters died
			// within seconds (WeChat Pay gives a payer at most until
			// time_expire), so it is replaced as a switch of pay method
			// replaces it, in its own method: asked first (USERPAYING:
			// handed back, ErrPayerPaying), counted, closed at WeChat Pay
			// (paid meanwhile: answered as paid), and the next generation
			// opened with a full window.
			renew := !req.NoRenew && s.lastMinute(o) && (o.PayMethod == req.PayMethod || req.KeepPayMethod)
			if renew && req.CountCall != nil {
				// Judged a repeat (not counted) before the order entered
				// its last minute: the renewal reaches WeChat Pay, so it
				// counts now, once, and past the limit the order is
				// handed back as it stands (NoRenew).
				count := req.CountCall
				req.CountCall = nil
				if err := count(ctx); errors.Is(err, ErrRateLimited) {
					req.NoRenew, renew = true, false
					req.CountCall = count // a new order made after all is refused
				} else if err != nil {
					return nil, err
				}
			}
			if renew && req.KeepPayMethod && req.offers(o.PayMethod) {
				req.PayMethod = o.PayMethod
			}
			if o.PayMethod != req.PayMethod && !req.KeepPayMethod || renew {
				cause := "switch_method"
				if renew {
					cause = "renew"
				}
				// The same purchase, to be paid another way (a QR code on
				// a desktop after a JSAPI order): WeChat takes no second
				// trade type under one number, so the open order is closed
				// there first and the next generation opens one of this
				// method. Paid meanwhile (ORDERPAID), it is read again and
				// answered as paid: never two payable orders of one
				// purchase.
				// The replacement is a new order at WeChat Pay, counted
				// against the daily limit before the open one is closed:
				// refused there, the user keeps the order they can pay
				// (closing first left them none, and a manager's approval
				// went with it); not counted, switching back and forth
				// opened any number of orders.
				// The payer may be entering their password for the open
				// order right now (USERPAYING): never closed under them,
				// as the sweep never does; the caller is told so
				// (ErrPayerPaying), with the order and no new payment. A
				// query that fails leaves the switch to the close.
				// Paid there already (its notification lost or on its
				// way): recorded as WeChat Pay says and answered as paid
				// in the next round. Counted first, a day's orders used
				// up handed a renewal the paid order's payment again, and
				// a switch "daily limit reached", to a user who had paid.
				tx, qerr := s.backend.QueryOrder(ctx, o.OrderNo)
				if qerr == nil && tx.TradeState == wechatpay.TradeUserPaying {
					s.m.reconcile.WithLabelValues(cause, "user_paying").Inc()
					return &CreateResult{Order: o, Existing: true}, ErrPayerPaying
				}
				if qerr == nil && (tx.TradeState == wechatpay.TradeSuccess || tx.TradeState == wechatpay.TradeRefund) {
					if _, err := s.settle(ctx, o, tx, cause); err != nil {
						return &CreateResult{Order: o, Existing: true}, fmt.Errorf("%w: %w", ErrPaymentUnavailable, err)
					}
					continue
				}
				counted, err := s.countReplacement(ctx, req, o)
				if errors.Is(err, ErrInProgress) {
					// Another request's switch of it is still counting:
					// the open order, as it is, and "in progress", so the
					// bot asks again rather than hearing of a failure.
					return &CreateResult{Order: o, Existing: true}, err
				}
				if renew && errors.Is(err, ErrDailyLimit) {
					// No next order today: the order still payable for
					// its last seconds is better than none.
					return s.payable(ctx, o, true)
				}
				if err != nil {
					return nil, err // the open order stays as it is
				}
				s.markSwitchedTo(ctx, o.OrderNo, req.PayMethod)
				closed, err := s.closeAt(ctx, o, store.StatusClosed, cause)
				if errors.Is(err, errCloseUnrecorded) {
					// Closed at WeChat Pay, still open here until the
					// sweep records it: it can no longer be paid.
					return &CreateResult{Closed: o.OrderNo}, fmt.Errorf("%w: %w", ErrPaymentUnavailable, err)
				}
				if err != nil {
					return &CreateResult{Order: o, Existing: true}, fmt.Errorf("%w: %w", ErrPaymentUnavailable, err)
				}
				if !Pending(closed.Status) && closed.Status != store.StatusClosed && closed.Status != store.StatusExpired {
					// Paid meanwhile: no replacement will be made, so its
					// count goes back (the next round answers the payment).
					// Still open (a close answered ORDERPAID while the
					// payer was entering their password: the next round
					// answers ErrPayerPaying), the mark keeps the count;
					// one the query does not bear out at all is an error
					// of closeAt, above.
					s.giveBack(ctx, counted)
				}
				if closed.Status == store.StatusClosed || closed.Status == store.StatusExpired {
					switched = o.OrderNo
				}
				// The next order carries a manager's approval only if one
				// was recorded on this order (ApprovedFen), at the amount
				// the purchase costs now: one priced anew (a changed price
				// list, another replica's) is held again, since no manager
				// saw that amount. It is never inferred from the threshold:
				// an order opened while approval was off, or under a higher
				// threshold (a config change, another replica mid-deploy),
				// was never approved. Orders approved before ApprovedFen
				// was recorded carry none and are held again: the safe side.
				approved = o.ApprovedFen != 0 && o.ApprovedFen == amount
				repl, replFrom = counted, o.OrderNo
				continue
			}
			return s.payable(ctx, o, true)
		case store.StatusApprovalRequired:
			if o.PayMethod != req.PayMethod && (!req.KeepPayMethod || !req.offers(o.PayMethod)) {
				// Nothing exists at WeChat Pay yet: the held order is paid
				// the new way once approved.
				got, _, err := s.update(ctx, o.OrderNo, "switch_method", "", func(c *store.Order) (*store.Order, error) {
					if c.Status != store.StatusApprovalRequired || c.PayMethod == req.PayMethod {
						return nil, nil
					}
					c.PayMethod = req.PayMethod
					return c, nil
				})
				if err != nil {
					return nil, fmt.Errorf("switch the held order's pay method: %w", err)
				}
				if got.Status != store.StatusApprovalRequired {
					// A manager decided meanwhile (approved: opened in
					// the old method; rejected; expired): judged afresh
					// as it now stands, as any order of the purchase.
					continue
				}
				o = got
			}
			return &CreateResult{Order: o, Existing: true}, nil
		case store.StatusClosed, store.StatusExpired, store.StatusRejected, store.StatusRefunded:
			// Settled with no money kept: a refunded purchase is bought
			// again like a closed one, never answered "already paid".
			if replFrom != "" && o.OrderNo != replFrom {
				// Not the order this call's switch closed (another
				// caller's replacement of it, since closed): the next
				// order is a new purchase, counted and judged afresh.
				repl, replFrom, approved = dayCount{}, "", false
			}
			claim, created, err = s.store.AdvanceClaim(ctx, key, claim.Generation, claimed(s.newNo(s.now())), s.opts.DedupeWindow)
			if err != nil {
				return nil, fmt.Errorf("advance claim: %w", err)
			}
			continue
		case store.StatusCreating:
			return &CreateResult{Order: o, Existing: true}, ErrInProgress
		default: // paid, refunding, partially_refunded, needs_review
			// A switch of pay method counted a replacement that will
			// never be made now (its close failed, then the user paid).
			s.giveBackSwitch(ctx, o)
			return &CreateResult{Order: o, Existing: true}, nil
		}
	}
	return nil, fmt.Errorf("%w: the purchase's claim keeps moving", ErrInProgress)
}

// movedClaim is the claim a waiter found its purchase bound to instead of
// the number it waited for; created: the waiter itself holds it, new.
type movedClaim struct {
	claim   store.Claim
	created bool
}

// awaitClaimed reads the claimed order, waiting briefly for a claimer that has
// not yet recorded it (up to 3s) or is still prepaying it (up to PrepayTimeout
// and a little more), so concurrent requests for one purchase all get its
// order. While the number is unrecorded it also re-reads the claim: the
// claimer may have bound it to an order still open from an earlier
// generation instead (CreateOrder), and then never records the number; the
// moved claim is returned to follow. The number it offers that re-read
// goes through claimed: held by the caller when the claim had lapsed, it
// is the caller's to record and prepay, and worked on (orphaned) as the
// caller's other fresh numbers are.
func (s *Service) awaitClaimed(ctx context.Context, key string, claim store.Claim, claimed func(string) string) (*store.Order, *movedClaim, error) {
	pause := 5 * time.Millisecond
	start := s.now()
	for miss := 0; ; {
		o, err := s.store.GetOrder(ctx, claim.OrderNo)
		waited := s.now().Sub(start)
		if errors.Is(err, store.ErrNotFound) {
			if miss++; miss > 1 {
				c, created, cerr := s.store.ClaimPurchase(ctx, key, claimed(s.newNo(s.now())), s.opts.DedupeWindow)
				if cerr != nil {
					return nil, nil, fmt.Errorf("re-read claim: %w", cerr)
				}
				if created || c.OrderNo != claim.OrderNo {
					return nil, &movedClaim{c, created}, nil
				}
			}
		}
		switch {
		case errors.Is(err, store.ErrNotFound) && waited < 3*time.Second && !s.orphaned(claim.OrderNo):
		case err == nil && o.Status == store.StatusCreating && s.now().Sub(creatingSince(o)) < s.opts.CreatingGrace &&
			waited < s.opts.PrepayTimeout+2*time.Second && !s.orphaned(o.OrderNo):
		default:
			return o, nil, err
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctx.Err()
		case <-t.C:
		}
		if pause < 100*time.Millisecond {
			pause *= 2
		}
	}
}

// openOrderHorizon bounds how far back boundOrderOf looks: an order is open
// at most until its deadline, which is at most ApprovalTTL (held) plus
// OrderTTL (approved at the last moment) after it was made, and is paid by
// then (PaidAt is WeChat Pay's success_time). Twice that covers orders whose
// deadlines were set under a config with up to twice these durations; one
// held longer (approval_ttl lowered since) is found by openBefore. A
// paid order binds its purchase for DedupeWindow after its payment
// (justPaid), so the look-back covers that too: without it, a window
// longer than orders stay open (24h against 3h) passed over an order paid
// within it, and the purchase got a second payable order.
func (s *Service) openOrderHorizon() time.Duration {
	return s.opts.DedupeWindow + 2*(s.opts.Rules.ApprovalTTL+s.opts.OrderTTL)
}

// holdsPurchase reports whether an order of this status still binds its
// purchase: it may yet be paid (creating, awaiting_payment) or approved
// (approval_required).
func holdsPurchase(st store.OrderStatus) bool {
	return Pending(st) || st == store.StatusApprovalRequired
}

// RepeatsPurchase reports whether CreateOrder of req would hand back an
// order of its purchase and ask nothing of WeChat Pay: one awaiting
// payment in req's pay method (or with none asked) or held for a manager in
// it, before its deadline, or one just paid (already_paid). An order being
// created (its prepay under way), one past its deadline that no sweep
// closed yet or within its last minute (CreateOrder asks WeChat Pay about
// it, closes it there and opens the purchase's next order: 3 calls), a switch of pay method, a
// purchase without such an order or a read that failed is false:
// CreateOrder may call WeChat Pay then.
func (s *Service) RepeatsPurchase(ctx context.Context, req CreateRequest) bool {
	o := s.purchaseOrder(ctx, req)
	return o != nil && s.repeats(o, req)
}

// handBack is CreateOrder of req answered from its purchase's order alone,
// without the catalog: when RepeatsPurchase holds, the order as a repeated
// ask returns it (payable with fresh payment parameters, held, or paid),
// ok true. An order awaiting payment within its last minute is handed back
// as it stands too, payable until its deadline, as at the day's order
// limit: its renewal would price and open an order of a purchase no longer
// sold as asked. Nothing is claimed, counted, priced or asked of WeChat
// Pay.
func (s *Service) handBack(ctx context.Context, req CreateRequest) (res *CreateResult, ok bool, err error) {
	o := s.purchaseOrder(ctx, req)
	if o == nil || !s.repeats(o, req) && !s.renews(o, req) {
		return nil, false, nil
	}
	if o.Status == store.StatusAwaitingPayment {
		res, err = s.payable(ctx, o, true)
		if err != nil {
			return &CreateResult{Order: o, Existing: true}, true, fmt.Errorf("%w: %w", ErrPaymentUnavailable, err)
		}
		return res, true, nil
	}
	return &CreateResult{Order: o, Existing: true}, true, nil
}

// purchaseOrder is req's purchase's order (boundOrderOf); nil when it has
// none or the read failed.
func (s *Service) purchaseOrder(ctx context.Context, req CreateRequest) *store.Order {
	if req.Quantity == 0 {
		req.Quantity = 1
	}
	o, _, err := s.boundOrderOf(ctx, req, "")
	if err != nil {
		return nil
	}
	return o
}

// repeats is RepeatsPurchase of o, req's purchase's order. One in its
// last minute is renewed (lastMinute): WeChat Pay is asked.
func (s *Service) repeats(o *store.Order, req CreateRequest) bool {
	switch o.Status {
	case store.StatusAwaitingPayment:
		return !s.expired(o) && !s.lastMinute(o) && (req.KeepPayMethod || o.PayMethod == req.PayMethod)
	case store.StatusApprovalRequired:
		return !s.heldExpired(o) && (req.KeepPayMethod || o.PayMethod == req.PayMethod)
	}
	return s.justPaid(o, s.now())
}

// lastMinute reports whether o, open, has less than minPayWindow left
// before its deadline (and has not reached it): the purchase asked again
// then gets its next order (CreateOrder), as the payment parameters of o
// would die within seconds.
func (s *Service) lastMinute(o *store.Order) bool {
	return !o.ExpiresAt.IsZero() && !s.expired(o) && s.now().Add(minPayWindow).After(o.ExpiresAt)
}

// RenewsPurchase reports whether req's purchase has an order awaiting
// payment in req's pay method (or with none asked) within its last minute:
// CreateOrder renews it, calling WeChat Pay, unless req.NoRenew, which
// hands it back as it stands.
func (s *Service) RenewsPurchase(ctx context.Context, req CreateRequest) bool {
	o := s.purchaseOrder(ctx, req)
	return o != nil && s.renews(o, req)
}

// renews is RenewsPurchase of o, req's purchase's order: awaiting payment
// in req's pay method (or with none asked) within its last minute.
func (s *Service) renews(o *store.Order, req CreateRequest) bool {
	return o.Status == store.StatusAwaitingPayment && s.lastMinute(o) &&
		(req.KeepPayMethod || o.PayMethod == req.PayMethod)
}

// handsBackPurchase is RepeatsPurchase, or, for an order of req.PayMethod
// awaiting payment past its expires_at, whether its payer is paying it
// right now (WeChat Pay says USERPAYING, one query): CreateOrder hands it
// back then too, as it stands, with ErrPayerPaying and no payment. The
// purchase's order is read once for both.
func (s *Service) handsBackPurchase(ctx context.Context, req CreateRequest) bool {
	o := s.purchaseOrder(ctx, req)
	switch {
	case o == nil:
		return false
	case s.repeats(o, req):
		return true
	case o.Status != store.StatusAwaitingPayment || !s.expired(o) || o.PayMethod != req.PayMethod:
		return false
	}
	tx, err := s.backend.QueryOrder(ctx, o.OrderNo)
	return err == nil && tx.TradeState == wechatpay.TradeUserPaying
}

// justPaid reports whether o was paid within the dedupe window before now
// and its money is still kept (paid, refunding, partially_refunded, or
// under review, as CreateOrder answers a claimed order): a repeated ask for
// its purchase is answered already_paid, however long the user took to pay.
// A purchase refunded in full is bought again like a closed one.
func (s *Service) justPaid(o *store.Order, now time.Time) bool {
	switch o.Status {
	case store.StatusPaid, store.StatusRefunding, store.StatusPartiallyRefunded, store.StatusNeedsReview:
	default:
		return false
	}
	return !o.PaidAt.IsZero() && now.Sub(o.PaidAt) < s.opts.DedupeWindow
}

// boundOrderOf returns the newest order of req's purchase, other than
// except, that still binds it: one that holds the purchase (open), or one
// paid within the dedupe window (justPaid); nil if none. last is the
// newest order of the purchase other than except and other than an
// abandoned number's record (abandonedNumber), when it binds nothing (nil
// when open is not, or there is none): what the purchase's last order
// came to (cutSwitch). It reads the
// user's orders newest first back to openOrderHorizon, and, when the user
// has orders older than that, those still open among them (openBefore).
// No order that it
// passes over as settled can become open again; one recorded after it
// looked by a claimer of an earlier generation that stalled finds the claim
// moved on when it re-checks (createFresh) and is closed before any prepay.
// An order paid after it looked was open when it looked, so was returned.
func (s *Service) boundOrderOf(ctx context.Context, req CreateRequest, except string) (open, last *store.Order, err error) {
	now := s.now()
	horizon := now.Add(-s.openOrderHorizon())
	f := store.OrderFilter{Client: req.Client, User: req.User, Limit: store.MaxListLimit}
	for {
		page, err := s.store.ListOrders(ctx, f)
		if err != nil {
			return nil, nil, fmt.Errorf("look for the purchase's open order: %w", err)
		}
		for _, o := range page {
			if o.CreatedAt.Before(horizon) {
				open, err := s.openBefore(ctx, req, except, horizon)
				return open, last, err
			}
			if !samePurchase(o, req) || o.OrderNo == except {
				continue
			}
			if holdsPurchase(o.Status) || s.justPaid(o, now) {
				return o, nil, nil
			}
			if last == nil && !abandonedNumber(o) {
				last = o
			}
		}
		if len(page) < f.Limit {
			return nil, last, nil
		}
		last := page[len(page)-1]
		f.Before, f.BeforeOrderNo = last.CreatedAt, last.OrderNo
	}
}

// openBefore returns an order of req's purchase, other than except, made
// before horizon (openOrderHorizon) that still holds it, or nil: one held
// for a manager under a longer approval_ttl than this config's (README:
// an order already held keeps the deadline it was held with), or approved
// late in such a wait and open for payment now. boundOrderOf's walk of the
// user's orders stops at the horizon and passed over it, and the purchase
// asked again got a second order a manager could approve too. It reads
// only the orders of those statuses made before the horizon, which the
// sweep keeps few (every other order is settled by then), and only for a
// user with orders that old. Such an order approved and paid late binds
// the purchase for DedupeWindow after its payment (justPaid): it is among
// the user's most recently updated orders (LoadUserState, one round trip),
// and passed over, the purchase asked again right after the payment got a
// second order, payable once a manager approved it too.
func (s *Service) openBefore(ctx context.Context, req CreateRequest, except string, horizon time.Time) (*store.Order, error) {
	for _, st := range []store.OrderStatus{store.StatusApprovalRequired, store.StatusAwaitingPayment, store.StatusCreating} {
		// By status alone: one index read (a client's needs a second
		// round trip on Redis), and what it holds that old is few.
		f := store.OrderFilter{Status: st, Before: horizon, Limit: store.MaxListLimit}
		for {
			page, err := s.store.ListOrders(ctx, f)
			if err != nil {
				return nil, fmt.Errorf("look for the purchase's open order: %w", err)
			}
			for _, o := range page {
				if samePurchase(o, req) && o.OrderNo != except {
					return o, nil
				}
			}
			if len(page) < f.Limit {
				break
			}
			last := page[len(page)-1]
			f.Before, f.BeforeOrderNo = last.CreatedAt, last.OrderNo
		}
	}
	st, err := s.store.LoadUserState(ctx, req.Client, req.User)
	if err != nil {
		return nil, fmt.Errorf("look for the purchase's paid order: %w", err)
	}
	now := s.now()
	for _, o := range st.Orders {
		if o.CreatedAt.Before(horizon) && samePurchase(o, req) && o.OrderNo != except && s.justPaid(o, now) {
			return o, nil
		}
	}
	return nil, nil
}

// creatingSince is when order o, `creating`, became so: when it was made,
// or, for one a manager approved (ApprovedFen), when they did (an order
// held for approval is created long before). A `creating` order is not
// rewritten until its prepay's outcome moves it on, so an approved one's
// UpdatedAt is the approval. Judged by CreatedAt, an approved order whose
// approval's prepay was still on its way to WeChat Pay was taken for one
// a crash left half made: the customer's ask for the purchase, their
// turn's refresh or the sweep prepaid it a second time beside the
// approval. Other orders keep CreatedAt, the clock of the replica that
// made them (UpdatedAt is the store's).
func creatingSince(o *store.Order) time.Time {
	if o.ApprovedFen != 0 && o.UpdatedAt.After(o.CreatedAt) {
		return o.UpdatedAt
	}
	return o.CreatedAt
}

// detached is ctx without its cancellation, for the prepay of an order a
// caller asked for (a turn's create_order from its record on, the claim's
// re-check included; a manager's approval): it runs to its end
// (PrepayTimeout) even if the caller goes away, a bot whose HTTP client
// gave up on the turn say. Cut short, WeChat Pay may have opened the
// order while it stays `creating` here, and the bot's retry would wait out
// PrepayTimeout for a prepay nobody is making, then get no payment
// parameters until CreatingGrace passes. Background prepays (the sweep,
// reconciliation) keep their context: shutdown and BackgroundQueryTimeout
// stop them.
func detached(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// samePurchase reports whether o is an order of req's purchase, by the
// fields ClaimKey hashes: so also an order recorded when the key held the
// pay method too (before an upgrade), whose ClaimKey differs.
func samePurchase(o *store.Order, req CreateRequest) bool {
	return o.Client == req.Client && o.User == req.User && o.SKU == req.SKU && o.Quantity == req.Quantity
}

// createFresh records the order as `creating`, re-checks that the claim is
// still its own, and prepays. next is set when another caller took the claim
// over meanwhile: the caller follows that claim instead. approved: a manager
// already approved this purchase at amount (its previous order, closed for a
// switch of pay method), so an amount above the threshold is not held again;
// the approval is recorded on the new order too, for its own switch.
// replacing: it replaces that closed order, and the switch counted it
// against the daily limit already, as repl (a count of the switch's day,
// given back if WeChat Pay refuses the replacement).
func (s *Service) createFresh(ctx context.Context, req CreateRequest, item Item, amount int64, key string, claim store.Claim, approved, replacing bool, repl dayCount) (*CreateResult, *store.Claim, error) {
	now := s.now()
	// Every order's count lives on its created_at's day under a token of
	// its own (orderCount), so that whoever gives it back later (prepay,
	// approval, the sweep) finds it.
	count := orderCount(req.Client, req.User, claim.OrderNo, now)
	if req.CountCall != nil && !replacing {
		if err := req.CountCall(ctx); err != nil {
			s.releaseClaim(ctx, key, claim)
			return nil, nil, err
		}
	}
	switch {
	case !replacing:
		if err := s.countOrder(ctx, count.key); err != nil {
			s.releaseClaim(ctx, key, claim)
			return nil, nil, err
		}
	case repl.key == "":
		count = dayCount{} // counted before counts were kept: nothing to give back
	case repl.key != count.key:
		// The switch counted it on an earlier day (its close failed and
		// was retried past midnight): the count moves to this order's
		// day, not checked against the limit there, as the switch was.
		s.giveBack(ctx, repl)
		if _, err := s.store.IncrCounter(ctx, count.key, dailyCounterTTL); err != nil {
			s.log.WarnContext(ctx, "daily order count not moved to the replacement's day", "order_no", claim.OrderNo, "err", err)
		}
	}
	o := claimedOrder(req, item, amount, key, claim, store.StatusCreating, now)
	o.ExpiresAt = now.Add(s.opts.OrderTTL).Truncate(time.Second)
	if approved {
		o.ApprovedFen = amount
	}
	approval := s.opts.Rules.needsApproval(amount) && !approved
	if approval {
		// Held for a manager: no prepay; the deadline is the manager's
		// (approval sets the payment deadline).
		o.Status, o.ExpiresAt = store.StatusApprovalRequired, now.Add(s.opts.Rules.ApprovalTTL).Truncate(time.Second)
	}
	created := Transition{After: *o, Cause: "create", Turn: TurnFrom(ctx)}
	// abandoned: another caller gave up waiting for this record and
	// recorded the number as abandoned (abandon): follow the claim it
	// moves on to. This order is never made; a replacement's count stays
	// for the next one this call makes, on the switch's day (its mark).
	// One moved to this day above goes back: the next replacement moves
	// the switch's count here again (countReplacement), and kept, the day
	// counted one replacement twice.
	abandoned := func() (*CreateResult, *store.Claim, error) {
		if !replacing || repl.key != count.key {
			s.giveBack(ctx, count)
		}
		cur, _, err := s.store.ClaimPurchase(ctx, key, o.OrderNo, s.opts.DedupeWindow)
		if err != nil {
			return nil, nil, fmt.Errorf("re-check claim: %w", err)
		}
		return nil, &cur, nil
	}
	sent := s.now()
	if err := s.store.CreateOrder(ctx, o, s.events(created)...); errors.Is(err, store.ErrExists) {
		return abandoned()
	} else if err != nil {
		if replacing && repl.key == count.key {
			// The switch's own count, on this day: it stays with the
			// switch (its mark), whose replacement the purchase's next
			// ask makes on it (cutSwitch), or gives back past the
			// window. Given back here, that replacement was counted by
			// nothing.
			count = dayCount{}
		}
		res, next, err := s.recordFailed(ctx, key, claim, o, created, sent, count, err)
		if errors.Is(err, errRecordAbandoned) {
			return abandoned()
		}
		return res, next, err
	}
	s.committed(created)
	s.m.transitions.WithLabelValues("", string(o.Status), "create").Inc()
	s.log.InfoContext(ctx, "order created", "order_no", o.OrderNo, "client", o.Client, "sku", o.SKU, "quantity", o.Quantity, "amount_fen", o.AmountFen)
	// From here on the order exists: every failure answers it (pending,
	// the sweep finishes it), never "no order". And it is finished (the
	// claim's re-check, then the prepay) even if the caller goes away, as
	// the prepay alone was: cut between the record and the prepay, it
	// stayed creating with no prepay made, and the bot's retry waited out
	// PrepayTimeout for ErrInProgress.
	fctx := detached(ctx)
	rctx, cancel := context.WithTimeout(fctx, finishTimeout)
	defer cancel()
	// A claimer that stalled before recording may have been taken over.
	cur, _, err := s.store.ClaimPurchase(rctx, key, o.OrderNo, s.opts.DedupeWindow)
	if err != nil {
		return &CreateResult{Order: o}, nil, fmt.Errorf("re-check claim: %w", err)
	}
	if cur.OrderNo != o.OrderNo {
		_, closed, _ := s.update(rctx, o.OrderNo, "superseded", "", func(c *store.Order) (*store.Order, error) {
			switch c.Status {
			case store.StatusCreating:
				c.Status = store.StatusClosed
			case store.StatusApprovalRequired:
				c.Status = store.StatusExpired
			default:
				return nil, nil
			}
			return c, nil
		})
		if closed && (!replacing || repl.key != count.key) {
			// Closed here, before its prepay. A replacement's count
			// moved to this day goes back too (see abandoned); the
			// switch's own stays with its mark.
			s.giveBack(ctx, count)
		}
		return nil, &cur, nil
	}
	cancel()
	if approval {
		s.mm.refusals.WithLabelValues("approval_required").Inc()
		s.log.InfoContext(ctx, "order held for a manager's approval", "order_no", o.OrderNo, "amount_fen", o.AmountFen)
		return &CreateResult{Order: o}, nil, nil
	}
	res, err := s.prepay(fctx, o, "prepay", count) // bounded by PrepayTimeout
	return res, nil, err
}

// ErrOrderUnconfirmed: the order's record was written and the store did
// not confirm it (no answer, or not replicated in time), nor could it be
// read back: the order may exist, as creating, and nothing was sent to
// WeChat Pay. Asking for the purchase again returns it if it does.
var ErrOrderUnconfirmed = errors.New("the order may have been recorded")

// mayHaveApplied reports whether a store write that failed with err may
// have been applied all the same: the store did not answer (a lost reply,
// a timeout), answered that the write was not replicated in time (both
// store.ErrUnavailable), or the caller's context ended with the write on
// its way.
func mayHaveApplied(err error) bool {
	return errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// recordFailed answers a create whose record of o, claim's order, failed
// with err. A write that cannot have applied made no order: its count of
// the day's orders (count; a replacement's moved to this day too, as a
// refused prepay gives it back; createFresh keeps the switch's own, for
// the replacement the next ask makes) goes back and the claim is let go,
// as for a refusal, so the
// next ask is judged afresh at once instead of waiting for a number that
// will never be recorded. A write that may have applied keeps both (the
// order may exist, and a claimer that takes the purchase over records the
// number abandoned first) and is looked up: found as written, the order
// exists, and it is answered (pending, with the error) but not prepaid,
// since the store did not confirm its record; the sweep finishes it. Not
// readable, it may still exist: ErrOrderUnconfirmed. Not found, its number
// is recorded abandoned here (abandonNumber), which the lost write can no
// longer follow; if that fails too, ErrOrderUnconfirmed. Found as another
// caller's record of the number as abandoned (abandon), or so recorded
// here, it never applied, as if the store had said ErrExists:
// errRecordAbandoned, and createFresh follows the claim.
func (s *Service) recordFailed(ctx context.Context, key string, claim store.Claim, o *store.Order, created Transition, sent time.Time, count dayCount, err error) (*CreateResult, *store.Claim, error) {
	if !mayHaveApplied(err) {
		s.giveBack(ctx, count)
		s.releaseClaim(ctx, key, claim)
		return nil, nil, fmt.Errorf("record order: %w", err)
	}
	s.noteUnacked(ctx, created, o, 1, sent)
	lctx, cancel := context.WithTimeout(detached(ctx), finishTimeout)
	defer cancel()
	got, gerr := s.store.GetOrder(lctx, o.OrderNo)
	if gerr == nil {
		s.settleUnacked(ctx, got) // found as written: the creation is announced now
	}
	if gerr == nil && abandonedNumber(got) {
		// Another caller's record of the number as abandoned: the store
		// creates a record only where the number has none, so this one
		// never applied (its answer, ErrExists, was lost).
		return nil, nil, errRecordAbandoned
	}
	if gerr == nil && got.Status == o.Status && got.Generation == o.Generation && got.ClaimKey == o.ClaimKey {
		s.log.WarnContext(ctx, "order recorded, unconfirmed by the store; left for the sweep", "order_no", o.OrderNo, "err", err)
		return &CreateResult{Order: got}, nil, fmt.Errorf("record order: %w", err)
	}
	if errors.Is(gerr, store.ErrNotFound) {
		// Not there: the number is given up here and now, as a taker of
		// the claim gives it up (abandon), so the lost write can never
		// apply after this look. Left to the purchase's next ask to give
		// up, the order's count of the day outlived an order that never
		// was.
		ab := *o
		ab.Status, ab.CreatedAt, ab.UpdatedAt = store.StatusClosed, s.now(), s.now()
		aerr := s.abandonNumber(lctx, &ab)
		if aerr == nil {
			s.forgetUnacked(o.OrderNo)
			return nil, nil, errRecordAbandoned
		}
		gerr = aerr // recorded meanwhile (ErrExists), or unknown: it may exist
	}
	s.log.WarnContext(ctx, "order record unconfirmed; it may exist", "order_no", o.OrderNo, "err", err, "lookup_err", gerr)
	return nil, nil, fmt.Errorf("%w: record order %s: %w", ErrOrderUnconfirmed, o.OrderNo, err)
}

// errRecordAbandoned: an order's record the store did not confirm was
// found to have lost to another caller's record of its number as
// abandoned (recordFailed).
var errRecordAbandoned = errors.New("the order's number was recorded abandoned first")

// finishTimeout bounds the store steps of an order a caller asked for
// that run on after the caller left (detached): its lookup, its claim's
// re-check, the record of its prepay.
const finishTimeout = 5 * time.Second

// abandonedCause is the cause of an abandoned number's record (abandon).
const abandonedCause = "abandoned"

// abandonedNumber reports whether o is the record of an abandoned number
// (abandon): an order never made, recorded closed from the start, where
// every order made is recorded creating or held and is rewritten as it
// closes (Version above 1).
func abandonedNumber(o *store.Order) bool {
	return o.Status == store.StatusClosed && o.Version == 1
}

// abandon records the claimed order number of a claimer that never recorded
// it as closed, before CreateOrder takes the claim over. The record is what
// makes the takeover safe: CreateOrder fails with store.ErrExists for
// whichever of the two comes second, so a claimer that was only slow cannot
// record and prepay a number that was given up (it follows the claim
// instead), and a record that appeared meanwhile is not taken over.
func (s *Service) abandon(ctx context.Context, req CreateRequest, item Item, amount int64, key string, claim store.Claim) error {
	return s.abandonNumber(ctx, claimedOrder(req, item, amount, key, claim, store.StatusClosed, s.now()))
}

// abandonNumber records o, closed, as its number's record (abandon).
func (s *Service) abandonNumber(ctx context.Context, o *store.Order) error {
	tr := Transition{After: *o, Cause: abandonedCause, Turn: TurnFrom(ctx)}
	if err := s.store.CreateOrder(ctx, o, s.events(tr)...); err != nil {
		return fmt.Errorf("record abandoned order %s: %w", o.OrderNo, err)
	}
	s.committed(tr)
	s.m.transitions.WithLabelValues("", string(o.Status), abandonedCause).Inc()
	s.log.InfoContext(ctx, "claimed order never recorded: number abandoned, purchase taken over", "order_no", o.OrderNo, "client", o.Client, "sku", o.SKU)
	return nil
}

// claimedOrder is the record of claim's order for req at status, priced
// from the catalog (amount), as of now.
func claimedOrder(req CreateRequest, item Item, amount int64, key string, claim store.Claim, status store.OrderStatus, now time.Time) *store.Order {
	return &store.Order{
		OrderNo: claim.OrderNo, Client: req.Client, AppID: req.AppID, User: req.User, Session: req.Session,
		SKU: req.SKU, Description: describe(item, req.Quantity), Quantity: req.Quantity,
		AmountFen: amount, Currency: "CNY", PayMethod: req.PayMethod, Status: status,
		ClaimKey: key, Generation: claim.Generation, CreatedAt: now, UpdatedAt: now,
	}
}

// describe is the description of an order of quantity of item: its name,
// and for more than one " x" and the quantity, within the 127 bytes WeChat
// Pay takes. A name too long is cut between characters as the payer sees
// them (cutCharacters), and the count kept whole: cut from the end, "…
// x12" lost its count ("… x1", or the name and a space), and the payer
// paid for twelve under a description that said one.
func describe(item Item, quantity int) string {
	const most = 127
	count := ""
	if quantity > 1 {
		count = fmt.Sprintf(" x%d", quantity)
	}
	return cutCharacters(item.Name, most-len(count)) + count
}

// cutCharacters is s (valid UTF-8) cut to at most n bytes at the last
// boundary between characters as a reader sees them (Unicode's grapheme
// clusters, UAX #29, by github.com/rivo/uniseg), white space before the
// cut dropped. A rune boundary can fall inside one: a family emoji (👨‍👩‍👧:
// runes joined by U+200D) was described as a lone 👨, a flag (🇨🇳: two
// regional indicators) as a boxed C, 👍🏽 without its skin tone, é (e and
// U+0301) as e, a Hangul syllable in jamo as its first. Only when not
// one whole character fits is s cut on a rune boundary, so that something
// is left.
func cutCharacters(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	end, rest, state := 0, s, -1
	for rest != "" {
		var c string
		c, rest, _, state = uniseg.FirstGraphemeClusterInString(rest, state)
		if end+len(c) > n {
			break
		}
		end += len(c)
	}
	if whole := strings.TrimRightFunc(s[:end], unicode.IsSpace); whole != "" {
		return whole
	}
	end = n
	for end > 0 && !utf8.RuneStart(s[end]) {
		end--
	}
	return s[:end]
}

// prepay opens o at WeChat Pay with o's own fields (so a retry or a
// reconciler's repeat sends identical parameters under the same number) and
// commits the outcome. count is o's count of the daily order limit: given
// back when WeChat Pay refuses the order's parameters (no order exists
// under its number) and this call closes it, so that no count is given back
// for an order another caller opened or closed meanwhile.
func (s *Service) prepay(ctx context.Context, o *store.Order, cause string, count dayCount) (*CreateResult, error) {
	pctx, cancel := context.WithTimeout(ctx, s.opts.PrepayTimeout)
	res, err := s.backend.Prepay(pctx, wechatpay.PrepayRequest{
		Method: wechatpay.PayMethod(o.PayMethod), OutTradeNo: o.OrderNo, Description: o.Description,
		Total: o.AmountFen, PayerOpenID: o.User, AppID: o.AppID, ExpireAt: o.ExpiresAt,
	})
	cancel()
	// The outcome is committed even if the caller went away meanwhile.
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer ccancel()
	switch {
	case err == nil && res.Paid != nil:
		got, _, _, aerr := s.applyPayment(cctx, o.OrderNo, factFromTx(res.Paid), cause, "")
		if aerr != nil {
			return &CreateResult{Order: o}, fmt.Errorf("record payment: %w", aerr)
		}
		return &CreateResult{Order: got}, nil
	case err == nil:
		got, _, uerr := s.update(cctx, o.OrderNo, cause, "", func(c *store.Order) (*store.Order, error) {
			if c.Status != store.StatusCreating {
				return nil, nil // someone (a notification, the reconciler) moved it on
			}
			c.Status = store.StatusAwaitingPayment
			c.PrepayID, c.CodeURL = res.PrepayID, res.CodeURL
			return c, nil
		})
		if uerr != nil {
			// WeChat Pay holds the order open and the store has it as
			// creating: it is the user's order, pending (the sweep
			// records the prepay), never "no order".
			s.log.WarnContext(ctx, "prepay made, not recorded; order left for the reconciler", "order_no", o.OrderNo, "err", uerr)
			return &CreateResult{Order: o}, fmt.Errorf("record prepay: %w", uerr)
		}
		out := &CreateResult{Order: got, Payment: res.Payment, CodeURL: res.CodeURL}
		if got.Status != store.StatusAwaitingPayment {
			out.Payment, out.CodeURL = nil, ""
		}
		return out, nil
	case errors.Is(err, wechatpay.ErrOrderClosed), errors.Is(err, wechatpay.ErrRejected),
		errors.Is(err, wechatpay.ErrNumberUsed), errors.Is(err, wechatpay.ErrInvalidNumber):
		s.log.ErrorContext(ctx, "prepay refused; order closed", "order_no", o.OrderNo, "err", err)
		got, closed, uerr := s.update(cctx, o.OrderNo, cause, "", func(c *store.Order) (*store.Order, error) {
			if c.Status != store.StatusCreating {
				return nil, nil
			}
			c.Status = store.StatusClosed
			return c, nil
		})
		// ORDER_CLOSED and a number used before say an order exists or
		// existed under it: still one of the user's orders today.
		if closed && (errors.Is(err, wechatpay.ErrRejected) || errors.Is(err, wechatpay.ErrInvalidNumber)) {
			s.giveBack(cctx, count)
		}
		if uerr != nil {
			// The store's error is logged here and kept out of the error,
			// whose text callers show (the admin API's answer): it can name
			// the store's address. A store that lost its data is said by
			// store.ErrDataLost alone: it refuses the reconciler's commands
			// too until the replicas restart, which the admin API tells.
			s.log.ErrorContext(ctx, "prepay refused, its close not recorded; order left creating for the reconciler", "order_no", o.OrderNo, "err", uerr)
			if errors.Is(uerr, store.ErrDataLost) {
				return nil, fmt.Errorf("%w: %w (its close not recorded: %w)", ErrPrepayRejected, err, store.ErrDataLost)
			}
			return nil, fmt.Errorf("%w: %w (its close not recorded)", ErrPrepayRejected, err)
		}
		if !closed && got.Status != store.StatusCreating && errors.Is(err, wechatpay.ErrOrderClosed) {
			// Someone moved the order on before the refusal came: another
			// ask for the purchase resolved it and closed it for a switch
			// of pay method (ORDER_CLOSED), whose replacement may now be
			// payable. The refusal is of an order no longer this call's to
			// open (errMovedOn), not of the purchase. Any other refusal
			// (the parameters', PARAM_ERROR) is the purchase's own,
			// whoever recorded its close: gone round, it made a second
			// order of the purchase for WeChat Pay to refuse again.
			return &CreateResult{Order: got}, fmt.Errorf("%w: %w: %w", ErrPrepayRejected, errMovedOn, err)
		}
		return &CreateResult{Order: got}, fmt.Errorf("%w: %w", ErrPrepayRejected, err)
	default:
		// Unknown outcome (timeouts, 5xx, an unverifiable answer): the order
		// stays `creating` under its number; the reconciler asks WeChat Pay.
		s.log.WarnContext(ctx, "prepay outcome unknown; order left for the reconciler", "order_no", o.OrderNo, "err", err)
		return &CreateResult{Order: o}, fmt.Errorf("%w: %w", ErrPaymentUnavailable, err)
	}
}

// payable returns an awaiting_payment order with fresh payment parameters.
func (s *Service) payable(ctx context.Context, o *store.Order, existing bool) (*CreateResult, error) {
	out := &CreateResult{Order: o, Existing: existing, CodeURL: o.CodeURL}
	if o.PayMethod == string(wechatpay.MethodJSAPI) && o.PrepayID != "" {
		p, err := s.backend.RequestPayment(ctx, o.AppID, o.PrepayID)
		if err != nil {
			return nil, fmt.Errorf("payment parameters: %w", err)
		}
		out.Payment = p
	}
	return out, nil
}

// Order returns the user's order by number, actively querying WeChat Pay (under
// ActiveQueryDeadline) when it is pending and old enough. Another user's order
// is ErrNotOwner; callers present it as not found.
func (s *Service) Order(ctx context.Context, client, user, orderNo string) (*store.Order, error) {
	o, err := s.store.GetOrder(ctx, orderNo)
	if err != nil {
		return nil, err
	}
	if o.Client != client || o.User != user {
		return nil, fmt.Errorf("%w: %s", ErrNotOwner, orderNo)
	}
	got := s.refreshPending(ctx, []*store.Order{o}, true)
	return got[0], nil
}

// CloseOrder closes an unpaid order at WeChat Pay and locally. An order WeChat
// reports paid becomes paid instead; closing a closed order is a no-op.
func (s *Service) CloseOrder(ctx context.Context, orderNo string) (*store.Order, error) {
	o, err := s.store.GetOrder(ctx, orderNo)
	if err != nil {
		return nil, err
	}
	if o.Status == store.StatusCreating {
		if o, err = s.resolveCreating(ctx, o, "close"); err != nil {
			return o, err
		}
	}
	switch o.Status {
	case store.StatusClosed, store.StatusExpired:
		return o, nil
	case store.StatusAwaitingPayment:
	default:
		return o, fmt.Errorf("%w: cannot close a %s order", ErrTransition, o.Status)
	}
	return s.closeAt(ctx, o, store.StatusClosed, "close")
}

// closeAt closes o at WeChat Pay, then locally as status (closed or expired).
// ORDER_NOT_EXIST closes it here only once o is past its deadline: o was
// prepaid (WeChat Pay answered it with the payer's payment parameters), and
// WeChat Pay's APIs are eventually consistent, so a close a moment after
// the prepay may not find an order the payer can still pay. Recorded
// closed on that word, a switch of pay method opened a second payable
// order of the same purchase.
func (s *Service) closeAt(ctx context.Context, o *store.Order, status store.OrderStatus, cause string) (*store.Order, error) {
	err := s.backend.CloseOrder(ctx, o.OrderNo)
	switch {
	case errors.Is(err, wechatpay.ErrOrderPaid):
		s.m.reconcile.WithLabelValues(cause, "paid").Inc()
		return s.queryAndApply(ctx, o, cause)
	case errors.Is(err, wechatpay.ErrNotFound) && !s.expired(o):
		s.m.reconcile.WithLabelValues(cause, "not_found").Inc()
		s.log.WarnContext(ctx, "close answered not found for a prepaid order; left open until a close is confirmed", "order_no", o.OrderNo, "err", err)
		return o, fmt.Errorf("close %s at wechat pay: not confirmed: %w", o.OrderNo, err)
	case errors.Is(err, wechatpay.ErrNotFound), err == nil:
	default:
		s.reconcileFailed(ctx, cause)
		return o, fmt.Errorf("close %s at wechat pay: %w", o.OrderNo, err)
	}
	got, _, err := s.update(ctx, o.OrderNo, cause, "", func(c *store.Order) (*store.Order, error) {
		if !Pending(c.Status) {
			return nil, nil
		}
		c.Status = status
		return c, nil
	})
	if err != nil {
		s.reconcileFailed(ctx, cause)
		return got, fmt.Errorf("%w: %w", errCloseUnrecorded, err)
	}
	s.m.reconcile.WithLabelValues(cause, string(got.Status)).Inc()
	return got, nil
}

// errCloseUnrecorded: WeChat Pay closed the order (or has none under its
// number), and the store did not record it: the order is still open here
// until a later reconciliation records the close, and can no longer be
// paid.
var errCloseUnrecorded = errors.New("closed at wechat pay, not recorded")

// update reads the order, lets decide produce the next version (nil: no
// change), checks the transition and commits it with a compare-and-set on the
// version (and status) read, enqueuing its events atomically. A lost race re-reads and
// decides again, so every change happens exactly once.
func (s *Service) update(ctx context.Context, no, cause, noteID string, decide func(cur *store.Order) (*store.Order, error)) (*store.Order, bool, error) {
	for attempt := 0; attempt < 10; attempt++ {
		cur, err := s.store.GetOrder(ctx, no)
		if err != nil {
			return nil, false, fmt.Errorf("read order %s: %w", no, err)
		}
		s.settleUnacked(ctx, cur)
		before := *cur
		next, err := decide(cur)
		if err != nil {
			return &before, false, err
		}
		if next == nil {
			return &before, false, nil
		}
		if next.Status != before.Status && !CanTransition(before.Status, next.Status) {
			return &before, false, fmt.Errorf("order %s: %w: %s -> %s", no, ErrTransition, before.Status, next.Status)
		}
		next.UpdatedAt = s.now()
		tr := Transition{Before: before, After: *next, Cause: cause, NotificationID: noteID, Turn: TurnFrom(ctx), Actor: ActorFrom(ctx), Refund: refundFrom(ctx)}
		sent := s.now()
		err = s.store.UpdateOrder(ctx, next, before.Status, s.events(tr)...)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			if mayHaveApplied(err) {
				s.noteUnacked(ctx, tr, next, before.Version+1, sent)
			}
			return &before, false, fmt.Errorf("write order %s: %w", no, err)
		}
		s.forgetUnacked(no)
		s.m.transitions.WithLabelValues(string(before.Status), string(next.Status), cause).Inc()
		s.log.InfoContext(ctx, "order transition", "order_no", no, "from", before.Status, "to", next.Status, "cause", cause)
		s.committed(tr)
		return next, true, nil
	}
	return nil, false, fmt.Errorf("order %s: %w: too many concurrent changes", no, store.ErrConflict)
}

func (s *Service) committed(t Transition) {
	if s.opts.Committed != nil {
		s.opts.Committed(t)
	}
}

func (s *Service) events(t Transition) []store.Event {
	if s.opts.Events == nil {
		return nil
	}
	return s.opts.Events(t)
}
