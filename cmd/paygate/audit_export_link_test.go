package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/paygate/paygate/store/testdrivers"
)

// TestAuditExportWritesWhereFileLeads: -o FILE that leads to another file
// (a symlink, or /dev/stdout and /dev/fd/N, which lead to what the shell
// redirected there) is written there, as it was before the export went
// through a temporary file renamed over FILE. Renamed over the link, the
// export replaced the symlink with a file of its own and left its target
// as it was; and beside /dev/fd/N (/dev/stdout under `> file`) it could
// not be written at all, or, as root, replaced /dev/stdout itself.
func TestAuditExportWritesWhereFileLeads(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			f := newAuditFixture(t, driver)
			code, want, errOut := runAuditLocked("export", "-config", f.cfgPath)
			if code != 0 || want == "" {
				t.Fatalf("export to stdout: exit %d, stderr %q", code, errOut)
			}
			cases := []struct {
				name string
				// setup returns FILE and the file the export must land in.
				setup func(t *testing.T, dir string) (out, target string)
			}{
				{"a symlink to an earlier export", func(t *testing.T, dir string) (string, string) {
					target := filepath.Join(dir, "exports", "2026-12-04.jsonl")
					if err := os.Mkdir(filepath.Dir(target), 0o700); err != nil {
						t.Fatal(err)
					}
					writeFile(t, target, "{\"seq\":1,\"an\":\"earlier export\"}\n")
					link := filepath.Join(dir, "latest.jsonl")
					if err := os.Symlink(filepath.Join("exports", "2026-12-04.jsonl"), link); err != nil {
						t.Fatal(err)
					}
					return link, target
				}},
				{"a symlink to a file not there yet", func(t *testing.T, dir string) (string, string) {
					target := filepath.Join(dir, "new.jsonl")
					link := filepath.Join(dir, "latest.jsonl")
					if err := os.Symlink(target, link); err != nil {
						t.Fatal(err)
					}
					return link, target
				}},
				{"a new file in /dev/shm, a directory like any other", func(t *testing.T, _ string) (string, string) {
					shm, err := os.MkdirTemp("/dev/shm", "paygate-export-")
					if err != nil {
						t.Skip("no /dev/shm here:", err)
					}
					t.Cleanup(func() { os.RemoveAll(shm) })
					out := filepath.Join(shm, "audit.jsonl")
					return out, out
				}},
				{"/dev/fd/N of a redirect to a file", func(t *testing.T, dir string) (string, string) {
					target := filepath.Join(dir, "redirected.jsonl")
					fd, err := os.Create(target)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { fd.Close() })
					return fmt.Sprintf("/dev/fd/%d", fd.Fd()), target
				}},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					dir := t.TempDir()
					out, target := tc.setup(t, dir)
					before, _ := os.Lstat(out)
					code, _, errOut := runAuditLocked("export", "-config", f.cfgPath, "-o", out)
					if code != 0 {
						t.Fatalf("export -o %s: exit %d, stderr %q; want 0", out, code, errOut)
					}
					if got, err := os.ReadFile(target); err != nil || string(got) != want {
						t.Errorf("%s holds %q (%v); want the export %q", target, got, err, want)
					}
					if before != nil && before.Mode()&os.ModeSymlink != 0 {
						if fi, err := os.Lstat(out); err != nil || fi.Mode()&os.ModeSymlink == 0 {
							t.Errorf("%s is no longer a symlink (%v): the export replaced the link", out, err)
						}
					}
					entries, err := os.ReadDir(dir)
					if err != nil {
						t.Fatal(err)
					}
					for _, e := range entries {
						if filepath.Ext(e.Name()) == ".partial" {
							t.Errorf("a partial file is left: %s", e.Name())
						}
					}
				})
			}
		})
	}
}
