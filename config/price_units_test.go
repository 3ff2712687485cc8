package config

import (
	"fmt"
	"testing"
)

// TestImplausiblePriceWarns: prices are per 1M tokens, but one written per
// token that still fits six decimals ("0.000002" for 2 per 1M) was taken
// silently and priced every round of the model near 0, so the LLM spend
// and the cost per completed transaction lied. A non-zero price below 0.001
// per 1M (the cheapest real models cost about 0.01) is warned of at its
// line, with what it would be per 1M if written per token or per 1K
// tokens; so is one above 10000 per 1M (a price in micro-units). Zero, a
// free model, and every real price stay silent.
func TestImplausiblePriceWarns(t *testing.T) {
	const src = "providers:\n" +
		"  - name: a\n    base_url: https://a.example/v1\n    api_key: sk-a-0123\n    prices:\n" +
		"      x/m:\n        %s: %s\n" +
		"models:\n  - {name: m, targets: [{provider: a, model: x/m}]}\n"
	tests := []struct {
		key, price string
		want       string // "" for no warning about prices
	}{
		{"input", `"2.50"`, ""},
		{"output", `"600"`, ""},         // o1-pro's output, per 1M
		{"output", `"4400"`, ""},        // the same in CNY
		{"input", `"0.01"`, ""},         // the cheapest real models
		{"cached_input", `"0.001"`, ""}, // the floor itself
		{"input", `"0"`, ""},            // a free model
		{"output", `"0.000000"`, ""},
		{"input", `"10000"`, ""},
		{"input", `"0.000002"`,
			`c.yaml:7: providers[0].prices.x/m.input: "0.000002" is below 0.001 per 1M tokens, which no model costs: prices are per 1M tokens, so every 1M tokens of this model cost 0.000002 and its LLM cost comes out near 0; written per token it would be "2", per 1K tokens "0.002"`},
		{"output", `0.0006`,
			`c.yaml:7: providers[0].prices.x/m.output: "0.0006" is below 0.001 per 1M tokens, which no model costs: prices are per 1M tokens, so every 1M tokens of this model cost 0.0006 and its LLM cost comes out near 0; written per token it would be "600", per 1K tokens "0.6"`},
		{"cached_input", `"0.000001"`,
			`c.yaml:7: providers[0].prices.x/m.cached_input: "0.000001" is below 0.001 per 1M tokens, which no model costs: prices are per 1M tokens, so every 1M tokens of this model cost 0.000001 and its LLM cost comes out near 0; written per token it would be "1", per 1K tokens "0.001"`},
		{"input", `"2500000"`,
			`c.yaml:7: providers[0].prices.x/m.input: "2500000" is above 10000 per 1M tokens, more than any model's list price: prices are per 1M tokens, so every 1K tokens of this model cost 2500; check its unit`},
		{"output", `"10000.5"`,
			`c.yaml:7: providers[0].prices.x/m.output: "10000.5" is above 10000 per 1M tokens, more than any model's list price: prices are per 1M tokens, so every 1K tokens of this model cost 10.0005; check its unit`},
	}
	for _, tc := range tests {
		t.Run(tc.key+"="+tc.price, func(t *testing.T) {
			cfg, err := Parse(fmt.Appendf(nil, src, tc.key, tc.price), "c.yaml", envMap(nil))
			if err != nil {
				t.Fatal(err)
			}
			got := priceWarnings(cfg)
			switch {
			case tc.want == "" && len(got) > 0:
				t.Errorf("warnings %q; want none about prices", got)
			case tc.want != "" && (len(got) != 1 || got[0] != tc.want):
				t.Errorf("warnings %q; want one: %q", got, tc.want)
			}
		})
	}
}
