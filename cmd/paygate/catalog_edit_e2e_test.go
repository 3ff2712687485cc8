package main

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestCatalogEditedBetweenRestarts follows the README (Changing the config
// between restarts, payments.catalog) through the binary: the user opens an
// order of 2 × 49.99; the merchant restarts paygate with the SKU taken out
// of the catalog (what a rename does to the old id too). The user's next
// turn reads the order at its own amount in the payment state, the
// model's repeated create_order gets that order back, payable (not "not sold
// here"), and the orders API lists it at 99.98.
func TestCatalogEditedBetweenRestarts(t *testing.T) {
	up := newScriptedProvider(t, moneyScript("create_order", func() string { return `{"sku":"premium-monthly","quantity":2}` }))
	db := filepath.Join(t.TempDir(), "paygate.db")
	serve := func(catalog string) (string, *app) {
		return serveConfig(t, `
clients: [{name: bot, key: `+e2eClientKey+`}]
store: {path: "`+db+`"}
providers: [{name: fake, base_url: "`+up.URL+`/v1", api_key: sk-upstream-secret}]
models: [{name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}]
payments:
  catalog:
`+catalog, io.Discard)
	}
	url, a := serve(`    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
`)
	r := chatWith(t, url, e2eClientKey, testOpenID, "I want two months of premium")
	no := r.Get(`paygate.actions.#(type=="order_created").order.order_no`).Str
	if no == "" {
		t.Fatalf("the purchase: %s; want an order_created", r.Raw)
	}
	a.close()

	url, _ = serve(`    - {sku: premium-yearly, name: "Premium tier, 1 year", price: "499.00"}
`)
	before := len(up.requests())
	r = chatWith(t, url, e2eClientKey, testOpenID, "I want two months of premium")
	if got := r.Get(`paygate.actions.#(type=="order_created").order`); got.Get("order_no").Str != no || got.Get("amount_fen").Int() != 9998 {
		t.Errorf("asked again after the restart: %s; want order %s handed back at 9998 fen", r.Raw, no)
	}
	sent := up.requests()[before:]
	if len(sent) != 2 {
		t.Fatalf("%d upstream requests for the turn; want 2 (the call, the answer)", len(sent))
	}
	if state := gjson.Get(sent[0], `messages.#(role=="system")#.content`).String(); !strings.Contains(state, no+": Premium tier, 1 month ×2, 99.98 CNY — awaiting payment") {
		t.Errorf("the payment state after the restart: %s; want the order at 99.98 CNY, awaiting payment", state)
	}
	result := gjson.Get(sent[1], `messages.#(role=="tool").content`).Str
	if gjson.Get(result, "order_no").Str != no || gjson.Get(result, "amount").Str != "99.98 CNY" || gjson.Get(result, "status").Str != "awaiting_payment" {
		t.Errorf("the tool result after the restart: %s; want order %s, 99.98 CNY, awaiting_payment", result, no)
	}
	status, body := httpCall(t, http.MethodGet, url+"/v1/paygate/orders", "Bearer "+e2eClientKey, testOpenID)
	if o := body.Get("data.0"); status != http.StatusOK || o.Get("order_no").Str != no || o.Get("amount_fen").Int() != 9998 || o.Get("sku").Str != "premium-monthly" {
		t.Errorf("orders API after the restart: %d %s; want order %s of premium-monthly at 9998 fen", status, body.Raw, no)
	}
}
