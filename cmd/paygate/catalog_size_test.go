package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/paygate/paygate/interceptors"
)

// TestLargeCatalogWarned: a catalog whose payment tool definitions pass
// 32 KB is warned of by check-config at payments.catalog's line, with its
// size, because they go to the provider as prompt tokens with every
// signed-in turn: 1,000 items are some 78 KB (about 19,500 tokens) a turn
// and 5,000 more than many models' context, which check-config said
// nothing of. No warning when no client is offered the whole catalog
// (each has allowed_skus) or create_order is not offered
// (max_payment_calls 0). The size is measured here, where the wiring is:
// config may import nothing of paygate (SPEC 10).
func TestLargeCatalogWarned(t *testing.T) {
	catalog := func(n int) string { return teeCatalog(n, 0) }
	const kiosk = "clients:\n  - {name: kiosk, key: sk-kiosk-0123456789abcdef, allowed_skus: [tee-00001, tee-00002]}\n"
	tests := []struct {
		name, src string
		warn      bool
	}{
		{"200 items", catalog(200), false},
		{"1000 items", catalog(1000), true},
		{"1000 items, a client offered a few", catalog(1000) + kiosk, false},
		{"1000 items, another client offered all", catalog(1000) + kiosk + "  - {name: web, key: sk-web-0123456789abcdefgh}\n", true},
		{"1000 items, no orders made", catalog(1000) + "  budget: {max_payment_calls: 0}\n", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "c.yaml")
			stderr, got := checkConfigWarnings(t, file, tc.src, "every signed-in turn")
			switch {
			case !tc.warn && len(got) > 0:
				t.Errorf("warnings %q; want none about the catalog's size", got)
			case tc.warn && (len(got) != 1 || !strings.HasPrefix(got[0], "warning: "+file+":2: payments.catalog: ") || !strings.Contains(got[0], "78,244 bytes (about 19,561 tokens)")):
				t.Errorf("stderr %q; want one warning at payments.catalog's line with its size", stderr)
			}
		})
	}
}

// teeCatalog is a payments section whose catalog has n T-shirts, the
// last one's name pad bytes longer.
func teeCatalog(n, pad int) string {
	var b strings.Builder
	b.WriteString("payments:\n  catalog:\n")
	for _, it := range teeSKUs(n, pad) {
		fmt.Fprintf(&b, "    - {sku: %s, name: %q, price: \"19.99\", max_quantity: %d}\n", it.ID, it.Name, it.MaxQuantity)
	}
	return b.String()
}

// teeSKUs are teeCatalog's items as the model is offered them.
func teeSKUs(n, pad int) []interceptors.SKU {
	skus := make([]interceptors.SKU, n)
	for i := range skus {
		skus[i] = interceptors.SKU{ID: fmt.Sprintf("tee-%05d", i), Name: fmt.Sprintf("Cotton T-shirt no. %d, size M", i), PriceFen: 1999, MaxQuantity: 5}
	}
	if n > 0 {
		skus[n-1].Name += strings.Repeat("x", pad)
	}
	return skus
}

// TestCatalogSizeCountsPayMethods: the size check-config warns of is that
// of the definitions serve offers, pay methods and all (a client's own
// pay_methods too): the pay_method parameter and create_order's
// description change with them, so a catalog at the bound with the
// default methods is past it with native first, and one just past it is
// under it with jsapi alone. The size was measured with no pay methods,
// which warned of definitions no client was offered and not of those one
// was.
func TestCatalogSizeCountsPayMethods(t *testing.T) {
	// The catalog whose definitions, with the default pay methods, are
	// maxToolDefsBytes+over bytes.
	size := func(n, pad int) int {
		return len(interceptors.PaymentTools(interceptors.ToolSpec{CreateOrder: "create_order", QueryOrder: "query_order", RequestRefund: "request_refund", SKUs: teeSKUs(n, pad)}))
	}
	catalog := func(over int) string {
		want := maxToolDefsBytes + over
		n := sort.Search(2000, func(n int) bool { return size(n+1, 0) > want })
		if size(n, want-size(n, 0)) != want {
			t.Fatalf("no catalog of T-shirts has definitions of %d bytes", want)
		}
		return teeCatalog(n, want-size(n, 0))
	}
	const web = "clients:\n  - {name: web, key: sk-web-0123456789abcdefgh, pay_methods: %s}\n"
	tests := []struct {
		name, src string
		warn      string // the size warned of, "" for no warning
	}{
		// The premise: the catalogs are at the bound and one byte past it.
		{"at the bound", catalog(0), ""},
		{"past the bound", catalog(1), "32,769 bytes"},
		{"at the bound, the default pay methods written", catalog(0) + "  pay_methods: [jsapi, native]\n", ""},
		{"at the bound, native first", catalog(0) + "  pay_methods: [native, jsapi]\n", "32,769 bytes"},
		{"at the bound, a client's native first", catalog(0) + fmt.Sprintf(web, "[native, jsapi]"), `client "web" are 32,769 bytes`},
		{"past the bound, jsapi alone", catalog(1) + "  pay_methods: [jsapi]\n", ""},
		{"past the bound, a client's jsapi alone", catalog(1) + fmt.Sprintf(web, "[jsapi]"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "c.yaml")
			stderr, got := checkConfigWarnings(t, file, tc.src, "every signed-in turn")
			switch {
			case tc.warn == "" && len(got) > 0:
				t.Errorf("warnings %q; want none about the catalog's size", got)
			case tc.warn != "" && (len(got) != 1 || !strings.Contains(got[0], tc.warn)):
				t.Errorf("stderr %q; want one warning of %s", stderr, tc.warn)
			}
		})
	}
}

// checkConfigWarnings writes src to file, runs check-config on it, which
// must pass, and returns its stderr and the lines of it holding every one
// of words.
func checkConfigWarnings(t *testing.T, file, src string, words ...string) (stderr string, lines []string) {
	t.Helper()
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	if code := run([]string{"check-config", "-config", file}, &out, &errs); code != 0 {
		t.Fatalf("exit %d; want 0 (stdout %q, stderr %q)", code, out.String(), errs.String())
	}
	for _, l := range strings.Split(errs.String(), "\n") {
		has := true
		for _, w := range words {
			has = has && strings.Contains(l, w)
		}
		if has && l != "" {
			lines = append(lines, l)
		}
	}
	return errs.String(), lines
}
