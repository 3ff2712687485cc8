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
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/store/testdrivers"
)

// bothAtOnce is a notify front that hands every notification to both
// replicas at the same moment, copies times each, as WeChat Pay's retries
// after a slow answer land on either replica behind the ingress. It
// answers 204 when every copy was acknowledged, else the first refusal,
// and records each copy's status on statuses.
func bothAtOnce(copies int, statuses *[]int, mu *sync.Mutex) func(a, b *crashNode) http.Handler {
	return func(a, b *crashNode) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			codes := make([]int, 2*copies)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range codes {
				n := []*crashNode{a, b}[i%2]
				wg.Go(func() {
					<-start
					req, _ := http.NewRequestWithContext(r.Context(), r.Method, "http://"+n.addr+r.URL.Path, bytes.NewReader(body))
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
			}
			close(start)
			wg.Wait()
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

	// Both replicas relay the outbox and append the audit: wait until
	// every order.paid reached the merchant and the outbox drained, then
	// read the chain once it holds every payment.
	ctx := context.Background()
	st := place.Open()
	awaitCondition(t, "every order.paid delivered and the outbox drained", 30*time.Second, func() bool {
		s, err := st.OutboxStats(ctx)
		return err == nil && s.Pending == 0 && len(paidPosts(m)) >= orders
	})
	var lines []string
	awaitCondition(t, "every payment in the audit chain", 30*time.Second, func() bool {
		var b strings.Builder
		if _, err := audit.Export(ctx, st, &b, audit.ExportOptions{}); err != nil {
			return false
		}
		lines = strings.Split(strings.TrimSpace(b.String()), "\n")
		return len(auditPaid(lines)) >= orders
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
	if len(posts) != orders || len(recs) != orders {
		t.Errorf("order.paid POSTs %v, audit records %v; want one each of the %d orders %v", posts, recs, orders, nos)
	}
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
