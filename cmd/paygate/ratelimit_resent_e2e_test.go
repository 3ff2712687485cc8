package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/store/testdrivers"
)

// TestResentPurchasePastThePerMinuteLimit: with
// payments.rules.max_payment_calls_per_minute at 1, a purchase's turn fails
// after its create_order ran (the round after it: a 503 from every
// provider), and the SDK sends it again at once. The resent turn's
// create_order asks for the order the first made, which reaches no WeChat
// Pay: it gets that order back, not "too many payment requests; ask the user
// to wait a minute" beside the order's pay button the same answer hands.
// Another purchase in that minute is still refused: the limit holds for
// calls that would reach WeChat Pay. One order, one prepay.
func TestResentPurchasePastThePerMinuteLimit(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			var fail atomic.Bool
			var args atomic.Value
			args.Store(`{"sku":"premium-monthly"}`)
			var mu sync.Mutex
			var results []string // the tool results the provider saw, in order
			lastResult := func() gjson.Result {
				mu.Lock()
				defer mu.Unlock()
				return gjson.Parse(results[len(results)-1])
			}
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				w.Header().Set("Content-Type", "application/json")
				if last := gjson.GetBytes(b, "messages.@reverse.0"); last.Get("role").Str == "tool" {
					mu.Lock()
					results = append(results, last.Get("content").Str)
					mu.Unlock()
					if fail.Load() {
						w.WriteHeader(http.StatusServiceUnavailable)
						_, _ = io.WriteString(w, `{"error":{"message":"overloaded","type":"server_error"}}`)
						return
					}
					_, _ = io.WriteString(w, `{"id":"c2","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Done."},"finish_reason":"stop"}]}`)
					return
				}
				a := strings.ReplaceAll(args.Load().(string), `"`, `\"`)
				_, _ = io.WriteString(w, `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"","tool_calls":[{"id":"call_1","type":"function","function":{"name":"create_order","arguments":"`+a+`"}}]},"finish_reason":"tool_calls"}]}`)
			}))
			t.Cleanup(up.Close)
			url, a := serveConfig(t, premiumConfig(t, driver, up.URL, "  rules: {max_payment_calls_per_minute: 1}\n"), io.Discard)
			const user = "oUser-resent-limit"
			body := `{"model":"gpt-4o","messages":[{"role":"user","content":"premium for a month"}]}`
			fail.Store(true)
			first := postAs(t, url, e2eClientKey, user, body)
			_, _ = io.Copy(io.Discard, first.Body)
			first.Body.Close()
			if first.StatusCode < 500 {
				t.Fatalf("the first try answered %d; want the round after create_order failed", first.StatusCode)
			}
			fail.Store(false)
			again := postChat(t, url, e2eClientKey, user, body) // the SDK's retry
			mu.Lock()
			no := gjson.Get(results[0], "order_no").Str
			mu.Unlock()
			if r := lastResult(); r.Get("status").Str != "awaiting_payment" || r.Get("order_no").Str != no {
				t.Errorf("the resent turn's create_order answered %s; want order %s awaiting payment", r.Raw, no)
			}
			if got := again.Get(`paygate.actions.#(type=="order_created").order.order_no`).Str; got != no {
				t.Errorf("the resent turn's answer handed %q; want %s", got, no)
			}
			oneOrderOnePrepay(t, a)

			args.Store(`{"sku":"premium-monthly","quantity":2}`) // another purchase, the same minute
			postChat(t, url, e2eClientKey, user, `{"model":"gpt-4o","messages":[{"role":"user","content":"two months then"}]}`)
			if r := lastResult(); r.Get("status").Str != "rate_limited" {
				t.Errorf("another purchase in the same minute answered %s; want rate_limited", r.Raw)
			}
			oneOrderOnePrepay(t, a)
		})
	}
}
