package payments

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"time"

	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// refresh is one background query of an order, shared by every turn that asks
// for it while it runs.
type refresh struct {
	done  chan struct{}
	order *store.Order
	// gap: started by an order read, which may leave the order to another
	// replica's query (askedElsewhere) and then queries nothing.
	gap bool
}

// RefreshPending actively queries WeChat Pay for the pending orders among
// orders (SPEC 2.4: on the user's next message) that are older than
// ActiveQueryAfter, waiting at most ActiveQueryDeadline. It returns orders with
// the ones answered in time replaced by their new state. A query past the
// deadline goes on in the background and its answer lands for the next turn.
// It is the user's message (a turn's payment state): an order queried less
// than ActiveQueryAfter ago (by an order read, or an earlier message) is
// queried again, not read as stored, so that a user who paid within the gap
// and whose notification is late or lost hears so on the message saying
// they paid. Order reads (Order, UserOrders), which a mini-program may poll
// every second, keep the gap (refreshPending).
func (s *Service) RefreshPending(ctx context.Context, orders []*store.Order) []*store.Order {
	return s.refreshPending(ctx, orders, false)
}

// refreshPending is RefreshPending; with gap, each order is queried actively
// at most once per ActiveQueryAfter (startRefresh), as order reads are.
func (s *Service) refreshPending(ctx context.Context, orders []*store.Order, gap bool) []*store.Order {
	out := append([]*store.Order(nil), orders...)
	type wait struct {
		i int
		r *refresh
	}
	var waits []wait
	now := s.now()
	for i, o := range orders {
		if o != nil && s.heldExpired(o) {
			// Held for a manager past its approval deadline: no decision
			// can come now (Approve expires it), so it is expired here, as
			// the sweep would, rather than read as waiting until the sweep
			// comes round: the model told the user they could pay once a
			// manager approved an order no manager could approve any more.
			// A store write, no WeChat Pay call (nothing was opened there).
			if r := s.startRefresh(ctx, o, false); r != nil {
				waits = append(waits, wait{i, r})
			}
			continue
		}
		if o == nil || !Pending(o.Status) {
			continue
		}
		if o.Status == store.StatusCreating && s.orphaned(o.OrderNo) {
			// Left by a process that died: nobody else will finish it.
		} else if now.Sub(o.CreatedAt) < s.opts.ActiveQueryAfter ||
			(o.Status == store.StatusCreating && now.Sub(creatingSince(o)) < s.opts.CreatingGrace) {
			continue
		}
		if s.queriesHeld(now) {
			// WeChat Pay said this replica calls it too often a moment
			// ago: another query now is one more for it to refuse, and
			// the turn would wait its deadline for that. Read as stored,
			// as a query past its deadline is; the notification settles
			// a payment meanwhile, and the next message past the gap
			// queries.
			s.m.reconcile.WithLabelValues("active_query", "held_rate_limited").Inc()
			continue
		}
		if r := s.startRefresh(ctx, o, gap); r != nil {
			waits = append(waits, wait{i, r})
		}
	}
	if len(waits) == 0 {
		return out
	}
	t := time.NewTimer(s.opts.ActiveQueryDeadline)
	defer t.Stop()
	for _, w := range waits {
		select {
		case <-w.r.done:
			if w.r.order != nil {
				out[w.i] = w.r.order
			}
		case <-t.C:
			s.m.reconcile.WithLabelValues("active_query", "deadline").Inc()
			return out
		case <-ctx.Done():
			return out
		}
	}
	return out
}

// UnsentRefunds returns orders, the user's payment state for a turn, with
// each refunding order whose reservation sent nothing as what it is
// (unsent), so that the model is not told of a refund in progress nobody
// sent. It is for what the model reads only (the payment state, and
// query_order's answer): a refund's own checks read the stored order,
// which stays reserved for the proposal (a tap goes on under it; another
// proposal is refused as a refund in progress).
func (s *Service) UnsentRefunds(ctx context.Context, orders []*store.Order) []*store.Order {
	var out []*store.Order
	for i, o := range orders {
		if o == nil || o.Status != store.StatusRefunding || o.RefundReservedBy == "" {
			continue
		}
		if u := s.unsent(ctx, o); u != nil {
			if out == nil {
				out = slices.Clone(orders)
			}
			out[i] = u
		}
	}
	if out == nil {
		return orders
	}
	return out
}

// unsent returns refunding order o as the user's turn should read it when
// its reservation sent nothing: a confirmation reserved it and stopped
// before spending the user's word (the replica died, the store failed), so
// its proposal is still open, or ended unused (cancelled, expired) and the
// reservation is on its way to being undone. Nothing went to WeChat Pay
// under it, since a refund is sent only by the confirmation that took its
// proposal: the order is what it was before (paid, or partially refunded),
// where "refund in progress" had the model tell the user to wait for a
// refund nobody sent (a tap on the proposal still goes on under the
// reservation, and request_refund gives the same proposal back). It
// returns a copy, the stored order untouched, or nil when the proposal was
// taken (its refund is on its way, or for a person) or its state could not
// be read in time (the order stays refunding, as stored). One store read,
// for refunding orders only, bounded by ActiveQueryDeadline.
func (s *Service) unsent(ctx context.Context, o *store.Order) *store.Order {
	rctx, cancel := context.WithTimeout(ctx, s.opts.ActiveQueryDeadline)
	defer cancel()
	p, state, err := s.store.RefundProposalState(rctx, o.RefundReservedBy)
	if err != nil || state == store.ProposalUsed || !reservedFor(o, p) {
		return nil
	}
	c := *o
	endRefund(&c)
	return &c
}

// startRefresh starts (or joins) the background query of o. It returns nil when
// the Service is closing, or, with gap, when this replica queried o less than
// ActiveQueryAfter ago (noteQueried): o is then read as stored. Without gap
// (the user's message) it queries without asking the shared store either,
// and still notes the query for the gap of the order reads that follow. A
// message joins only another message's query, never an order read's: that
// one may leave the order to another replica's query made before the user
// paid (askedElsewhere), and joined, the message said "I paid" and was
// told the order still awaited payment, its own query never made.
func (s *Service) startRefresh(ctx context.Context, o *store.Order, gap bool) *refresh {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.inflight[o.OrderNo]; ok && (gap || !r.gap) {
		return r
	}
	if at, ok := s.queried[o.OrderNo]; gap && ok && s.now().Sub(at) < s.opts.ActiveQueryAfter {
		s.m.reconcile.WithLabelValues("active_query", "gap").Inc()
		return nil
	}
	select {
	case <-s.stop:
		return nil
	default:
	}
	r := &refresh{done: make(chan struct{}), gap: gap}
	s.inflight[o.OrderNo] = r
	s.wg.Add(1)
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.BackgroundQueryTimeout)
	go func() {
		defer s.wg.Done()
		defer cancel()
		go func() {
			select {
			case <-s.stop:
				cancel()
			case <-bctx.Done():
			}
		}()
		var got *store.Order
		elsewhere := gap && s.askedElsewhere(bctx, o.OrderNo)
		if elsewhere {
			s.m.reconcile.WithLabelValues("active_query", "gap").Inc()
		} else {
			var err error
			got, err = s.reconcileSafely(bctx, o, "query")
			if err != nil {
				s.log.WarnContext(bctx, "active query failed", "order_no", o.OrderNo, "err", err)
				s.noteLimited(err)
			}
		}
		s.mu.Lock()
		r.order = got
		if s.inflight[o.OrderNo] == r { // a message's query may have taken the entry over
			delete(s.inflight, o.OrderNo)
		}
		if !elsewhere {
			// Left to another replica, the gap is that replica's query's:
			// noted here from now, it held this replica's reads up to a
			// second gap past it.
			s.noteQueried(o.OrderNo)
		}
		s.mu.Unlock()
		close(r.done)
	}()
	return r
}

// noteLimited records, when err is WeChat Pay's FREQUENCY_LIMITED (or a
// 429) after the call's retries, that it was answered now (queriesHeld).
func (s *Service) noteLimited(err error) {
	if !wechatpay.RateLimited(err) {
		return
	}
	s.mu.Lock()
	s.limitedAt = s.now()
	s.mu.Unlock()
}

// queriesHeld reports whether WeChat Pay answered one of this replica's
// queries FREQUENCY_LIMITED less than ActiveQueryAfter before now: the
// active queries of turns and order reads are held back until then, as
// the sweep ends its pass (sweepResumable). The limit is the merchant's,
// not an order's: each query of another order within it was one more call
// for WeChat Pay to refuse, retried by the client, while the turn waited
// ActiveQueryDeadline for it.
func (s *Service) queriesHeld(now time.Time) bool {
	s.mu.Lock()
	at := s.limitedAt
	s.mu.Unlock()
	return !at.IsZero() && now.Sub(at) < s.opts.ActiveQueryAfter
}

// minQueriedPrune is how many entries s.queried holds before noteQueried
// first looks for stale ones.
const minQueriedPrune = 256

// noteQueried records that orderNo was just queried actively (answered
// or failed), so that the order reads of the next ActiveQueryAfter read it
// as stored (SPEC 2.4: a pending order is queried on the user's next
// message when older than a few seconds, not on every read). Every read
// queried it: a mini-program polling its orders every second while its
// user paid, or many users of one bot, drove the merchant's query rate at
// WeChat Pay, which limits it per merchant (FREQUENCY_LIMITED), for
// nothing, since the notification settles a payment at once. A failed
// query counts too: asking again at once is what a rate-limited or failing
// WeChat Pay needs least. Entries past the gap are dropped once the map
// has doubled since the last look, so it holds about the orders queried in
// the last gap. s.mu must be held.
func (s *Service) noteQueried(orderNo string) {
	now := s.now()
	s.queried[orderNo] = now
	if len(s.queried) <= s.queriedPrune {
		return
	}
	for no, at := range s.queried {
		if now.Sub(at) >= s.opts.ActiveQueryAfter {
			delete(s.queried, no)
		}
	}
	s.queriedPrune = max(minQueriedPrune, 2*len(s.queried))
}

// askedElsewhere reports whether another replica sharing the store queried
// orderNo actively less than ActiveQueryAfter ago, and otherwise takes the
// gap for this replica: replicas behind one load balancer share a client's
// polls, and each queried on its own. One store round trip, only for a
// pending order this replica has not queried in the gap (never for a user
// without one); within another replica's gap, one for each read, since
// this replica cannot tell when that gap ends. A sole writer (the embedded
// store) has no other replica and makes none. A store that fails is
// answered false: a query is safe, and the turn should not lose a payment
// it would find to a store hiccup.
func (s *Service) askedElsewhere(ctx context.Context, orderNo string) bool {
	if s.opts.SoleWriter {
		return false
	}
	n, err := s.store.IncrCounter(ctx, activeQueryKey(orderNo), s.opts.ActiveQueryAfter)
	if err != nil {
		s.log.WarnContext(ctx, "active query gap not shared: store failed; querying", "order_no", orderNo, "err", err)
		return false
	}
	return n > 1
}

// activeQueryKey is the counter whose window is an order's active query gap
// across replicas.
func activeQueryKey(orderNo string) string { return "active-query:" + orderNo }

// reconcileSafely is reconcile on a goroutine of its own: a panic (in the
// SDK, or here) is logged and returned as an error. Unrecovered, it took the
// whole process down, every bot with it, and the refresh's waiters and later
// turns with a dead query in inflight. The sweep reconciles each order
// through it too: recovered only by sweepSafely, one order's panic ended
// the pass, on every pass, and the orders listed after it were never swept.
func (s *Service) reconcileSafely(ctx context.Context, o *store.Order, cause string) (got *store.Order, err error) {
	defer func() {
		if p := recover(); p != nil {
			msg := "active query panicked"
			if cause == "sweep" {
				msg = "sweep: order reconcile panicked"
			}
			s.log.ErrorContext(ctx, msg, "order_no", o.OrderNo, "panic", p, "stack", string(debug.Stack()))
			s.m.reconcile.WithLabelValues(cause, "error").Inc()
			got, err = o, fmt.Errorf("query %s: panic: %v", o.OrderNo, p)
		}
	}()
	return s.reconcile(ctx, o, cause)
}

// reconcileFailed counts a reconcile of action that failed under ctx
// (paygate_reconcile_total, outcome error), unless ctx was cancelled: a
// sweep stopped by the shutdown (or a caller gone) is no failure of the
// order, and counted one, every rolling deploy raised the error rate an
// operator alerts on. A timeout (BackgroundQueryTimeout) is a failure.
func (s *Service) reconcileFailed(ctx context.Context, action string) {
	if errors.Is(ctx.Err(), context.Canceled) {
		return
	}
	s.m.reconcile.WithLabelValues(action, "error").Inc()
}

// reconcile brings a pending order in line with WeChat Pay, and expires an
// order held for a manager past its approval deadline (expireHeld).
func (s *Service) reconcile(ctx context.Context, o *store.Order, cause string) (*store.Order, error) {
	switch o.Status {
	case store.StatusCreating:
		return s.resolveCreating(ctx, o, cause)
	case store.StatusApprovalRequired:
		if s.heldExpired(o) {
			return s.expireHeld(ctx, o.OrderNo)
		}
		return o, nil
	case store.StatusAwaitingPayment:
	default:
		return o, nil
	}
	tx, err := s.backend.QueryOrder(ctx, o.OrderNo)
	if errors.Is(err, wechatpay.ErrNotFound) {
		// Prepaid but unknown to WeChat Pay: nothing can be paid under it.
		// Past its deadline it is expired as every other expiry is (cause
		// "expire"), not under the sweep's or the query's name.
		if s.expired(o) {
			return s.setStatus(ctx, o, store.StatusExpired, "expire")
		}
		s.warnUnknown(ctx, o, cause)
		s.m.reconcile.WithLabelValues(cause, "not_found").Inc()
		return o, nil
	}
	if err != nil {
		s.reconcileFailed(ctx, cause)
		return o, fmt.Errorf("query %s: %w", o.OrderNo, err)
	}
	return s.settle(ctx, o, tx, cause)
}

// warnUnknown warns that o, awaiting payment and not past its deadline, is
// unknown to WeChat Pay. From the sweep it is paced as sweepFailed paces
// its warnings (sweepWarns: the first at once, the repeats within
// sweepWarnEvery left out and told as "suppressed" on the next): it was
// written on every pass for every such order until it expired, which may
// be hours, so 1,000 of them (a WeChat Pay sandbox or simulator restarted,
// a merchant id changed) wrote 1,000 lines a pass; paygate_reconcile_total
// {outcome="not_found"} still counts each. A user's own query (cause
// "query") keeps its line: one user's message asks it, at most once per
// ActiveQueryAfter per order (noteQueried), and it is the line an operator
// looks up for that user's order, which the sweep's pacing would hide.
func (s *Service) warnUnknown(ctx context.Context, o *store.Order, cause string) {
	const msg = "awaiting_payment order unknown to wechat pay"
	if cause == "sweep" {
		s.sweepWarns.Log(ctx, s.log, slog.LevelWarn, "awaiting_payment unknown", s.now(), msg, "order_no", o.OrderNo)
		return
	}
	s.log.WarnContext(ctx, msg, "order_no", o.OrderNo)
}

// settle applies a query result to o.
func (s *Service) settle(ctx context.Context, o *store.Order, tx *wechatpay.Transaction, cause string) (*store.Order, error) {
	switch tx.TradeState {
	case wechatpay.TradeSuccess, wechatpay.TradeRefund:
		// REFUND on a pending order is a refund paygate never made: the
		// fact carries it and applyPayment sends the order to needs_review.
		got, outcome, _, err := s.applyPayment(ctx, o.OrderNo, factFromTx(tx), cause, "")
		if err != nil {
			s.reconcileFailed(ctx, cause)
			return got, err
		}
		s.m.reconcile.WithLabelValues(cause, outcome).Inc()
		return got, nil
	case wechatpay.TradeClosed, wechatpay.TradeRevoked:
		if tx.TradeState == wechatpay.TradeClosed && s.expired(o) {
			// Past its deadline, the order was most likely closed by an
			// expiry that has not committed yet: another replica's sweep
			// (which closes at WeChat Pay first, then locally), met here by
			// this replica's sweep or a user's query. Recording it closed
			// would make the final status, the audit record and the
			// merchant's order.closed payload depend on which commits
			// first.
			return s.setStatus(ctx, o, store.StatusExpired, "expire")
		}
		return s.setStatus(ctx, o, store.StatusClosed, cause)
	case wechatpay.TradeUserPaying:
		s.m.reconcile.WithLabelValues(cause, "user_paying").Inc()
		return o, nil // the payer is entering a password: never close under them
	}
	// NOTPAY, PAYERROR
	if s.expired(o) {
		return s.closeAt(ctx, o, store.StatusExpired, "expire")
	}
	s.m.reconcile.WithLabelValues(cause, "unpaid").Inc()
	return o, nil
}

func (s *Service) expired(o *store.Order) bool {
	return !o.ExpiresAt.IsZero() && !s.now().Before(o.ExpiresAt)
}

// setStatus moves a pending order to status (closed or expired) locally.
func (s *Service) setStatus(ctx context.Context, o *store.Order, status store.OrderStatus, cause string) (*store.Order, error) {
	got, _, err := s.update(ctx, o.OrderNo, cause, "", func(c *store.Order) (*store.Order, error) {
		if !Pending(c.Status) {
			return nil, nil
		}
		c.Status = status
		return c, nil
	})
	if err != nil {
		s.reconcileFailed(ctx, cause)
		return got, err
	}
	s.m.reconcile.WithLabelValues(cause, string(got.Status)).Inc()
	return got, nil
}

// queryAndApply asks WeChat Pay for o after a close answered ORDERPAID and
// applies the answer, but never closes o again: a query that says it is
// unpaid (NOTPAY: a WeChat Pay replica that has not yet seen the payment)
// leaves o as it is, open, for the next reconciliation. Settled, an
// expired order's NOTPAY closed it again, was answered ORDERPAID again,
// and so on: a loop of requests until the caller's deadline. That answer
// is an error (the close was not confirmed), as ORDER_NOT_EXIST before the
// deadline is (closeAt): answered as an unpaid order, a purchase asked for
// again past its deadline handed the payer, who had paid, fresh payment
// parameters, and a switch of pay method closed it again round after
// round.
func (s *Service) queryAndApply(ctx context.Context, o *store.Order, cause string) (*store.Order, error) {
	tx, err := s.backend.QueryOrder(ctx, o.OrderNo)
	if err != nil {
		s.reconcileFailed(ctx, cause)
		return o, fmt.Errorf("query %s: %w", o.OrderNo, err)
	}
	switch tx.TradeState {
	case wechatpay.TradeSuccess, wechatpay.TradeRefund, wechatpay.TradeClosed, wechatpay.TradeRevoked, wechatpay.TradeUserPaying:
		return s.settle(ctx, o, tx, cause)
	}
	s.m.reconcile.WithLabelValues(cause, "paid_unconfirmed").Inc()
	s.log.WarnContext(ctx, "close answered ORDERPAID and the query says the order is unpaid; left open for the next reconciliation",
		"order_no", o.OrderNo, "trade_state", tx.TradeState)
	return o, fmt.Errorf("close %s at wechat pay: not confirmed: answered ORDERPAID, queried %s", o.OrderNo, tx.TradeState)
}

// minPayWindow is the shortest payment window WeChat Pay opens: a
// time_expire earlier than a minute after the order is placed is raised to
// that minute (its JSAPI and Native prepay documents).
const minPayWindow = time.Minute

// resolveCreating settles an order left in `creating` (a crash or an unknown
// prepay outcome) by its number: paid or closed at WeChat Pay → the same here;
// open or unknown there → prepay again with the same number and parameters
// (WeChat treats it as the same order), unless it has expired, then close;
// one WeChat Pay never opened is expired within its last minute too
// (minPayWindow). One whose pay method its client is no longer offered
// (methodOff) is never prepaid again: open at WeChat Pay, it is closed
// there, then here; never opened there, it is closed here (unopened).
func (s *Service) resolveCreating(ctx context.Context, o *store.Order, cause string) (*store.Order, error) {
	defer s.work(o.OrderNo)()
	tx, err := s.backend.QueryOrder(ctx, o.OrderNo)
	switch {
	case err == nil:
		switch tx.TradeState {
		case wechatpay.TradeSuccess, wechatpay.TradeRefund, wechatpay.TradeClosed, wechatpay.TradeRevoked, wechatpay.TradeUserPaying:
			return s.settle(ctx, o, tx, cause)
		}
		if s.expired(o) {
			return s.closeAt(ctx, o, store.StatusExpired, "expire")
		}
		if later, err := s.superseded(ctx, o); err != nil {
			s.reconcileFailed(ctx, "resolve_creating")
			return o, err
		} else if later != "" {
			// Open at WeChat Pay (its prepay's record was lost), and its
			// purchase moved on to a later generation's order: the user
			// holds no payment parameters of an order still creating, so
			// it is closed there (paid meanwhile: ORDERPAID, recorded
			// paid), then here, its count given back. Prepaid again, it
			// was a second payable order of the purchase beside that one.
			s.log.InfoContext(ctx, "creating order superseded by a later order of its purchase and open at wechat pay; closing it", "order_no", o.OrderNo, "later_order_no", later)
			got, err := s.closeAt(ctx, o, store.StatusClosed, "superseded")
			if err == nil && got.Status == store.StatusClosed {
				s.giveBack(ctx, heldCount(o))
			}
			return got, err
		}
		if s.methodOff(o) {
			// Open at WeChat Pay in a method the merchant took off: the
			// user holds no payment parameters of an order still
			// creating, so it is closed there (paid meanwhile: ORDERPAID,
			// recorded paid), then here, never handed out anew.
			s.log.InfoContext(ctx, "creating order's pay method no longer offered; closing it", "order_no", o.OrderNo, "pay_method", o.PayMethod)
			return s.closeAt(ctx, o, store.StatusClosed, "method_off")
		}
	case errors.Is(err, wechatpay.ErrNotFound):
		if s.expired(o) || s.now().Add(minPayWindow).After(o.ExpiresAt) {
			// Never opened at WeChat Pay, and past its deadline or within
			// its last minute: WeChat Pay raises a time_expire under a
			// minute after the order is placed to that minute, so opened
			// now it stayed payable there past the expires_at the user
			// was shown and the payment parameters given here (a payment
			// then was taken after the deadline).
			return s.unopened(ctx, o, store.StatusExpired, "expire")
		}
		if later, err := s.superseded(ctx, o); err != nil {
			s.reconcileFailed(ctx, "resolve_creating")
			return o, err
		} else if later != "" {
			// Never opened at WeChat Pay, and its purchase moved on to a
			// later generation's order: a claimer that stalled past its
			// claim's life and could not record its order closed when it
			// found so (createFresh). Prepaid now, the purchase had two
			// orders open at WeChat Pay.
			s.log.InfoContext(ctx, "creating order superseded by a later order of its purchase and never opened at wechat pay; closed", "order_no", o.OrderNo, "later_order_no", later)
			return s.unopened(ctx, o, store.StatusClosed, "superseded")
		}
		if s.methodOff(o) {
			// Never opened at WeChat Pay, in a method the merchant took
			// off: prepaid now, it opened a payable order the user's bot
			// no longer offers (or WeChat Pay refused it, NO_AUTH, for a
			// merchant without the product).
			s.log.InfoContext(ctx, "creating order's pay method no longer offered and never opened at wechat pay; closed", "order_no", o.OrderNo, "pay_method", o.PayMethod)
			return s.unopened(ctx, o, store.StatusClosed, "method_off")
		}
	default:
		s.reconcileFailed(ctx, "resolve_creating")
		return o, fmt.Errorf("query %s: %w", o.OrderNo, err)
	}
	res, err := s.prepay(ctx, o, cause, heldCount(o))
	if err != nil {
		s.reconcileFailed(ctx, "resolve_creating")
		if res != nil && res.Order != nil {
			return res.Order, err
		}
		return o, err
	}
	s.m.reconcile.WithLabelValues("resolve_creating", string(res.Order.Status)).Inc()
	return res.Order, nil
}

// superseded names a later order of o's purchase, made under a later
// generation of its claim after o (an abandoned number's record aside:
// abandonedNumber), or "" when there is none: the claim moved on past o,
// which can then never be the purchase's order again. Such an order was
// claimed after o's number was (its time, to the second, NewOrderNo),
// not after o's record was made: a claimer that stalled between its claim
// and its order (a slow look for the purchase's open order) dates its
// order at or past the one the purchase moved on to meanwhile, which a
// look back to o's CreatedAt alone passed over.
func (s *Service) superseded(ctx context.Context, o *store.Order) (string, error) {
	since := o.CreatedAt
	if t, ok := OrderNoTime(o.OrderNo); ok && t.Before(since) {
		since = t
	}
	f := store.OrderFilter{Client: o.Client, User: o.User, Limit: store.MaxListLimit}
	for {
		page, err := s.store.ListOrders(ctx, f)
		if err != nil {
			return "", fmt.Errorf("look for a later order of %s's purchase: %w", o.OrderNo, err)
		}
		for _, p := range page {
			if p.CreatedAt.Before(since) {
				return "", nil
			}
			if p.OrderNo != o.OrderNo && p.SKU == o.SKU && p.Quantity == o.Quantity && p.Generation > o.Generation && !abandonedNumber(p) {
				return p.OrderNo, nil
			}
		}
		if len(page) < f.Limit {
			return "", nil
		}
		last := page[len(page)-1]
		f.Before, f.BeforeOrderNo = last.CreatedAt, last.OrderNo
	}
}

// methodOff reports whether o's pay method is one its client is no longer
// offered (Options.PayMethods): a config changed since o was made.
func (s *Service) methodOff(o *store.Order) bool {
	m := s.offeredMethods(o.Client)
	return len(m) > 0 && !slices.Contains(m, o.PayMethod)
}

// unopened ends order o, still creating and unknown to WeChat Pay, as
// status (expired, or closed) with no WeChat Pay call: never opened there,
// nothing can be paid under it. Its count of the day's orders goes back,
// as a refused prepay's does: kept, it refused the user purchases for the
// rest of the day for an order that never was. Only an order still
// creating is ended here: one whose prepay another caller recorded since
// the query (the purchase asked again, in time) is open at WeChat Pay
// until its expires_at, and its payment parameters are with the user;
// ended here, unclosed there, a payment made in time landed on an order
// no longer pending (needs_review). It is returned as it stands, for the
// reconciliation that closes it at WeChat Pay.
func (s *Service) unopened(ctx context.Context, o *store.Order, status store.OrderStatus, cause string) (*store.Order, error) {
	got, ended, err := s.update(ctx, o.OrderNo, cause, "", func(c *store.Order) (*store.Order, error) {
		if c.Status != store.StatusCreating {
			return nil, nil
		}
		c.Status = status
		return c, nil
	})
	if err != nil {
		s.reconcileFailed(ctx, cause)
		return got, err
	}
	if ended {
		s.m.reconcile.WithLabelValues(cause, string(got.Status)).Inc()
		s.giveBack(ctx, heldCount(o))
	}
	return got, nil
}

// SweepStats counts one sweep's work.
type SweepStats struct {
	Checked int
	Changed int
	Errors  int
}

// Sweep reconciles every pending order once: `creating` ones older than
// CreatingGrace, awaiting_payment ones older than ActiveQueryAfter (paid,
// closed or expired at WeChat Pay become so here; expired ones are closed),
// orders held for a manager past their approval deadline (sweepHeld), and
// refunding ones whose refund notification is late (sweepRefunds), and
// the refunds still open on orders in review (sweepRefundsInReview). First
// it reads the orders of this replica's writes the store did not confirm
// (sweepUnacked), announcing those found applied. With a shared store, the
// `creating`, awaiting_payment and refunding orders (and those in review
// with a refund open) another replica swept less than a lease (sweepLease:
// SweepInterval, or twice BackgroundQueryTimeout when longer) ago are left
// to it (sweepLeases). A query WeChat Pay answers
// FREQUENCY_LIMITED ends the pass of its order's status (`creating`,
// awaiting_payment, refunding, or the refunds open in review), the next
// going on past that order (sweepResumable).
func (s *Service) Sweep(ctx context.Context) (SweepStats, error) {
	var st SweepStats
	s.sweepUnacked(ctx)
	// The `creating` orders this pass moved to awaiting_payment, which
	// the walk of awaiting_payment leaves to the next pass.
	moved := map[string]bool{}
	for _, status := range []store.OrderStatus{store.StatusCreating, store.StatusAwaitingPayment} {
		// Each status's walk ends at its own FREQUENCY_LIMITED: one
		// ended at the first left the other's orders unswept for as long
		// as WeChat Pay limited a `creating` order's query in each pass.
		if err := s.sweepStatus(ctx, status, &st, moved); err != nil {
			return st, err
		}
	}
	if err := s.sweepHeld(ctx, &st); err != nil {
		return st, err
	}
	if err := s.sweepRefunds(ctx, &st); err != nil {
		return st, err
	}
	if err := s.sweepRefundsInReview(ctx, &st); err != nil {
		return st, err
	}
	return st, nil
}

// sweepWarnEvery is how often the sweep warns of an order not reconciled
// for one kind of failure (sweepFailed).
const sweepWarnEvery = time.Minute

// sweepFailed warns that the sweep did not reconcile o, err being why:
// the first of a kind of failure (WeChat Pay refused, did not answer, or
// answered what is not trusted; anything else), told apart by WeChat
// Pay's code or HTTP status when it answered, at once, its repeats
// within sweepWarnEvery left out and told as "suppressed" on the next.
// A fault of the merchant's (a wrong key, a clock off, a proxy answering
// for WeChat Pay) fails every order, and a warning each, beside the
// client's ALERT, wrote 1,000 lines a pass with 1,000 pending orders; the
// sweep's own line counts its errors, and paygate_reconcile_total each.
// Paced by the kind alone, the FREQUENCY_LIMITED that ends a pass (which
// has its own warning) left out the first SYSTEM_ERROR after it, as a
// SIGN_ERROR left out an order's own refusal (PARAM_ERROR).
func (s *Service) sweepFailed(ctx context.Context, o *store.Order, err error) {
	kind := "other"
	switch {
	case errors.Is(err, wechatpay.ErrRejected):
		kind = "rejected"
	case errors.Is(err, wechatpay.ErrTemporary):
		kind = "unavailable"
	case errors.Is(err, wechatpay.ErrUnverified):
		kind = "unverified"
	}
	var ae *wechatpay.APIError
	if errors.As(err, &ae) {
		// WeChat Pay's codes (and the HTTP statuses of answers without
		// one) are a short list: the pacing's entries stay few.
		kind = fmt.Sprintf("%s %d %.40s", kind, ae.StatusCode, ae.Code)
	}
	s.sweepWarns.Log(ctx, s.log, slog.LevelWarn, kind, s.now(), "sweep: order not reconciled",
		"order_no", o.OrderNo, "status", o.Status, "err", err)
}

// errSweepStop ends a walk of sweepResumable's before its last page.
var errSweepStop = errors.New("sweep: walk ends here")

// sweepStatus reconciles the due orders in status (creating or
// awaiting_payment), newest first. When WeChat Pay answers one
// FREQUENCY_LIMITED (or 429) through its retries, the pass ends there
// (sweepResumable): WeChat Pay asks the merchant to slow down, and the pass
// went on querying every pending order, each three times, so 1,000 pending
// orders made 3,000 calls into a WeChat Pay asking for fewer. A `creating`
// order it resolves to awaiting_payment goes into moved, and the walk of
// awaiting_payment leaves the orders in moved alone: it listed them again
// and queried them at once, a second call for an order WeChat Pay had just
// answered, and the pass's line counted the order checked twice.
func (s *Service) sweepStatus(ctx context.Context, status store.OrderStatus, st *SweepStats, moved map[string]bool) error {
	return s.sweepResumable(ctx, status, func(page []*store.Order) error {
		var due []*store.Order
		for _, o := range page {
			age := s.now().Sub(o.CreatedAt)
			orphan := status == store.StatusCreating && s.orphaned(o.OrderNo)
			if moved[o.OrderNo] || !orphan && ((status == store.StatusCreating && s.now().Sub(creatingSince(o)) < s.opts.CreatingGrace) || age < s.opts.ActiveQueryAfter) {
				continue
			}
			due = append(due, o)
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
			st.Checked++
			octx, cancel := context.WithTimeout(ctx, s.opts.BackgroundQueryTimeout)
			got, err := s.reconcileSafely(octx, o, "sweep")
			cancel()
			if err != nil {
				if ctx.Err() == nil { // stopped, nothing failed
					st.Errors++
					s.sweepFailed(ctx, o, err)
				}
				if ctx.Err() == nil && wechatpay.RateLimited(err) {
					s.noteLimited(err)
					return s.sweepLimitedAt(ctx, mine[i:])
				}
				s.releaseSweepLease(ctx, o)
				continue
			}
			if got != nil && got.Status != o.Status {
				st.Changed++
				if got.Status == store.StatusAwaitingPayment {
					moved[o.OrderNo] = true
				}
			}
		}
		return nil
	})
}

// sweepLimited ends a pass of sweepResumable's at the order whose query
// WeChat Pay answered FREQUENCY_LIMITED.
type sweepLimited struct{ o *store.Order }

func (e *sweepLimited) Error() string { return "sweep: rate limited at " + e.o.OrderNo }

// sweepLimitedAt ends a pass at rest[0], the order whose query WeChat Pay
// answered FREQUENCY_LIMITED (or 429) through its retries: the leases of
// rest (that order and those of its page not reached) go back, for the
// next pass of any replica, and a warning says so. Its error, returned by
// a visit of sweepResumable's, ends that pass there.
func (s *Service) sweepLimitedAt(ctx context.Context, rest []*store.Order) error {
	o := rest[0]
	s.releaseSweepLease(ctx, rest...)
	s.log.WarnContext(ctx, "sweep: wechat pay says the merchant calls it too often (FREQUENCY_LIMITED); this pass ends here, and the next goes on from this order",
		"order_no", o.OrderNo, "status", o.Status, "left", len(rest)-1)
	return &sweepLimited{o}
}

// sweepResumable calls visit with the pages of the orders in status,
// newest first, as eachPage does, for a sweep whose pass ends at an order
// WeChat Pay answered FREQUENCY_LIMITED (visit returns sweepLimitedAt's
// error): the pending orders (sweepStatus), the late refunds
// (sweepRefunds) and those open on orders in review
// (sweepRefundsInReview). The order it ended at is remembered
// (sweepFrom): the next pass starts past it and comes round to it, and
// the orders before it, last, so each pass goes on where the last stopped
// and no order waits for ever behind the ones listed before it.
func (s *Service) sweepResumable(ctx context.Context, status store.OrderStatus, visit func([]*store.Order) error) error {
	limited := false
	s.mu.Lock()
	from := s.sweepFrom[status]
	s.mu.Unlock()
	walk := func(page []*store.Order) error {
		err := visit(page)
		var lim *sweepLimited
		if !errors.As(err, &lim) {
			return err
		}
		limited = true
		s.mu.Lock()
		if s.sweepFrom == nil {
			s.sweepFrom = map[store.OrderStatus]store.OrderFilter{}
		}
		s.sweepFrom[status] = store.OrderFilter{Before: lim.o.CreatedAt, BeforeOrderNo: lim.o.OrderNo}
		s.mu.Unlock()
		return errSweepStop
	}
	err := s.eachPageFrom(ctx, status, from, walk)
	if err == nil && !from.Before.IsZero() {
		// Round to the order the last pass ended at, itself included.
		err = s.eachPageFrom(ctx, status, store.OrderFilter{}, func(page []*store.Order) error {
			n := 0
			for n < len(page) && !from.PastCursor(page[n]) {
				n++
			}
			if err := walk(page[:n]); err != nil || n < len(page) {
				if err == nil {
					err = errSweepStop
				}
				return err
			}
			return nil
		})
	}
	if errors.Is(err, errSweepStop) {
		err = nil
	}
	if err == nil && !limited && !from.Before.IsZero() {
		s.mu.Lock()
		delete(s.sweepFrom, status)
		s.mu.Unlock()
	}
	return err
}

// sweepLeases returns the orders of due this replica's sweep is to
// reconcile now. With a shared store (Redis replicas, not SoleWriter) it
// takes each order's lease for sweepLease (an interval, or two of the
// order's reconciles when longer), or renews its own, and returns those it
// holds: every replica swept every pending order on its
// own tick, so N replicas sent WeChat Pay N queries (and closes, and
// re-prepays of a `creating` one) per order per interval, against the
// merchant's query rate, which WeChat Pay limits (FREQUENCY_LIMITED). The
// replica that took an order keeps it from pass to pass; one that stops
// (it died) holds it no longer than that, after which the next
// replica's pass takes it. One store round trip for the page, none for a
// page with nothing due. A sole writer (the embedded store) has no other
// replica and makes none. A store that fails leaves every order due to
// this replica, as askedElsewhere does: a query is safe, and a sweep
// should not skip a payment it would find for a store hiccup.
func (s *Service) sweepLeases(ctx context.Context, due []*store.Order) []*store.Order {
	if s.opts.SoleWriter || len(due) == 0 {
		return due
	}
	keys := make([]string, len(due))
	for i, o := range due {
		keys[i] = sweepLeaseKey(o.OrderNo)
	}
	held, err := s.store.TakeLeases(ctx, s.holder, keys, s.sweepLease())
	if err == nil && len(held) != len(due) {
		err = fmt.Errorf("%d answers for %d leases", len(held), len(due))
	}
	if err != nil {
		s.log.WarnContext(ctx, "sweep: orders not divided among replicas: store failed; sweeping them all", "orders", len(due), "err", err)
		return due
	}
	mine := make([]*store.Order, 0, len(due))
	for i, o := range due {
		if held[i] {
			mine = append(mine, o)
		}
	}
	if n := len(due) - len(mine); n > 0 {
		s.m.reconcile.WithLabelValues("sweep", "elsewhere").Add(float64(n))
	}
	return mine
}

// keepLease reports whether this replica's sweep still holds orderNo's
// lease, taken with its page's at taken, so may reconcile it now. A pass
// reconciles a page's orders one after the other, and one that ran long
// (many pending orders, a slow WeChat Pay) outlived the leases of those it
// had not reached yet: another replica's tick took them, and both replicas
// asked WeChat Pay about them (closed them, sent their refunds again) at
// once. From half a lease (sweepLease) after taken, it is renewed before the
// order is reconciled (one store round trip), and an order another replica
// took meanwhile is left to it. A sole writer takes none; a store that
// fails leaves the order to this replica, as sweepLeases does.
func (s *Service) keepLease(ctx context.Context, orderNo string, taken time.Time) bool {
	if s.opts.SoleWriter || s.now().Sub(taken) < s.sweepLease()/2 {
		return true
	}
	held, err := s.store.TakeLeases(ctx, s.holder, []string{sweepLeaseKey(orderNo)}, s.sweepLease())
	if err == nil && len(held) != 1 {
		err = fmt.Errorf("%d answers for 1 lease", len(held))
	}
	if err != nil {
		s.log.WarnContext(ctx, "sweep: lease not renewed: store failed; sweeping the order", "order_no", orderNo, "err", err)
		return true
	}
	if !held[0] {
		s.m.reconcile.WithLabelValues("sweep", "elsewhere").Inc()
	}
	return held[0]
}

// sweepLease is how long a sweep takes an order's lease for: an interval,
// and never less than two of the order's reconciles (each bounded by
// BackgroundQueryTimeout), so that one started with half of it left (or
// renewed, keepLease) ends while the lease holds. Taken for a short
// interval alone (sweep_interval may be a second), it ran out while its
// holder was still asking WeChat Pay about the order, and the next
// replica's tick took the order and asked, closed or sent its refund
// again beside it.
func (s *Service) sweepLease() time.Duration {
	return max(s.opts.SweepInterval, 2*s.opts.BackgroundQueryTimeout)
}

// releaseSweepLease gives back this replica's sweep leases of orders after
// their reconcile failed, so the next pass of any replica takes them: the
// holder renews its lease at each pass, so a replica whose every query
// fails (it cannot reach WeChat Pay) kept the order from the replicas that
// can for as long as it lived. So too when the sweep is stopped (ctx ended:
// a shutdown) with orders taken and not reconciled: they were held for
// the rest of the lease by a process that was gone. The leases are cut to
// a millisecond (the store has no release), in one call under a context
// of its own, which the stop does not end; a store that fails leaves them
// to run out.
func (s *Service) releaseSweepLease(ctx context.Context, orders ...*store.Order) {
	if s.opts.SoleWriter || len(orders) == 0 {
		return
	}
	keys := make([]string, len(orders))
	for i, o := range orders {
		keys[i] = sweepLeaseKey(o.OrderNo)
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaseBackTimeout)
	defer cancel()
	if _, err := s.store.TakeLeases(lctx, s.holder, keys, time.Millisecond); err != nil {
		s.log.WarnContext(ctx, "sweep: leases not given back", "orders", len(orders), "order_no", orders[0].OrderNo, "err", err)
	}
}

// leaseBackTimeout bounds releaseSweepLease's store call.
const leaseBackTimeout = 2 * time.Second

// sweepLeaseKey is the lease by which one replica sweeps orderNo for an
// interval.
func sweepLeaseKey(orderNo string) string { return "sweep:" + orderNo }

// sweepHeld expires the orders held for a manager past their approval
// deadline (Rules.ApprovalTTL), so none waits in the queue for ever and the
// user's state says it lapsed. Only those past it count as checked.
func (s *Service) sweepHeld(ctx context.Context, st *SweepStats) error {
	return s.eachOrder(ctx, store.StatusApprovalRequired, func(o *store.Order) {
		if !s.heldExpired(o) {
			return
		}
		st.Checked++
		got, err := s.expireHeld(ctx, o.OrderNo)
		if err != nil {
			st.Errors++
			s.log.WarnContext(ctx, "sweep: held order not expired", "order_no", o.OrderNo, "err", err)
			return
		}
		if got.Status != o.Status {
			st.Changed++
		}
	})
}

// defaultSweepPage is how many orders a sweep reads at a time.
const defaultSweepPage = 200

// eachOrder calls fn with every order in status, newest first, a page at a
// time (eachPage), until ctx ends.
func (s *Service) eachOrder(ctx context.Context, status store.OrderStatus, fn func(*store.Order)) error {
	return s.eachPage(ctx, status, func(page []*store.Order) error {
		for _, o := range page {
			if err := ctx.Err(); err != nil {
				return err
			}
			fn(o)
		}
		return nil
	})
}

// eachPage calls fn with every page of the orders in status, newest first,
// until fn fails. It pages with the exact cursor, the last order's
// CreatedAt and OrderNo: a time alone skips, on every sweep, the orders
// created at the same instant as a page's last one that did not fit on it.
// The orders fn moves out of status do not disturb the cursor, which names a
// position, not an offset.
func (s *Service) eachPage(ctx context.Context, status store.OrderStatus, fn func([]*store.Order) error) error {
	return s.eachPageFrom(ctx, status, store.OrderFilter{}, fn)
}

// eachPageFrom is eachPage from the orders past from's cursor (Before,
// BeforeOrderNo; none: the newest).
func (s *Service) eachPageFrom(ctx context.Context, status store.OrderStatus, from store.OrderFilter, fn func([]*store.Order) error) error {
	f := store.OrderFilter{Status: status, Limit: s.sweepPage, Before: from.Before, BeforeOrderNo: from.BeforeOrderNo}
	for {
		page, err := s.store.ListOrders(ctx, f)
		if err != nil {
			return fmt.Errorf("sweep: list %s: %w", status, err)
		}
		if err := fn(page); err != nil {
			return err
		}
		if len(page) == 0 || len(page) < f.Limit {
			return nil
		}
		last := page[len(page)-1]
		if !f.PastCursor(last) {
			// A store that does not honour the cursor would page for ever.
			return fmt.Errorf("sweep: list %s: page did not move past %s %s", status, f.Before.Format(time.RFC3339Nano), f.BeforeOrderNo)
		}
		f.Before, f.BeforeOrderNo = last.CreatedAt, last.OrderNo
	}
}

// RunSweeper sweeps at once (repairing what a crash left) and then every
// SweepInterval until ctx is cancelled.
func (s *Service) RunSweeper(ctx context.Context) {
	t := time.NewTicker(s.opts.SweepInterval)
	defer t.Stop()
	for {
		s.sweepSafely(ctx)
		select {
		case <-ctx.Done():
			return
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// sweepSafely is one pass of RunSweeper's: Sweep, a panic logged, and the
// pass's line, whose stats it returns.
func (s *Service) sweepSafely(ctx context.Context) (st SweepStats) {
	defer func() {
		if p := recover(); p != nil {
			s.log.ErrorContext(ctx, "sweep panicked", "panic", p, "stack", string(debug.Stack()))
		}
	}()
	st, err := s.Sweep(ctx)
	if err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "sweep failed", "err", err)
	}
	if st.Checked > 0 {
		s.log.InfoContext(ctx, "sweep", "checked", st.Checked, "changed", st.Changed, "errors", st.Errors)
	}
	return st
}
