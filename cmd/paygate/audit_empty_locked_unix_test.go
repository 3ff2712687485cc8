//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestAuditVerifyEmptyStoreFileInUse: a store file of no bytes that a
// paygate holds locked is a serve starting on a new file (bbolt creates the
// file and takes its lock before it writes the first pages), not a file no
// store was ever written to: verify and export name it as in use, as they
// do a running paygate's file, and leave it as it was.
func TestAuditVerifyEmptyStoreFileInUse(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "new.db")
	writeFile(t, db, "")
	held, err := os.OpenFile(db, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := syscall.Flock(int(held.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "c.yaml")
	writeFile(t, cfg, `
clients: [{name: bot, key: k}]
store: {path: "`+db+`"}
providers: [{name: fake, base_url: "http://127.0.0.1:1/v1", api_key: x}]
models: [{name: m, targets: [{provider: fake, model: u}]}]
`)
	for _, cmd := range []string{"verify", "export"} {
		code, out, errOut := runAudit(cmd, "-config", cfg)
		if code != 1 || out != "" || !strings.Contains(errOut, "in use by a running paygate") || strings.Contains(errOut, "is empty") {
			t.Errorf("audit %s: exit %d, stdout %q, stderr %q; want 1 and the file named as in use", cmd, code, out, errOut)
		}
	}
	if fi, err := os.Stat(db); err != nil || fi.Size() != 0 {
		t.Errorf("the file was changed: %v %v", fi, err)
	}
}
