package main

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/paygate/paygate/config"
)

// TestCheckConfigRefusesAStorePathThatIsADirectory: store.path names the
// embedded store's file; one naming a directory (the data directory, as
// "path" reads to many: /var/lib/paygate, data/) passed check-config, and
// serve then stopped with "open …: is a directory", no file:line. It is
// refused at its line, with the file in it to name instead.
func TestCheckConfigRefusesAStorePathThatIsADirectory(t *testing.T) {
	dir := t.TempDir()
	src := "server: {listen: \"127.0.0.1:0\", admin_listen: \"127.0.0.1:0\"}\nstore:\n  path: \"" + dir + "\"\n"
	cfg, err := config.Parse([]byte(src), "x.yaml", func(string) (string, bool) { return "", false })
	if err == nil {
		t.Fatalf("check-config accepts it; serve says: %v", serveOnce(t, cfg))
	}
	want := regexp.MustCompile(`^x\.yaml:3: store\.path: .*is a directory.*` + regexp.QuoteMeta(filepath.Join(dir, "paygate.db")))
	if !want.MatchString(err.Error()) {
		t.Errorf("got %q; want x.yaml:3: store.path: … is a directory, naming %s", err, filepath.Join(dir, "paygate.db"))
	}
	// A file, or a path not there yet (serve creates it), is the store's.
	for _, p := range []string{filepath.Join(dir, "paygate.db"), filepath.Join(dir, "new", "paygate.db")} {
		if p == filepath.Join(dir, "paygate.db") {
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		src := "store:\n  path: \"" + p + "\"\n"
		if _, err := config.Parse([]byte(src), "x.yaml", func(string) (string, bool) { return "", false }); err != nil {
			t.Errorf("store.path %s: %v; want it accepted", p, err)
		}
	}
}
