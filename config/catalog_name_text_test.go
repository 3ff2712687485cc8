package config_test

import (
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/payments"
)

// TestCatalogNameIsDescriptionText: a catalog name is the order's
// description WeChat Pay shows the payer, so check-config refuses one that
// is not one line of UTF-8 text at the name's file:line, and serve's
// catalog (payments.NewCatalog) refuses what check-config refuses. A name
// from an environment variable set in a GBK shell ("咖啡" is bf a7 b7 c8)
// went out as four U+FFFD, and one of 127 such bytes as 381 bytes of
// them, which WeChat Pay refuses (PARAM_ERROR) at every payment; a folded
// name (">") ends in a line break, and an order of two was described as
// "咖啡\n x2".
func TestCatalogNameIsDescriptionText(t *testing.T) {
	gbk := "\xbf\xa7\xb7\xc8" // 咖啡 in GBK
	tests := []struct {
		name, value, env string
		want             string // the error's start; "" when it loads
	}{
		{"chinese", "高级会员 月度订阅", "", ""},
		{"emoji", "咖啡 ☕ 🫘", "", ""},
		{"chinese from env", "${NAME}", "咖啡豆", ""},
		{"gbk from env", "${NAME}", gbk, "c.yaml:4: payments.catalog[0].name: not UTF-8 text"},
		{"gbk long from env", "${NAME}", strings.Repeat(gbk, 32), "c.yaml:4: payments.catalog[0].name: not UTF-8 text"},
		{"folded", ">\n        咖啡豆\n", "", "c.yaml:4: payments.catalog[0].name: holds a line break"},
		{"literal", "|\n        咖啡豆\n", "", "c.yaml:4: payments.catalog[0].name: holds a line break"},
		{"escaped NUL", `"咖啡\0豆"`, "", `c.yaml:4: payments.catalog[0].name: holds the control character U+0000`},
		{"escaped ESC", `"\e[1m咖啡"`, "", `c.yaml:4: payments.catalog[0].name: holds the control character U+001B`},
		{"C1 from env", "${NAME}", "咖啡\u0085", `c.yaml:4: payments.catalog[0].name: holds a line break`},
		{"only spaces", `"　 "`, "", `c.yaml:4: payments.catalog[0].name: required`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "payments:\n  catalog:\n    - sku: a\n      name: " + tc.value + "\n      price: \"1.00\"\n"
			cfg, err := config.Parse([]byte(src), "c.yaml", func(k string) (string, bool) {
				if k == "NAME" {
					return tc.env, true
				}
				return "", false
			})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
				t.Fatalf("got %v; want an error starting %q", err, tc.want)
			}
			name := tc.env
			if cfg != nil {
				name = cfg.Payments.Catalog[0].Name
			} else if tc.env == "" {
				name = map[string]string{"folded": "咖啡豆\n", "literal": "咖啡豆\n", "escaped NUL": "咖啡\x00豆",
					"escaped ESC": "\x1b[1m咖啡", "only spaces": "　 "}[tc.name]
			}
			_, serveErr := payments.NewCatalog([]payments.CatalogItem{{SKU: "a", Name: name, Price: "1.00"}})
			if (serveErr == nil) != (err == nil) {
				t.Errorf("serve's catalog says %v of %q; check-config says %v", serveErr, name, err)
			}
		})
	}
}
