package payments_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/paygate/paygate/payments"
)

// TestUnknownSKUOfALongAllowList: a caller's allow-list
// (clients[].allowed_skus) is read as a set, which a create_order naming a
// SKU not sold walked pair by pair (35 ms at 5,000 by 5,000, the square of
// that as both grow: BenchmarkUnknownSKUOfALongAllowList). Read either way,
// it must sell and refuse the same SKUs and name the same ones sold: each
// SKU of a table (the allow-list's own, others of the catalog, another case,
// white space around it, one the allow-list names in another case or with
// white space, one the allow-list names and the catalog lacks, the
// allow-list's repeated) is ordered, or refused with the SKUs sold listed
// (a catalog of 8) or counted (of 60, with near ones named), exactly as the
// pair walk (pairAllowed) of the same allow-list says.
func TestUnknownSKUOfALongAllowList(t *testing.T) {
	asked := []string{
		"tee-00002", "tee-00001", " tee-00002\n", "tee-00004\u3000", // sold
		"tee-00003", "TEE-00002", "Tee-00005", "tee-00005", "tee-00007", // not sold
		"hoodie-7", "tee-00000", "tee-00006", "TEE_00004", "tee-4",
	}
	// The allow-list: even SKUs (0 excepted), tee-00001 twice, a SKU in
	// another case and one with white space (neither the catalog's),
	// one the catalog lacks.
	allowList := func(n int) []string {
		var l []string
		for i := 2; i < n; i += 2 {
			l = append(l, fmt.Sprintf("tee-%05d", i))
		}
		return append(l, "tee-00001", "Tee-00005", " tee-00007", "hoodie-7", "tee-00001")
	}
	nearRE := regexp.MustCompile(`"(tee-\d+)" \(`)
	for _, n := range []int{8, 60} {
		t.Run(fmt.Sprint(n, " SKUs"), func(t *testing.T) {
			items := make([]payments.CatalogItem, n)
			for i := range items {
				items[i] = payments.CatalogItem{SKU: fmt.Sprintf("tee-%05d", i), Name: fmt.Sprintf("T-shirt %d", i), Price: "19.99", MaxQuantity: 5}
			}
			catalog, err := payments.NewCatalog(items)
			if err != nil {
				t.Fatal(err)
			}
			tools := newTools(newEnv(t, envOptions{service: func(o *payments.Options) { o.Catalog = catalog }}))
			list := allowList(n)
			var sold []string // the pair walk's, in the catalog's order
			for _, s := range catalog.SKUs() {
				if pairAllowed(list, s) {
					sold = append(sold, s)
				}
			}
			for i, sku := range asked {
				c := payments.Caller{Client: "kiosk-bot", User: fmt.Sprintf("oUser-set-%d-%d", n, i), Session: "s", AllowedSKUs: list}
				r := call(t, tools, c, "create_order", fmt.Sprintf(`{"sku":%q}`, sku))
				msg, _ := r.result["error"].(string)
				trimmed := strings.TrimSpace(sku)
				_, inCatalog := catalog.Lookup(trimmed)
				if inCatalog == nil && pairAllowed(list, trimmed) {
					if r.result["status"] != "awaiting_payment" {
						t.Errorf("%q: %.300s; want an order, as the pair walk sells it", sku, r.out.Result)
					}
					continue
				}
				if r.result["status"] != "needs_clarification" || r.out.Executed {
					t.Errorf("%q: %.300s; want a clarification, as the pair walk refuses it", sku, r.out.Result)
					continue
				}
				if len(sold) <= 20 {
					if want := "valid skus: " + strings.Join(sold, ", "); !strings.HasSuffix(msg, want) {
						t.Errorf("%q: %s; want it to end %q", sku, msg, want)
					}
					continue
				}
				if want := fmt.Sprintf("one of the %d skus", len(sold)); !strings.Contains(msg, want) {
					t.Errorf("%q: %s; want %q", sku, msg, want)
				}
				for _, m := range nearRE.FindAllStringSubmatch(msg, -1) {
					if !slices.Contains(sold, m[1]) {
						t.Errorf("%q: %s; names %s, which the pair walk does not sell", sku, msg, m[1])
					}
				}
			}
		})
	}
}

// pairAllowed is the allow-list's reading before it was a set: every
// SKU of it compared with sku, none (an empty list) allowing all.
func pairAllowed(list []string, sku string) bool {
	if len(list) == 0 {
		return true
	}
	for _, s := range list {
		if s == sku {
			return true
		}
	}
	return false
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
