package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// under is the pairwise definition reported and unrelated look up in sets:
// key path is anc or a key below it ("providers[0].api_key" is under
// "providers" and "providers[0]").
func under(path, anc string) bool {
	return path == anc || anc != "" && strings.HasPrefix(path, anc) &&
		(path[len(anc)] == '.' || path[len(anc)] == '[')
}

// TestRelatedErrorsAsPairwise: reported and unrelated, which look key
// paths up in sets so that a file with thousands of bad values is checked
// in time linear in them, decide as comparing every pair of paths did.
func TestRelatedErrorsAsPairwise(t *testing.T) {
	paths := []string{"", "providers", "providers[0]", "providers[0].timeouts", "providers[0].timeouts.connect",
		"providers[1]", "providers[10]", "providers[0]x", "provider", "payments.catalog[2].price",
		"payments.catalog", "payments", "payments.catalogue", "server.listen", "server"}
	for _, known := range paths {
		for _, other := range paths {
			l := &loader{errs: Errors{{Path: known}}}
			if got, want := l.reported(other), under(other, known); got != want {
				t.Errorf("reported(%q) with an error at %q: got %v, want %v", other, known, got, want)
			}
			kept := unrelated([]*Error{{Path: known}}, []*Error{{Path: other}})
			want := known != "" && other != "" && !under(other, known) && !under(known, other)
			if got := len(kept) == 1; got != want {
				t.Errorf("unrelated: error at %q beside a bad value at %q kept %v, want %v", other, known, got, want)
			}
		}
	}
	// The index follows errors added after a first call.
	l := &loader{}
	if l.reported("server.listen") {
		t.Fatal("reported with no errors")
	}
	l.errs = append(l.errs, &Error{Path: "server"})
	if !l.reported("server.listen") {
		t.Error("an error added after the first call is not seen")
	}
}

// TestManyBadValuesEachReported: a file with thousands of bad values gets
// one error for each, at its line, in the file's order.
func TestManyBadValuesEachReported(t *testing.T) {
	n := 20_000
	if testing.Short() {
		n = 2_000
	}
	var b strings.Builder
	b.WriteString("payments:\n  catalog:\n")
	for i := range n {
		fmt.Fprintf(&b, "    - {sku: s%d, name: A, price: \"1.00\", max_quantity: many}\n", i)
	}
	_, err := Parse([]byte(b.String()), "c.yaml", envMap(nil))
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("got %v; want config.Errors", err)
	}
	if len(es) != n {
		t.Fatalf("got %d errors; want %d", len(es), n)
	}
	for i, e := range es {
		if want := fmt.Sprintf("payments.catalog[%d].max_quantity", i); e.Path != want || e.Line != i+3 {
			t.Fatalf("error %d: got %q at line %d; want %q at line %d", i, e.Path, e.Line, want, i+3)
		}
	}
}
