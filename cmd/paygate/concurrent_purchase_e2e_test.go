package main

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestConcurrentPurchaseOneCharge: one user asks for the same purchase in
// many turns at once, from two conversations (X-Paygate-Session) and, on
// Redis, through two replicas sharing the store: the model calls
// create_order in each. A purchase is (client, user, SKU, quantity), not
// the conversation or the replica: one order is recorded and prepaid at
// WeChat Pay, and every turn that names an order names that one.
func TestConcurrentPurchaseOneCharge(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			up := newScriptedProvider(t, moneyScript("create_order", func() string { return `{"sku":"premium-monthly","quantity":2}` }))
			storeYAML := webhookStoreYAML(t, driver)
			replicas := 1
			if driver == "redis" {
				replicas = 2
			}
			var urls []string
			var apps []*app
			for range replicas {
				url, a := serveConfig(t, `
clients: [{name: bot, key: `+e2eClientKey+`}]
`+storeYAML+`
providers:
  - {name: fake, base_url: "`+up.URL+`/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
`, io.Discard)
				urls, apps = append(urls, url), append(apps, a)
			}
			const user, turns = "oUser-concurrent-buy", 12
			answers := make([]gjson.Result, turns)
			errs := make([]string, turns)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range turns {
				wg.Go(func() {
					<-start
					req, _ := http.NewRequest(http.MethodPost, urls[i%replicas]+"/v1/chat/completions",
						strings.NewReader(`{"model":"gpt-4o","messages":[{"role":"user","content":"two months of premium"}]}`))
					req.Header.Set("Authorization", "Bearer "+e2eClientKey)
					req.Header.Set("X-WeChat-OpenID", user)
					req.Header.Set("X-Paygate-Session", "conversation-"+strconv.Itoa(i%2))
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						errs[i] = err.Error()
						return
					}
					defer resp.Body.Close()
					b, _ := io.ReadAll(resp.Body)
					if resp.StatusCode != http.StatusOK {
						errs[i] = strconv.Itoa(resp.StatusCode) + " " + string(b)
						return
					}
					answers[i] = gjson.ParseBytes(b)
				})
			}
			close(start)
			wg.Wait()
			for i, e := range errs {
				if e != "" {
					t.Fatalf("turn %d: %s", i, e)
				}
			}
			prepays := 0
			for _, a := range apps {
				prepays += a.sim.OrderCount()
			}
			if prepays != 1 {
				t.Errorf("orders at WeChat Pay %d; want 1", prepays)
			}
			orders, err := apps[0].store.ListOrders(context.Background(), store.OrderFilter{Client: "bot", User: user})
			if err != nil {
				t.Fatal(err)
			}
			if len(orders) != 1 {
				t.Fatalf("stored orders %d; want 1", len(orders))
			}
			no := orders[0].OrderNo
			for i, ans := range answers {
				for _, act := range ans.Get("paygate.actions").Array() {
					if got := act.Get("order.order_no").Str; got != no {
						t.Errorf("turn %d: action %s names order %s; want %s", i, act.Get("type").Str, got, no)
					}
				}
			}
		})
	}
}
