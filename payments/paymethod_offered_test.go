package payments_test

import (
	"strings"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestPayMethodNotOfferedIsAsked: Native Pay and JSAPI are products a
// merchant activates apart at WeChat Pay. A caller offered jsapi alone
// (payments.pay_methods) whose model still names "native" (models ignore
// enums) gets a clarification naming the methods offered: no order, no
// WeChat Pay call, nothing counted against the day's or the minute's
// limit (both 1 here: the jsapi order after it is made). A switch of the
// open order to the method not offered is asked about the same way, and
// the open order stays as it is. Left out, the pay method is the
// caller's first.
func TestPayMethodNotOfferedIsAsked(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				o.Rules.MaxOrdersPerUserPerDay = 1
				o.Rules.MaxPaymentCallsPerMinute = 2
			}})
			tools := newTools(e)
			c := caller("oUser-offered-jsapi")
			c.PayMethods = []string{"jsapi"}
			for _, args := range []string{`{"sku":"premium-monthly","pay_method":"native"}`, `{"sku":"premium-monthly","pay_method":"native","quantity":1}`} {
				got := call(t, tools, c, "create_order", args)
				if got.result["status"] != "needs_clarification" || !got.out.Clarify || got.out.Executed || got.action != nil {
					t.Fatalf("%s: %s %s; want a clarification, nothing executed", args, got.out.Result, got.out.Action)
				}
				if msg, _ := got.result["error"].(string); !strings.Contains(msg, `"native" is not offered`) || !strings.Contains(msg, `"jsapi" (to pay inside WeChat)`) {
					t.Errorf("%s: %q; want it to say native is not offered and name jsapi", args, msg)
				}
			}
			if n := len(e.sim.Requests()); n != 0 {
				t.Fatalf("%d requests reached WeChat Pay; want none", n)
			}
			// Not counted: the day's one order and the minute's calls are
			// still there.
			ok := call(t, tools, c, "create_order", `{"sku":"premium-monthly"}`)
			no, _ := ok.result["order_no"].(string)
			if ok.result["status"] != "awaiting_payment" || no == "" || ok.action["request_payment"] == nil {
				t.Fatalf("jsapi after the refused native: %s %s; want an order with request_payment", ok.out.Result, ok.out.Action)
			}
			if o := e.order(no); o.PayMethod != "jsapi" {
				t.Errorf("the order left without pay_method is %s; want jsapi", o.PayMethod)
			}
			// A switch to native: asked, the jsapi order stays open.
			before := len(e.sim.Requests())
			sw := call(t, tools, c, "create_order", `{"sku":"premium-monthly","pay_method":"native"}`)
			if sw.result["status"] != "needs_clarification" || sw.out.Executed {
				t.Fatalf("switch to native: %s; want a clarification", sw.out.Result)
			}
			if n := len(e.sim.Requests()); n != before {
				t.Errorf("the switch sent %d requests to WeChat Pay; want none", n-before)
			}
			if o := e.order(no); o.Status != store.StatusAwaitingPayment || o.PayMethod != "jsapi" {
				t.Errorf("the jsapi order is %s, %s after the refused switch; want awaiting_payment, jsapi", o.Status, o.PayMethod)
			}
			if tx, _ := e.sim.Order(no); tx.TradeState != "NOTPAY" {
				t.Errorf("the jsapi order at WeChat Pay is %s; want NOTPAY", tx.TradeState)
			}
			// A native-only caller's order left without pay_method is native.
			n := caller("oUser-offered-native")
			n.PayMethods = []string{"native"}
			qr := call(t, tools, n, "create_order", `{"sku":"premium-monthly"}`)
			if qr.result["status"] != "awaiting_payment" || qr.action["code_url"] == nil {
				t.Fatalf("native-only: %s %s; want an order with a code_url", qr.out.Result, qr.out.Action)
			}
			js := call(t, tools, n, "create_order", `{"sku":"premium-monthly","payment_method":"jsapi"}`)
			if msg, _ := js.result["error"].(string); js.result["status"] != "needs_clarification" || !strings.Contains(msg, `"native" (a QR code to scan)`) {
				t.Errorf("native-only, jsapi under another name: %s; want a clarification naming native", js.out.Result)
			}
			// The one method offered, under another name: what leaving it
			// out means (the tool has no pay_method then), so not asked.
			for _, extra := range []string{`"payment_method":"native"`, `"trade_type":"NATIVE"`} {
				same := call(t, tools, n, "create_order", `{"sku":"premium-monthly",`+extra+`}`)
				if same.result["status"] != "awaiting_payment" || same.result["order_no"] != qr.result["order_no"] {
					t.Errorf("native-only, %s: %s; want the open QR order %v", extra, same.out.Result, qr.result["order_no"])
				}
			}
		})
	}
}

// TestOrderOfMethodLaterDisabledStaysPayable: a config change between
// restarts must not strand money. An order opened by QR code while both
// methods were offered, asked for again once only jsapi is (pay_method
// left out, as a model re-asking writes it), is handed back as it is,
// with its code_url: not closed, not switched; it can be read and paid,
// and its payment is recorded.
func TestOrderOfMethodLaterDisabledStaysPayable(t *testing.T) {
	e := newEnv(t, envOptions{})
	tools := newTools(e)
	c := caller("oUser-disabled-later")
	first := call(t, tools, c, "create_order", `{"sku":"premium-monthly","pay_method":"native"}`)
	no, _ := first.result["order_no"].(string)
	if first.result["status"] != "awaiting_payment" || first.action["code_url"] == nil {
		t.Fatalf("native order: %s %s", first.out.Result, first.out.Action)
	}
	c.PayMethods = []string{"jsapi"} // restarted with payments.pay_methods: [jsapi]
	again := call(t, tools, c, "create_order", `{"sku":"premium-monthly"}`)
	if again.result["order_no"] != no || again.result["status"] != "awaiting_payment" {
		t.Fatalf("asked again: %s; want the open order %s", again.out.Result, no)
	}
	if again.action != nil && again.action["code_url"] == nil {
		t.Errorf("asked again: action %s; want the QR order's code_url", again.out.Action)
	}
	if o := e.order(no); o.Status != store.StatusAwaitingPayment || o.PayMethod != "native" {
		t.Errorf("the QR order is %s, %s; want awaiting_payment, native", o.Status, o.PayMethod)
	}
	q := call(t, tools, c, "query_order", `{"order_no":"`+no+`"}`)
	if q.result["status"] != "awaiting_payment" {
		t.Errorf("query_order: %s; want awaiting_payment", q.out.Result)
	}
	if _, err := e.sim.Pay(t.Context(), no); err != nil {
		t.Fatalf("paying the QR order: %v", err)
	}
	e.await(func(tr payments.Transition) bool {
		return tr.After.OrderNo == no && tr.After.Status == store.StatusPaid
	})
	if q := call(t, tools, c, "query_order", `{"order_no":"`+no+`"}`); q.result["status"] != "paid" {
		t.Errorf("query_order after paying: %s; want paid", q.out.Result)
	}
	if n := e.sim.OrderCount(); n != 1 {
		t.Errorf("%d orders at WeChat Pay; want 1", n)
	}
}
