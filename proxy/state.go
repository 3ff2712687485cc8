package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// StateStore is what a turn needs from the store: the user's payment state
// in one round trip, the kept payment exchanges of mixed rounds (SPEC 3.7)
// and a counter that makes each announcement (payment confirmed, payment
// parameters) made once.
type StateStore interface {
	LoadUserState(ctx context.Context, client, user string) (*store.UserState, error)
	PutExchange(ctx context.Context, key string, data []byte, ttl time.Duration) error
	GetExchange(ctx context.Context, key string) ([]byte, error)
	IncrCounter(ctx context.Context, key string, ttl time.Duration) (int64, error)
}

// Reconciler queries pending orders on the user's next message, under a short
// deadline, and signs fresh payment parameters for an order that became
// payable outside a turn (a manager's approval); *payments.Service
// implements it.
type Reconciler interface {
	RefreshPending(ctx context.Context, orders []*store.Order) []*store.Order
	PayableParams(ctx context.Context, o *store.Order) (*wechatpay.RequestPayment, string, error)
}

var (
	_ StateStore = (store.Store)(nil)
	_ Reconciler = (*payments.Service)(nil)
)

// exchangeTTL bounds how long a mixed round's payment exchange waits for the
// bot's next request.
const exchangeTTL = 24 * time.Hour

// announcedTTL is how long the "announced:" and "payable:" counters live,
// from their first increment: the store restarts a counter at 1 once it
// expires, so it alone cannot make an announcement once-ever.
const announcedTTL = 30 * 24 * time.Hour

// stateTimeout bounds the store reads a turn makes before its upstream
// call: once the kept payment exchanges it restores, together, and once the
// user's payment state. Each read is one round trip, a millisecond or so on a healthy
// store; a store that accepts connections but does not answer (a paused or
// stalled Redis) would otherwise hold every chat turn for as long as the
// request lasts, where chat without payment state must go on (SPEC 6). A
// constant, not a setting: it only has to be far above a healthy round
// trip and short beside a turn; the model hears no payment state for the
// turn that runs past it, and payment tools still fail closed on their own.
const stateTimeout = time.Second

// stateCtx is ctx bounded by stateTimeout, for a store that could stop
// answering. A store.Local one (the embedded file) is read without it: the
// deadline would cost a timer and four allocations on every turn and bound
// nothing (its driver checks a context only on entry).
func (s *Server) stateCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.localState {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, stateTimeout)
}

// markTimeout bounds markDelivered's store writes, made after the answer
// left and whatever the client does.
const markTimeout = 5 * time.Second

// announceWindow is how long after the event that makes an order
// announceable (its payment, PaidAt; its becoming payable, UpdatedAt of an
// awaiting_payment order) a turn may still announce it. It is shorter than
// announcedTTL by a day, and the first announcement (the counter's first
// increment) comes at or after that event, so the counter outlives the
// order's eligibility: each order is announced at most once, ever, however
// long it stays among the user's recent orders (a monthly subscriber's
// paid orders do). The day of margin covers clock skew between replicas and
// WeChat Pay's success_time. A user whose first turn comes after the window
// hears nothing: the order list and the merchant's order.paid webhook are
// the reliable channels (README).
const announceWindow = announcedTTL - 24*time.Hour

// loadState reads the user's orders (one store round trip, by stateTimeout),
// refreshes the pending ones under the reconciler's deadline, and returns them with the store's time of the read (the clock
// its counters expire by; time.Now for a store that does not say). A store
// that is down or does not answer by then yields no state: chat goes on,
// payment tools fail closed.
func (s *Server) loadState(ctx context.Context, reqID string, c payments.Caller) ([]*store.Order, time.Time) {
	if s.state == nil {
		return nil, time.Time{}
	}
	lctx, cancel := s.stateCtx(ctx)
	st, err := s.state.LoadUserState(lctx, c.Client, c.User)
	cancel()
	if err != nil {
		s.metrics.stateUnavailable.Inc()
		s.log.Warn("payment state unavailable; the turn goes on without it", "request_id", reqID, "err", err)
		return nil, time.Time{}
	}
	now := st.Now
	if now.IsZero() {
		now = time.Now()
	}
	orders := st.Orders
	if s.reconciler != nil && len(orders) > 0 {
		orders = s.reconciler.RefreshPending(ctx, orders)
	}
	return orders, now
}

// plainStatus names an order's state in the words the model reads.
func plainStatus(o *store.Order) string {
	switch o.Status {
	case store.StatusCreating:
		return "being created"
	case store.StatusAwaitingPayment:
		return "awaiting payment"
	case store.StatusPaid:
		return "paid"
	case store.StatusClosed:
		return "closed without payment"
	case store.StatusExpired:
		return "expired without payment"
	case store.StatusApprovalRequired:
		return "waiting for a manager's approval"
	case store.StatusRejected:
		return "rejected by a manager"
	case store.StatusRefunding:
		return "paid, refund in progress"
	case store.StatusPartiallyRefunded:
		return "paid, partially refunded (" + payments.FormatAmount(o.RefundedFen, o.Currency) + " refunded)"
	case store.StatusRefunded:
		return "refunded"
	case store.StatusNeedsReview:
		return "under review by staff"
	}
	return string(o.Status)
}

// settled reports an order whose state will not change without someone
// acting: once it is old, it is no longer worth the model's attention.
func settled(s store.OrderStatus) bool {
	switch s {
	case store.StatusPaid, store.StatusClosed, store.StatusExpired, store.StatusRejected,
		store.StatusRefunded, store.StatusPartiallyRefunded:
		return true
	}
	return false
}

// stateMessage renders the payment-state system message, or "" when there
// is nothing current to say.
func stateMessage(orders []*store.Order, now time.Time, settledAfter time.Duration) string {
	var lines []string
	for _, o := range orders {
		if settled(o.Status) && now.Sub(o.UpdatedAt) > settledAfter {
			continue
		}
		line := fmt.Sprintf("- order %s: %s ×%d, %s — %s", o.OrderNo, o.Description, o.Quantity,
			payments.FormatAmount(o.AmountFen, o.Currency), plainStatus(o))
		if o.Status == store.StatusPaid && !o.PaidAt.IsZero() {
			line += " (paid at " + o.PaidAt.UTC().Format(time.RFC3339) + ")"
		}
		lines = append(lines, line)
	}
	if len(lines) == 0 {
		return ""
	}
	return "Payment state of this user, from the payment system (authoritative; it changes only through payments, not through what anyone says):\n" +
		strings.Join(lines, "\n") +
		"\nDo not create a new order for something listed as paid or awaiting payment; refer to the order number instead."
}

// announcement is something a turn tells the user once (SPEC 2.3):
// payment_confirmed for an order paid since ("announced:" counter), or
// order_created with fresh payment parameters for an order that became
// payable outside a turn, a manager having approved it ("payable:").
type announcement struct {
	kind  string // the counter's prefix
	order *store.Order
}

// pendingAnnouncements lists what the user may not have heard of yet: the
// orders within announceWindow of their payment or of becoming payable, as
// of now (the store's clock). It writes nothing: a turn claims them (claim)
// only when its answer is about to leave, so a turn that fails before tells
// nothing and uses nothing up, and the next turn announces them.
func (s *Server) pendingAnnouncements(orders []*store.Order, now time.Time) []announcement {
	var out []announcement
	for _, o := range orders {
		switch {
		case payments.PaidOrLater(o.Status) && o.Status != store.StatusNeedsReview:
			// PaidAt never moves once set. A record without one (older
			// than PaidAt) is judged by CreatedAt, which is earlier: its
			// window can only end sooner.
			paid := o.PaidAt
			if paid.IsZero() {
				paid = o.CreatedAt
			}
			if now.Sub(paid) < announceWindow {
				out = append(out, announcement{"announced:", o})
			}
		case o.Status == store.StatusAwaitingPayment && s.reconciler != nil:
			// An awaiting_payment order is never rewritten in that state
			// (its next write moves it on), so its UpdatedAt is when it
			// became payable.
			if now.Sub(o.UpdatedAt) < announceWindow {
				out = append(out, announcement{"payable:", o})
			}
		}
	}
	return out
}

// claim returns the actions for the pending announcements this turn is the
// first to make, each marked announced by a store counter as it is
// claimed: of two turns of one user that race, only one announces. own are
// the turn's own actions; an order they hand payment parameters for is not
// announced again (markDelivered marks it). Called right before the answer
// is written: what a turn claimed, it delivers.
func (s *Server) claim(ctx context.Context, pending []announcement, own []json.RawMessage) []json.RawMessage {
	var out []json.RawMessage
	for _, p := range pending {
		o := p.order
		if p.kind == "payable:" && handsPayment(own, o.OrderNo) {
			continue
		}
		if p.kind == "announced:" {
			if !s.firstTime(ctx, p.kind, o.OrderNo) {
				continue
			}
			b, _ := json.Marshal(map[string]any{"type": "payment_confirmed", "order": payments.OrderView(o)})
			out = append(out, b)
			continue
		}
		// The payment parameters first, then the claim: claimed first, a
		// failure to get them (WeChat Pay slow, the store) used the order's
		// one announcement up, and the user never got them.
		rp, codeURL, err := s.reconciler.PayableParams(ctx, o)
		if err != nil || (rp == nil && codeURL == "") || !s.firstTime(ctx, p.kind, o.OrderNo) {
			continue
		}
		a := map[string]any{"type": "order_created", "order": payments.OrderView(o)}
		if rp != nil {
			a["request_payment"] = rp
		}
		if codeURL != "" {
			a["code_url"] = codeURL
		}
		b, _ := json.Marshal(a)
		out = append(out, b)
	}
	return out
}

// handsPayment reports whether one of actions hands the user payment
// parameters (order_created): for order orderNo, or for any when orderNo is
// "".
func handsPayment(actions []json.RawMessage, orderNo string) bool {
	for _, a := range actions {
		if gjson.GetBytes(a, "type").Str == "order_created" && (orderNo == "" || gjson.GetBytes(a, "order.order_no").Str == orderNo) {
			return true
		}
	}
	return false
}

// firstTime reports whether this is the first time kind was announced for
// an order. A store error counts as "not first": announcing twice is worse
// than announcing late (the order list has it anyway).
func (s *Server) firstTime(ctx context.Context, kind, orderNo string) bool {
	n, err := s.state.IncrCounter(ctx, kind+orderNo, announcedTTL)
	return err == nil && n == 1
}

// markDelivered records, once the answer carrying them left, that a turn
// handed the user payment parameters (its own order_created actions), so a
// later turn does not announce them again. A turn that failed marks
// nothing: the next turn announces the order as payable. The answer has
// left, so the client may hang up at once (go-openai closes its connection
// at [DONE]), which cancels the request's context: the marks are written
// without it, within markTimeout, or the next turn handed the same order
// again.
func (s *Server) markDelivered(ctx context.Context, actions []json.RawMessage) {
	if s.state == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
	defer cancel()
	for _, a := range actions {
		if gjson.GetBytes(a, "type").Str != "order_created" {
			continue
		}
		if no := gjson.GetBytes(a, "order.order_no").Str; no != "" {
			s.firstTime(ctx, "payable:", no)
		}
	}
}

// exchangeKey names a kept payment exchange: scoped to the client, user and
// session, keyed by one of the client's own tool-call ids, so parallel
// conversations of one user cannot mix even where a provider's call ids
// repeat across conversations (Kimi K2's "functions.<name>:<n>").
func exchangeKey(c payments.Caller, callID string) string {
	return "exchange:" + c.Client + "\x00" + c.User + "\x00" + c.Session + "\x00" + callID
}

var errNoExchange = errors.New("no kept exchange")

// lookupExchange finds the kept exchange for a client tool-call id.
func (s *Server) lookupExchange(ctx context.Context, c payments.Caller, callID string) ([]byte, error) {
	if s.state == nil {
		return nil, errNoExchange
	}
	b, err := s.state.GetExchange(ctx, exchangeKey(c, callID))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoExchange
	}
	return b, err
}
