package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/proxy/console"
	"github.com/paygate/paygate/store/testdrivers"
)

// redisPair is two paygate processes (replicas) on one real Redis and
// one WeChat Pay (the simulator behind cs), each with its own upstream.
// WeChat Pay notifies one public notify URL, as it does a deployment
// behind an ingress: a front that hands each notification to the first
// replica that takes it, so a dead replica's notifications reach the
// live one.
type redisPair struct {
	a, b *crashNode
}

func newRedisPair(t *testing.T, cs *crashSim, upA, upB, payExtra string, opts ...func(*crashNode)) redisPair {
	t.Helper()
	if !slices.Contains(testdrivers.Names(t), "redis") {
		t.Skip("needs Redis: replicas share the store through it")
	}
	return newRedisPairAt(t, cs, testdrivers.NewPlace(t, "redis", nil), upA, upB, "", payExtra, firstLive, opts...)
}

// withCreatingGrace has a node's processes resolve an order left
// `creating` past d (crashNode.creatingGrace).
func withCreatingGrace(d time.Duration) func(*crashNode) {
	return func(n *crashNode) { n.creatingGrace = d }
}

// firstLive is the notify front of newRedisPair: it hands each
// notification to the first replica that takes it.
func firstLive(a, b *crashNode) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		for _, n := range []*crashNode{a, b} {
			req, _ := http.NewRequestWithContext(r.Context(), r.Method, "http://"+n.addr+r.URL.Path, bytes.NewReader(body))
			req.Header = r.Header.Clone()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				continue // that replica is down: the next one
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(resp.StatusCode)
			_, _ = w.Write(b)
			return
		}
		http.Error(w, "no replica", http.StatusBadGateway)
	})
}

// newRedisPairAt is newRedisPair on the store place p, webhooks to
// merchantURL (none when empty), WeChat Pay's notifications handed to the
// replicas by front; opts change each node before it starts.
func newRedisPairAt(t *testing.T, cs *crashSim, p *testdrivers.Place, upA, upB, merchantURL, payExtra string, front func(a, b *crashNode) http.Handler, opts ...func(*crashNode)) redisPair {
	t.Helper()
	storeYAML := placeYAML(p)
	a := newCrashNode(t, cs, storeYAML, upA, merchantURL, payExtra)
	b := newCrashNode(t, cs, storeYAML, upB, merchantURL, payExtra)
	fs := httptest.NewServer(front(a, b))
	t.Cleanup(fs.Close)
	for _, n := range []*crashNode{a, b} {
		cfg, err := os.ReadFile(n.cfg)
		if err != nil {
			t.Fatal(err)
		}
		own := `notify_url: "http://` + n.addr + `/wechatpay/notify"`
		if !bytes.Contains(cfg, []byte(own)) {
			t.Fatalf("config of %s names no notify URL of its own", n.addr)
		}
		writeFile(t, n.cfg, strings.Replace(string(cfg), own, `notify_url: "`+fs.URL+`/wechatpay/notify"`, 1))
		for _, o := range opts {
			o(n)
		}
	}
	a.start()
	b.start()
	return redisPair{a, b}
}

// TestReplicaKilledWithItsRefundAtWeChatPay: a user's confirmed refund is
// at WeChat Pay (which took it) when the replica sending it is killed.
// The bot, which got no answer, confirms again, twice at once, on the
// other replica: both are told the refund is on its way, and nothing more
// is sent. WeChat Pay's notification, taken by the live replica, settles
// the order refunded; WeChat Pay holds one refund of the order throughout.
func TestReplicaKilledWithItsRefundAtWeChatPay(t *testing.T) {
	cs := newCrashSim(t)
	var orderNo string
	upA := refundProvider(t, &orderNo, "it does not work")
	upB := refundProvider(t, &orderNo, "it does not work")
	p := newRedisPair(t, cs, upA.URL, upB.URL, "")
	const user = "oUser-replica-refund-kill"

	_, ans, err := p.a.chat(user, "premium please")
	if orderNo = ans.Get("paygate.actions.0.order.order_no").Str; err != nil || orderNo == "" {
		t.Fatalf("no order: %v %s", err, ans.Raw)
	}
	if d, err := cs.Pay(t.Context(), orderNo); err != nil || !d.Acked {
		t.Fatalf("pay: %+v %v", d, err)
	}
	_, ans, _ = p.b.chat(user, "I want a refund")
	act := ans.Get(`paygate.actions.#(type=="refund_proposed")`)
	confirm := act.Get("refund.confirm_url").Str
	if confirm == "" {
		t.Fatalf("no refund proposed: %s", ans.Raw)
	}
	outRefundNo := payments.OutRefundNo(act.Get("refund.refund_id").Str)

	release := cs.hold("refund")
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = p.a.post(confirm, user)
	}()
	cs.awaitHeld(t, "refund")
	p.a.kill()
	cs.awaitCut(t, "refund")
	release()
	<-done
	if got := cs.RefundCount(orderNo); got != 1 {
		t.Fatalf("WeChat Pay holds %d refunds of %s after the kill; want 1", got, orderNo)
	}

	var wg sync.WaitGroup
	codes := make([]int, 2)
	bodies := make([]string, 2)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], bodies[i] = p.b.post(confirm, user)
		}()
	}
	wg.Wait()
	for i := range codes {
		if codes[i] != http.StatusAccepted || gjson.Get(bodies[i], "refund.status").Str != payments.RefundPending {
			t.Errorf("confirm again on the live replica (%d): %d %s; want 202, the refund pending", i, codes[i], bodies[i])
		}
	}
	if got := cs.RefundCount(orderNo); got != 1 {
		t.Fatalf("WeChat Pay holds %d refunds of %s after the confirmations on the live replica; want 1", got, orderNo)
	}
	if d, err := cs.CompleteRefund(t.Context(), outRefundNo); err != nil || !d.Acked {
		t.Fatalf("refund notification to the live replica: %+v %v", d, err)
	}
	if code, b := p.b.post(confirm, user); code != http.StatusOK || gjson.Get(b, "refund.status").Str != payments.RefundSucceeded ||
		gjson.Get(b, "order.status").Str != "refunded" {
		t.Errorf("confirm once refunded: %d %s; want 200, the refund succeeded, the order refunded", code, b)
	}
	if got := cs.RefundCount(orderNo); got != 1 {
		t.Errorf("WeChat Pay holds %d refunds of %s at the end; want 1", got, orderNo)
	}
}

// TestReplicaKilledWithItsPrepayAtWeChatPay: a prepay is at WeChat Pay
// (which opened the order) when the replica making it is killed: a user's
// create_order, or a manager's approval of a held order. The user's turns,
// retried by the bot's SDK, land on the other replica (and the manager's
// second click too, which is told the order was decided). Every turn
// answers the purchase's one order, payable under its one number once the
// dead replica's prepay is past its grace: WeChat Pay holds one order,
// paid once, and the payment is confirmed on the live replica.
func TestReplicaKilledWithItsPrepayAtWeChatPay(t *testing.T) {
	for _, tt := range []struct {
		name     string
		approval bool
	}{{"create_order", false}, {"approval", true}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cs := newCrashSim(t)
			extra := "  reconcile: {sweep_interval: 1s}\n"
			if tt.approval {
				extra += "  rules: {approval_above: \"1.00\"}\n"
			}
			p := newRedisPair(t, cs, newScriptedProvider(t, buyScript()).URL, newScriptedProvider(t, buyScript()).URL, extra, withCreatingGrace(lostPrepayGrace))
			user := "oUser-replica-prepay-kill-" + tt.name

			var held string
			if tt.approval {
				_, ans, err := p.a.chat(user, "premium please")
				if act := ans.Get("paygate.actions.0"); err != nil || act.Get("type").Str != "approval_required" {
					t.Fatalf("no order held for approval: %v %s", err, ans.Raw)
				}
				held = ans.Get("paygate.actions.0.order.order_no").Str
			}
			release := cs.hold("prepay")
			done := make(chan struct{})
			go func() {
				defer close(done)
				if tt.approval {
					_, _ = adminPost(p.a, "/admin/api/approvals/"+held+"/approve")
				} else {
					_, _, _ = p.a.chat(user, "premium please")
				}
			}()
			cs.awaitHeld(t, "prepay")
			p.a.kill()
			cs.awaitCut(t, "prepay")
			release()
			<-done
			if got := cs.OrderCount(); got != 1 {
				t.Fatalf("WeChat Pay holds %d orders after the kill; want 1", got)
			}
			if tt.approval {
				if code, b := adminPost(p.b, "/admin/api/approvals/"+held+"/approve"); code != http.StatusConflict {
					t.Errorf("approve again on the live replica: %d %s; want 409, decided", code, b)
				}
			}

			no := held
			deadline := time.Now().Add(90 * time.Second)
			for {
				// A turn within the dead replica's grace waits for its
				// prepay, then says the order is being made: no sleep here.
				start := time.Now()
				st, ans, err := p.b.chat(user, "premium please")
				if err != nil || st != http.StatusOK {
					t.Fatalf("turn on the live replica: %d %v %s", st, err, ans.Raw)
				}
				t.Logf("turn on the live replica after %v: %s)", time.Since(start), ans.Get("paygate.actions.#.type").Raw)
				act := ans.Get(`paygate.actions.#(type=="order_created")`)
				if got := act.Get("order.order_no").Str; got != "" {
					if no != "" && got != no {
						t.Fatalf("turns answered orders %s and %s; want one order of the purchase", no, got)
					}
					no = got
				}
				if cs.OrderCount() != 1 {
					t.Fatalf("WeChat Pay holds %d orders after a turn; want 1 (two payable orders for one purchase)", cs.OrderCount())
				}
				if act.Get("order.status").Str == "awaiting_payment" && strings.HasPrefix(act.Get("request_payment.package").Str, "prepay_id=") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no payable order 90s after the kill; last answer %s", ans.Get("paygate").Raw)
				}
			}
			if _, ok := cs.Order(no); !ok {
				t.Fatalf("the turn answered order %q, not the one WeChat Pay holds", no)
			}
			if d, err := cs.Pay(t.Context(), no); err != nil || !d.Acked {
				t.Fatalf("pay %s: %+v %v", no, d, err)
			}
			_, ans, _ := p.b.chat(user, "did it go through?")
			if c := ans.Get(`paygate.actions.#(type=="payment_confirmed")`); c.Get("order.order_no").Str != no {
				t.Errorf("turn after the payment: %s; want payment_confirmed for %s", ans.Get("paygate").Raw, no)
			}
			if cs.OrderCount() != 1 {
				t.Errorf("WeChat Pay holds %d orders at the end; want 1", cs.OrderCount())
			}
		})
	}
}

// adminPost makes a bodiless POST on n's admin listener with the admin
// token and returns status and body.
func adminPost(n *crashNode, path string) (int, string) {
	req, _ := http.NewRequest(http.MethodPost, "http://"+n.admin+path, nil)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	req.Header.Set(console.CSRFHeader, "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
