package config

import (
	"errors"
	"testing"
)

// TestReferenceSaysWhatAListEntryRequires: a key of a list entry that
// check-config refuses to leave out is "required" in the reference's
// Default column, so that an operator who writes the keys the README asks
// for does not learn of another only when check-config runs. Each case
// leaves one key out of an entry that otherwise loads.
func TestReferenceSaysWhatAListEntryRequires(t *testing.T) {
	const (
		client   = "clients:\n  - {name: bot, key: sk-0123456789abcdef}\n"
		provider = "providers:\n  - {name: p, base_url: \"https://example.com/v1\"}\n"
		model    = "models:\n  - {name: m, targets: [{provider: p, model: x}]}\n"
		item     = "payments:\n  catalog:\n    - {sku: a, name: A, price: \"1.00\"}\n"
	)
	base := client + provider + model + item
	if _, err := Parse([]byte(base), "c.yaml", envMap(nil)); err != nil {
		t.Fatalf("the base config: %v", err)
	}
	tests := []struct{ key, src string }{
		{"clients[].name", "clients:\n  - {key: sk-0123456789abcdef}\n" + provider + model + item},
		{"clients[].key", "clients:\n  - {name: bot}\n" + provider + model + item},
		{"providers[].name", client + "providers:\n  - {base_url: \"https://example.com/v1\"}\n" + model + item},
		{"providers[].base_url", client + "providers:\n  - {name: p}\n" + model + item},
		{"models[].name", client + provider + "models:\n  - {targets: [{provider: p, model: x}]}\n" + item},
		{"models[].targets", client + provider + "models:\n  - {name: m}\n" + item},
		{"models[].targets[].provider", client + provider + "models:\n  - {name: m, targets: [{model: x}]}\n" + item},
		{"models[].targets[].model", client + provider + "models:\n  - {name: m, targets: [{provider: p}]}\n" + item},
		{"payments.catalog[].sku", client + provider + model + "payments:\n  catalog:\n    - {name: A, price: \"1.00\"}\n"},
		{"payments.catalog[].name", client + provider + model + "payments:\n  catalog:\n    - {sku: a, price: \"1.00\"}\n"},
		{"payments.catalog[].price", client + provider + model + "payments:\n  catalog:\n    - {sku: a, name: A}\n"},
	}
	rows, err := referenceRows(embeddedSource())
	if err != nil {
		t.Fatal(err)
	}
	def := map[string]string{}
	for _, r := range rows {
		def[r.Key] = r.Default
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "c.yaml", envMap(nil))
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("left out, it loads (%v); want it refused", err)
			}
			refused := ""
			for _, e := range es {
				if listIndex.ReplaceAllString(e.Path, "[]") == tc.key {
					refused = e.Msg
				}
			}
			if refused == "" {
				t.Fatalf("left out, it is refused at other keys only: %v", err)
			}
			d, ok := def[tc.key]
			switch {
			case !ok:
				t.Fatalf("no reference row")
			case d != "required":
				t.Errorf("check-config refuses it left out (%q); the reference's default is %s, not required", refused, d)
			}
		})
	}
}
