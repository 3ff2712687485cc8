package main

import (
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/store/testdrivers"
)

// TestOrdersPollQueriesOncePerGap: a mini-program polling its user's orders
// (GET /v1/paygate/orders) while the user pays queries WeChat Pay about a
// pending order at most once per payments.reconcile.query_after. Every poll
// queried it: ten polls, ten queries of one order, each counting against the
// merchant's query rate at WeChat Pay, for an answer the notification gives
// at once.
func TestOrdersPollQueriesOncePerGap(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			var ahead atomic.Int64
			clock := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
			up := newScriptedProvider(t, moneyScript("create_order", func() string { return `{"sku":"premium-monthly"}` }))
			url, a := serveConfig(t, premiumConfig(t, driver, up.URL, "  reconcile: {query_deadline: 3s}\n"), io.Discard, withPaymentsClock(clock))
			const user = "oUser-polling"
			chatAs(t, url, user, "premium please")
			orderNo := lastOrderNo(t, a.sim)
			ahead.Store(int64(10 * time.Second))
			for i := range 10 {
				status, list := httpCall(t, http.MethodGet, url+"/v1/paygate/orders", "Bearer "+e2eClientKey, user)
				if status != http.StatusOK || list.Get("data.0.order_no").Str != orderNo || list.Get("data.0.status").Str != "awaiting_payment" {
					t.Fatalf("poll %d: %d %s; want %s awaiting_payment", i, status, list.Raw, orderNo)
				}
			}
			queries := 0
			for _, l := range a.sim.Requests() {
				if l.Op == "query" && l.OutTradeNo == orderNo {
					queries++
				}
			}
			if queries != 1 {
				t.Errorf("queries of the order after 10 polls within query_after: got %d; want 1", queries)
			}
		})
	}
}
