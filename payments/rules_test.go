package payments_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

var toolNames = payments.ToolNames{CreateOrder: "create_order", QueryOrder: "query_order", RequestRefund: "request_refund"}

func newTools(e *env) *payments.Tools {
	return payments.NewTools(e.svc, toolNames, slog.New(slog.NewJSONHandler(io.Discard, nil)))
}

// toolCall is one executed payment tool call, decoded.
type toolCall struct {
	out    payments.Outcome
	result map[string]any
	action map[string]any
}

func call(t *testing.T, tools *payments.Tools, c payments.Caller, name, args string) toolCall {
	t.Helper()
	tc := toolCall{out: tools.Execute(context.Background(), c, name, args)}
	if err := json.Unmarshal(tc.out.Result, &tc.result); err != nil {
		t.Fatalf("%s result %s: %v", name, tc.out.Result, err)
	}
	if tc.out.Action != nil {
		if err := json.Unmarshal(tc.out.Action, &tc.action); err != nil {
			t.Fatalf("%s action %s: %v", name, tc.out.Action, err)
		}
	}
	return tc
}

func caller(user string) payments.Caller {
	return payments.Caller{Client: "shop-bot", User: user, Session: user}
}

// otherClient is c's OpenID at another client: another user (README:
// the limits count a client's users apart).
func otherClient(c payments.Caller) payments.Caller {
	c.Client = "other-app-bot"
	return c
}

// boundaryCatalog prices one SKU on each side of 500.00 CNY and one on it.
func boundaryCatalog(t *testing.T) *payments.Catalog {
	t.Helper()
	c, err := payments.NewCatalog([]payments.CatalogItem{
		{SKU: "below", Name: "Below", Price: "499.99"},
		{SKU: "at", Name: "At", Price: "500.00"},
		{SKU: "above", Name: "Above", Price: "500.01"},
		{SKU: "small", Name: "Small", Price: "250.00", MaxQuantity: 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestApprovalAboveBoundary(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				o.Catalog = boundaryCatalog(t)
				o.Rules.ApprovalAboveFen = payments.FenPtr(50000)
			}})
			tools := newTools(e)
			tests := []struct {
				name       string
				args       string
				wantStatus string
				wantAction string
				wantFen    float64
			}{
				{name: "499.99 is prepaid", args: `{"sku":"below"}`, wantStatus: "awaiting_payment", wantAction: "order_created", wantFen: 49999},
				{name: "500.00 exactly is prepaid", args: `{"sku":"at"}`, wantStatus: "awaiting_payment", wantAction: "order_created", wantFen: 50000},
				{name: "500.01 waits for a manager", args: `{"sku":"above"}`, wantStatus: "approval_required", wantAction: "approval_required", wantFen: 50001},
				{name: "2 x 250.00 = 500.00 is prepaid", args: `{"sku":"small","quantity":2}`, wantStatus: "awaiting_payment", wantAction: "order_created", wantFen: 50000},
				{name: "3 x 250.00 = 750.00 waits", args: `{"sku":"small","quantity":3}`, wantStatus: "approval_required", wantAction: "approval_required", wantFen: 75000},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					tc := call(t, tools, caller("oUser-boundary"), "create_order", tt.args)
					if got := tc.result["status"]; got != tt.wantStatus {
						t.Fatalf("status %v; want %s (result %s)", got, tt.wantStatus, tc.out.Result)
					}
					if got := tc.action["type"]; got != tt.wantAction {
						t.Errorf("action %v; want %s", got, tt.wantAction)
					}
					order, _ := tc.action["order"].(map[string]any)
					if order["amount_fen"] != tt.wantFen || order["status"] != tt.wantStatus {
						t.Errorf("action order %v; want %v fen, %s", order, tt.wantFen, tt.wantStatus)
					}
					no, _ := tc.result["order_no"].(string)
					stored := e.order(no)
					if string(stored.Status) != tt.wantStatus {
						t.Errorf("stored status %s; want %s", stored.Status, tt.wantStatus)
					}
					wantPrepays := 1
					if tt.wantStatus == "approval_required" {
						wantPrepays = 0
						if _, held := tc.action["request_payment"]; held {
							t.Errorf("an order held for approval carried payment parameters")
						}
					}
					if got := e.sim.Prepays(no); got != wantPrepays {
						t.Errorf("prepays at WeChat Pay %d; want %d", got, wantPrepays)
					}
				})
			}
		})
	}
}

// purchasedUnderALimit starts an env on driver (its store on the env's
// clock) with max_payment_calls_per_minute at limit, and makes user's first
// purchase of premium-monthly, awaiting payment: the start of every test of
// what a purchase asked again does to the per-minute limit. It returns the
// env, its tools, the caller and the order's number.
func purchasedUnderALimit(t *testing.T, driver string, limit int, user string) (*env, *payments.Tools, payments.Caller, string) {
	t.Helper()
	e := newEnv(t, envOptions{driver: driver, storeClock: true, service: func(o *payments.Options) {
		o.Rules.MaxPaymentCallsPerMinute = limit
	}})
	tools := newTools(e)
	u := caller(user)
	first := call(t, tools, u, "create_order", `{"sku":"premium-monthly"}`)
	no, _ := first.result["order_no"].(string)
	if first.result["status"] != "awaiting_payment" || no == "" {
		t.Fatalf("create_order: %s", first.out.Result)
	}
	return e, tools, u, no
}

func TestMaxOrdersPerUserPerDay(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, storeClock: true, service: func(o *payments.Options) {
				o.Rules.MaxOrdersPerUserPerDay = 2
			}})
			tools := newTools(e)
			alice := caller("oUser-daily-alice")
			steps := []struct {
				name       string
				c          payments.Caller
				args       string
				wantStatus string
				wantOrders int // orders at the simulator after the step
			}{
				{name: "first order", c: alice, args: `{"sku":"premium-monthly","quantity":1}`, wantStatus: "awaiting_payment", wantOrders: 1},
				{name: "second order (the limit)", c: alice, args: `{"sku":"premium-monthly","quantity":2}`, wantStatus: "awaiting_payment", wantOrders: 2},
				{name: "a repeat of a live purchase is not a new order", c: alice, args: `{"sku":"premium-monthly","quantity":2}`, wantStatus: "awaiting_payment", wantOrders: 2},
				{name: "third order refused", c: alice, args: `{"sku":"premium-monthly","quantity":3}`, wantStatus: "refused", wantOrders: 2},
				{name: "refused again, judged afresh", c: alice, args: `{"sku":"premium-monthly","quantity":3}`, wantStatus: "refused", wantOrders: 2},
				{name: "another user has their own count", c: caller("oUser-daily-bob"), args: `{"sku":"premium-monthly","quantity":3}`, wantStatus: "awaiting_payment", wantOrders: 3},
				// The same OpenID at another client (another mini-program,
				// another merchant's bot) is another user: its own count.
				{name: "the same OpenID at another client has its own count", c: otherClient(alice), args: `{"sku":"premium-monthly","quantity":3}`, wantStatus: "awaiting_payment", wantOrders: 4},
				{name: "and its own limit", c: otherClient(alice), args: `{"sku":"premium-monthly","quantity":4}`, wantStatus: "awaiting_payment", wantOrders: 5},
				{name: "which it reaches on its own", c: otherClient(alice), args: `{"sku":"premium-monthly","quantity":5}`, wantStatus: "refused", wantOrders: 5},
			}
			for _, st := range steps {
				tc := call(t, tools, st.c, "create_order", st.args)
				if got := tc.result["status"]; got != st.wantStatus {
					t.Fatalf("%s: status %v; want %s (%s)", st.name, got, st.wantStatus, tc.out.Result)
				}
				if got := e.sim.OrderCount(); got != st.wantOrders {
					t.Errorf("%s: simulator orders %d; want %d", st.name, got, st.wantOrders)
				}
				if st.wantStatus == "refused" && (tc.action != nil || !tc.out.MoneyMoving || !tc.out.Executed) {
					t.Errorf("%s: outcome %+v; want a counted call with no action", st.name, tc.out)
				}
			}
			mine, err := e.st.ListOrders(context.Background(), store.OrderFilter{Client: "shop-bot", User: alice.User})
			if err != nil {
				t.Fatal(err)
			}
			if len(mine) != 2 {
				t.Errorf("alice has %d stored orders; want 2 (a refused order is not recorded)", len(mine))
			}
			// The next day (China Standard Time) counts afresh.
			e.clock.Advance(24 * time.Hour)
			if tc := call(t, tools, alice, "create_order", `{"sku":"premium-monthly","quantity":3}`); tc.result["status"] != "awaiting_payment" {
				t.Errorf("next day: status %v; want awaiting_payment", tc.result["status"])
			}
		})
	}
}

// TestPayMethodSwitchAtTheDailyLimit: paying an open order another way (a
// QR code on a desktop after a JSAPI order) closes it at WeChat Pay and
// opens a new order there, which the daily limit counts, before the close:
// at the limit the switch is refused and the user keeps the order they can
// pay, a manager's approval with it (closing first left them none); and
// switching back and forth opens no more orders than the limit allows.
func TestPayMethodSwitchAtTheDailyLimit(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				o.Rules.MaxOrdersPerUserPerDay = 1
				o.Rules.ApprovalAboveFen = payments.FenPtr(50000)
			}})
			tools := newTools(e)
			u := caller("oUser-switch-limit")
			first := call(t, tools, u, "create_order", `{"sku":"premium-monthly","pay_method":"jsapi"}`)
			if first.result["status"] != "awaiting_payment" {
				t.Fatalf("first order: %s", first.out.Result)
			}
			if sw := call(t, tools, u, "create_order", `{"sku":"premium-monthly","pay_method":"native"}`); sw.result["status"] != "refused" {
				t.Errorf("the switch to native at the limit: %s; want refused", sw.out.Result)
			}
			no := first.result["order_no"].(string)
			if o := e.order(no); o.Status != store.StatusAwaitingPayment {
				t.Errorf("the JSAPI order is %s; want awaiting_payment (the user keeps it)", o.Status)
			}
			if tx, _ := e.sim.Order(no); tx.TradeState != "NOTPAY" {
				t.Errorf("the JSAPI order at WeChat Pay is %s; want NOTPAY (payable)", tx.TradeState)
			}

			// Approved by a manager, then asked another way at the limit:
			// the approved order stays payable.
			v := caller("oUser-switch-approved")
			held := call(t, tools, v, "create_order", `{"sku":"premium-monthly","quantity":12}`) // 599.88
			if held.result["status"] != "approval_required" {
				t.Fatalf("held: %s", held.out.Result)
			}
			if _, err := e.svc.Approve(context.Background(), held.result["order_no"].(string)); err != nil {
				t.Fatal(err)
			}
			call(t, tools, v, "create_order", `{"sku":"premium-monthly","quantity":12,"pay_method":"native"}`)
			if o := e.order(held.result["order_no"].(string)); o.Status != store.StatusAwaitingPayment {
				t.Errorf("the approved order is %s after a switch at the limit; want awaiting_payment", o.Status)
			}
		})
	}
	t.Run("a switch retried after its close failed", func(t *testing.T) {
		// WeChat Pay failed the close: the open order stays, the switch
		// fails, and its retry replaces the same order, which is counted
		// once, not once per try.
		e := newEnv(t, envOptions{driver: "embedded", service: func(o *payments.Options) {
			o.Rules.MaxOrdersPerUserPerDay = 2
		}})
		tools := newTools(e)
		u := caller("oUser-switch-closefail")
		if first := call(t, tools, u, "create_order", `{"sku":"premium-monthly","pay_method":"jsapi"}`); first.result["status"] != "awaiting_payment" {
			t.Fatalf("first: %s", first.out.Result)
		}
		e.sim.InjectFault(wxsim.Fault{Op: "close", Kind: wxsim.FaultSystemError, Times: 3})
		call(t, tools, u, "create_order", `{"sku":"premium-monthly","pay_method":"native"}`)
		if sw := call(t, tools, u, "create_order", `{"sku":"premium-monthly","pay_method":"native"}`); sw.result["status"] != "awaiting_payment" {
			t.Errorf("the switch retried with WeChat Pay healthy: %s; want awaiting_payment (one order replaced, 2 of 2)", sw.out.Result)
		}
	})
	t.Run("back and forth", func(t *testing.T) {
		e := newEnv(t, envOptions{driver: "embedded", service: func(o *payments.Options) {
			o.Rules.MaxOrdersPerUserPerDay = 3
		}})
		tools := newTools(e)
		u := caller("oUser-flipflop")
		for i := range 10 {
			call(t, tools, u, "create_order", `{"sku":"premium-monthly","pay_method":"`+[]string{"jsapi", "native"}[i%2]+`"}`)
		}
		if n := e.sim.OrderCount(); n != 3 {
			t.Errorf("WeChat Pay orders after 10 switches under a daily limit of 3: %d; want 3", n)
		}
	})
}

// TestDailyLimitCountsOnlyOrdersMade: the daily order limit counts an order
// before WeChat Pay is asked, and gives the count back when no order came of
// it: a prepay WeChat Pay refused (a merchant's misconfiguration, here an app
// ID the merchant account is not bound to), at once or after a manager's
// approval, or a switch of pay method whose open order turned out paid.
// Counted, the user was locked out for the rest of the day by orders that
// never existed.
func TestDailyLimitCountsOnlyOrdersMade(t *testing.T) {
	const bound = "wx-bound-app-only"
	ctx := context.Background()
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			t.Run("a refused prepay", func(t *testing.T) {
				e := newEnv(t, envOptions{driver: driver, sim: wxsim.Options{AppIDs: []string{bound}}, service: func(o *payments.Options) {
					o.Rules.MaxOrdersPerUserPerDay = 1
				}})
				req := payments.CreateRequest{Client: "shop-bot", User: "oUser-refused-limit", SKU: "premium-monthly"}
				if _, err := e.svc.CreateOrder(ctx, req); !errors.Is(err, payments.ErrPrepayRejected) {
					t.Fatalf("first order: %v; want ErrPrepayRejected", err)
				}
				req.AppID = bound // the merchant fixed the binding
				res, err := e.svc.CreateOrder(ctx, req)
				if err != nil {
					t.Fatalf("the order once WeChat Pay accepts it: %v; want it made (the refused one was never an order)", err)
				}
				if res.Order.Status != store.StatusAwaitingPayment {
					t.Errorf("status %s; want awaiting_payment", res.Order.Status)
				}
				if _, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: req.User, SKU: "premium-monthly", Quantity: 2, AppID: bound}); !errors.Is(err, payments.ErrDailyLimit) {
					t.Errorf("a second order made: %v; want ErrDailyLimit (the limit still counts real orders)", err)
				}
			})
			t.Run("a refused prepay after approval", func(t *testing.T) {
				e := newEnv(t, envOptions{driver: driver, sim: wxsim.Options{AppIDs: []string{bound}}, service: func(o *payments.Options) {
					o.Rules.MaxOrdersPerUserPerDay = 1
					o.Rules.ApprovalAboveFen = payments.FenPtr(50000)
				}})
				req := payments.CreateRequest{Client: "shop-bot", User: "oUser-approved-refused", SKU: "premium-monthly", Quantity: 12}
				held, err := e.svc.CreateOrder(ctx, req)
				if err != nil || held.Order.Status != store.StatusApprovalRequired {
					t.Fatalf("held order: %+v, %v", held, err)
				}
				if _, err := e.svc.Approve(ctx, held.Order.OrderNo); !errors.Is(err, payments.ErrPrepayRejected) {
					t.Fatalf("approval: %v; want ErrPrepayRejected", err)
				}
				if _, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: req.User, SKU: "premium-monthly", AppID: bound}); err != nil {
					t.Errorf("an order after the refused one: %v; want it made", err)
				}
			})
			t.Run("a switch that found the order paid", func(t *testing.T) {
				e := newEnv(t, envOptions{driver: driver, notifyTo: "sink", service: func(o *payments.Options) {
					o.Rules.MaxOrdersPerUserPerDay = 2
				}})
				const user = "oUser-switch-paid-limit"
				if _, b := switchAfterUnnoticedPayment(t, e, user); b.Order.Status != store.StatusPaid {
					t.Fatalf("the switch: %+v; want the paid order", b.Order)
				}
				if _, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: 2}); err != nil {
					t.Errorf("a second purchase: %v; want it made (one order today, the replacement never made)", err)
				}
			})
		})
	}
}

// slowCounters is a store whose daily order count takes 2 ms of the clock,
// a Redis round trip: China's midnight may pass during it.
type slowCounters struct {
	payments.Store
	clk *storetest.Clock
}

func (s slowCounters) IncrCounter(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	n, err := s.Store.IncrCounter(ctx, key, ttl)
	if strings.HasPrefix(key, "orders:") {
		s.clk.Advance(2 * time.Millisecond)
	}
	return n, err
}

// TestDailyLimitDayIsTheOrdersDay: an order is counted on the day of its
// created_at. Its count taken at 23:59:59.999 China time and its record
// made just after midnight counted it on the day before, so the new day held
// one order more than the limit.
func TestDailyLimitDayIsTheOrdersDay(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	y, m, d := time.Now().In(cst).Date()
	midnight := time.Date(y, m, d+1, 0, 0, 0, 0, cst) // ahead, so orders do not expire at WeChat Pay
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := storetest.NewClock()
			clk.Advance(midnight.Add(-time.Millisecond).Sub(clk.Now()))
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				o.Rules.MaxOrdersPerUserPerDay = 2
				o.Now = clk.Now
				o.Store = slowCounters{Store: o.Store, clk: clk}
			}})
			ctx := context.Background()
			const user = "oUser-midnight"
			for qty := 1; qty <= 3; qty++ {
				if _, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: qty}); err != nil && !errors.Is(err, payments.ErrDailyLimit) {
					t.Fatalf("order of %d: %v", qty, err)
				}
				clk.Advance(time.Second)
			}
			mine, err := e.st.ListOrders(ctx, store.OrderFilter{Client: "shop-bot", User: user})
			if err != nil {
				t.Fatal(err)
			}
			perDay := map[string]int{}
			for _, o := range mine {
				perDay[o.CreatedAt.In(cst).Format("2006-01-02")]++
			}
			for day, n := range perDay {
				if n > 2 {
					t.Errorf("%d orders created on %s (China time); the limit is 2 a day", n, day)
				}
			}
		})
	}
}

func TestMaxPaymentCallsPerMinute(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, storeClock: true, service: func(o *payments.Options) {
				o.Rules.MaxPaymentCallsPerMinute = 3
			}})
			tools := newTools(e)
			u := caller("oUser-rate")
			steps := []struct {
				name        string
				c           payments.Caller
				tool, args  string
				wantStatus  string
				wantClarify bool
			}{
				{name: "call 1", c: u, tool: "query_order", args: `{"order_no":"PG000000000000none"}`, wantStatus: "not_found"},
				{name: "call 2", c: u, tool: "query_order", args: `{"order_no":"PG000000000000none"}`, wantStatus: "not_found"},
				{name: "call 3 (the limit)", c: u, tool: "query_order", args: `{"order_no":"PG000000000000none"}`, wantStatus: "not_found"},
				{name: "call 4 refused", c: u, tool: "query_order", args: `{"order_no":"PG000000000000none"}`, wantStatus: "rate_limited", wantClarify: true},
				{name: "a create_order past the limit never reaches WeChat Pay", c: u, tool: "create_order", args: `{"sku":"premium-monthly"}`, wantStatus: "rate_limited", wantClarify: true},
				{name: "another user is not limited", c: caller("oUser-rate-other"), tool: "query_order", args: `{"order_no":"PG000000000000none"}`, wantStatus: "not_found"},
				{name: "nor is the same OpenID at another client", c: otherClient(u), tool: "query_order", args: `{"order_no":"PG000000000000none"}`, wantStatus: "not_found"},
			}
			for _, st := range steps {
				tc := call(t, tools, st.c, st.tool, st.args)
				if got := tc.result["status"]; got != st.wantStatus || tc.out.Clarify != st.wantClarify {
					t.Fatalf("%s: status %v clarify %v; want %s %v (%s)", st.name, got, tc.out.Clarify, st.wantStatus, st.wantClarify, tc.out.Result)
				}
			}
			if n := e.sim.OrderCount(); n != 0 {
				t.Errorf("simulator has %d orders; want 0", n)
			}
			// A minute later the window starts again.
			e.clock.Advance(61 * time.Second)
			if tc := call(t, tools, u, "create_order", `{"sku":"premium-monthly"}`); tc.result["status"] != "awaiting_payment" {
				t.Errorf("after a minute: status %v; want awaiting_payment", tc.result["status"])
			}
		})
	}
}

// TestPastTheLimitAnExpiredOrderIsNoRepeat: past
// max_payment_calls_per_minute a create_order still runs when it only asks
// again for its purchase's order (RepeatsPurchase), which reaches no WeChat
// Pay. An order awaiting payment past its deadline that no sweep closed
// yet is no such order: create_order asks WeChat Pay about it, closes it
// there and opens a new one. Past the limit that call is refused, and
// nothing reaches WeChat Pay.
func TestPastTheLimitAnExpiredOrderIsNoRepeat(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e, tools, u, no := purchasedUnderALimit(t, driver, 1, "oUser-rate-expired")
			e.clock.Advance(payments.DefaultOrderTTL + time.Minute) // past its deadline; no sweep runs
			if tc := call(t, tools, u, "query_order", `{"order_no":"PG000000000000none"}`); tc.result["status"] != "not_found" {
				t.Fatalf("query_order (the minute's one call): %s", tc.out.Result)
			}
			before := len(e.sim.Requests())
			tc := call(t, tools, u, "create_order", `{"sku":"premium-monthly"}`)
			var reached []string
			for _, r := range e.sim.Requests()[before:] {
				reached = append(reached, r.Op+" "+r.OutTradeNo)
			}
			if tc.result["status"] != "rate_limited" || len(reached) != 0 {
				t.Errorf("create_order past the limit for a purchase whose order %s expired: %s, WeChat Pay asked %d times %v; want rate_limited and none",
					no, tc.out.Result, len(reached), reached)
			}
			if n := e.sim.OrderCount(); n != 1 {
				t.Errorf("%d orders at WeChat Pay; want 1", n)
			}
		})
	}
}

// TestPaymentCallsPerMinuteInAnyMinute: the cap holds in any minute. A
// window started by the first call let a call at its start, two at its
// end and three at the next one's start through: five calls within half a
// second under a cap of three.
func TestPaymentCallsPerMinuteInAnyMinute(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, storeClock: true, service: func(o *payments.Options) {
				o.Rules.MaxPaymentCallsPerMinute = 3
			}})
			ctx := context.Background()
			var accepted []time.Time
			try := func() {
				if err := e.svc.CheckCall(ctx, "shop-bot", "oUser-edge"); err == nil {
					accepted = append(accepted, e.clock.Now())
				} else if !errors.Is(err, payments.ErrRateLimited) {
					t.Fatal(err)
				}
			}
			try()
			e.clock.Advance(59500 * time.Millisecond)
			try()
			try()
			e.clock.Advance(500 * time.Millisecond)
			try()
			try()
			try()
			for i := range accepted {
				n := 0
				for j := i; j < len(accepted) && accepted[j].Sub(accepted[i]) < time.Minute; j++ {
					n++
				}
				if n > 3 {
					t.Fatalf("%d calls accepted within a minute of %v (accepted at %v); the cap is 3", n, accepted[i], accepted)
				}
			}
			if len(accepted) != 4 {
				t.Errorf("%d calls accepted; want 4 (three, then one more once the first is a minute old)", len(accepted))
			}
		})
	}
}

func TestSKUQuantityAndAllowList(t *testing.T) {
	e := newEnv(t, envOptions{service: func(o *payments.Options) { o.Catalog = boundaryCatalog(t) }})
	tools := newTools(e)
	limited := payments.Caller{Client: "kiosk-bot", User: "oUser-sku", Session: "s", AllowedSKUs: []string{"small"}}
	open := caller("oUser-sku")
	tests := []struct {
		name       string
		c          payments.Caller
		args       string
		wantStatus string
		wantText   string // in the error the model reads
	}{
		{name: "the maximum quantity", c: limited, args: `{"sku":"small","quantity":3}`, wantStatus: "awaiting_payment"},
		{name: "one over the maximum", c: limited, args: `{"sku":"small","quantity":4}`, wantStatus: "needs_clarification", wantText: "between 1 and 3"},
		{name: "zero", c: limited, args: `{"sku":"small","quantity":0}`, wantStatus: "needs_clarification", wantText: "between 1 and 3"},
		{name: "negative", c: limited, args: `{"sku":"small","quantity":-1}`, wantStatus: "needs_clarification", wantText: "between 1 and 3"},
		{name: "a fraction", c: limited, args: `{"sku":"small","quantity":1.5}`, wantStatus: "needs_clarification", wantText: "whole number"},
		{name: "a number in a string", c: limited, args: `{"sku":"small","quantity":"2"}`, wantStatus: "needs_clarification", wantText: "whole number"},
		{name: "a SKU outside the client's allow-list", c: limited, args: `{"sku":"at"}`, wantStatus: "needs_clarification", wantText: "valid skus: small"},
		{name: "the same SKU for a client without a list", c: open, args: `{"sku":"at"}`, wantStatus: "awaiting_payment"},
	}
	orders := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := call(t, tools, tt.c, "create_order", tt.args)
			if tc.result["status"] != tt.wantStatus {
				t.Fatalf("result %s; want %s", tc.out.Result, tt.wantStatus)
			}
			if msg, _ := tc.result["error"].(string); tt.wantText != "" && !strings.Contains(msg, tt.wantText) {
				t.Errorf("error %q; want it to say %q", msg, tt.wantText)
			}
			if tt.wantStatus == "awaiting_payment" {
				orders++
			} else if !tc.out.Clarify || tc.out.Executed {
				t.Errorf("outcome %+v; want a clarification that executed nothing", tc.out)
			}
			if n := e.sim.OrderCount(); n != orders {
				t.Errorf("simulator orders %d; want %d", n, orders)
			}
		})
	}
}
