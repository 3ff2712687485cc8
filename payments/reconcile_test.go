package payments_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// creatingOrder records what CreateOrder commits before calling WeChat Pay,
// as a crash would leave it.
func (e *env) creatingOrder(no, user string, age time.Duration) *store.Order {
	e.t.Helper()
	now := e.clock.Now().Add(-age)
	o := &store.Order{
		OrderNo: no, Client: "shop-bot", AppID: e.sim.AppID(), User: user, SKU: "premium-monthly",
		Description: "Premium tier, 1 month", Quantity: 1, AmountFen: 4999, Currency: "CNY", PayMethod: "jsapi",
		Status: store.StatusCreating, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(30 * time.Minute).Truncate(time.Second),
	}
	if err := e.st.CreateOrder(context.Background(), o); err != nil {
		e.t.Fatal(err)
	}
	return o
}

func TestReconcilerResolvesCreating(t *testing.T) {
	tests := []struct {
		name string
		// atWeChat prepares WeChat Pay's side of the crash.
		atWeChat   func(e *env, o *store.Order)
		age        time.Duration
		want       store.OrderStatus
		wantOrders int
	}{
		{name: "crash before the prepay: prepaid now under the same number", age: time.Minute,
			atWeChat: func(*env, *store.Order) {}, want: store.StatusAwaitingPayment, wantOrders: 1},
		{name: "crash after the prepay: found and reused", age: time.Minute,
			atWeChat: func(e *env, o *store.Order) { e.prepayAtWeChat(o) }, want: store.StatusAwaitingPayment, wantOrders: 1},
		{name: "crash, then the user paid", age: time.Minute,
			atWeChat: func(e *env, o *store.Order) {
				e.prepayAtWeChat(o)
				if _, err := e.sim.Pay(context.Background(), o.OrderNo); err != nil {
					e.t.Fatal(err)
				}
			}, want: store.StatusPaid, wantOrders: 1},
		{name: "crash before the prepay, expired since: closed, never prepaid", age: time.Hour,
			atWeChat: func(*env, *store.Order) {}, want: store.StatusExpired, wantOrders: 0},
		{name: "crash after the prepay, expired since: closed at wechat pay", age: time.Hour,
			atWeChat: func(e *env, o *store.Order) { e.prepayAtWeChat(o) }, want: store.StatusExpired, wantOrders: 1},
		// In its last minute (20s to go), only an order WeChat Pay never
		// opened is expired (it would open it for a minute); one it opened
		// (NOTPAY) is found and reused, payable until its own time_expire.
		{name: "crash before the prepay, in its last minute: expired, never prepaid", age: 30*time.Minute - 20*time.Second,
			atWeChat: func(*env, *store.Order) {}, want: store.StatusExpired, wantOrders: 0},
		{name: "crash after the prepay, in its last minute: found and reused", age: 30*time.Minute - 20*time.Second,
			atWeChat: func(e *env, o *store.Order) { e.prepayAtWeChat(o) }, want: store.StatusAwaitingPayment, wantOrders: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Notifications go to a sink that refuses them: the reconciler
			// alone must find the truth.
			e := newEnv(t, envOptions{notifyTo: "sink"})
			o := e.creatingOrder(payments.NewOrderNo(time.Now()), "oUser-crash", tt.age)
			tt.atWeChat(e, o)
			st, err := e.svc.Sweep(context.Background())
			if err != nil || st.Errors != 0 {
				t.Fatalf("sweep: %+v, %v", st, err)
			}
			got := e.order(o.OrderNo)
			if got.Status != tt.want {
				t.Errorf("status: got %s; want %s", got.Status, tt.want)
			}
			if n := e.sim.OrderCount(); n != tt.wantOrders {
				t.Errorf("orders at the simulator: got %d; want %d", n, tt.wantOrders)
			}
			if tx, ok := e.sim.Order(o.OrderNo); ok && tt.want == store.StatusExpired && tx.TradeState != "CLOSED" {
				t.Errorf("at the simulator: got %s; want CLOSED", tx.TradeState)
			}
			if tt.want == store.StatusAwaitingPayment && got.PrepayID == "" {
				t.Errorf("no prepay_id recorded")
			}
		})
	}
}

// prepayAtWeChat makes the prepay the crashed process had sent.
func (e *env) prepayAtWeChat(o *store.Order) {
	e.t.Helper()
	if _, err := e.client.Prepay(context.Background(), wechatpay.PrepayRequest{
		Method: wechatpay.MethodJSAPI, OutTradeNo: o.OrderNo, Description: o.Description, Total: o.AmountFen,
		PayerOpenID: o.User, AppID: o.AppID, ExpireAt: o.ExpiresAt,
	}); err != nil {
		e.t.Fatalf("prepay at wechat: %v", err)
	}
}

// TestUnknownPrepayOutcomeResolved: WeChat Pay failing on every attempt leaves
// the order in creating (no second order), and the reconciler finishes it.
func TestUnknownPrepayOutcomeResolved(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.sim.InjectFault(wxsim.Fault{Op: "prepay", Kind: wxsim.FaultSystemError, Times: 3})
	req := payments.CreateRequest{Client: "shop-bot", User: "oUser-unknown", SKU: "premium-monthly"}
	res, err := e.svc.CreateOrder(context.Background(), req)
	if !errors.Is(err, payments.ErrPaymentUnavailable) || res == nil || res.Order.Status != store.StatusCreating {
		t.Fatalf("got %+v, %v; want the order kept in creating and ErrPaymentUnavailable", res, err)
	}
	no := res.Order.OrderNo
	// Too young for the sweep: left to any create in flight.
	if st, _ := e.svc.Sweep(context.Background()); st.Checked != 0 {
		t.Errorf("sweep touched a fresh creating order: %+v", st)
	}
	e.clock.Advance(time.Minute)
	if _, err := e.svc.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.order(no); got.Status != store.StatusAwaitingPayment {
		t.Errorf("after the sweep: got %s; want awaiting_payment", got.Status)
	}
	again, err := e.svc.CreateOrder(context.Background(), req)
	if err != nil || again.Order.OrderNo != no {
		t.Errorf("the purchase afterwards: got %v, %v; want order %s", again, err, no)
	}
	if n := e.sim.OrderCount(); n != 1 {
		t.Errorf("orders at the simulator: got %d; want 1", n)
	}
}

// TestRefreshPending: a turn gets what an active query finds within the
// deadline and goes on past it. The deadline is 1s, not the default 300ms:
// the query that must beat it (signed and verified by the official client
// under -race) had too little room on a loaded CI machine. The client's
// attempt timeout is 4s, so a turn that waited for the slow query instead
// of the deadline still fails the 2.5s bound.
func TestRefreshPending(t *testing.T) {
	e := newEnv(t, envOptions{notifyTo: "sink",
		client:  func(c *wechatpay.Config) { c.AttemptTimeout = 4 * time.Second },
		service: func(o *payments.Options) { o.ActiveQueryDeadline = time.Second },
	})
	ctx := context.Background()
	paid := e.create("oUser-refresh-a", 1)
	slow := e.create("oUser-refresh-b", 1)
	young := e.create("oUser-refresh-c", 1)
	for _, o := range []*store.Order{paid, slow, young} {
		if _, err := e.sim.Pay(ctx, o.OrderNo); err != nil {
			t.Fatal(err)
		}
	}
	// The notifications were refused; only an active query can tell.
	e.clock.Advance(10 * time.Second)
	young.CreatedAt = e.clock.Now()
	got := e.svc.RefreshPending(ctx, []*store.Order{paid, young})
	if got[0].Status != store.StatusPaid {
		t.Errorf("old pending order: got %s; want paid", got[0].Status)
	}
	if got[1].Status != store.StatusAwaitingPayment || e.order(young.OrderNo).Status != store.StatusAwaitingPayment {
		t.Errorf("young order was queried: got %s", got[1].Status)
	}

	// A query slower than the deadline: the turn goes on, the answer lands.
	e.sim.InjectFault(wxsim.Fault{Op: "query", Kind: wxsim.FaultTimeout})
	began := time.Now()
	got = e.svc.RefreshPending(ctx, []*store.Order{slow})
	if waited := time.Since(began); waited > 2500*time.Millisecond {
		t.Errorf("turn waited %s; want about the 1s deadline", waited)
	}
	if got[0].Status != store.StatusAwaitingPayment {
		t.Errorf("past the deadline: got %s; want the known awaiting_payment", got[0].Status)
	}
	e.await(func(tr payments.Transition) bool {
		return tr.After.OrderNo == slow.OrderNo && tr.After.Status == store.StatusPaid
	})
	if s := e.order(slow.OrderNo).Status; s != store.StatusPaid {
		t.Errorf("after the background query: got %s; want paid", s)
	}
	if n := e.counter("paygate_reconcile_total", map[string]string{"action": "active_query", "outcome": "deadline"}); n != 1 {
		t.Errorf("deadline metric: got %v; want 1", n)
	}
}

func TestSweepExpires(t *testing.T) {
	e := newEnv(t, envOptions{notifyTo: "sink"})
	ctx := context.Background()
	unpaid := e.create("oUser-expire-a", 1)
	paidLate := e.create("oUser-expire-b", 1)
	if _, err := e.sim.Pay(ctx, paidLate.OrderNo); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(payments.DefaultOrderTTL + time.Minute)
	st, err := e.svc.Sweep(ctx)
	if err != nil || st.Checked != 2 || st.Changed != 2 {
		t.Fatalf("sweep: %+v, %v", st, err)
	}
	if s := e.order(unpaid.OrderNo).Status; s != store.StatusExpired {
		t.Errorf("unpaid: got %s; want expired", s)
	}
	if tx, _ := e.sim.Order(unpaid.OrderNo); tx.TradeState != "CLOSED" {
		t.Errorf("unpaid at the simulator: got %s; want CLOSED", tx.TradeState)
	}
	if s := e.order(paidLate.OrderNo).Status; s != store.StatusPaid {
		t.Errorf("paid before expiry: got %s; want paid", s)
	}
	// The expired purchase starts a new generation.
	res, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: "oUser-expire-a", SKU: "premium-monthly"})
	if err != nil || res.Order.OrderNo == unpaid.OrderNo {
		t.Errorf("after expiry: got %v, %v; want a new order", res, err)
	}
}

// TestSweepMeetsAnotherExpiry: an order past its deadline that WeChat Pay
// already reports CLOSED (another replica's expiry closed it there and has
// not committed locally yet) is recorded expired, as that expiry would
// record it, not closed: the status, the audit record and the merchant's
// order.closed payload must not depend on which replica commits first.
func TestSweepMeetsAnotherExpiry(t *testing.T) {
	e := newEnv(t, envOptions{notifyTo: "sink"})
	ctx := context.Background()
	o := e.create("oUser-expire-race", 1)
	e.clock.Advance(payments.DefaultOrderTTL + time.Minute)
	if err := e.client.CloseOrder(ctx, o.OrderNo); err != nil { // the other replica's close
		t.Fatal(err)
	}
	if _, err := e.svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if s := e.order(o.OrderNo).Status; s != store.StatusExpired {
		t.Errorf("got %s; want expired", s)
	}
	// Before its deadline a CLOSED order is closed: nothing expired it.
	early := e.create("oUser-closed-early", 1)
	if err := e.client.CloseOrder(ctx, early.OrderNo); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(payments.DefaultActiveQueryAfter) // old enough to be asked about, not expired
	if _, err := e.svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if s := e.order(early.OrderNo).Status; s != store.StatusClosed {
		t.Errorf("closed at WeChat Pay before its deadline: got %s; want closed", s)
	}
}

// payingBackend is the simulator with the payer entering their password:
// a query of an unpaid order answers USERPAYING, and closes are counted.
type payingBackend struct {
	*wechatpay.Client
	paying atomic.Bool
	closes atomic.Int32
}

func (b *payingBackend) QueryOrder(ctx context.Context, no string) (*wechatpay.Transaction, error) {
	tx, err := b.Client.QueryOrder(ctx, no)
	if err == nil && b.paying.Load() && tx.TradeState == wechatpay.TradeNotPay {
		tx.TradeState = wechatpay.TradeUserPaying
	}
	return tx, err
}

func (b *payingBackend) CloseOrder(ctx context.Context, no string) error {
	b.closes.Add(1)
	return b.Client.CloseOrder(ctx, no)
}

// TestExpiryNeverClosesUnderAPayingUser: an order past its deadline whose
// payer is entering their password (USERPAYING) is closed neither by the
// sweep nor by the same purchase asked again, which closed it at WeChat Pay
// without asking and opened a new one under the paying user.
func TestExpiryNeverClosesUnderAPayingUser(t *testing.T) {
	var b *payingBackend
	e := newEnv(t, envOptions{service: func(o *payments.Options) {
		b = &payingBackend{Client: o.Backend.(*wechatpay.Client)}
		o.Backend = b
	}})
	ctx := context.Background()
	o := e.create("oUser-paying", 1)
	b.paying.Store(true)
	e.clock.Advance(payments.DefaultOrderTTL + time.Second)
	if _, err := e.svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.order(o.OrderNo); got.Status != store.StatusAwaitingPayment || b.closes.Load() != 0 {
		t.Fatalf("sweep: status %s, closes %d; want awaiting_payment, 0", got.Status, b.closes.Load())
	}
	res, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: "oUser-paying", SKU: "premium-monthly", Quantity: 1})
	if !errors.Is(err, payments.ErrPayerPaying) || res == nil || res.Order == nil {
		t.Fatalf("the purchase asked again: %+v, %v; want the paying order and ErrPayerPaying", res, err)
	}
	if got := e.order(o.OrderNo); b.closes.Load() != 0 || got.Status != store.StatusAwaitingPayment || res.Order.OrderNo != o.OrderNo {
		t.Errorf("the purchase asked again while its payer pays: order %s is %s after %d close(s); answered %s (%s); want the paying order, open",
			o.OrderNo, got.Status, b.closes.Load(), res.Order.OrderNo, res.Order.Status)
	}
	// Once the payer gave up, the expired order is closed and replaced.
	b.paying.Store(false)
	res, err = e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: "oUser-paying", SKU: "premium-monthly", Quantity: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.order(o.OrderNo); got.Status != store.StatusExpired || res.Order.OrderNo == o.OrderNo {
		t.Errorf("after the payer gave up: old order %s, answered %s; want it expired and a new order", got.Status, res.Order.OrderNo)
	}
}

// TestSwitchNeverClosesUnderAPayingUser: asked for another pay method while
// the payer is entering their password for the open order (USERPAYING), the
// switch closed that order at WeChat Pay under them and opened another. The
// open order is returned as it is, with ErrPayerPaying; the model is told
// so, and the bot gets no payment to open again (answered as a made order,
// the model spoke of a QR code that was never made).
func TestSwitchNeverClosesUnderAPayingUser(t *testing.T) {
	var b *payingBackend
	e := newEnv(t, envOptions{service: func(o *payments.Options) {
		b = &payingBackend{Client: o.Backend.(*wechatpay.Client)}
		o.Backend = b
	}})
	const user = "oUser-paying-switch"
	o := e.create(user, 1)
	b.paying.Store(true)
	res, err := e.svc.CreateOrder(context.Background(), payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: 1, PayMethod: "native"})
	if !errors.Is(err, payments.ErrPayerPaying) || res == nil || res.Order.OrderNo != o.OrderNo || res.Payment != nil || res.CodeURL != "" {
		t.Fatalf("the switch while the payer pays: %+v, %v; want the paying order, no payment, ErrPayerPaying", res, err)
	}
	if got := e.order(o.OrderNo); b.closes.Load() != 0 || got.Status != store.StatusAwaitingPayment {
		t.Errorf("order %s is %s after %d close(s); want it open, never closed", o.OrderNo, got.Status, b.closes.Load())
	}
	if n := e.sim.OrderCount(); n != 1 {
		t.Errorf("%d orders at WeChat Pay; want 1", n)
	}
	sw := call(t, newTools(e), caller(user), "create_order", `{"sku":"premium-monthly","pay_method":"native"}`)
	if sw.result["status"] != "user_paying" || sw.result["message"] == nil || sw.out.Action != nil {
		t.Errorf("the tool: result %s, action %s; want status user_paying with a message, and no action", sw.out.Result, sw.out.Action)
	}
}

func TestCloseFindsPaid(t *testing.T) {
	e := newEnv(t, envOptions{notifyTo: "sink"})
	o := e.create("oUser-close-paid", 1)
	if _, err := e.sim.Pay(context.Background(), o.OrderNo); err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.CloseOrder(context.Background(), o.OrderNo)
	if err != nil || got.Status != store.StatusPaid {
		t.Errorf("close of an order paid at wechat pay: got %v, %v; want paid", got, err)
	}
}

func TestRunSweeperStops(t *testing.T) {
	e := newEnv(t, envOptions{notifyTo: "sink", service: func(o *payments.Options) { o.SweepInterval = time.Millisecond }})
	o := e.creatingOrder(payments.NewOrderNo(time.Now()), "oUser-sweeper", time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		e.svc.RunSweeper(ctx)
		close(done)
	}()
	// The first sweep runs at once.
	e.await(func(tr payments.Transition) bool { return tr.After.OrderNo == o.OrderNo && tr.Cause == "sweep" })
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunSweeper did not return after cancel")
	}
	if s := e.order(o.OrderNo).Status; s != store.StatusAwaitingPayment {
		t.Errorf("got %s; want awaiting_payment", s)
	}
}
