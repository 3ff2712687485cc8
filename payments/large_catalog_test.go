package payments_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/paygate/paygate/payments"
)

// TestUnknownSKUOfALargeCatalog: create_order naming a SKU the catalog
// lacks is a clarification that says what the model did wrong in a few
// hundred bytes, whatever the catalog's size: it listed every SKU sold, 5,000 of
// them 54,999 bytes, in a tool result that goes to the provider in the
// turn's next round and with the kept exchange, while the model has the
// catalog in create_order's definition. A short catalog is still listed,
// and a near SKU (another case) is named. A SKU of the catalog, exactly,
// is ordered.
func TestUnknownSKUOfALargeCatalog(t *testing.T) {
	items := make([]payments.CatalogItem, 5000)
	for i := range items {
		items[i] = payments.CatalogItem{SKU: fmt.Sprintf("tee-%05d", i), Name: fmt.Sprintf("T-shirt %d", i), Price: "19.99", MaxQuantity: 5}
	}
	catalog, err := payments.NewCatalog(items)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{service: func(o *payments.Options) { o.Catalog = catalog }})
	tools := newTools(e)
	open := caller("oUser-large")
	limited := payments.Caller{Client: "kiosk-bot", User: "oUser-large", Session: "s", AllowedSKUs: []string{"tee-00001", "tee-00002"}}
	for _, tc := range []struct {
		name, args string
		c          payments.Caller
		want       string
	}{
		{"not in the catalog", `{"sku":"tee-99999"}`, open, "5000 skus"},
		{"another case", `{"sku":"TEE-00042"}`, open, `"tee-00042"`},
		{"outside a short allow-list", `{"sku":"tee-00003"}`, limited, "valid skus: tee-00001, tee-00002"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, tools, tc.c, "create_order", tc.args)
			msg, _ := r.result["error"].(string)
			if r.result["status"] != "needs_clarification" || r.out.Executed {
				t.Fatalf("result %.300s; want a clarification", r.out.Result)
			}
			if len(r.out.Result) > 600 || !strings.Contains(msg, tc.want) {
				t.Errorf("result of %d bytes: %.300s; want under 600 bytes, saying %s", len(r.out.Result), r.out.Result, tc.want)
			}
		})
	}
	if r := call(t, tools, open, "create_order", `{"sku":"tee-04999","quantity":2}`); r.result["status"] != "awaiting_payment" {
		t.Errorf("tee-04999: %s; want an order", r.out.Result)
	}
}

// TestUnknownSKUNearMissesOfALargeCatalog: past 20 SKUs the clarification
// no longer lists them, so the model, having written a SKU the catalog
// lacks, must be told which it may have meant: one differing in case,
// punctuation or leading zeros alone ("TEE_42" for tee-00042), or the SKU
// of an item it named instead ("Cotton T-shirt no. 42"). Before, only a
// SKU differing in case alone was named, and the model was left to find
// tee-00042 among 5,000 in the definition's text, or to ask the user
// for a SKU the user never sees. A near SKU the caller may not sell is not
// named, and none is ever ordered in its place.
func TestUnknownSKUNearMissesOfALargeCatalog(t *testing.T) {
	items := make([]payments.CatalogItem, 5000)
	for i := range items {
		items[i] = payments.CatalogItem{SKU: fmt.Sprintf("tee-%05d", i), Name: fmt.Sprintf("Cotton T-shirt no. %d", i), Price: "19.99", MaxQuantity: 5}
	}
	catalog, err := payments.NewCatalog(items)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{service: func(o *payments.Options) { o.Catalog = catalog }})
	tools := newTools(e)
	open := caller("oUser-near")
	allowed := make([]string, 0, 30)
	for i := range 30 {
		allowed = append(allowed, fmt.Sprintf("tee-%05d", 100+i))
	}
	limited := payments.Caller{Client: "kiosk-bot", User: "oUser-near", Session: "s", AllowedSKUs: allowed}
	for _, tc := range []struct {
		name, sku string
		c         payments.Caller
		want      string // a SKU named, or "" for none
	}{
		{"punctuation", "tee_00042", open, "tee-00042"},
		{"leading zeros", "TEE-42", open, "tee-00042"},
		{"the item's name", "cotton t-shirt no. 42", open, "tee-00042"},
		{"nothing near", "hoodie-7", open, ""},
		{"near, but not the caller's", "tee-42", limited, ""},
		{"near and the caller's", "tee-101", limited, "tee-00101"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, tools, tc.c, "create_order", fmt.Sprintf(`{"sku":%q}`, tc.sku))
			msg, _ := r.result["error"].(string)
			if r.result["status"] != "needs_clarification" || r.out.Executed {
				t.Fatalf("result %.300s; want a clarification", r.out.Result)
			}
			if len(r.out.Result) > 600 {
				t.Errorf("result of %d bytes: %.300s", len(r.out.Result), r.out.Result)
			}
			named := strings.Contains(strings.ReplaceAll(msg, fmt.Sprintf("%q", tc.sku), ""), `"tee-`) // a SKU other than the one written
			switch {
			case tc.want == "" && named:
				t.Errorf("%s", msg)
				t.Errorf("names a SKU; want none")
			case tc.want != "" && !strings.Contains(msg, fmt.Sprintf("%q", tc.want)):
				t.Errorf("%s", msg)
				t.Errorf("does not name %s", tc.want)
			}
		})
	}
}
