package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	catalog := func(n int) string {
		var b strings.Builder
		b.WriteString("payments:\n  catalog:\n")
		for i := range n {
			fmt.Fprintf(&b, "    - {sku: tee-%05d, name: \"Cotton T-shirt no. %d, size M\", price: \"19.99\", max_quantity: 5}\n", i, i)
		}
		return b.String()
	}
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
