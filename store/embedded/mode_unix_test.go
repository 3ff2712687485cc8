//go:build unix

package embedded

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestFileAndDirectoryModes: the file holds OpenIDs, conversation texts
// and the user hash key: it is created readable by its owner alone, and so
// is every directory of store.path that Open creates, whatever the
// process's umask (a container's is often 0).
func TestFileAndDirectoryModes(t *testing.T) {
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })
	for _, tc := range []struct {
		name    string
		created []string // directories Open creates, relative to the test's
		file    string
	}{
		{"in an existing directory", nil, "paygate.db"},
		{"in directories not there yet", []string{"data", "data/paygate"}, "data/paygate/paygate.db"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			d, err := Open(filepath.Join(dir, tc.file), Options{SweepInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			check := func(rel string, want os.FileMode) {
				t.Helper()
				fi, err := os.Stat(filepath.Join(dir, rel))
				if err != nil {
					t.Fatal(err)
				}
				if got := fi.Mode().Perm(); got != want {
					t.Errorf("%s: mode %v; want %v", rel, got, want)
				}
			}
			check(tc.file, 0o600)
			for _, c := range tc.created {
				check(c, 0o700)
			}
		})
	}
}
