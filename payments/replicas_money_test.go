package payments_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
	redisstore "github.com/paygate/paygate/store/redis"
)

// paidEvents makes one outbox event of each transition into paid, keyed by
// the order: what the audit record and the merchant's order.paid webhook
// ride on. Counting the outbox's pending events counts the payments
// recorded.
func paidEvents(o *payments.Options) {
	o.Events = func(tr payments.Transition) []store.Event {
		if tr.After.Status != store.StatusPaid || tr.Before.Status == store.StatusPaid {
			return nil
		}
		return []store.Event{{ID: "paid-" + tr.After.OrderNo + "-v" + strconv.FormatInt(tr.Before.Version, 10), Kind: "test-paid", Key: tr.After.OrderNo, Payload: []byte(`{}`)}}
	}
}

// pendingEvents is the number of events the outbox of e's store holds.
func pendingEvents(t *testing.T, e *env) int {
	t.Helper()
	st, err := e.st.(store.Outbox).OutboxStats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Pending
}

// TestPaymentNotificationCopiesOnBothReplicas: WeChat Pay's notification
// of a payment, retried, reaches two replicas (two store clients on one
// Redis) at the same moment, two copies each. Every copy is acknowledged;
// the order is written paid once (one version more), with one event (its
// audit record and webhook) in the outbox.
func TestPaymentNotificationCopiesOnBothReplicas(t *testing.T) {
	requireRedis(t)
	e, _, n2 := twoReplicas(t, "redis", paidEvents, nil)
	const orders, copies = 20, 4
	urls := []string{e.notify.URL + payments.NotifyPath, n2}
	for i := range orders {
		o := e.create("oUser-notify-both-"+strconv.Itoa(i), 1)
		n := e.buildPayment(e.paidTx(o), nil)
		codes := make([]int, copies)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for k := range copies {
			wg.Go(func() {
				<-start
				codes[k] = postTo(t, urls[k%2], n)
			})
		}
		close(start)
		wg.Wait()
		for k, c := range codes {
			if c != http.StatusNoContent {
				t.Errorf("order %d: copy %d at replica %d answered %d; want 204", i, k, k%2+1, c)
			}
		}
		if got := e.order(o.OrderNo); got.Status != store.StatusPaid || got.Version != o.Version+1 {
			t.Errorf("order %d: %s at version %d; want paid at %d (one write)", i, got.Status, got.Version, o.Version+1)
		}
		if n := pendingEvents(t, e); n != i+1 {
			t.Fatalf("after %d paid orders the outbox holds %d payment events; want %d", i+1, n, i+1)
		}
	}
}

// TestPaymentNotifiedToOtherReplicaWhileCreating: the payer is fast and
// WeChat Pay's notification reaches replica 2 while replica 1's
// create_order still waits for its prepay's answer (the order creating).
// It is applied there at once; replica 1's turn, recorded after, neither
// moves the order back to awaiting_payment nor hands payment parameters
// for it, and the order holds one payment event.
func TestPaymentNotifiedToOtherReplicaWhileCreating(t *testing.T) {
	requireRedis(t)
	type answer struct {
		status int
		before store.OrderStatus
	}
	answers := make(chan answer, 1)
	var e *env
	var n2 string
	e, _, n2 = twoReplicas(t, "redis", func(o *payments.Options) {
		paidEvents(o)
		o.Backend = &paidBeforeAnswer{Backend: o.Backend, pay: func(no string) {
			o := e.order(no)
			answers <- answer{postTo(t, n2, e.buildPayment(e.paidTx(o), nil)), o.Status}
		}}
	}, nil)
	const orders = 10
	for i := range orders {
		res, err := e.svc.CreateOrder(context.Background(), payments.CreateRequest{Client: "shop-bot", User: "oUser-fast-other-" + strconv.Itoa(i), SKU: "premium-monthly", Quantity: 1})
		if err != nil {
			t.Fatalf("order %d: create: %v", i, err)
		}
		a := <-answers
		if a.before != store.StatusCreating || a.status != http.StatusNoContent {
			t.Errorf("order %d: the notification at replica 2 found the order %s and answered %d; want creating and 204", i, a.before, a.status)
		}
		if res.Order.Status != store.StatusPaid || res.Payment != nil || res.CodeURL != "" {
			t.Errorf("order %d: replica 1's create answered %s, payment %v, code_url %q; want paid, no payment parameters", i, res.Order.Status, res.Payment, res.CodeURL)
		}
		if got := e.order(res.Order.OrderNo); got.Status != store.StatusPaid || got.TransactionID == "" {
			t.Errorf("order %d: %s txid=%q; want paid", i, got.Status, got.TransactionID)
		}
		if n := pendingEvents(t, e); n != i+1 {
			t.Fatalf("after %d paid orders the outbox holds %d payment events; want %d", i+1, n, i+1)
		}
		if n := e.sim.Prepays(res.Order.OrderNo); n != 1 {
			t.Errorf("order %d: %d prepays; want 1", i, n)
		}
	}
}

// prepayAnswerHeld is WeChat Pay whose prepay answers, once hold armed
// it, reach paygate only when released: the order is opened there, its
// answer late. Every prepay paygate makes is counted.
type prepayAnswerHeld struct {
	payments.Backend
	calls   atomic.Int32
	mu      sync.Mutex
	reached chan string   // the held prepay's number
	release chan struct{} // nil: answers pass
}

func (b *prepayAnswerHeld) Prepay(ctx context.Context, req wechatpay.PrepayRequest) (*wechatpay.PrepayResult, error) {
	b.calls.Add(1)
	res, err := b.Backend.Prepay(ctx, req)
	b.mu.Lock()
	reached, release := b.reached, b.release
	b.reached, b.release = nil, nil // the next prepay passes
	b.mu.Unlock()
	if release != nil {
		reached <- req.OutTradeNo
		<-release
	}
	return res, err
}

// hold makes the next prepay's answer wait for the returned release.
func (b *prepayAnswerHeld) hold() (reached <-chan string, release func()) {
	r, g := make(chan string, 1), make(chan struct{})
	b.mu.Lock()
	b.reached, b.release = r, g
	b.mu.Unlock()
	return r, func() { close(g) }
}

// TestPurchaseRetriedOnOtherReplicaWhilePrepaying: replica 1's prepay of a
// purchase is at WeChat Pay, its answer late, when the bot's HTTP client
// gives up on the turn and its SDK retries the purchase on replica 2,
// three times at once. The retries wait for the prepay, and past their
// wait are told the order (the same number) is being made; none prepays.
// Once the answer comes, the next ask on either replica gets the one
// order, payable: WeChat Pay saw one prepay of it.
func TestPurchaseRetriedOnOtherReplicaWhilePrepaying(t *testing.T) {
	requireRedis(t)
	const rounds, retries = 4, 3
	var b *prepayAnswerHeld
	e, svc2, _ := twoReplicas(t, "redis", func(o *payments.Options) {
		b = &prepayAnswerHeld{Backend: o.Backend}
		o.Backend = b
		// The retries' wait for the first prepay is PrepayTimeout and 2s.
		o.PrepayTimeout = time.Second
	}, nil)
	ctx := context.Background()
	for i := range rounds {
		req := payments.CreateRequest{Client: "shop-bot", User: "oUser-retry-other-" + strconv.Itoa(i), SKU: "premium-monthly", Quantity: 1}
		before := b.calls.Load()
		reached, release := b.hold()
		turnCtx, giveUp := context.WithCancel(ctx)
		first := make(chan error, 1)
		go func() {
			_, err := e.svc.CreateOrder(turnCtx, req)
			first <- err
		}()
		var no string
		select {
		case no = <-reached:
		case err := <-first:
			giveUp()
			release()
			t.Fatalf("round %d: replica 1's ask ended before its prepay reached WeChat Pay: %v", i, err)
		}
		giveUp()
		res := make([]*payments.CreateResult, retries)
		errs := make([]error, retries)
		var wg sync.WaitGroup
		for k := range retries {
			wg.Go(func() { res[k], errs[k] = svc2.CreateOrder(ctx, req) })
		}
		wg.Wait()
		for k := range retries {
			if !errors.Is(errs[k], payments.ErrInProgress) || res[k] == nil || res[k].Order.OrderNo != no {
				t.Errorf("round %d: retry %d on replica 2 while the prepay's answer is late: %+v, %v; want %s in progress", i, k, res[k], errs[k], no)
			}
		}
		release()
		<-first // the give-up's error: the prepay runs on, detached
		for k, svc := range []*payments.Service{e.svc, svc2} {
			got, err := svc.CreateOrder(ctx, req)
			if err != nil || got.Order.OrderNo != no || got.Order.Status != store.StatusAwaitingPayment || got.Payment == nil {
				t.Errorf("round %d: ask on replica %d after the answer: %+v, %v; want %s payable", i, k+1, got, err, no)
			}
		}
		if n, at := b.calls.Load()-before, e.sim.Prepays(no); n != 1 || at != 1 {
			t.Errorf("round %d: %d prepays made, %d at WeChat Pay; want 1 and 1", i, n, at)
		}
	}
}

// TestTwoManagersApproveOnTwoReplicas: two managers approve one held order
// at the same moment on two replicas: one approval wins and prepays, the
// other is told the order was decided, with the order as the winner left
// it; WeChat Pay sees one prepay.
func TestTwoManagersApproveOnTwoReplicas(t *testing.T) {
	requireRedis(t)
	e, svc2, _ := twoReplicas(t, "redis", func(o *payments.Options) { o.Rules.ApprovalAboveFen = payments.FenPtr(5000) }, nil)
	ctx := context.Background()
	for i := range 10 {
		held, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: "oUser-two-approve-" + strconv.Itoa(i), SKU: "premium-monthly", Quantity: 2})
		if err != nil || held.Order.Status != store.StatusApprovalRequired {
			t.Fatalf("held order: %+v, %v", held, err)
		}
		no := held.Order.OrderNo
		var res [2]*payments.CreateResult
		var errs [2]error
		start := make(chan struct{})
		var wg sync.WaitGroup
		for k, svc := range []*payments.Service{e.svc, svc2} {
			wg.Go(func() { <-start; res[k], errs[k] = svc.Approve(ctx, no) })
		}
		close(start)
		wg.Wait()
		won := 0
		for k := range errs {
			switch {
			case errs[k] == nil && res[k].Order.Status == store.StatusAwaitingPayment && res[k].Payment != nil:
				won++
			case errors.Is(errs[k], payments.ErrNotAwaitingApproval) && res[k] != nil && res[k].Order.OrderNo == no:
			default:
				t.Errorf("order %d: approval at replica %d: %+v, %v", i, k+1, res[k], errs[k])
			}
		}
		if won != 1 || e.sim.Prepays(no) != 1 {
			t.Errorf("order %d: %d approvals won, %d prepays; want 1 and 1", i, won, e.sim.Prepays(no))
		}
		if got := e.order(no); got.Status != store.StatusAwaitingPayment {
			t.Errorf("order %d is %s; want awaiting_payment", i, got.Status)
		}
	}
}

// heldListed is a store whose list of the orders held for a manager says
// on listed, once armed, when it has read them: the sweep is about to
// expire those past their deadline.
type heldListed struct {
	payments.Store
	listed atomic.Pointer[chan struct{}]
}

func (s *heldListed) ListOrders(ctx context.Context, f store.OrderFilter) ([]*store.Order, error) {
	out, err := s.Store.ListOrders(ctx, f)
	if f.Status == store.StatusApprovalRequired {
		if ch := s.listed.Swap(nil); ch != nil {
			close(*ch)
		}
	}
	return out, err
}

// TestApprovalRacesTheDeadlineOnTwoReplicas: a manager approves a held
// order on replica 1, whose clock is a second before the approval
// deadline, while replica 2's sweep, its clock a second past it, expires
// the order. Either the approval won (the order awaiting payment, one
// prepay, the sweep left it) or the expiry did (the order expired, no
// prepay, the manager told it expired): never an expired order opened at
// WeChat Pay, nor an approval answered for an order not prepaid. The
// approval starts when the sweep has listed the held orders, so each side
// has one read and one write to go.
func TestApprovalRacesTheDeadlineOnTwoReplicas(t *testing.T) {
	requireRedis(t)
	const ttl = time.Hour
	var e *env
	var sweepStore *heldListed
	// Both clocks are the env's, replica 1's a second before the deadline
	// of the order under test, replica 2's a second after it (skew).
	var mu sync.Mutex
	var deadline time.Time
	at := func(d time.Duration) func() time.Time {
		return func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			if deadline.IsZero() {
				return e.clock.Now()
			}
			return deadline.Add(d)
		}
	}
	e, svc2, _ := twoReplicas(t, "redis", func(o *payments.Options) {
		o.Rules.ApprovalAboveFen, o.Rules.ApprovalTTL = payments.FenPtr(5000), ttl
		o.Now = at(-time.Second)
	}, func(o *payments.Options) {
		o.Now = at(time.Second)
		o.Store = &heldListed{Store: o.Store}
		sweepStore = o.Store.(*heldListed)
	})
	ctx := context.Background()
	outcomes := map[store.OrderStatus]int{}
	for i := range 20 {
		mu.Lock()
		deadline = time.Time{}
		mu.Unlock()
		held, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: "oUser-deadline-race-" + strconv.Itoa(i), SKU: "premium-monthly", Quantity: 2})
		if err != nil || held.Order.Status != store.StatusApprovalRequired {
			t.Fatalf("held order: %+v, %v", held, err)
		}
		no := held.Order.OrderNo
		mu.Lock()
		deadline = held.Order.ExpiresAt
		mu.Unlock()
		var res *payments.CreateResult
		var approveErr, sweepErr error
		listed := make(chan struct{})
		sweepStore.listed.Store(&listed)
		var wg sync.WaitGroup
		wg.Go(func() { <-listed; res, approveErr = e.svc.Approve(ctx, no) })
		wg.Go(func() {
			_, sweepErr = svc2.Sweep(ctx)
			if ch := sweepStore.listed.Swap(nil); ch != nil {
				close(*ch) // it never listed them: the approval goes all the same
			}
		})
		wg.Wait()
		if sweepErr != nil {
			t.Fatalf("order %d: sweep on replica 2: %v", i, sweepErr)
		}
		got := e.order(no)
		outcomes[got.Status]++
		switch {
		case got.Status == store.StatusAwaitingPayment && approveErr == nil && res.Payment != nil:
			if n := e.sim.Prepays(no); n != 1 {
				t.Errorf("order %d: approved with %d prepays; want 1", i, n)
			}
		case got.Status == store.StatusExpired && errors.Is(approveErr, payments.ErrNotAwaitingApproval):
			if n := e.sim.Prepays(no); n != 0 {
				t.Errorf("order %d: expired with %d prepays; want none", i, n)
			}
		default:
			t.Errorf("order %d: %s, approval %+v, %v; want awaiting_payment approved or expired refused", i, got.Status, res, approveErr)
		}
	}
	t.Logf("outcomes over 20 races: %v", outcomes)
}

// TestRedisEmptiedBetweenOrderAndAskOnTwoReplicas: replica 1 made a user's
// order (awaiting payment at WeChat Pay), and replica 2's readiness probe
// has seen the store since, or has not (replica 2 opened before the order,
// its checks a second apart); then Redis, a private one, is flushed or
// restarted without persistence, and before either replica's background
// check could notice, the user asks for the same purchase again on both,
// twice each at once, and WeChat Pay's notification of the order's
// payment reaches both. No ask makes a second order at WeChat Pay (the
// purchase's claim is gone, its order may still be paid), and no
// notification is acknowledged: nothing of it can be recorded, so WeChat
// Pay must keep retrying until the replicas restart.
func TestRedisEmptiedBetweenOrderAndAskOnTwoReplicas(t *testing.T) {
	for _, tt := range []struct {
		name string
		lose func(*testing.T, *redistest.Server)
	}{
		{"flushed", func(t *testing.T, s *redistest.Server) {
			if err := s.Client().FlushAll(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
		}},
		{"restarted empty", func(_ *testing.T, s *redistest.Server) { s.Restart() }},
	} {
		for _, probed := range []bool{true, false} {
			t.Run(tt.name+"/probed="+strconv.FormatBool(probed), func(t *testing.T) {
				srv := redistest.StartServer(t)
				open := func() *redisstore.Store {
					// No background check: the asks come within its interval.
					st, err := redisstore.Open(redisstore.Options{Addrs: []string{srv.Addr()}, RepairInterval: -1, EpochInterval: -1})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = st.Close() })
					return st
				}
				st1, st2 := open(), open()
				e, svc2, n2 := replicasOn(t, "redis", st1, st2, nil, nil)
				ctx := context.Background()
				req := payments.CreateRequest{Client: "shop-bot", User: "oUser-emptied", SKU: "premium-monthly", Quantity: 1}
				o := e.create(req.User, req.Quantity)
				if probed {
					if err := st2.Ping(ctx); err != nil {
						t.Fatalf("replica 2's probe before the loss: %v", err)
					}
				}
				tt.lose(t, srv)

				res := make([]*payments.CreateResult, 4)
				errs := make([]error, 4)
				var wg sync.WaitGroup
				for k, svc := range []*payments.Service{svc2, e.svc, svc2, e.svc} {
					wg.Go(func() { res[k], errs[k] = svc.CreateOrder(ctx, req) })
				}
				wg.Wait()
				for k := range errs {
					if errs[k] == nil {
						t.Errorf("ask %d on replica %d after the loss answered %+v; want it refused", k, 2-k%2, res[k].Order)
					}
				}
				n := e.buildPayment(e.paidTx(o), nil)
				for _, url := range []string{n2, e.notify.URL + payments.NotifyPath} {
					if code := postTo(t, url, n); code/100 == 2 {
						t.Errorf("payment notification to %s after the loss answered %d; want it refused, to be retried", url, code)
					}
				}
				if got := e.sim.OrderCount(); got != 1 {
					t.Errorf("WeChat Pay holds %d orders; want 1, the purchase's, none made after the loss (asks: %v)", got, errs)
				}
			})
		}
	}
}

// TestRefundConfirmedOnOneReplicaWhileTheOtherProposes: a user's refund
// proposal of a paid order is confirmed on replica 1 while the model, on
// replica 2, proposes a refund of the same order (the whole of it, or a
// part), and the user's confirmation is then said again on replica 2, to
// whatever proposal it holds. WeChat Pay never holds more than one refund
// of the order, nor more refunded than was paid; a proposal alone sends
// nothing.
func TestRefundConfirmedOnOneReplicaWhileTheOtherProposes(t *testing.T) {
	requireRedis(t)
	e, svc2, _ := twoReplicas(t, "redis", nil, nil)
	ctx := context.Background()
	for i := range 16 {
		o := paidOrder(t, e, "oUser-confirm-propose-"+strconv.Itoa(i), 1) // 4999
		p1 := propose(t, e, o, 0)
		if n := e.sim.RefundCount(o.OrderNo); n != 0 {
			t.Fatalf("order %d: a proposal sent %d refunds", i, n)
		}
		amount := int64(0) // the whole: the same proposal's amount
		if i%2 == 1 {
			amount = 1000 // a part: another proposal
		}
		var confirmErr, proposeErr error
		var p2 *store.RefundProposal
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { <-start; _, confirmErr = e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p1.RefundID) })
		wg.Go(func() {
			<-start
			p2, _, proposeErr = svc2.ProposeRefund(ctx, payments.RefundRequest{Client: "shop-bot", User: o.User, OrderNo: o.OrderNo, Reason: "changed my mind", AmountFen: amount})
		})
		close(start)
		wg.Wait()
		if confirmErr != nil {
			t.Errorf("order %d: confirm on replica 1: %v", i, confirmErr)
		}
		again := []string{p1.RefundID}
		if proposeErr == nil && p2.RefundID != p1.RefundID {
			again = append(again, p2.RefundID)
		}
		for _, id := range again {
			_, _ = svc2.ConfirmRefund(ctx, "shop-bot", o.User, id) // refused or answered with the refund's state
		}
		n := e.sim.RefundCount(o.OrderNo)
		var sent int64
		for _, id := range again {
			if rf, ok := e.sim.Refund(payments.OutRefundNo(id)); ok {
				sent += rf.Amount.Refund
			}
		}
		if n != 1 || sent > o.AmountFen {
			t.Errorf("order %d: %d refunds at WeChat Pay, %d fen of %d; want 1, within the payment (propose: %v)", i, n, sent, o.AmountFen, proposeErr)
		}
	}
}
