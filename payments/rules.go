package payments

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// Rule errors: a payment tool call the rules refuse. Each becomes a tool
// result the model can explain; nothing reached WeChat Pay.
var (
	// ErrRateLimited: the user made more payment tool calls in the last
	// minute than payments.rules.max_payment_calls_per_minute allows.
	ErrRateLimited = errors.New("too many payment calls")
	// ErrDailyLimit: the user already has payments.rules.max_orders_per_user_per_day
	// orders today (China Standard Time).
	ErrDailyLimit = errors.New("daily order limit reached")
)

// Rules are the business limits of SPEC 4, checked before any WeChat Pay
// call. The per-SKU maximum quantity lives in the Catalog and the SKU
// allow-list in Caller.AllowedSKUs. A zero Rules checks nothing.
type Rules struct {
	// ApprovalAboveFen: an order whose amount is strictly above it is stored
	// as approval_required and prepaid only when a manager approves it; an
	// order of exactly this amount is prepaid at once. nil: no approval rule
	// (cmd maps payments.rules.approval_above, default 500.00 CNY).
	ApprovalAboveFen *int64
	// MaxOrdersPerUserPerDay caps the orders one user (of one client) creates
	// per calendar day in China Standard Time; repeats of a live purchase
	// return its order and do not count. 0: no cap.
	MaxOrdersPerUserPerDay int
	// MaxPaymentCallsPerMinute caps one user's payment tool calls (every
	// payment tool, query_order included) in any minute (a sliding window:
	// one started by the first call let twice the cap through around its
	// end), so a looping model cannot hammer WeChat Pay. A refused call is
	// not counted. A create_order that hands back its purchase's order
	// (RepeatsPurchase) reaches no WeChat Pay: it is not counted, and past
	// the cap still runs; nor is one answered with a clarification. 0: no
	// cap.
	MaxPaymentCallsPerMinute int
	// ApprovalTTL is how long an order held for a manager waits for the
	// decision (payments.rules.approval_ttl; 0: DefaultApprovalTTL). A yes
	// long after the ask would open, and announce to the user, a payment for
	// a purchase they may have forgotten or bought again since; past it the
	// sweep expires the order and Approve refuses it.
	ApprovalTTL time.Duration
}

// FenPtr returns a pointer to fen, for Rules.ApprovalAboveFen.
func FenPtr(fen int64) *int64 { return &fen }

// chinaTime is UTC+8 without a tzdata dependency: China has no DST, and
// "per day" means the merchant's day.
var chinaTime = time.FixedZone("CST", 8*3600)

// dailyCounterTTL outlives the day a daily counter counts, so it cannot reset
// early; the date in its key starts the next day afresh.
const dailyCounterTTL = 48 * time.Hour

// switchGuardTTL is how long a switch's guard (countReplacement) lives from
// its first raise: far longer than the two quick store writes it guards,
// and short enough that a guard left raised with no mark (the replica died
// between them, or the store failed and its give-back failed too) lapses
// within minutes. It lived as long as the day's counter, and every switch
// and renewal of the order was "in progress" for the rest of its life.
// The mark, read first, answers every later caller once it is written,
// and a holder stalled past the guard's life keeps no second count
// (switchKept).
const switchGuardTTL = time.Minute

// defaultSwitchWait is Service.switchWait: a switch's count is two quick
// store writes, so a waiter that sees none for this long finds its counter
// stalled or gone.
const defaultSwitchWait = 3 * time.Second

// needsApproval reports whether an order of amount waits for a manager.
func (r Rules) needsApproval(amountFen int64) bool {
	return r.ApprovalAboveFen != nil && amountFen > *r.ApprovalAboveFen
}

// CheckCall counts one payment tool call of the caller against
// MaxPaymentCallsPerMinute. It returns ErrRateLimited past the limit, or a
// store error (the call then fails closed).
func (s *Service) CheckCall(ctx context.Context, client, user string) error {
	limit := s.opts.Rules.MaxPaymentCallsPerMinute
	if limit <= 0 {
		return nil
	}
	ok, err := s.store.AllowWindow(ctx, "paycalls:"+scopeKey(client, user), limit, time.Minute, rand.Text())
	if err != nil {
		return fmt.Errorf("count payment calls: %w", err)
	}
	if !ok {
		s.mm.refusals.WithLabelValues("rate_limit").Inc()
		return fmt.Errorf("%w: %d per minute", ErrRateLimited, limit)
	}
	return nil
}

// countOrder counts a new order against MaxOrdersPerUserPerDay on key, its
// user's counter of the order's created_at day (dayCounter). It runs only
// when an order is about to be recorded, so repeats of a live purchase
// (which return its order) never count.
func (s *Service) countOrder(ctx context.Context, key string) error {
	limit := s.opts.Rules.MaxOrdersPerUserPerDay
	if limit <= 0 {
		return nil
	}
	n, err := s.store.IncrCounter(ctx, key, dailyCounterTTL)
	if err != nil {
		return fmt.Errorf("count orders: %w", err)
	}
	if n > int64(limit) {
		// A refused order is no order: its count goes back at once. Left
		// taken, it outlived an order that later came to nothing (a prepay
		// refused at approval gives its count back), and the user, below
		// the limit, was refused for the rest of the day. Refusers never
		// let another past the limit: the counter is always at least the
		// orders counted.
		s.giveBack(ctx, dayCount{key: key, token: "refused:" + rand.Text()})
		s.mm.refusals.WithLabelValues("daily_orders").Inc()
		return fmt.Errorf("%w: %d orders per day", ErrDailyLimit, limit)
	}
	return nil
}

// dayCounter is the key of client's user's order count on at's day in China
// Standard Time.
func dayCounter(client, user string, at time.Time) string {
	return "orders:" + at.In(chinaTime).Format("2006-01-02") + ":" + scopeKey(client, user)
}

// dayCount is one count of the daily order limit: its day's counter and the
// token that gives it back at most once.
type dayCount struct{ key, token string }

// giveBack returns a count of the daily limit whose order WeChat Pay never
// opened (it refused the prepay, a manager rejected the held order or let
// it lapse, or the order was paid before its replacement was made), so a
// merchant's misconfiguration does not lock the user out for the rest of
// the day. The token makes a second give-back of the
// same count (another caller, a re-sent call) take nothing. Best effort:
// the count stays taken if the store fails, as before.
func (s *Service) giveBack(ctx context.Context, c dayCount) {
	if c.key == "" || s.opts.Rules.MaxOrdersPerUserPerDay <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.store.DecrCounter(ctx, c.key, c.token); err != nil {
		s.log.WarnContext(ctx, "daily order count not given back", "err", err)
	}
}

// orderCount is the count of the daily order limit that a fresh order no
// of client's user, created at at, took (countOrder): its day's counter, and
// a token of its own.
func orderCount(client, user, no string, at time.Time) dayCount {
	return dayCount{key: dayCounter(client, user, at), token: "order:" + no}
}

// heldCount is the count of o, an order held for approval or left creating,
// for prepay: every order's count is on its created_at's day (createFresh
// moves a switch's count there).
func heldCount(o *store.Order) dayCount {
	return orderCount(o.Client, o.User, o.OrderNo, o.CreatedAt)
}

// giveBackSwitch gives back the count a switch of pay method took for the
// replacement of o, now found paid, settled or under review: no
// replacement of it will be made. A switch that made one moved the
// purchase on to it, so o is not found again; the token makes this and the
// switch's own give-back (a close that found o paid) one.
func (s *Service) giveBackSwitch(ctx context.Context, o *store.Order) {
	if s.opts.Rules.MaxOrdersPerUserPerDay <= 0 {
		return
	}
	v, err := s.store.GetExchange(ctx, switchMark(o.OrderNo))
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.WarnContext(ctx, "a switch's daily order count not given back", "order_no", o.OrderNo, "err", err)
		}
		return
	}
	if k := string(v); strings.HasPrefix(k, "orders:") {
		s.giveBack(ctx, switchCount(o.OrderNo, k))
	}
}

// switchMark is the mark of a switch's count for the replacement of the
// order no; it holds the day's counter the count went to.
func switchMark(no string) string { return "switch-counted:" + no }

// switchKept is the key whose holder's count of the day's orders (key
// today, a day's counter) stands for the replacement of the order no
// (countReplacement): one count per switch and day however callers
// interleave.
func switchKept(no, today string) string { return "switch-kept:" + no + "@" + today }

// switchedToMark is the mark of the pay method a switch of pay method or a
// renewal of the order no makes its replacement in (CreateOrder), written
// before the close: a replacement cut short (cutSwitch) and asked for
// again with no method named is made in it. Made in the caller's first
// method, a renewed QR order (Native, a desktop's) came back as a JSAPI
// payment the desktop could not open.
func switchedToMark(no string) string { return "switch-method:" + no }

// markSwitchedTo records method as the one the replacement of the order no
// is made in (switchedToMark). Best effort: unmarked, a replacement cut
// short is made in the caller's first method, as before.
func (s *Service) markSwitchedTo(ctx context.Context, no, method string) {
	if err := s.store.PutExchange(ctx, switchedToMark(no), []byte(method), dailyCounterTTL); err != nil {
		s.log.WarnContext(ctx, "pay method of a switch not marked", "order_no", no, "err", err)
	}
}

// switchedTo is the pay method markSwitchedTo recorded for the replacement
// of the order no; "" when none was, or the read failed.
func (s *Service) switchedTo(ctx context.Context, no string) string {
	v, err := s.store.GetExchange(ctx, switchedToMark(no))
	if err != nil {
		return ""
	}
	switch m := string(v); m {
	case string(wechatpay.MethodJSAPI), string(wechatpay.MethodNative):
		return m
	}
	return ""
}

// switchCount is the count a switch of pay method took on the day's counter
// key for the replacement of the order no, with a token of that day's.
func switchCount(no, key string) dayCount {
	return dayCount{key: key, token: "switch:" + no + "@" + key}
}

// cutSwitch reports whether last, the newest order of req's purchase (one
// that binds it no more), is one a switch of pay method closed whose
// replacement was never recorded (the process died between the close and
// the replacement's record, or the store failed there), within the dedupe
// window of its close: the next order of the purchase is then that
// replacement, carrying what the switch would have carried (the manager's
// approval, and the count of the day's orders the switch took, counted
// is that count). Made as a new purchase, it was counted a second time,
// which at the day's limit refused it, and held for a manager again. A
// mark of such a switch past the window is a count no replacement will
// take: it is given back.
func (s *Service) cutSwitch(ctx context.Context, req CreateRequest, last *store.Order) (counted dayCount, ok bool, err error) {
	if last.Status != store.StatusClosed {
		return dayCount{}, false, nil
	}
	if _, err := s.store.GetExchange(ctx, switchMark(last.OrderNo)); errors.Is(err, store.ErrNotFound) {
		return dayCount{}, false, nil
	} else if err != nil {
		return dayCount{}, false, fmt.Errorf("look for a switch of order %s: %w", last.OrderNo, err)
	}
	if s.now().Sub(last.UpdatedAt) >= s.opts.DedupeWindow {
		s.giveBackSwitch(ctx, last)
		return dayCount{}, false, nil
	}
	if counted, err = s.countReplacement(ctx, req, last); err != nil {
		return dayCount{}, false, err
	}
	s.log.InfoContext(ctx, "switch of pay method cut before its replacement; the replacement made now", "closed_order_no", last.OrderNo)
	return counted, true, nil
}

// switchedMark is the value of a switch's mark (switchMark) when no count
// of the day's orders was taken for its replacement (no daily limit): the
// mark then says only that the order was switched (cutSwitch), and a
// switch under a limit set since counts as for an unmarked order.
const switchedMark = "switched"

// countReplacement counts, against MaxOrdersPerUserPerDay, the order that
// replaces open for a switch of pay method, once per open order and day: a
// switch whose close failed at WeChat Pay leaves open as it was, and its
// retry replaces the same order, which must not cost the user a second of
// the day's orders. A retry on a later day counts on that day, against its
// limit (the replacement will be made that day), and gives the earlier
// day's count back. The mark lives as long as the day's counter and holds
// the counter's key, so a switch that finds open paid gives the count back.
func (s *Service) countReplacement(ctx context.Context, req CreateRequest, open *store.Order) (dayCount, error) {
	mark := switchMark(open.OrderNo)
	if s.opts.Rules.MaxOrdersPerUserPerDay <= 0 {
		// Nothing to count; the mark says the order was switched, so a
		// replacement cut short is made as one (cutSwitch). A mark not
		// written costs only that.
		if err := s.store.PutExchange(ctx, mark, []byte(switchedMark), dailyCounterTTL); err != nil {
			s.log.WarnContext(ctx, "switch of pay method not marked", "order_no", open.OrderNo, "err", err)
		}
		return dayCount{}, nil
	}
	now := s.now()
	today := dayCounter(req.Client, req.User, now)
	var earlier dayCount
	switch v, err := s.store.GetExchange(ctx, mark); {
	case err == nil && string(v) == switchedMark:
		// Marked with no limit (the limit came with a restart since):
		// nothing was counted, so it is counted now, as if unmarked.
	case err == nil:
		k := string(v)
		if !strings.HasPrefix(k, "orders:") {
			return dayCount{}, nil // counted before keys were kept ("1"): nothing to give back
		}
		if k == today {
			return switchCount(open.OrderNo, k), nil
		}
		earlier = switchCount(open.OrderNo, k)
	case !errors.Is(err, store.ErrNotFound):
		return dayCount{}, fmt.Errorf("count orders: %w", err)
	}
	// One caller counts a switch of open per day: two at once (a bot
	// retrying its tool call) both found no mark of today's, and each
	// counted, one replacement costing two of the day's orders. The first
	// to raise the guard counts; one that finds it raised takes its raise
	// back and shares the count once the mark says it was made. Until then
	// it waits (up to switchWait), as a request for a purchase being
	// created waits for its order (awaitClaimed): told "in progress" at
	// once, a bot's second copy of the request got no QR code although the
	// first was making it. A counter that gives up (the daily limit, a
	// store failure) takes its guard back, and a waiter that raises it
	// first then counts itself. A guard left raised lapses (switchGuardTTL).
	guard := "switch-guard:" + open.OrderNo + "@" + today
	pause, waited := 5*time.Millisecond, time.Duration(0)
	for {
		n, err := s.store.IncrCounter(ctx, guard, switchGuardTTL)
		if err != nil {
			return dayCount{}, fmt.Errorf("count orders: %w", err)
		}
		if n == 1 {
			break
		}
		s.giveBack(ctx, dayCount{key: guard, token: rand.Text()})
		switch v, err := s.store.GetExchange(ctx, mark); {
		case err == nil && string(v) == today:
			return switchCount(open.OrderNo, today), nil
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return dayCount{}, fmt.Errorf("count orders: %w", err)
		}
		if waited >= s.switchWait {
			return dayCount{}, fmt.Errorf("%w: another request is switching order %s", ErrInProgress, open.OrderNo)
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return dayCount{}, ctx.Err()
		case <-t.C:
		}
		waited += pause
		if pause < 100*time.Millisecond {
			pause *= 2
		}
	}
	if err := s.countOrder(ctx, today); err != nil {
		s.giveBack(ctx, dayCount{key: guard, token: rand.Text()}) // the next caller counts afresh
		return dayCount{}, err
	}
	// The guard orders callers only within its life: one that stalled
	// past it (a GC pause, a frozen VM, a slow store) counts after another
	// caller has counted and marked, and one replacement cost two of the
	// day's orders. The first count of the switch taken today stands
	// (switchKept, a set-if-absent for the mark's life); a later one goes
	// back at once.
	kept, err := s.store.TakeLeases(ctx, rand.Text(), []string{switchKept(open.OrderNo, today)}, dailyCounterTTL)
	if err != nil {
		s.giveBack(ctx, dayCount{key: guard, token: rand.Text()}) // this count stays taken, as a store failure leaves it
		return dayCount{}, fmt.Errorf("count orders: %w", err)
	}
	if !kept[0] {
		s.giveBack(ctx, dayCount{key: today, token: "lapsed:" + rand.Text()})
	}
	if err := s.store.PutExchange(ctx, mark, []byte(today), dailyCounterTTL); err != nil {
		// Unmarked, the next caller counts again and gives that count
		// back (switchKept: this one stands); a raised guard would hold
		// the switch "in progress" until it lapsed.
		s.giveBack(ctx, dayCount{key: guard, token: rand.Text()})
		return dayCount{}, fmt.Errorf("count orders: %w", err)
	}
	s.giveBack(ctx, earlier)
	return switchCount(open.OrderNo, today), nil
}

// releasedPrefix marks a claim let go by releaseClaim; it is not a valid
// out_trade_no, so it can never name an order.
const releasedPrefix = "released:"

// released reports a claim let go by releaseClaim.
func released(c store.Claim) bool { return strings.HasPrefix(c.OrderNo, releasedPrefix) }

// releaseClaim lets go of a purchase claim whose order was refused before it
// was recorded: the claim moves to a marked number that never names an order
// and expires at once, so the next request for the purchase is judged afresh
// (CreateOrder takes a released claim over at once) instead of waiting for an
// order that will never appear.
func (s *Service) releaseClaim(ctx context.Context, key string, claim store.Claim) {
	_, _, err := s.store.AdvanceClaim(ctx, key, claim.Generation, releasedPrefix+s.newNo(s.now()), time.Millisecond)
	if err != nil {
		s.log.WarnContext(ctx, "refused purchase: claim not released; it expires with the dedupe window", "err", err)
	}
}

// scopeKey joins a client and a user into one counter key part; the length
// prefix keeps ("a", "bc") and ("ab", "c") apart.
func scopeKey(client, user string) string {
	return strconv.Itoa(len(client)) + ":" + client + ":" + user
}

// moneyMetrics are the series of rules, approvals and refunds.
type moneyMetrics struct {
	refusals  *prometheus.CounterVec
	approvals *prometheus.CounterVec
	refunds   *prometheus.CounterVec
}

func newMoneyMetrics(reg prometheus.Registerer) (*moneyMetrics, error) {
	m := &moneyMetrics{
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paygate_rule_refusals_total",
			Help: "Payment tool calls refused by a rule before any WeChat Pay call, by rule (rate_limit, daily_orders, approval_required counts orders held for a manager).",
		}, []string{"rule"}),
		approvals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paygate_approvals_total",
			Help: "Manager decisions on orders above payments.rules.approval_above, by decision (approved, rejected; expired: none came within payments.rules.approval_ttl).",
		}, []string{"decision"}),
		refunds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paygate_refunds_total",
			Help: "Refund proposals and their fate, by step (proposed; the user's answers, a confirm's or a cancel's: confirmed, cancelled, gone: the proposal ended (410), repeated: sent again and answered as before, already_confirmed: a cancel of a confirmed refund; sent, pending, failed).",
		}, []string{"step"}),
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	for _, c := range []prometheus.Collector{m.refusals, m.approvals, m.refunds} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("payments money metrics: %w", err)
		}
	}
	return m, nil
}

// unreadLogEvery is how often a call refused because its rules could not
// be read is logged at most (refusedByRule): every payment call of a
// store outage meets it, each counted in paygate_tool_calls_total
// (failed), and a line per call (350 KB per 1,000) said the same thing
// each time; the first is logged at once, then one line per interval,
// the next saying how many were left out since (suppressed).
const unreadLogEvery = 10 * time.Second

// refusedByRule is the tool result of a call a rule refused, or whose rules
// could not be read (args: the call's arguments). Nothing reached WeChat
// Pay. A rate-limited call runs the next round without tools, so a looping
// model has to talk to the user instead.
func (t *Tools) refusedByRule(ctx context.Context, name, args string, c Caller, err error) Outcome {
	out := Outcome{MoneyMoving: t.IsMoneyMoving(name)}
	switch {
	case errors.Is(err, ErrRateLimited):
		t.log.WarnContext(ctx, "payment tool call rate limited", "client", c.Client, "tool", name)
		out.Result = resultJSON(map[string]any{"status": "rate_limited", "error": failureText(err)})
		out.Clarify = true
	case errors.Is(err, ErrDailyLimit):
		t.log.WarnContext(ctx, "order refused: daily limit", "client", c.Client, "tool", name)
		out.Result = resultJSON(map[string]any{"status": "refused", "error": failureText(err)})
		out.Executed = true
	default:
		t.unread.Log(ctx, t.log, slog.LevelWarn, "rules_unread", time.Now(), "payment rules could not be checked; call refused",
			"client", c.Client, "tool", name, "err", err)
		out.Result = t.unreadRulesResult(name, args, err)
		out.Failed = true // the store failed: an outage, not a refusal
	}
	return out
}

// unreadRulesResult is the result of a call whose rules the store did not
// let be read: each tool's as its own step's store failure says it (a
// query_order's status unread, a request_refund's nothing changed), naming
// the order asked about. failureText's "no order was created", said of a
// query_order or a request_refund, had the model tell a user asking after
// an order they had paid that it was never made.
func (t *Tools) unreadRulesResult(name, args string, err error) []byte {
	if name == t.names.CreateOrder {
		return resultJSON(map[string]any{"status": "failed", "error": failureText(err)})
	}
	r := map[string]any{"status": "failed", "error": "refunds are temporarily unavailable; nothing was changed"}
	if name == t.names.QueryOrder {
		r = map[string]any{"status": "unknown", "error": "payments are temporarily unavailable; the order's status could not be read"}
	}
	if no := gjson.Get(args, "order_no"); no.Type == gjson.String && strings.TrimSpace(no.Str) != "" {
		r["order_no"] = echo(strings.TrimSpace(no.Str))
	}
	return resultJSON(r)
}

// approvalLimit renders the approval threshold for the model.
func (t *Tools) approvalLimit() string {
	if p := t.svc.opts.Rules.ApprovalAboveFen; p != nil {
		return FormatAmount(*p, "CNY")
	}
	return "the approval limit"
}
