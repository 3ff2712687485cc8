package main

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestToolsOfferOnlyTheClientsSKUs: a client limited by allowed_skus has its
// model offered only those SKUs, in the create_order schema and its
// description; another client's catalogue never reaches its provider.
func TestToolsOfferOnlyTheClientsSKUs(t *testing.T) {
	up := newScriptedProvider(t, func(string) scriptRound {
		return scriptRound{whole: `{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}`}
	})
	url, _ := serveConfig(t, `
clients:
  - {name: shop, key: sk-shop-0123456789, allowed_skus: [premium-monthly]}
  - {name: bundles, key: sk-bundles-0123456789, allowed_skus: [bundle]}
  - {name: all, key: sk-all-0123456789}
store: {path: "`+filepath.Join(t.TempDir(), "paygate.db")+`"}
providers:
  - {name: fake, base_url: "`+up.URL+`/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
    - {sku: bundle, name: "Other shop's bundle", price: "888.00"}
`, io.Discard)
	tests := []struct {
		key     string
		offered []string
		hidden  []string
	}{
		{"sk-shop-0123456789", []string{"premium-monthly"}, []string{"bundle", "888.00"}},
		{"sk-bundles-0123456789", []string{"bundle"}, []string{"premium-monthly", "49.99"}},
		{"sk-all-0123456789", []string{"premium-monthly", "bundle"}, nil},
	}
	for i, tc := range tests {
		req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions",
			strings.NewReader(`{"model":"gpt-4o","messages":[{"role":"user","content":"what can I buy?"}]}`))
		req.Header.Set("Authorization", "Bearer "+tc.key)
		req.Header.Set("X-WeChat-OpenID", testOpenID)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", tc.key, resp.StatusCode, b)
		}
		reqs := up.requests()
		if len(reqs) != i+1 {
			t.Fatalf("%s: the provider saw %d requests; want %d", tc.key, len(reqs), i+1)
		}
		create := gjson.Get(reqs[i], `tools.#(function.name=="create_order")`)
		var enum []string
		for _, v := range create.Get("function.parameters.properties.sku.enum").Array() {
			enum = append(enum, v.Str)
		}
		if strings.Join(enum, ",") != strings.Join(tc.offered, ",") {
			t.Errorf("%s: create_order's SKUs %v; want %v", tc.key, enum, tc.offered)
		}
		for _, h := range tc.hidden {
			if strings.Contains(reqs[i], h) {
				t.Errorf("%s: the provider's request names %q, which this client may not sell", tc.key, h)
			}
		}
	}
}
