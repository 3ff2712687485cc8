package config

import (
	"strings"
	"testing"
)

// TestWrittenEmptyAllowedSKUs: clients[].allowed_skus unset lets the
// client sell every SKU; a written empty list ("allowed_skus: []", what a
// template renders for a bot given no SKUs) read as unset too, so a bot
// meant to sell nothing was offered, and could order, the whole catalog. A
// written empty list is an error at its line, as "clients: []" is; a key
// with no value is unset, as everywhere.
func TestWrittenEmptyAllowedSKUs(t *testing.T) {
	const catalog = "payments:\n  catalog: [{sku: a, name: A, price: \"1.00\"}, {sku: b, name: B, price: \"2.00\"}]\n"
	const want = "c.yaml:4: clients[0].allowed_skus: an empty list, which would let this client sell every SKU (as leaving the key out does): list the SKUs it may sell, or leave the key out for every SKU"
	tests := []struct {
		name, client string
		want         string   // the error; "" when it loads
		skus         []string // with want "": the loaded list
	}{
		{"an empty flow list", "  - {name: bot, key: sk-bot-0123, allowed_skus: []}\n", want, nil},
		{"an empty block list", "  - name: bot\n    key: sk-bot-0123\n    allowed_skus:\n      []\n", "c.yaml:6: clients[0].allowed_skus: an empty list", nil},
		{"no value", "  - name: bot\n    key: sk-bot-0123\n    allowed_skus:\n", "", nil},
		{"from an empty variable", "  - name: bot\n    key: sk-bot-0123\n    allowed_skus: ${EMPTY}\n", "", nil},
		{"left out", "  - {name: bot, key: sk-bot-0123}\n", "", nil},
		{"one SKU", "  - {name: bot, key: sk-bot-0123, allowed_skus: [b]}\n", "", []string{"b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(catalog+"clients:\n"+tc.client), "c.yaml", envMap(map[string]string{"EMPTY": ""}))
			switch {
			case tc.want != "" && err == nil:
				t.Fatalf("loaded with allowed_skus %q (every SKU); want %s", cfg.Clients[0].AllowedSKUs, tc.want)
			case tc.want != "" && !strings.HasPrefix(err.Error(), tc.want):
				t.Fatalf("got %q; want it to start with %q", err, tc.want)
			case tc.want != "":
				return
			case err != nil:
				t.Fatalf("got %v; want it to load", err)
			}
			if got := cfg.Clients[0].AllowedSKUs; strings.Join(got, ",") != strings.Join(tc.skus, ",") {
				t.Errorf("allowed_skus %q; want %q", got, tc.skus)
			}
		})
	}
}
