package config_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/payments"
)

// TestCatalogPricesAsServeReadsThem: check-config accepts a catalog item
// exactly when serve's catalog (payments.NewCatalog, on the price text)
// does, and refuses it at the price's or max_quantity's file:line.
func TestCatalogPricesAsServeReadsThem(t *testing.T) {
	prices := []string{
		"49.99", "49.9", "49", "0.01", "0.5", "1", "10.00", "0", "0.00",
		"049.99", "00.50", "007", "49.990", "1.005", "49.000000",
		"99999999999.99", "99999999999", "100000000000", "999999999999.99",
		"10000000000.00", "9999999999.99",
	}
	quantities := []int{1, 12, 1000, 100_000}
	for _, price := range prices {
		for _, mq := range quantities {
			name := fmt.Sprintf("%s×%d", price, mq)
			t.Run(name, func(t *testing.T) {
				_, serveErr := payments.NewCatalog([]payments.CatalogItem{{SKU: "a", Name: "A", Price: price, MaxQuantity: mq}})
				src := fmt.Sprintf("payments:\n  catalog:\n    - sku: a\n      name: A\n      price: %q\n      max_quantity: %d\n", price, mq)
				_, err := config.Parse([]byte(src), "c.yaml", func(string) (string, bool) { return "", false })
				switch {
				case serveErr == nil && err != nil:
					t.Errorf("serve's catalog takes it; check-config says %v", err)
				case serveErr != nil && err == nil:
					t.Errorf("check-config accepts it; serve's catalog says %v", serveErr)
				case err != nil && !strings.HasPrefix(err.Error(), "c.yaml:5: payments.catalog[0].price: ") &&
					!strings.HasPrefix(err.Error(), "c.yaml:6: payments.catalog[0].max_quantity: "):
					t.Errorf("got %q; want it at the price's or max_quantity's line", err)
				}
			})
		}
	}
}

// TestCatalogPriceErrors: what each refusal says.
func TestCatalogPriceErrors(t *testing.T) {
	tests := []struct{ item, want string }{
		{`{sku: a, name: A, price: "049.99"}`, `c.yaml:2: payments.catalog[0].price: "049.99" has a leading zero`},
		{`{sku: a, name: A, price: "49.990"}`, `c.yaml:2: payments.catalog[0].price: "49.990" has more than two decimals (1 fen is 0.01)`},
		{`{sku: a, name: A, price: "100000000000.00"}`, `c.yaml:2: payments.catalog[0].price: "100000000000.00" is above the largest amount, 100000000000.00`},
		{`{sku: a, name: A, price: "99999999999.00", max_quantity: 1000}`, `c.yaml:2: payments.catalog[0].max_quantity: 1000 × 99999999999.00 is above the largest amount, 100000000000.00`},
		{`{sku: a, name: A, price: "0.00"}`, `c.yaml:2: payments.catalog[0].price: required, above zero`},
	}
	for _, tc := range tests {
		t.Run(tc.item, func(t *testing.T) {
			_, err := config.Parse([]byte("payments:\n  catalog: ["+tc.item+"]\n"), "c.yaml", func(string) (string, bool) { return "", false })
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v; want %s", err, tc.want)
			}
		})
	}
}
