package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/paygate/paygate/store/testdrivers"
)

// TestAuditExportFailureLeavesTheFileAsItWas: an export that fails (a
// record missing from the chain, a Redis store that does not answer)
// leaves the file -o names as it was, an earlier export there kept whole,
// and no partial file beside it: the file was truncated before the first
// record was read, so a failed export left an empty or a cut JSONL file
// where the last good export had been, one that reads as a complete chain.
func TestAuditExportFailureLeavesTheFileAsItWas(t *testing.T) {
	const earlier = "{\"seq\":1,\"an\":\"earlier export\"}\n"
	cases := map[string]func(t *testing.T) string{}
	for _, driver := range testdrivers.Names(t) {
		cases[driver+"/record missing"] = func(t *testing.T) string {
			f := newAuditFixture(t, driver)
			f.edit(nil, []uint64{3}, nil) // records 1 and 2 export, then the hole
			return f.cfgPath
		}
	}
	cases["redis/store down"] = func(t *testing.T) string {
		cfg := filepath.Join(t.TempDir(), "down.yaml")
		writeFile(t, cfg, `
clients: [{name: bot, key: k-audit}]
store: {driver: redis, redis: {addrs: ["127.0.0.1:1"]}}
providers: [{name: fake, base_url: "http://127.0.0.1:1/v1", api_key: x}]
models: [{name: m, targets: [{provider: fake, model: u}]}]
`)
		return cfg
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := setup(t)
			dir := t.TempDir()
			out := filepath.Join(dir, "audit.jsonl")
			writeFile(t, out, earlier)
			// The Redis store's own goroutine logs to stderr while the
			// command writes there too: a writer that takes them in turn.
			var stdout, stderr lockedWriter
			code := run([]string{"audit", "export", "-config", cfg, "-o", out}, &stdout, &stderr)
			errOut := stderr.String()
			if code != 1 {
				t.Fatalf("export: exit %d %q; want 1", code, errOut)
			}
			if got, err := os.ReadFile(out); err != nil || string(got) != earlier {
				t.Errorf("after the failed export %s holds %q (%v); want the earlier export %q as it was", out, got, err, earlier)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if len(names) != 1 {
				t.Errorf("files in the output's directory: %s; want audit.jsonl alone", strings.Join(names, ", "))
			}
			if !strings.Contains(errOut, "not written") {
				t.Errorf("stderr %q; want it to say the file was not written", errOut)
			}
		})
	}
}

// lockedWriter is a strings.Builder written from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestAuditExportToAMissingDirectory: -o in a directory that is not there
// is refused naming FILE, not the temporary file written beside it.
func TestAuditExportToAMissingDirectory(t *testing.T) {
	f := newAuditFixture(t, "embedded")
	out := filepath.Join(t.TempDir(), "no-such-dir", "audit.jsonl")
	code, _, errOut := runAudit("export", "-config", f.cfgPath, "-o", out)
	want := "paygate audit export: cannot write " + out + ": no such file or directory\n"
	if code != 1 || errOut != want {
		t.Errorf("exit %d, stderr %q; want 1 and %q", code, errOut, want)
	}
}

// TestAuditExportRefusesAnEmptyOutput: -o "" (a script's -o "$OUT", the
// variable unset) read the whole chain into a temporary file in the
// working directory and then failed to rename it to "", saying "rename
// ./….partial : no such file or directory (after 4 records);  not
// written", exit 1, as if the store or the disk had failed. It is a usage
// error, said before the store is read.
func TestAuditExportRefusesAnEmptyOutput(t *testing.T) {
	f := newAuditFixture(t, "embedded")
	dir := t.TempDir()
	t.Chdir(dir)
	code, out, errOut := runAudit("export", "-config", f.cfgPath, "-o", "")
	if code != 2 || out != "" || !strings.Contains(errOut, "paygate audit export: -o is empty") {
		t.Errorf("exit %d, stdout %q, stderr %q; want 2 and -o is empty", code, out, errOut)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("left in the working directory: %v", left)
	}
}

// TestAuditExportRefusesTheStoreFile: -o naming the store file (a slip
// for paygate.jsonl, or a link to it) renamed the export over it: every
// order, refund and secret, and the chain itself, was replaced by the
// JSON Lines, and the command said "exported 4 records", exit 0.
func TestAuditExportRefusesTheStoreFile(t *testing.T) {
	f := newAuditFixture(t, "embedded")
	link := filepath.Join(t.TempDir(), "store-link")
	if err := os.Symlink(f.dbPath, link); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{f.dbPath, link, filepath.Join(filepath.Dir(f.dbPath), ".", filepath.Base(f.dbPath))} {
		before, err := os.ReadFile(f.dbPath)
		if err != nil {
			t.Fatal(err)
		}
		code, _, errOut := runAudit("export", "-config", f.cfgPath, "-o", out)
		if code != 2 || !strings.Contains(errOut, "is the store file") {
			t.Errorf("export -o %s (the store file): exit %d %q; want 2, refused", out, code, errOut)
		}
		after, err := os.ReadFile(f.dbPath)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Fatalf("export -o %s replaced the store file", out)
		}
	}
	if code, out, errOut := runAudit("verify", "-config", f.cfgPath); code != 0 {
		t.Errorf("verify after: exit %d %q %q", code, out, errOut)
	}
}
