package payments

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// ErrNotAwaitingApproval: the order exists but is not approval_required (a
// manager already decided, or it never needed approval).
var ErrNotAwaitingApproval = errors.New("order is not awaiting approval")

// ErrApprovalExpired: the held order's approval deadline (Rules.ApprovalTTL)
// passed before a manager decided; it is expired and can no longer be
// approved or rejected. It is an ErrNotAwaitingApproval, so callers that map
// that (the admin API: 409) need nothing more.
var ErrApprovalExpired = fmt.Errorf("%w: its approval deadline passed and it expired", ErrNotAwaitingApproval)

// errHeldPastDeadline makes Approve's update stop without writing, so the
// order is expired instead.
var errHeldPastDeadline = errors.New("held order past its approval deadline")

// heldDeadline is when a held order stops waiting for a manager: its
// ExpiresAt, or ApprovalTTL after it was made for one recorded before held
// orders had a deadline.
func (s *Service) heldDeadline(o *store.Order) time.Time {
	if !o.ExpiresAt.IsZero() {
		return o.ExpiresAt
	}
	return o.CreatedAt.Add(s.opts.Rules.ApprovalTTL)
}

// heldExpired reports whether o is approval_required past its deadline.
func (s *Service) heldExpired(o *store.Order) bool {
	return o.Status == store.StatusApprovalRequired && !s.now().Before(s.heldDeadline(o))
}

// expireHeld moves a held order past its deadline to expired, locally only:
// nothing was opened at WeChat Pay for it, so its count of the day's orders
// goes back (heldCount), as a prepay refused at approval gives it back. The
// transition is audited and is an order.closed to the merchant, as every
// expiry. An order no longer held (a manager decided meanwhile) is returned
// unchanged.
func (s *Service) expireHeld(ctx context.Context, no string) (*store.Order, error) {
	got, changed, err := s.update(ctx, no, "expire", "", func(c *store.Order) (*store.Order, error) {
		if !s.heldExpired(c) {
			return nil, nil
		}
		c.Status = store.StatusExpired
		return c, nil
	})
	if err != nil {
		return got, fmt.Errorf("expire held order: %w", err)
	}
	if changed {
		s.giveBack(ctx, heldCount(got))
		s.mm.approvals.WithLabelValues("expired").Inc()
		s.log.InfoContext(ctx, "held order expired without a manager's decision", "order_no", no, "amount_fen", got.AmountFen)
	}
	return got, nil
}

// expiredDecision answers a manager's decision on a held order found past its
// approval deadline: too late for a yes or a no, it is expired now rather
// than left for the sweep, so the queue and the user's state say so at once.
// The order as expired is returned with ErrApprovalExpired. One another
// decision took first (a manager's yes or no just before the deadline,
// which this one read too early to see) is returned as it stands with
// ErrNotAwaitingApproval, as a decision that loses to another always is:
// it did not expire. A store that fails to record the expiry changed
// nothing: the order still waits, as stored, until a later decision or the
// sweep expires it. That is no ErrApprovalExpired ("it expired"), but the
// store's failure, by its kind alone (store.ErrUnavailable,
// store.ErrDataLost): the store's own error is logged and kept out of the
// error, whose text callers show (the admin API's answer), as it can name
// the store's address.
func (s *Service) expiredDecision(ctx context.Context, orderNo string) (*store.Order, error) {
	o, err := s.expireHeld(ctx, orderNo)
	if err != nil {
		if ctx.Err() != nil {
			// The caller went away (a manager's console closed) or ran
			// out of time as the expiry was written: nothing failed that
			// an operator must look at, and the sweep expires the order.
			s.log.InfoContext(ctx, "decision past the approval deadline ended with its caller; the order's expiry left for the sweep", "order_no", orderNo, "err", err)
		} else {
			s.log.ErrorContext(ctx, "decision past the approval deadline refused; the order's expiry not recorded", "order_no", orderNo, "err", err)
		}
		return nil, fmt.Errorf("%s is past its approval deadline, and its expiry was not recorded: %w", orderNo, storeFailure(err))
	}
	if o.Status != store.StatusExpired {
		return o, fmt.Errorf("%w: %s is %s", ErrNotAwaitingApproval, o.OrderNo, o.Status)
	}
	return o, fmt.Errorf("%w: %s at %s", ErrApprovalExpired, orderNo, s.heldDeadline(o).UTC().Format(time.RFC3339))
}

// storeFailure is the kind of the store's failure err (store.ErrDataLost,
// store.ErrUnavailable, both or neither) without the store's own text. A
// caller's cancel or deadline that ended the write (the Redis driver
// passes it on as it is) is kept too: a manager's console that went away
// is a client gone (the admin API's 499), not a store that failed.
func storeFailure(err error) error {
	var out error
	for _, k := range []error{store.ErrUnavailable, store.ErrDataLost, context.Canceled, context.DeadlineExceeded} {
		switch {
		case !errors.Is(err, k):
		case out == nil:
			out = k
		default:
			out = fmt.Errorf("%w: %w", out, k)
		}
	}
	if out == nil {
		return errors.New("the store failed")
	}
	return out
}

// ActorAdmin is Actor.Kind of an operator acting through the admin API.
const ActorAdmin = "admin"

// Actor is who made a change by hand and why, for the audit: an operator
// approving or rejecting a held order through the admin API. Without it a
// manager's decision, the one money step a person takes, is recorded with no
// trace of the person. The admin API puts it on the context of the call
// (WithActor); every transition committed under that context carries it in
// Transition.Actor (the decision, and for an approval the prepay and any
// expiry it makes at once), so the Options.Events hook records it with the
// transition, atomically.
type Actor struct {
	Kind       string // ActorAdmin
	RequestID  string // the admin request's id (X-Request-Id), which its log line has too
	RemoteAddr string // the address the request came from
	Operator   string // the operator's name as they gave it; optional
	Reason     string // why, as the operator gave it; optional
}

type actorKey struct{}

// WithActor returns ctx carrying a, for a change an operator makes.
func WithActor(ctx context.Context, a *Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor carried by ctx, or nil (a turn, a
// notification, a sweep).
func ActorFrom(ctx context.Context) *Actor {
	a, _ := ctx.Value(actorKey{}).(*Actor)
	return a
}

// Page is one page of an admin list (the approval queue, the refunds), in
// ListOrders' order (newest first, store.OrderListedBefore): at most Limit
// orders (0: store.DefaultListLimit), those listed after the cursor
// (Before, BeforeOrderNo: the previous page's last order's CreatedAt and
// OrderNo; zero for the first page). A list is capped, so without the
// cursor its oldest orders could never be reached.
type Page struct {
	Limit         int
	Before        time.Time
	BeforeOrderNo string
}

// filter is p as a store filter on status st.
func (p Page) filter(st store.OrderStatus) store.OrderFilter {
	return store.OrderFilter{Status: st, Limit: p.Limit, Before: p.Before, BeforeOrderNo: p.BeforeOrderNo}
}

// Approvals lists orders waiting for a manager (approval_required), newest
// first, at most limit (0: store.DefaultListLimit): the first page of
// ApprovalsPage.
func (s *Service) Approvals(ctx context.Context, limit int) ([]*store.Order, error) {
	return s.ApprovalsPage(ctx, Page{Limit: limit})
}

// ApprovalsPage lists a page of the orders waiting for a manager
// (approval_required), newest first.
func (s *Service) ApprovalsPage(ctx context.Context, p Page) ([]*store.Order, error) {
	return s.ListOrders(ctx, p.filter(store.StatusApprovalRequired))
}

// OrderByNumber returns any order by its number, for the admin API: an
// operator looks up the number a customer quotes, however old the order
// (a list shows the newest first, a page at a time). store.ErrNotFound for
// a number no order has.
func (s *Service) OrderByNumber(ctx context.Context, orderNo string) (*store.Order, error) {
	o, err := s.store.GetOrder(ctx, orderNo)
	if err != nil {
		return nil, fmt.Errorf("get order %s: %w", orderNo, err)
	}
	return o, nil
}

// ListOrders lists orders for the admin API.
func (s *Service) ListOrders(ctx context.Context, f store.OrderFilter) ([]*store.Order, error) {
	out, err := s.store.ListOrders(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("list orders: %w", err)
	}
	return out, nil
}

// Approve is a manager's yes to an approval_required order: it is committed
// as `creating` with a fresh payment deadline and prepaid at once, so it is
// awaiting_payment when Approve returns and the user's next request gets its
// payment parameters. An unknown prepay outcome leaves it `creating` for the
// reconciler (ErrPaymentUnavailable, with the order). ErrNotAwaitingApproval
// when a manager already decided, with the order as that decision left it,
// so a double click or a retry after a lost answer learns the outcome; ErrApprovalExpired (an
// ErrNotAwaitingApproval) when the approval deadline passed, and the order
// is expired then if the sweep has not yet done it (a store that fails to
// record that expiry: its failure, as expiredDecision says); store.ErrNotFound
// for an unknown order.
func (s *Service) Approve(ctx context.Context, orderNo string) (*CreateResult, error) {
	defer s.work(orderNo)() // creating from the update until its prepay's outcome
	got, _, err := s.update(ctx, orderNo, "approve", "", func(c *store.Order) (*store.Order, error) {
		if c.Status != store.StatusApprovalRequired {
			return nil, fmt.Errorf("%w: %s is %s", ErrNotAwaitingApproval, c.OrderNo, c.Status)
		}
		if s.heldExpired(c) {
			return nil, errHeldPastDeadline
		}
		c.Status = store.StatusCreating
		c.ApprovedFen = c.AmountFen // what a switch of pay method may carry
		if m := s.offeredMethods(c.Client); len(m) > 0 && !slices.Contains(m, c.PayMethod) {
			// Held in a method its client is no longer offered (a config
			// changed since): nothing is at WeChat Pay yet, so it is
			// prepaid in the client's first (Options.PayMethods).
			c.PayMethod = m[0]
		}
		// The payment window starts now, not when the user asked.
		c.ExpiresAt = s.now().Add(s.opts.OrderTTL).Truncate(time.Second)
		return c, nil
	})
	if errors.Is(err, errHeldPastDeadline) {
		o, err := s.expiredDecision(ctx, orderNo)
		if o == nil {
			return nil, err
		}
		return &CreateResult{Order: o}, err
	}
	if errors.Is(err, ErrNotAwaitingApproval) && got != nil {
		return &CreateResult{Order: got}, err
	}
	if err != nil {
		return nil, err
	}
	s.mm.approvals.WithLabelValues("approved").Inc()
	s.log.InfoContext(ctx, "order approved by a manager; prepaying", "order_no", got.OrderNo, "amount_fen", got.AmountFen)
	res, err := s.prepay(detached(ctx), got, "approve", heldCount(got))
	if err != nil && res == nil {
		return &CreateResult{Order: got}, err
	}
	return res, err
}

// offeredMethods are the pay methods client is offered (Options.PayMethods);
// nil: both.
func (s *Service) offeredMethods(client string) []string {
	if s.opts.PayMethods == nil {
		return nil
	}
	return s.opts.PayMethods(client)
}

// Reject is a manager's no: the order becomes rejected (no WeChat Pay call was
// ever made for it), and its count of the day's orders goes back
// (heldCount). The user's next turn is told through the payment state.
// Past the approval deadline it is too late for a decision either way, as
// for Approve: the order is expired (what the sweep records) and returned
// with ErrApprovalExpired (a store that fails to record that expiry: its
// failure, as expiredDecision says). An order already decided is returned as
// it stands with ErrNotAwaitingApproval.
func (s *Service) Reject(ctx context.Context, orderNo string) (*store.Order, error) {
	got, _, err := s.update(ctx, orderNo, "reject", "", func(c *store.Order) (*store.Order, error) {
		if c.Status != store.StatusApprovalRequired {
			return nil, fmt.Errorf("%w: %s is %s", ErrNotAwaitingApproval, c.OrderNo, c.Status)
		}
		if s.heldExpired(c) {
			return nil, errHeldPastDeadline
		}
		c.Status = store.StatusRejected
		return c, nil
	})
	if errors.Is(err, errHeldPastDeadline) {
		return s.expiredDecision(ctx, orderNo)
	}
	if errors.Is(err, ErrNotAwaitingApproval) && got != nil {
		if got.Status == store.StatusRejected {
			// A rejection sent again (the manager's retry of one that
			// answered an error): the first one's give-back may have been
			// lost (the store failed for it, or the process died after the
			// write), leaving the user's count taken all day. Given again
			// here, the order's token takes it at most once.
			s.giveBack(ctx, heldCount(got))
		}
		return got, err
	}
	if err != nil {
		return nil, err
	}
	s.giveBack(ctx, heldCount(got))
	s.mm.approvals.WithLabelValues("rejected").Inc()
	s.log.InfoContext(ctx, "order rejected by a manager", "order_no", got.OrderNo, "amount_fen", got.AmountFen)
	return got, nil
}

// UserOrders lists one user's orders (of one client), newest first, at most
// limit (0: store.DefaultListLimit), with pending ones refreshed from WeChat
// Pay under the active query deadline (as a turn does). after, when not
// empty, is the number of the last order of the previous page: the list
// continues with the orders listed after it (ListOrders' exact cursor, so a
// walk sees every order once). An after that is not one of the user's own
// orders at this client is ErrBadCursor. more reports whether older orders
// follow the page.
func (s *Service) UserOrders(ctx context.Context, client, user, after string, limit int) (orders []*store.Order, more bool, err error) {
	if client == "" || user == "" {
		return nil, false, ErrUserRequired
	}
	if limit <= 0 {
		limit = store.DefaultListLimit
	}
	// One more than the page shows whether there are more.
	limit = min(limit, store.MaxListLimit-1)
	f := store.OrderFilter{Client: client, User: user, Limit: limit + 1}
	if after != "" {
		c, cerr := s.store.GetOrder(ctx, after)
		if errors.Is(cerr, store.ErrNotFound) || cerr == nil && (c.Client != client || c.User != user) {
			return nil, false, fmt.Errorf("%w: %q", ErrBadCursor, after)
		}
		if cerr != nil {
			return nil, false, fmt.Errorf("list orders after %s: %w", after, cerr)
		}
		f.Before, f.BeforeOrderNo = c.CreatedAt, c.OrderNo
	}
	if orders, err = s.ListOrders(ctx, f); err != nil {
		return nil, false, err
	}
	if len(orders) > limit {
		orders, more = orders[:limit], true
	}
	return s.refreshPending(ctx, orders, true), more, nil
}

// PayableParams returns what the payer needs for an order that can be paid
// now: JSAPI parameters for wx.requestPayment (freshly signed) or a Native
// code URL. An order that is not awaiting payment, or whose payment window
// has passed, returns nil, "" and no error. The turn injects these for an
// order a manager approved since the user's last message; GET
// /v1/paygate/orders shows them too. o may be an older copy (a turn's,
// read at its start): the order is read again first, so a turn that closed
// it meanwhile (a switch of pay method) never hands parameters for it
// beside the new order's.
func (s *Service) PayableParams(ctx context.Context, o *store.Order) (*wechatpay.RequestPayment, string, error) {
	if o == nil || o.Status != store.StatusAwaitingPayment || s.expired(o) {
		return nil, "", nil
	}
	cur, err := s.store.GetOrder(ctx, o.OrderNo)
	if err != nil {
		return nil, "", err
	}
	if o = cur; o.Status != store.StatusAwaitingPayment || s.expired(o) {
		return nil, "", nil
	}
	res, err := s.payable(ctx, o, true)
	if err != nil {
		return nil, "", err
	}
	return res.Payment, res.CodeURL, nil
}
