package payments_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
)

// TestUnknownSKUOfALongAllowList: a SKU a caller may not sell, asked of a
// catalog and an allow-list (clients[].allowed_skus) of thousands, is
// refused in about the time a caller without one is: the SKUs sold to the
// caller were found by comparing every catalog SKU with every allowed one,
// 35 ms at 5,000 by 5,000 and the square of that as both grow, on the
// request's goroutine, for every such call. Timed against the same call
// of a caller without an allow-list (the catalog walked once either way),
// the best of a few runs of each, so that a slow machine slows both.
func TestUnknownSKUOfALongAllowList(t *testing.T) {
	const n = 5000
	items := make([]payments.CatalogItem, n)
	allowed := make([]string, 0, n)
	for i := range items {
		items[i] = payments.CatalogItem{SKU: fmt.Sprintf("tee-%05d", i), Name: fmt.Sprintf("T-shirt %d", i), Price: "19.99", MaxQuantity: 5}
		allowed = append(allowed, items[i].SKU)
	}
	catalog, err := payments.NewCatalog(items)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{service: func(o *payments.Options) { o.Catalog = catalog }})
	tools := newTools(e)
	open := caller("oUser-allow")
	limited := payments.Caller{Client: "kiosk-bot", User: "oUser-allow", Session: "s", AllowedSKUs: allowed}
	best := func(c payments.Caller) time.Duration {
		var d time.Duration
		for i := range 3 {
			start := time.Now()
			r := call(t, tools, c, "create_order", `{"sku":"hoodie-7"}`)
			took := time.Since(start)
			if r.result["status"] != "needs_clarification" || r.out.Executed {
				t.Fatalf("result %.300s; want a clarification", r.out.Result)
			}
			if i == 0 || took < d {
				d = took
			}
		}
		return d
	}
	o, l := best(open), best(limited)
	t.Logf("%d SKUs: without an allow-list %v, with one of all of them %v", n, o, l)
	if l > 4*o+20*time.Millisecond {
		t.Errorf("an unknown SKU with an allow-list of %d took %v; without one %v: want about the same", n, l, o)
	}
}

// BenchmarkUnknownSKUOfALongAllowList is one create_order naming a SKU not
// sold, by a caller allowed all of a catalog's 5,000 SKUs.
func BenchmarkUnknownSKUOfALongAllowList(b *testing.B) {
	items := make([]payments.CatalogItem, 5000)
	allowed := make([]string, 0, len(items))
	for i := range items {
		items[i] = payments.CatalogItem{SKU: fmt.Sprintf("tee-%05d", i), Name: fmt.Sprintf("T-shirt %d", i), Price: "19.99", MaxQuantity: 5}
		allowed = append(allowed, items[i].SKU)
	}
	catalog, err := payments.NewCatalog(items)
	if err != nil {
		b.Fatal(err)
	}
	tools := newTools(newEnv(b, envOptions{service: func(o *payments.Options) { o.Catalog = catalog }}))
	limited := payments.Caller{Client: "kiosk-bot", User: "oUser-allow", Session: "s", AllowedSKUs: allowed}
	for b.Loop() {
		tools.Execute(b.Context(), limited, "create_order", `{"sku":"hoodie-7"}`)
	}
}
