package config

import (
	"go/build"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPackagesImportAsSPEC10Says: the layering of SPEC 10, checked on the
// packages' non-test imports, transitively: config and sse import nothing
// of paygate, store nothing but internal helpers, failover nothing about
// payments, payments nothing above it. config importing interceptors (to
// measure the payment tool definitions) went unnoticed, and through
// config failover and accounting depended on interceptors too.
func TestPackagesImportAsSPEC10Says(t *testing.T) {
	const module = "github.com/paygate/paygate/"
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	deps := map[string][]string{} // package (module-relative) → its paygate imports, transitively
	var walk func(pkg string) []string
	walk = func(pkg string) []string {
		if d, ok := deps[pkg]; ok {
			return d
		}
		deps[pkg] = nil // a cycle stops here; the build refuses it anyway
		p, err := build.Default.ImportDir(filepath.Join(root, filepath.FromSlash(pkg)), 0)
		if err != nil {
			t.Fatalf("%s: %v", pkg, err)
		}
		var out []string
		for _, imp := range p.Imports {
			if rel, ok := strings.CutPrefix(imp, module); ok {
				out = append(out, rel)
				out = append(out, walk(rel)...)
			}
		}
		slices.Sort(out)
		out = slices.Compact(out)
		deps[pkg] = out
		return out
	}
	internal := func(dep string) bool { return strings.HasPrefix(dep, "internal/") }
	rules := []struct {
		pkg    string
		forbid func(dep string) bool
		rule   string
	}{
		{"config", func(string) bool { return true }, "config may import nothing of paygate"},
		{"sse", func(string) bool { return true }, "sse may import nothing of paygate"},
		{"store", func(d string) bool { return !internal(d) && !strings.HasPrefix(d, "store/") }, "store imports nothing above it"},
		{"failover", func(d string) bool {
			return d == "payments" || strings.HasPrefix(d, "payments/") || d == "store" || strings.HasPrefix(d, "store/") || d == "interceptors"
		}, "never failover -> payments/store/interceptors"},
		{"payments", func(d string) bool { return d == "proxy" || d == "interceptors" || d == "failover" }, "never payments -> proxy/interceptors/failover"},
	}
	for _, r := range rules {
		for _, d := range walk(r.pkg) {
			if r.forbid(d) {
				t.Errorf("%s imports %s (all it imports of paygate: %v); SPEC 10: %s", r.pkg, d, deps[r.pkg], r.rule)
			}
		}
	}
}
