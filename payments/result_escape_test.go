package payments_test

import (
	"bytes"
	"testing"

	"github.com/paygate/paygate/payments"
)

// TestToolResultKeepsHTMLCharacters: a tool result is JSON the model reads
// as text (a tool message's content), not HTML. encoding/json's default
// escapes &, < and > as \u0026, \u003c and \u003e, so an item named
// "Tea & Cake" reached the model as "Tea \u0026 Cake", which a model can
// copy into its answer to the user as it read it. The result carries the
// characters themselves.
func TestToolResultKeepsHTMLCharacters(t *testing.T) {
	const name = "Tea & Cake <large>"
	cat, err := payments.NewCatalog([]payments.CatalogItem{{SKU: "tea", Name: name, Price: "9.90", MaxQuantity: 2}})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{service: func(o *payments.Options) { o.Catalog = cat }})
	got := call(t, newTools(e), caller("oUser-escape"), "create_order", `{"sku":"tea","quantity":1}`)
	if got.result["description"] != name {
		t.Fatalf("result %s; want the description %q", got.out.Result, name)
	}
	for _, esc := range []string{`\u0026`, `\u003c`, `\u003e`} {
		if bytes.Contains(got.out.Result, []byte(esc)) {
			t.Errorf("result %s holds %s; want the character itself", got.out.Result, esc)
		}
	}
}
