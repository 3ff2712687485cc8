package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/paygate/paygate/store/testdrivers"
)

// TestAuditExportKeepsTheFilesPermissions: an export over an earlier one
// leaves FILE readable by whom it was (a log shipper's group, an
// auditor's account); a new FILE is the owner's alone, as before. The
// temporary file renamed over FILE was created 0600, so the first export
// after the change took FILE from everyone who read it.
func TestAuditExportKeepsTheFilesPermissions(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			f := newAuditFixture(t, driver)
			for _, tc := range []struct {
				name     string
				existing os.FileMode // 0: FILE not there yet
				want     os.FileMode
			}{
				{"a file its group reads", 0o640, 0o640},
				{"a file everyone reads", 0o644, 0o644},
				{"a file its owner alone reads", 0o600, 0o600},
				{"a new file", 0, 0o600},
			} {
				t.Run(tc.name, func(t *testing.T) {
					out := filepath.Join(t.TempDir(), "audit.jsonl")
					if tc.existing != 0 {
						writeFile(t, out, "{\"seq\":1,\"an\":\"earlier export\"}\n")
						if err := os.Chmod(out, tc.existing); err != nil {
							t.Fatal(err)
						}
					}
					fi := exportTo(t, f.cfgPath, out)
					if got := fi.Mode().Perm(); got != tc.want {
						t.Errorf("%s is %v after the export; want %v", out, got, tc.want)
					}
				})
			}
		})
	}
}

// exportTo runs audit export -o out under the config at cfgPath, and
// returns what out is then.
func exportTo(t *testing.T, cfgPath, out string) os.FileInfo {
	t.Helper()
	code, _, errOut := runAuditLocked("export", "-config", cfgPath, "-o", out)
	if code != 0 {
		t.Fatalf("export: exit %d, stderr %q", code, errOut)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}
