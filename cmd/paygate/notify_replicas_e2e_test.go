package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// bothAtOnce is a notify front that hands every notification to both
// replicas at the same moment, copies times each, as WeChat Pay's retries
// after a slow answer land on either replica behind the ingress
// (everyAtOnce).
func bothAtOnce(copies int, statuses *[]int, mu *sync.Mutex) func(a, b *crashNode) http.Handler {
	return func(a, b *crashNode) http.Handler {
		return everyAtOnce(copies, statuses, mu)([]string{"http://" + a.addr, "http://" + b.addr})
	}
}

// everyAtOnce is a notify front that hands every notification to each of
// the targets (base URLs) at the same moment, copies times each. It
// answers 204 when every copy was acknowledged, else the first refusal,
// and records each copy's status on statuses.
func everyAtOnce(copies int, statuses *[]int, mu *sync.Mutex) func(targets []string) http.Handler {
	return func(targets []string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			codes := make([]int, len(targets)*copies)
			atOnce(len(codes), func(i int) {
				req, _ := http.NewRequestWithContext(r.Context(), r.Method, targets[i%len(targets)]+r.URL.Path, bytes.NewReader(body))
				req.Header = r.Header.Clone()
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					codes[i] = http.StatusBadGateway
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				codes[i] = resp.StatusCode
			})
			mu.Lock()
			*statuses = append(*statuses, codes...)
			mu.Unlock()
			for _, c := range codes {
				if c/100 != 2 {
					w.WriteHeader(c)
					return
				}
			}
			w.WriteHeader(http.StatusNoContent)
		})
	}
}

// TestPaymentNotifiedToBothReplicasOnce: two paygate processes on one
// Redis; WeChat Pay's notification of each payment reaches both at once,
// twice each. Every copy is acknowledged, and each order is paid once:
// the merchant gets one order.paid POST of it (however many replicas
// relay the outbox) and the audit chain, which both replicas append to,
// holds one order.paid record of it and verifies.
func TestPaymentNotifiedToBothReplicasOnce(t *testing.T) {
	if !slices.Contains(testdrivers.Names(t), "redis") {
		t.Skip("needs Redis: replicas share the store through it")
	}
	const orders, copies = 5, 2
	cs := newCrashSim(t)
	m := newMerchant(t, nil)
	place := testdrivers.NewPlace(t, "redis", nil)
	var mu sync.Mutex
	var statuses []int
	p := newRedisPairAt(t, cs, place, newScriptedProvider(t, buyScript()).URL, newScriptedProvider(t, buyScript()).URL,
		m.URL, "", bothAtOnce(copies, &statuses, &mu))

	var nos []string
	for i := range orders {
		n := []*crashNode{p.a, p.b}[i%2]
		user := "oUser-notify-both-" + strconv.Itoa(i)
		_, ans, err := n.chat(user, "premium please")
		no := ans.Get("paygate.actions.0.order.order_no").Str
		if err != nil || no == "" {
			t.Fatalf("order %d: no order: %v %s", i, err, ans.Raw)
		}
		if d, err := cs.Pay(t.Context(), no); err != nil || !d.Acked {
			t.Fatalf("order %d: pay %s: %+v %v", i, no, d, err)
		}
		st, o := n.get("/v1/paygate/orders/"+no, user)
		if st != http.StatusOK || gjson.Get(o, "status").Str != "paid" {
			t.Errorf("order %d after the notification: %d %s; want paid", i, st, o)
		}
		nos = append(nos, no)
	}
	mu.Lock()
	if len(statuses) != orders*2*copies || slices.ContainsFunc(statuses, func(c int) bool { return c/100 != 2 }) {
		t.Errorf("copies of the notifications answered %v; want %d acknowledged", statuses, orders*2*copies)
	}
	mu.Unlock()

	paidOnce(t, m, place.Open(), nos)
}

// paidOnce waits until the merchant has an order.paid POST of each of nos
// and the outbox in st drained, and the audit chain there holds a payment
// of each; then each order has one of each, none other has any, and the
// chain, appended by every replica, verifies.
func paidOnce(t *testing.T, m *merchant, st store.Store, nos []string) {
	t.Helper()
	ctx := context.Background()
	awaitCondition(t, "every order.paid delivered and the outbox drained", 30*time.Second, func() bool {
		s, err := st.OutboxStats(ctx)
		return err == nil && s.Pending == 0 && len(paidPosts(m)) >= len(nos)
	})
	var lines []string
	awaitCondition(t, "every payment in the audit chain", 30*time.Second, func() bool {
		var b strings.Builder
		if _, err := audit.Export(ctx, st, &b, audit.ExportOptions{}); err != nil {
			return false
		}
		lines = strings.Split(strings.TrimSpace(b.String()), "\n")
		return len(auditPaid(lines)) >= len(nos)
	})
	if _, err := audit.Verify(ctx, st, audit.VerifyOptions{}); err != nil {
		t.Errorf("audit chain appended by both replicas: %v", err)
	}
	posts, recs := paidPosts(m), auditPaid(lines)
	for _, no := range nos {
		if posts[no] != 1 || recs[no] != 1 {
			t.Errorf("order %s: %d order.paid POSTs, %d order.paid audit records; want 1 and 1", no, posts[no], recs[no])
		}
	}
	if len(posts) != len(nos) || len(recs) != len(nos) {
		t.Errorf("order.paid POSTs %v, audit records %v; want one each of the orders %v", posts, recs, nos)
	}
}

// TestPaymentNotifiedToOtherReplicaWhileCreatingOnce: a user's create_order
// on one paygate process is at WeChat Pay, which opened the order, and its
// answer is late; the payer is fast, and WeChat Pay's notification of the
// payment is handed to the other process, which records the order paid
// while it is still creating there. The turn then ends without payment
// parameters for the paid order; the user's next message, on either
// process, is answered with payment_confirmed once; and each order is paid
// once: one order.paid POST, one audit record. Each process creates in
// turn.
func TestPaymentNotifiedToOtherReplicaWhileCreatingOnce(t *testing.T) {
	if !slices.Contains(testdrivers.Names(t), "redis") {
		t.Skip("needs Redis: replicas share the store through it")
	}
	const orders = 4
	cs := newCrashSim(t)
	m := newMerchant(t, nil)
	place := testdrivers.NewPlace(t, "redis", nil)
	var to atomic.Int32 // the replica WeChat Pay's notifications go to
	p := newRedisPairAt(t, cs, place, newScriptedProvider(t, buyScript()).URL, newScriptedProvider(t, buyScript()).URL,
		m.URL, "", func(a, b *crashNode) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := []*crashNode{a, b}[to.Load()]
				firstLive(n, n).ServeHTTP(w, r)
			})
		})

	var nos []string
	for i := range orders {
		creator := []*crashNode{p.a, p.b}[i%2]
		to.Store(int32((i + 1) % 2))
		user := "oUser-notify-creating-" + strconv.Itoa(i)
		release := cs.hold("prepay")
		type answer struct {
			ans gjson.Result
			err error
		}
		done := make(chan answer, 1)
		go func() {
			_, ans, err := creator.chat(user, "premium please")
			done <- answer{ans, err}
		}()
		cs.awaitHeld(t, "prepay")
		var no string
		for _, r := range cs.Requests() {
			if strings.HasPrefix(r.Op, "prepay") && !slices.Contains(nos, r.OutTradeNo) {
				no = r.OutTradeNo
			}
		}
		if no == "" {
			t.Fatalf("order %d: the held prepay names no order", i)
		}
		d, err := cs.Pay(t.Context(), no)
		release()
		if err != nil || !d.Acked {
			t.Errorf("order %d: notification to the other replica while %s is creating: %+v %v; want acknowledged", i, no, d, err)
		}
		a := <-done
		if a.err != nil {
			t.Fatalf("order %d: turn: %v", i, a.err)
		}
		for _, act := range a.ans.Get("paygate.actions").Array() {
			if act.Get("request_payment.paySign").Str != "" || act.Get("order.order_no").Str != no {
				t.Errorf("order %d: the turn answered %s; want %s, without payment parameters (it is paid)", i, act.Raw, no)
			}
		}
		if st, o := creator.get("/v1/paygate/orders/"+no, user); st != http.StatusOK || gjson.Get(o, "status").Str != "paid" {
			t.Errorf("order %d: %d %s; want paid", i, st, o)
		}
		// The user's next message, on the replica that recorded the
		// payment, is answered with it, once.
		confirmed := 0
		for _, n := range []*crashNode{[]*crashNode{p.a, p.b}[to.Load()], creator} {
			_, next, err := n.chat(user, "did it go through?")
			if err != nil {
				t.Fatalf("order %d: next turn: %v", i, err)
			}
			if c := next.Get(`paygate.actions.#(type=="payment_confirmed")`); c.Exists() {
				confirmed++
			}
		}
		if confirmed != 1 {
			t.Errorf("order %d: payment_confirmed in %d of the user's next two answers; want 1", i, confirmed)
		}
		nos = append(nos, no)
	}
	if n := cs.OrderCount(); n != orders {
		t.Errorf("WeChat Pay holds %d orders; want %d", n, orders)
	}
	paidOnce(t, m, place.Open(), nos)
}

// paidPosts counts the merchant's signed order.paid POSTs by order number.
func paidPosts(m *merchant) map[string]int {
	out := map[string]int{}
	for _, a := range m.arrivals() {
		if a.verifyErr == nil && a.env.Type == "order.paid" {
			no, _ := a.env.Data.Order["order_no"].(string)
			out[no]++
		}
	}
	return out
}

// auditPaid counts the order.paid records of an exported audit chain by
// order number.
func auditPaid(lines []string) map[string]int {
	out := map[string]int{}
	for _, l := range lines {
		if e := gjson.Parse(l); e.Get("body.action").Str == "order.paid" {
			out[e.Get("body.order_no").Str]++
		}
	}
	return out
}
