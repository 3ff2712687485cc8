package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// moneyReplica is one paygate of moneyReplicas: its bots' URL, its admin
// listener's URL and the application.
type moneyReplica struct {
	url, admin string
	a          *app
}

// moneyReplicas serves the binary's application as many times as driver's
// store lets a deployment run it (one process on the embedded file, two
// replicas sharing Redis), every one on the one WeChat Pay behind cs and on
// the model at upURL, with an admin listener, webhooks to merchantURL and
// payExtra under payments: (as newCrashNode takes it). WeChat Pay notifies
// one public URL, as behind an ingress: front's handler, given the
// replicas' base URLs (nil: each notification to every replica once). The concurrency tests of the money invariants race
// the product's own surfaces (a bot's turns and taps, a manager's
// decisions, WeChat Pay's notifications) on every driver through it.
func moneyReplicas(t *testing.T, driver string, cs *crashSim, upURL, merchantURL, payExtra string, front func(targets []string) http.Handler) []moneyReplica {
	t.Helper()
	place := testdrivers.NewPlace(t, driver, nil)
	count := 1
	if driver == "redis" {
		count = 2
	}
	if front == nil {
		var mu sync.Mutex
		var statuses []int
		front = everyAtOnce(1, &statuses, &mu)
	}
	var targets []string
	fs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { front(targets).ServeHTTP(w, r) }))
	t.Cleanup(fs.Close)
	var out []moneyReplica
	for range count {
		n := newCrashNode(t, cs, placeYAML(place), upURL, merchantURL, payExtra)
		cfg, err := os.ReadFile(n.cfg)
		if err != nil {
			t.Fatal(err)
		}
		src := strings.Replace(string(cfg), "http://"+n.addr+"/wechatpay/notify", fs.URL+"/wechatpay/notify", 1)
		url, a := serveConfig(t, src, io.Discard,
			withWebhookOptions(func(o *webhook.Options) { o.RetryBase, o.PollInterval = 20*time.Millisecond, 10*time.Millisecond }))
		admin := httptest.NewServer(a.adminHandler())
		t.Cleanup(admin.Close)
		out = append(out, moneyReplica{url: url, admin: admin.URL, a: a})
		targets = append(targets, url)
	}
	return out
}

// directedTurn is a non-stream turn of user's message content at url, for
// directedScript's model ("call TOOL ARGS"), safe off the test's goroutine:
// the answer, or what went wrong.
func directedTurn(url, user, session, content string) (gjson.Result, string) {
	status, b, err := postSessionChat(url, user, session, `{"model":"gpt-4o","messages":[{"role":"user","content":`+jsString(content)+`}]}`)
	switch {
	case err != nil:
		return gjson.Result{}, err.Error()
	case status != http.StatusOK:
		return gjson.Result{}, strconv.Itoa(status) + " " + string(b)
	}
	return gjson.ParseBytes(b), ""
}

// atOnce runs do(i) for i in 0..n-1 on n goroutines released together,
// and returns when all are done.
func atOnce(n int, do func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			do(i)
		})
	}
	close(start)
	wg.Wait()
}

// TestManagersDecideOnceThroughAdminAPI: a held order (above
// approval_above) is approved and rejected by several managers at once
// through the admin API, on every replica. One decision wins (200), every
// other is told the order is no longer waiting (409); WeChat Pay holds a
// prepay of it exactly when the approval won, and the order ends as the
// winner said. A double approval is one prepay, never two.
func TestManagersDecideOnceThroughAdminAPI(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			cs := newCrashSim(t)
			up := newScriptedProvider(t, directedScript)
			rs := moneyReplicas(t, driver, cs, up.URL, "", `  rules: {approval_above: "10.00"}`+"\n", nil)
			bearer := "Bearer " + testAdminToken
			for _, verbs := range [][]string{{"approve", "approve"}, {"approve", "reject", "approve", "reject"}, {"reject", "approve", "reject", "approve"}} {
				user := "oUser-decide-" + strings.Join(verbs, "-")
				ans, e := directedTurn(rs[0].url, user, "", `call create_order {"sku":"premium-monthly","quantity":2}`)
				held := ans.Get(`paygate.actions.#(type=="approval_required").order.order_no`).Str
				if e != "" || held == "" {
					t.Fatalf("%v: no held order: %s %s", verbs, e, ans.Raw)
				}
				const taps = 4 // of each verb's manager
				codes := make([]int, taps*len(verbs))
				atOnce(len(codes), func(i int) {
					r := rs[i%len(rs)]
					codes[i], _ = httpCall(t, http.MethodPost, r.admin+"/admin/api/approvals/"+held+"/"+verbs[i%len(verbs)], bearer, "")
				})
				var winners []string
				for i, c := range codes {
					switch c {
					case http.StatusOK:
						winners = append(winners, verbs[i%len(verbs)])
					case http.StatusConflict:
					default:
						t.Errorf("%v: tap %d (%s) answered %d; want 200 for the winner, 409 for the others", verbs, i, verbs[i%len(verbs)], c)
					}
				}
				if len(winners) != 1 {
					t.Errorf("%v: %q won (answers %v), %d prepays at WeChat Pay; want exactly one winner", verbs, winners, codes, cs.Prepays(held))
					continue
				}
				o, err := rs[0].a.store.GetOrder(context.Background(), held)
				if err != nil {
					t.Fatal(err)
				}
				want, prepays := map[string]store.OrderStatus{"approve": store.StatusAwaitingPayment, "reject": store.StatusRejected}[winners[0]], map[string]int{"approve": 1}[winners[0]]
				if o.Status != want || cs.Prepays(held) != prepays {
					t.Errorf("%v: %s won; order %s, %d prepays at WeChat Pay; want %s and %d prepays", verbs, winners[0], o.Status, cs.Prepays(held), want, prepays)
				}
			}
		})
	}
}

// TestNotificationCopiesAtOncePayOnce: WeChat Pay's notification of each
// payment reaches every replica at once, three copies each (its retries
// after a slow answer, over different links). Every copy is acknowledged,
// and each order is paid once: the merchant gets one order.paid POST of
// it and the audit chain holds one order.paid record of it.
func TestNotificationCopiesAtOncePayOnce(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			const orders, copies = 3, 3
			cs := newCrashSim(t)
			m := newMerchant(t, nil)
			var mu sync.Mutex
			var statuses []int
			rs := moneyReplicas(t, driver, cs, newScriptedProvider(t, directedScript).URL, m.URL, "", everyAtOnce(copies, &statuses, &mu))
			var nos []string
			for i := range orders {
				ans, e := directedTurn(rs[i%len(rs)].url, "oUser-notify-copies-"+strconv.Itoa(i), "", `call create_order {"sku":"premium-monthly"}`)
				no := ans.Get(`paygate.actions.#(type=="order_created").order.order_no`).Str
				if e != "" || no == "" {
					t.Fatalf("order %d: none: %s %s", i, e, ans.Raw)
				}
				if d, err := cs.Pay(t.Context(), no); err != nil || !d.Acked {
					t.Fatalf("order %d: pay %s: %+v %v", i, no, d, err)
				}
				nos = append(nos, no)
			}
			mu.Lock()
			if len(statuses) != orders*len(rs)*copies || slices.ContainsFunc(statuses, func(c int) bool { return c/100 != 2 }) {
				t.Errorf("copies of the notifications answered %v; want %d acknowledged", statuses, orders*len(rs)*copies)
			}
			mu.Unlock()
			paidOnce(t, m, rs[0].a.store, nos)
			for _, no := range nos {
				if o, err := rs[0].a.store.GetOrder(context.Background(), no); err != nil {
					t.Fatal(err)
				} else if o.Status != store.StatusPaid {
					t.Errorf("order %s after the copies: %s; want paid", no, o.Status)
				}
			}
		})
	}
}

// TestRefundMovesOnlyOnConfirmationAndOnce: a user with a paid order (49.99)
// asks for its refund in several conversations at once, on every replica,
// half of them for all of it and half for 30.00: the asks of one amount
// name one proposal (the open one of that amount), and no money moves.
// Then the bot taps confirm of both proposals several times at once, on
// every replica: WeChat Pay holds one refund of the order, of the winning
// proposal's amount (the two would sum above the payment); the winning
// tap is told 200, its proposal's other taps 202 (the refund's state:
// pending), and the other proposal's taps 409 (a refund of the order is on
// its way). Settled, the refund is one refund.succeeded POST.
func TestRefundMovesOnlyOnConfirmationAndOnce(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			cs := newCrashSim(t)
			m := newMerchant(t, nil)
			up := newScriptedProvider(t, directedScript)
			rs := moneyReplicas(t, driver, cs, up.URL, m.URL, "", nil)
			ctx := context.Background()
			const user, asks, taps = "oUser-refund-at-once", 8, 4
			ans, e := directedTurn(rs[0].url, user, "", `call create_order {"sku":"premium-monthly"}`)
			no := ans.Get(`paygate.actions.#(type=="order_created").order.order_no`).Str
			if e != "" || no == "" {
				t.Fatalf("no order: %s %s", e, ans.Raw)
			}
			if d, err := cs.Pay(ctx, no); err != nil || !d.Acked {
				t.Fatalf("pay %s: %+v %v", no, d, err)
			}

			amounts := []string{``, `,"amount":"30.00"`}
			fen := []int64{4999, 3000}
			proposed := make([][]string, len(amounts)) // [amount][ask]
			for a := range proposed {
				proposed[a] = make([]string, asks/len(amounts))
			}
			errs := make([]string, asks)
			atOnce(asks, func(i int) {
				a := i % len(amounts)
				asked, e := directedTurn(rs[i%len(rs)].url, user, "chat-"+strconv.Itoa(i), `call request_refund {"order_no":"`+no+`","reason":"changed my mind"`+amounts[a]+`}`)
				proposed[a][i/len(amounts)], errs[i] = asked.Get(`paygate.actions.#(type=="refund_proposed").refund.refund_id`).Str, e
			})
			ids := make([]string, len(amounts))
			for a, p := range proposed {
				if ids[a] = p[0]; ids[a] == "" || slices.ContainsFunc(p, func(id string) bool { return id != ids[a] }) {
					var told []string // what request_refund told the model
					for _, b := range up.requests() {
						if r := gjson.Get(b, `messages.@reverse.0`); r.Get("role").Str == "tool" {
							told = append(told, r.Get("content").Str)
						}
					}
					t.Fatalf("asks for %d fen proposed %q (errors %q, tool results %q); want one proposal in every answer", fen[a], p, errs, told)
				}
			}
			if ids[0] == ids[1] {
				t.Fatalf("the asks of both amounts named one proposal %s", ids[0])
			}
			if o, err := rs[0].a.store.GetOrder(ctx, no); err != nil {
				t.Fatal(err)
			} else if o.Status != store.StatusPaid || cs.RefundCount(no) != 0 {
				t.Fatalf("after the proposals: the order %s, %d refunds at WeChat Pay; want it paid and none", o.Status, cs.RefundCount(no))
			}

			codes := make([][]int, len(ids))
			for p := range ids {
				codes[p] = make([]int, taps)
			}
			atOnce(len(ids)*taps, func(i int) {
				p, k := i%len(ids), i/len(ids)
				codes[p][k], _ = httpCall(t, http.MethodPost, rs[i%len(rs)].url+"/v1/paygate/refunds/"+ids[p]+"/confirm", "Bearer "+e2eClientKey, user)
			})
			won := slices.IndexFunc(codes, func(c []int) bool { return slices.Contains(c, http.StatusOK) })
			for p, c := range codes {
				switch {
				case p == won && (countOf(c, http.StatusOK) != 1 || countOf(c, http.StatusAccepted) != taps-1):
					t.Errorf("the confirmed proposal's taps answered %v; want one 200, the others 202", c)
				case p != won && countOf(c, http.StatusConflict) != taps:
					t.Errorf("the other proposal's taps answered %v; want every one 409 (another refund on its way)", c)
				}
			}
			if won < 0 || cs.RefundCount(no) != 1 {
				t.Fatalf("%d refunds at WeChat Pay (taps answered %v); want 1", cs.RefundCount(no), codes)
			}
			out := payments.OutRefundNo(ids[won])
			if r, ok := cs.Refund(out); !ok || r.Amount.Refund != fen[won] || r.OutTradeNo != no {
				t.Errorf("the refund at WeChat Pay: %+v; want %d fen of %s", r, fen[won], no)
			}
			if d, err := cs.CompleteRefund(ctx, out); err != nil || !d.Acked {
				t.Fatalf("the refund's notification: %+v %v; want it acknowledged", d, err)
			}
			st := rs[0].a.store
			awaitCondition(t, "refund.succeeded delivered and the outbox drained", 30*time.Second, func() bool {
				s, err := st.OutboxStats(ctx)
				return err == nil && s.Pending == 0 && slices.ContainsFunc(m.arrivals(), func(a hookArrival) bool { return a.env.Type == "refund.succeeded" })
			})
			succeeded := 0
			for _, a := range m.processed() {
				if a.env.Type == "refund.succeeded" {
					succeeded++
				}
			}
			if succeeded != 1 {
				t.Errorf("refund.succeeded webhooks %d; want 1", succeeded)
			}
			o, err := st.GetOrder(ctx, no)
			if err != nil {
				t.Fatal(err)
			}
			if o.RefundedFen != fen[won] || cs.RefundCount(no) != 1 {
				t.Errorf("the order after its refund: %s, %d fen refunded, %d refunds at WeChat Pay; want %d fen refunded, one refund", o.Status, o.RefundedFen, cs.RefundCount(no), fen[won])
			}
		})
	}
}

// countOf is how many of s are v.
func countOf[T comparable](s []T, v T) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

// TestConcurrentPurchasesKeepTheDailyLimitAndThePrice: under
// max_orders_per_user_per_day 1, one user's turns ask at once, on every
// replica, for six different purchases (quantities 1..6), the model naming
// its own price and amount in each. One order is made, in the store and at
// WeChat Pay, at the catalog's price of its quantity; every turn that names
// an order names that one.
func TestConcurrentPurchasesKeepTheDailyLimitAndThePrice(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			cs := newCrashSim(t)
			rs := moneyReplicas(t, driver, cs, newScriptedProvider(t, directedScript).URL, "", "  rules: {max_orders_per_user_per_day: 1}\n", nil)
			const user, turns = "oUser-limit-at-once", 6
			answers := make([]gjson.Result, turns)
			errs := make([]string, turns)
			atOnce(turns, func(i int) {
				answers[i], errs[i] = directedTurn(rs[i%len(rs)].url, user, "chat-"+strconv.Itoa(i),
					`call create_order {"sku":"premium-monthly","quantity":`+strconv.Itoa(i+1)+`,"price":"0.01","amount":1,"amount_fen":1}`)
			})
			orders, err := rs[0].a.store.ListOrders(context.Background(), store.OrderFilter{Client: "bot", User: user})
			if err != nil {
				t.Fatal(err)
			}
			if len(orders) != 1 || cs.OrderCount() != 1 {
				t.Fatalf("stored orders %d, at WeChat Pay %d; want 1 and 1 (errors %q)", len(orders), cs.OrderCount(), errs)
			}
			o := orders[0]
			if tx, ok := cs.Order(o.OrderNo); !ok || o.AmountFen != 4999*int64(o.Quantity) || tx.Amount.Total != o.AmountFen {
				t.Errorf("the order: %d × 49.99 = %d fen, %d at WeChat Pay; want the catalog's price", o.Quantity, o.AmountFen, tx.Amount.Total)
			}
			for i := range turns {
				if errs[i] != "" {
					t.Fatalf("turn %d: %s", i, errs[i])
				}
				for _, act := range answers[i].Get("paygate.actions").Array() {
					if got := act.Get("order.order_no").Str; got != o.OrderNo {
						t.Errorf("turn %d: %s names %s; want %s", i, act.Get("type").Str, got, o.OrderNo)
					}
				}
			}
		})
	}
}
