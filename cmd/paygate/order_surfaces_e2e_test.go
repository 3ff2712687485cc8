package main

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store/testdrivers"
)

// orderMembers are the members of SPEC 2.3's order object, and no more.
var orderMembers = []string{"amount_fen", "created_at", "currency", "description", "expires_at", "order_no",
	"paid_at", "pay_method", "quantity", "refunded_fen", "sku", "status"}

// refundMembers are the members of the refund object on every surface (the
// turn's actions, the user API's answers and orders, the merchant webhooks);
// proposalMembers and outcomeMembers are what a proposal, and a refund
// WeChat Pay settled, add to them.
var (
	refundMembers   = []string{"amount_fen", "created_at", "currency", "order_no", "reason", "refund_id", "status"}
	proposalMembers = []string{"confirm_url", "expires_at", "label"}
	outcomeMembers  = []string{"settled_at"}
)

// directedScript is a model that does what the user's last message says:
// "call TOOL ARGS" calls TOOL with the JSON ARGS; anything else, and the
// round after a tool result, is answered with a line of text.
func directedScript(body string) scriptRound {
	last := gjson.Get(body, "messages.@reverse.0")
	if c := last.Get("content").Str; last.Get("role").Str == "user" && strings.HasPrefix(c, "call ") {
		tool, args, _ := strings.Cut(strings.TrimPrefix(c, "call "), " ")
		return moneyScript(tool, func() string { return args })(body)
	}
	return scriptRound{whole: `{"id":"chatcmpl-D","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Noted."},"finish_reason":"stop"}]}`}
}

// TestOrderObjectSameOnEverySurface: the order object of one order in one
// state is the same (the same members, the same values) in the turn's
// action, in GET /v1/paygate/orders/{no}, in its entry of GET
// /v1/paygate/orders and in the merchant webhook, for every status an
// order can be seen in: awaiting_payment, paid, approval_required,
// rejected, closed (a switch of pay method), refunding,
// partially_refunded, refunded, needs_review and expired. Each surface is read
// while the order is in that state; where a state has no action or no
// webhook, the surfaces it has are compared. Each refund of it is held to
// one refund object likewise: proposed (the refund_proposed action, the
// order's refunds_proposed, refund.proposed), cancelled or confirmed (the
// user API's answer) and settled (refund_succeeded, refund.succeeded), the
// same members in each state and the same values in every state but status.
func TestOrderObjectSameOnEverySurface(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			m := newMerchant(t, nil)
			up := newScriptedProvider(t, directedScript)
			var ahead atomic.Int64 // how far the payments clock is ahead
			clock := withPaymentsClock(func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) })
			url, a, _ := hookApp(t, webhookStoreYAML(t, driver), up.URL, m.URL, "", nil, clock)
			admin := httptest.NewServer(a.adminHandler())
			t.Cleanup(admin.Close)
			ctx := context.Background()
			bearer := "Bearer " + e2eClientKey

			// members checks that v is an order object of SPEC 2.3 and
			// returns it without the members only the user API adds.
			members := func(where string, v gjson.Result) map[string]any {
				t.Helper()
				o, _ := v.Value().(map[string]any)
				delete(o, "request_payment")
				delete(o, "code_url")
				delete(o, "refunds_proposed")
				var got []string
				for k := range o {
					got = append(got, k)
				}
				slices.Sort(got)
				if !slices.Equal(got, orderMembers) {
					t.Errorf("%s: order members %v; want %v", where, got, orderMembers)
				}
				return o
			}
			// payable checks what v (an order_created action, or an order
			// of the user API) hands the payer: for jsapi, what
			// wx.requestPayment takes, signed with the merchant's key; for
			// native, the code_url alone; for "", nothing.
			payable := func(where string, v gjson.Result, method string) {
				t.Helper()
				rp, code := v.Get("request_payment"), v.Get("code_url")
				switch method {
				case "jsapi":
					var keys []string
					rp.ForEach(func(k, _ gjson.Result) bool { keys = append(keys, k.Str); return true })
					slices.Sort(keys)
					if fmt.Sprint(keys) != "[appId nonceStr package paySign signType timeStamp]" || code.Exists() {
						t.Errorf("%s: %s; want request_payment of wx.requestPayment's six members and no code_url", where, v.Raw)
						return
					}
					ts, err := strconv.ParseInt(rp.Get("timeStamp").Str, 10, 64)
					if rp.Get("timeStamp").Type != gjson.String || err != nil || time.Since(time.Unix(ts, 0)).Abs() > 5*time.Minute {
						t.Errorf("%s: timeStamp %s; want a string of the seconds now", where, rp.Get("timeStamp").Raw)
					}
					if rp.Get("appId").Str != a.sim.AppID() || rp.Get("nonceStr").Str == "" || rp.Get("signType").Str != "RSA" ||
						!strings.HasPrefix(rp.Get("package").Str, "prepay_id=wx") {
						t.Errorf("%s: request_payment %s; want the app %s, a nonce, RSA and prepay_id=…", where, rp.Raw, a.sim.AppID())
					}
					msg := rp.Get("appId").Str + "\n" + rp.Get("timeStamp").Str + "\n" + rp.Get("nonceStr").Str + "\n" + rp.Get("package").Str + "\n"
					sig, err := base64.StdEncoding.DecodeString(rp.Get("paySign").Str)
					sum := sha256.Sum256([]byte(msg))
					if err != nil || rsa.VerifyPKCS1v15(&a.sim.Keys().MerchantKey.PublicKey, crypto.SHA256, sum[:], sig) != nil {
						t.Errorf("%s: paySign %q does not verify with the merchant's public key over %q", where, rp.Get("paySign").Str, msg)
					}
				case "native":
					if !strings.HasPrefix(code.Str, "weixin://wxpay/bizpayurl") || rp.Exists() {
						t.Errorf("%s: %s; want code_url alone", where, v.Raw)
					}
				default:
					if rp.Exists() || code.Exists() {
						t.Errorf("%s: %s; want no payment parameters", where, v.Raw)
					}
				}
			}
			// same compares the order object of every surface named with
			// the user API's, read now, which must be in status; an
			// action's payment parameters are checked with the API's.
			same := func(user, no, status string, surfaces map[string]gjson.Result) {
				t.Helper()
				code, one := httpCall(t, http.MethodGet, url+"/v1/paygate/orders/"+no, bearer, user)
				if code != http.StatusOK {
					t.Fatalf("%s: GET order %s: %d %s", status, no, code, one.Raw)
				}
				_, list := httpCall(t, http.MethodGet, url+"/v1/paygate/orders?limit=100", bearer, user)
				surfaces["GET /v1/paygate/orders"] = list.Get(`data.#(order_no=="` + no + `")`)
				want := members(status+": GET /v1/paygate/orders/{no}", one)
				if want["status"] != status {
					t.Fatalf("GET order %s: status %v; want %s (%s)", no, want["status"], status, one.Raw)
				}
				method := ""
				if status == "awaiting_payment" {
					method, _ = want["pay_method"].(string)
				}
				payable(status+": GET /v1/paygate/orders/{no}", one, method)
				payable(status+": GET /v1/paygate/orders", surfaces["GET /v1/paygate/orders"], method)
				for where, v := range surfaces {
					if v.Get("type").Exists() { // an action
						if v.Get("type").Str == "order_created" {
							payable(status+": "+where, v, method)
						}
						v = v.Get("order")
					}
					if !v.Exists() {
						t.Errorf("%s: no order in %s", status, where)
						continue
					}
					if got := members(status+": "+where, v); fmt.Sprint(got) != fmt.Sprint(want) {
						t.Errorf("%s: the order in %s\n%v\nis not the user API's\n%v", status, where, got, want)
					}
				}
			}
			action := func(ans gjson.Result, typ, no string) gjson.Result {
				t.Helper()
				act := ans.Get(`paygate.actions.#(order.order_no=="` + no + `")`)
				if act.Get("type").Str != typ {
					t.Fatalf("actions %s; want %s of %s", ans.Get("paygate").Raw, typ, no)
				}
				return act
			}
			hook := func(typ, no, status string) gjson.Result {
				t.Helper()
				h := m.await(t, typ+" of "+no, func(h hookArrival) bool {
					return h.env.Type == typ && h.env.Data.Order["order_no"] == no && h.env.Data.Order["status"] == status
				})
				return gjson.GetBytes(h.body, "data.order")
			}

			// awaiting_payment, then paid.
			const payer = "oUser-surfaces-payer"
			ans := chatAs(t, url, payer, `call create_order {"sku":"premium-monthly","quantity":3}`)
			paidNo := ans.Get("paygate.actions.0.order.order_no").Str
			same(payer, paidNo, "awaiting_payment", map[string]gjson.Result{"order_created": action(ans, "order_created", paidNo)})
			if d, err := a.sim.Pay(ctx, paidNo); err != nil || !d.Acked {
				t.Fatalf("pay: %+v %v", d, err)
			}
			paidHook := hook(webhook.TypeOrderPaid, paidNo, "paid")
			same(payer, paidNo, "paid", map[string]gjson.Result{
				"order.paid":        paidHook,
				"payment_confirmed": action(chatAs(t, url, payer, "thanks"), "payment_confirmed", paidNo),
			})

			// sameRefund checks that each surface's refund object has the
			// members of refundMembers and extra, and no more, and that
			// they are all the same; the webhook's refunded_fen, which
			// only its refund outcomes carry, is checked against its
			// order's. It returns the object.
			sameRefund := func(state string, surfaces map[string]gjson.Result, extra ...string) (want map[string]any) {
				t.Helper()
				wantMembers := slices.Sorted(slices.Values(append(slices.Clone(refundMembers), extra...)))
				for _, where := range slices.Sorted(maps.Keys(surfaces)) {
					v := surfaces[where]
					// An action or the confirm's answer holds it, a
					// webhook's data, or it is the object itself.
					r, _ := v.Value().(map[string]any)
					if v.Get("refund").Exists() {
						r, _ = v.Get("refund").Value().(map[string]any)
					}
					if h := v.Get("data"); h.Exists() {
						r, _ = h.Get("refund").Value().(map[string]any)
						if got, ok := r["refunded_fen"]; ok && got != h.Get("order.refunded_fen").Value() {
							t.Errorf("%s: %s: refunded_fen %v; want its order's %s", state, where, got, h.Get("order.refunded_fen").Raw)
						}
						delete(r, "refunded_fen")
					}
					got := slices.Sorted(maps.Keys(r))
					if !slices.Equal(got, wantMembers) {
						t.Errorf("%s: %s: refund members %v; want %v", state, where, got, wantMembers)
					}
					if want == nil {
						want = r
					} else if fmt.Sprint(r) != fmt.Sprint(want) {
						t.Errorf("%s: the refund in %s\n%v\nis not\n%v", state, where, r, want)
					}
				}
				return want
			}
			// refundHook awaits the merchant's typ event of refund id.
			refundHook := func(typ, id string) gjson.Result {
				t.Helper()
				h := m.await(t, typ+" of "+id, func(h hookArrival) bool {
					return h.env.Type == typ && h.env.Data.Refund["refund_id"] == id
				})
				return gjson.ParseBytes(h.body)
			}
			// sameRefundAs checks that the refund objects of one refund in
			// two states say the same of it but its status.
			sameRefundAs := func(state string, r, proposed map[string]any, status string) {
				t.Helper()
				if r["status"] != status {
					t.Errorf("%s: refund status %v; want %s", state, r["status"], status)
				}
				for _, k := range refundMembers {
					if k != "status" && fmt.Sprint(r[k]) != fmt.Sprint(proposed[k]) {
						t.Errorf("%s: refund %s %v; the proposal said %v", state, k, r[k], proposed[k])
					}
				}
			}

			// refunding, partially_refunded and refunded.
			refund := func(amount, status string) {
				t.Helper()
				args := `{"order_no":"` + paidNo + `","reason":"surfaces"` + amount + `}`
				act := chatAs(t, url, payer, "call request_refund "+args).Get(`paygate.actions.#(type=="refund_proposed")`)
				id := act.Get("refund.refund_id").Str
				if id == "" {
					t.Fatalf("no refund proposed for %s", args)
				}
				_, one := httpCall(t, http.MethodGet, url+"/v1/paygate/orders/"+paidNo, bearer, payer)
				proposed := sameRefund("proposed", map[string]gjson.Result{
					"refund_proposed":             act,
					"GET /v1/paygate/orders/{no}": one.Get(`refunds_proposed.#(refund_id=="` + id + `")`),
					webhook.TypeRefundProposed:    refundHook(webhook.TypeRefundProposed, id),
				}, proposalMembers...)
				if proposed["reason"] != "surfaces" || proposed["status"] != "awaiting_user_confirmation" {
					t.Errorf("proposed: refund %v; want the reason surfaces, awaiting_user_confirmation", proposed)
				}
				code, confirmed := httpCall(t, http.MethodPost, url+"/v1/paygate/refunds/"+id+"/confirm", bearer, payer)
				if code != http.StatusOK {
					t.Fatalf("confirm: %d %s", code, confirmed.Raw)
				}
				same(payer, paidNo, "refunding", map[string]gjson.Result{"the confirm's answer": confirmed.Get("order")})
				sameRefundAs("the confirm's answer", sameRefund("confirmed", map[string]gjson.Result{"the confirm's answer": confirmed}), proposed, "processing")
				if d, err := a.sim.CompleteRefund(ctx, payments.OutRefundNo(id)); err != nil || !d.Acked {
					t.Fatalf("refund notification: %+v %v", d, err)
				}
				settled := refundHook(webhook.TypeRefundSucceeded, id)
				if got := settled.Get("data.order.status").Str; got != status {
					t.Fatalf("refund.succeeded of %s: order %s; want %s", id, got, status)
				}
				succeeded := action(chatAs(t, url, payer, "and?"), "refund_succeeded", paidNo)
				same(payer, paidNo, status, map[string]gjson.Result{"refund.succeeded": settled.Get("data.order"), "refund_succeeded": succeeded})
				sameRefundAs("succeeded", sameRefund("succeeded", map[string]gjson.Result{
					"refund_succeeded":          succeeded,
					webhook.TypeRefundSucceeded: settled,
				}, outcomeMembers...), proposed, "succeeded")
			}
			// A proposal the user says no to: the cancel's answer.
			offer := chatAs(t, url, payer, `call request_refund {"order_no":"`+paidNo+`","reason":"surfaces, declined"}`).Get(`paygate.actions.#(type=="refund_proposed")`)
			code, cancelled := httpCall(t, http.MethodPost, url+"/v1/paygate/refunds/"+offer.Get("refund.refund_id").Str+"/cancel", bearer, payer)
			if code != http.StatusOK {
				t.Fatalf("cancel: %d %s", code, cancelled.Raw)
			}
			sameRefundAs("the cancel's answer", sameRefund("cancelled", map[string]gjson.Result{"the cancel's answer": cancelled}),
				sameRefund("declined", map[string]gjson.Result{"refund_proposed": offer}, proposalMembers...), "cancelled")
			refund(`,"amount":"10.00"`, "partially_refunded")
			refund("", "refunded")

			// approval_required, then rejected.
			const big = "oUser-surfaces-big"
			ans = chatAs(t, url, big, `call create_order {"sku":"premium-yearly","quantity":2}`)
			bigNo := ans.Get("paygate.actions.0.order.order_no").Str
			same(big, bigNo, "approval_required", map[string]gjson.Result{
				"approval_required":       action(ans, "approval_required", bigNo),
				"order.approval_required": hook(webhook.TypeOrderApprovalRequired, bigNo, "approval_required"),
			})
			if code, d := httpCall(t, http.MethodPost, admin.URL+"/admin/api/approvals/"+bigNo+"/reject", "Bearer "+testAdminToken, ""); code != http.StatusOK {
				t.Fatalf("reject: %d %s", code, d.Raw)
			}
			same(big, bigNo, "rejected", map[string]gjson.Result{
				"order.closed":   hook(webhook.TypeOrderClosed, bigNo, "rejected"),
				"order_rejected": action(chatAs(t, url, big, "so?"), "order_rejected", bigNo),
			})

			// closed: the same purchase asked for with the other pay method.
			const switcher = "oUser-surfaces-switch"
			jsapiNo := chatAs(t, url, switcher, `call create_order {"sku":"premium-monthly"}`).Get("paygate.actions.0.order.order_no").Str
			ans = chatAs(t, url, switcher, `call create_order {"sku":"premium-monthly","pay_method":"native"}`)
			nativeNo := ans.Get(`paygate.actions.#(type=="order_created").order.order_no`).Str
			if nativeNo == "" || nativeNo == jsapiNo {
				t.Fatalf("switch to native: %s; want a new order", ans.Get("paygate").Raw)
			}
			same(switcher, jsapiNo, "closed", map[string]gjson.Result{"order.closed": hook(webhook.TypeOrderClosed, jsapiNo, "closed")})
			same(switcher, nativeNo, "awaiting_payment", map[string]gjson.Result{"order_created": action(ans, "order_created", nativeNo)})

			// needs_review: WeChat Pay reports another amount paid.
			tx, _ := a.sim.Order(nativeNo)
			tx.TradeState, tx.TradeStateDesc, tx.TransactionID = "SUCCESS", "支付成功", "4200000000000000000000000077"
			tx.SuccessTime, tx.Amount.Total, tx.Amount.PayerTotal = time.Now().Format(time.RFC3339), tx.Amount.Total-1, tx.Amount.Total-1
			n, err := a.sim.BuildNotification(wxsim.NotificationSpec{EventType: "TRANSACTION.SUCCESS", Summary: "支付成功", OriginalType: "transaction", Resource: tx})
			if err != nil {
				t.Fatal(err)
			}
			if code, err := a.sim.Deliver(ctx, url+"/wechatpay/notify", n); err != nil || code/100 != 2 {
				t.Fatalf("deliver: %d %v", code, err)
			}
			same(switcher, nativeNo, "needs_review", map[string]gjson.Result{"order.needs_review": hook(webhook.TypeOrderNeedsReview, nativeNo, "needs_review")})

			// expired: left unpaid past its payment window, and swept.
			const late = "oUser-surfaces-late"
			lateNo := chatAs(t, url, late, `call create_order {"sku":"premium-monthly"}`).Get("paygate.actions.0.order.order_no").Str
			ahead.Store(int64(3 * time.Hour))
			if _, err := a.payments.Sweep(ctx); err != nil {
				t.Fatalf("sweep: %v", err)
			}
			same(late, lateNo, "expired", map[string]gjson.Result{"order.closed": hook(webhook.TypeOrderClosed, lateNo, "expired")})
		})
	}
}
