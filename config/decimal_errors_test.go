package config

import (
	"errors"
	"testing"
)

// TestDecimalErrorsSayWhatIsWrong: an amount with too many digits before
// the point or too many decimals was refused as "not a decimal amount (use
// e.g. "49.99")", which it is: a 13-digit price was told to look like
// 49.99 where a 12-digit one was told it is above the largest amount, and
// a 7-decimal token price where a 3-decimal catalog price was told 1 fen
// is 0.01. Each error now says what is wrong.
func TestDecimalErrorsSayWhatIsWrong(t *testing.T) {
	const base = "providers:\n  - name: p\n    base_url: https://x.example/v1\n    api_key: k\n"
	const model = "models:\n  - name: m\n    targets: [{provider: p, model: u}]\n"
	tests := []struct{ src, want string }{
		{base + model + "payments:\n  catalog:\n    - {sku: a, name: A, price: \"1000000000000\"}\n",
			`c.yaml:10: payments.catalog[0].price: "1000000000000" has more than 12 digits before the point`},
		{base + model + "payments:\n  rules:\n    approval_above: \"1.0000001\"\n",
			`c.yaml:10: payments.rules.approval_above: "1.0000001" has more than six decimals`},
		{base + "    prices:\n      u: {input: \"0.0000001\", output: \"1\"}\n" + model,
			`c.yaml:6: providers[0].prices.u.input: "0.0000001" has more than six decimals`},
		// Not a number at all: as before.
		{base + model + "payments:\n  catalog:\n    - {sku: a, name: A, price: \"1,5\"}\n",
			`c.yaml:10: payments.catalog[0].price: "1,5": not a decimal amount (use e.g. "49.99")`},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "c.yaml", envMap(nil))
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v; want %s", err, tc.want)
			}
		})
	}
	for _, s := range []string{"1000000000000", "1.0000001", "1,5"} {
		if _, err := ParseDecimal(s); !errors.Is(err, ErrDecimal) {
			t.Errorf("ParseDecimal(%q): %v; want ErrDecimal", s, err)
		}
	}
}
