package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/store"
)

// TestConsoleFindsAnOrderByNumber: a customer quotes an order number to the
// store manager, and the order is older than the newest 500 the Orders view
// loads. Typed into the order-number field, it is found and opens (the
// search only filtered the loaded orders and said none matched), through
// GET /admin/api/orders/{order_no}; a number no order has says so; part of
// a number still filters the loaded orders.
func TestConsoleFindsAnOrderByNumber(t *testing.T) {
	b := newBrowser(t)
	_, adminURL, a, _ := consoleApp(t, withoutStoreSync()) // thousands of orders, not their durability
	ctx := context.Background()
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	const orders = 501 // one more than the Orders view loads at first
	for i := range orders {
		no := fmt.Sprintf("PGFINDMANY%04d", i)
		if err := a.store.CreateOrder(ctx, &store.Order{OrderNo: no, Client: "bot", User: "oUser-" + no, SKU: "premium-monthly",
			Description: "Premium tier, 1 month", Quantity: 1, AmountFen: 1, Currency: "CNY", PayMethod: "jsapi", Status: store.StatusPaid,
			ClaimKey: "k" + no, Generation: 1, CreatedAt: base.Add(time.Duration(i) * time.Millisecond), ExpiresAt: base.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	const oldest = "PGFINDMANY0000"

	// The API: the order by its number, as the lists show it.
	auth := map[string]string{"Authorization": "Bearer " + consoleToken}
	for _, tc := range []struct {
		path string
		want int
		has  string
	}{
		{path: "/admin/api/orders/" + oldest, want: http.StatusOK, has: `"order_no":"` + oldest + `"`},
		{path: "/admin/api/orders/PGNOSUCHORDER", want: http.StatusNotFound, has: `"error":`},
		{path: "/admin/api/orders/" + oldest + "?status=paid", want: http.StatusBadRequest, has: `unknown query parameter`},
	} {
		resp, body := adminDo(t, http.MethodGet, adminURL+tc.path, auth)
		if resp.StatusCode != tc.want || !strings.Contains(string(body), tc.has) {
			t.Errorf("GET %s: %d %s; want %d with %s", tc.path, resp.StatusCode, body, tc.want, tc.has)
		}
		if tc.want == http.StatusOK {
			if o := gjson.GetBytes(body, "order"); o.Get("amount_fen").Int() != 1 || o.Get("user").Str != "oUser-"+oldest || o.Get("updated_at").Str == "" {
				t.Errorf("GET %s: order %s; want it as the admin lists show it", tc.path, o.Raw)
			}
		}
	}

	b.do(t, "sign in", chromedp.Navigate(adminURL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.ID("app")))
	b.do(t, "orders", chromedp.Click(chromedp.CSS(`#tabs [data-tab="orders"]`)),
		chromedp.WaitVisible(chromedp.CSS(row("orders", "PGFINDMANY0500"))))
	if n := evalJS[int](t, b, `document.querySelectorAll("#panel-orders tbody tr").length`); n != 500 {
		t.Fatalf("%d orders loaded; want the newest 500 (the test needs %s beyond them)", n, oldest)
	}
	b.do(t, "find the oldest", chromedp.SendKeys(chromedp.ID("orders-search"), oldest), chromedp.Click(chromedp.ID("orders-apply")),
		chromedp.WaitVisible(chromedp.CSS(row("orders", oldest))),
		waitFor("one row", `document.querySelectorAll("#panel-orders tbody tr").length === 1`))
	if s := b.text(t, row("orders", oldest)); !strings.Contains(s, "0.01 CNY") {
		t.Errorf("the found order's row %q; want its amount, 0.01 CNY", s)
	}
	b.do(t, "open it", chromedp.Click(chromedp.CSS(row("orders", oldest)+" button")),
		waitFor("the detail", `document.querySelector("#panel-orders .detail:not([hidden]) h3")?.textContent.includes(`+jsString(oldest)+`)`))

	b.do(t, "an unknown number", chromedp.SetValue(chromedp.ID("orders-search"), "PGNOSUCHORDER"), chromedp.Click(chromedp.ID("orders-apply")),
		waitFor("the answer", `document.querySelector("#panel-orders .empty")?.textContent.includes("PGNOSUCHORDER")`))
	if s := b.text(t, "#panel-orders .empty"); !strings.Contains(s, "No order") {
		t.Errorf("unknown number: %q; want it said that no order has that number", s)
	}
	b.do(t, "part of a number", chromedp.SetValue(chromedp.ID("orders-search"), "MANY049"), chromedp.Click(chromedp.ID("orders-apply")),
		waitFor("ten rows", `document.querySelectorAll("#panel-orders tbody tr").length === 10`))
	if f := b.pageFaults(); len(f) > 0 {
		t.Errorf("the page logged faults: %v", f)
	}
}
