package payments_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// diesAtAdvance is the store of a process that dies as it moves a
// purchase's claim on to the replacement of the order its switch of pay
// method just closed (the close is recorded): before the claim moved, or,
// with moved, once it moved and before the replacement was recorded. From
// then on nothing it writes is done.
type diesAtAdvance struct {
	payments.Store
	moved bool
	dead  atomic.Bool
}

func (d *diesAtAdvance) AdvanceClaim(ctx context.Context, key string, from int, no string, ttl time.Duration) (store.Claim, bool, error) {
	if d.dead.Swap(true) || !d.moved {
		return store.Claim{}, false, errCut
	}
	return d.Store.AdvanceClaim(ctx, key, from, no, ttl)
}

func (d *diesAtAdvance) CreateOrder(ctx context.Context, o *store.Order, events ...store.Event) error {
	if d.dead.Load() {
		return errCut
	}
	return d.Store.CreateOrder(ctx, o, events...)
}

func (d *diesAtAdvance) GetOrder(ctx context.Context, no string) (*store.Order, error) {
	if d.dead.Load() {
		return nil, errCut
	}
	return d.Store.GetOrder(ctx, no)
}

// TestSwitchCutBeforeTheReplacement: with the embedded store, paygate is
// killed in a switch of pay method of an order a manager approved, after
// the open order was closed (at WeChat Pay and here) and before its
// replacement was recorded: before or after the purchase's claim moved on
// to the replacement's number. The user's ask again after the restart
// gets the replacement, payable the new way at once: the manager's
// approval carries over, as it does when the switch is not cut (made as a
// new purchase, it was held for a manager again), and with a daily limit
// the switch's count of the day's orders is the replacement's (counted a
// second time, it was refused at the limit).
func TestSwitchCutBeforeTheReplacement(t *testing.T) {
	for _, tt := range []struct {
		name  string
		moved bool
		limit int
	}{
		{"before the claim moved, daily limit", false, 2},
		{"before the claim moved, no daily limit", false, 0},
		{"after the claim moved, daily limit", true, 2},
		{"after the claim moved, no daily limit", true, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rules := func(o *payments.Options) {
				o.Rules.ApprovalAboveFen = payments.FenPtr(5000)
				o.Rules.MaxOrdersPerUserPerDay = tt.limit
			}
			e := newEnv(t, envOptions{driver: "embedded", service: func(o *payments.Options) { rules(o); o.SoleWriter = true }})
			ctx := context.Background()
			u := caller("oUser-switch-cut")
			tc := call(t, newTools(e), u, "create_order", `{"sku":"premium-monthly","quantity":2}`)
			no, _ := tc.result["order_no"].(string)
			if tc.result["status"] != "approval_required" {
				t.Fatalf("create: %s; want approval_required", tc.out.Result)
			}
			if _, err := e.svc.Approve(ctx, no); err != nil {
				t.Fatal(err)
			}

			st := &diesAtAdvance{Store: e.st, moved: tt.moved}
			killed := payments.NewTools(replicaOn(t, e, st, rules), toolNames, slog.New(slog.NewJSONHandler(io.Discard, nil)))
			call(t, killed, u, "create_order", `{"sku":"premium-monthly","quantity":2,"pay_method":"native"}`)
			if got := e.order(no); got.Status != store.StatusClosed || !st.dead.Load() {
				t.Fatalf("after the cut switch the approved order is %s (cut: %v); want closed, and the process cut", got.Status, st.dead.Load())
			}

			tc = call(t, newTools(e), u, "create_order", `{"sku":"premium-monthly","quantity":2,"pay_method":"native"}`)
			repl, _ := tc.result["order_no"].(string)
			if tc.result["status"] != "awaiting_payment" || repl == "" || repl == no || tc.action["code_url"] == nil {
				t.Fatalf("ask again after the restart: %s %s; want the replacement, awaiting payment, with its code_url", tc.out.Result, tc.out.Action)
			}
			if got := e.order(repl); got.ApprovedFen != got.AmountFen {
				t.Errorf("the replacement carries approved_fen %d; want the manager's approval of %d", got.ApprovedFen, got.AmountFen)
			}
			if got := e.sim.OrderCount(); got != 2 {
				t.Errorf("WeChat Pay holds %d orders; want the closed one and its replacement", got)
			}
		})
	}
}

// TestSwitchWhoseReplacementRecordFailedCountsOnce: the store refuses the
// record of a switch's replacement (a full disk: nothing applied) after
// the open order was closed. The user's ask again makes the replacement
// (cutSwitch) on the count the switch took; that count stays with the
// switch until then, so the day counts both orders WeChat Pay opened.
// Given back with the failed record, the replacement made on the next ask
// was counted by nothing, and with a limit of three the user opened a
// fourth order that day.
func TestSwitchWhoseReplacementRecordFailedCountsOnce(t *testing.T) {
	const user = "oUser-switch-record-refused"
	r := &recordRefused{failed: "armed below"}
	e := newEnv(t, envOptions{service: func(o *payments.Options) {
		r.fullStore = o.Store.(fullStore)
		o.Store = r
		o.Rules.MaxOrdersPerUserPerDay = 3
	}})
	ctx := context.Background()
	jsapi := payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly"}
	native := jsapi
	native.PayMethod = "native"
	a, err := e.svc.CreateOrder(ctx, jsapi)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.failed = ""
	r.mu.Unlock()
	if res, err := e.svc.CreateOrder(ctx, native); err == nil || res == nil || res.Closed != a.Order.OrderNo {
		t.Fatalf("the switch whose replacement's record fails: %+v, %v; want %s closed and the error", res, err, a.Order.OrderNo)
	}
	res, err := e.svc.CreateOrder(ctx, native)
	if err != nil || res.Order.Status != store.StatusAwaitingPayment || res.CodeURL == "" {
		t.Fatalf("ask again: %+v, %v; want the replacement, awaiting payment", res, err)
	}
	oneMoreOrder(t, e, user)
}

// TestSwitchMarkedWithNoLimitCountsUnderOne: a switch with no daily limit
// marks its order switched (so a cut replacement is made as one), and its
// close fails, leaving the order open. paygate restarts with a limit of
// two; the switch asked again counts its replacement against it. Read as
// a count taken before the counter's key was kept, the mark let the
// replacement through uncounted, and the user two more orders that day.
func TestSwitchMarkedWithNoLimitCountsUnderOne(t *testing.T) {
	const user = "oUser-switch-limit-after"
	e := newEnv(t, envOptions{service: func(o *payments.Options) {
		o.Backend = &firstCloseFails{Client: o.Backend.(*wechatpay.Client)}
	}})
	ctx := context.Background()
	jsapi := payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly"}
	native := jsapi
	native.PayMethod = "native"
	if _, err := e.svc.CreateOrder(ctx, jsapi); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateOrder(ctx, native); !errors.Is(err, payments.ErrPaymentUnavailable) {
		t.Fatalf("the switch with no limit: %v; want ErrPaymentUnavailable (close failed)", err)
	}
	e.svc = replicaOn(t, e, e.st, func(o *payments.Options) { o.Rules.MaxOrdersPerUserPerDay = 2 })
	if res, err := e.svc.CreateOrder(ctx, native); err != nil || res.CodeURL == "" {
		t.Fatalf("the switch asked again under a limit: %+v, %v; want the replacement", res, err)
	}
	oneMoreOrder(t, e, user)
}
