package payments_test

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/paygate/paygate/payments"
)

// TestLongNameKeepsTheQuantityInTheDescription: an order's description is
// its item's name and, for more than one, " x" and the quantity (what
// WeChat Pay shows the payer, and the payment state the model reads), cut
// to the 127 bytes WeChat Pay takes. It was cut from its end, the count
// first: an order of twelve of a 42-character Chinese name (126 bytes)
// went to WeChat Pay as the name and a trailing space, one of a 41-character
// name and a letter as "… x1", and the payer paid for twelve under a
// description that said one. The name is cut instead, on a rune boundary,
// and the count kept whole.
func TestLongNameKeepsTheQuantityInTheDescription(t *testing.T) {
	long := strings.Repeat("会", 42)         // 126 bytes
	longer := strings.Repeat("会", 41) + "A" // 124 bytes
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			cat, err := payments.NewCatalog([]payments.CatalogItem{
				{SKU: "long", Name: long, Price: "1.00", MaxQuantity: 12},
				{SKU: "longer", Name: longer, Price: "1.00", MaxQuantity: 12},
			})
			if err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) { o.Catalog = cat }})
			tools := newTools(e)
			for _, tc := range []struct {
				sku  string
				qty  int
				want string // the description's end
			}{
				{"long", 12, " x12"},
				{"long", 2, " x2"},
				{"longer", 12, " x12"},
				{"long", 1, "会"},
			} {
				u := caller("oUser-long-name-" + tc.sku + "-" + strings.Repeat("q", tc.qty))
				got := call(t, tools, u, "create_order", `{"sku":"`+tc.sku+`","quantity":`+strconv.Itoa(tc.qty)+`}`)
				if got.result["status"] != "awaiting_payment" {
					t.Fatalf("%s ×%d: result %s; want an order awaiting payment", tc.sku, tc.qty, got.out.Result)
				}
				d, _ := got.result["description"].(string)
				o := e.order(got.result["order_no"].(string))
				if o.Description != d || len(d) > 127 || !utf8.ValidString(d) || !strings.HasSuffix(d, tc.want) ||
					!strings.HasPrefix(d, "会会会") {
					t.Errorf("%s ×%d: description %q (%d bytes), stored %q; want at most 127 bytes of valid UTF-8 ending %q",
						tc.sku, tc.qty, d, len(d), o.Description, tc.want)
				}
				if tc.qty == 1 && d != long {
					t.Errorf("an order of one: description %q; want the name whole", d)
				}
			}
		})
	}
}
