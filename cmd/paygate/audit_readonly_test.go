package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestAuditLeavesTheEmbeddedFileUnchanged: verify and export read the
// chain; run on an evidence copy of paygate.db they must leave it byte
// for byte as it was (its checksum is the auditor's proof of what was
// verified). The store's open wrote a transaction (buckets, indexes,
// outbox leases released) into every file it opened, verify's included.
func TestAuditLeavesTheEmbeddedFileUnchanged(t *testing.T) {
	f := newAuditFixture(t, "embedded")
	for _, args := range [][]string{
		{"verify", "-config", f.cfgPath},
		{"verify", "-config", f.cfgPath, "-text"},
		{"export", "-config", f.cfgPath, "-text"},
	} {
		before, err := os.ReadFile(f.dbPath)
		if err != nil {
			t.Fatal(err)
		}
		code, _, errOut := runAudit(args...)
		if code != 0 {
			t.Fatalf("audit %s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
		after, err := os.ReadFile(f.dbPath)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Errorf("audit %s changed the store file it read", strings.Join(args, " "))
		}
	}
}

// TestAuditOpensAnEarlierVersionsFile: a file lacking a bucket this
// version adds cannot be read read-only; verify opens it for writing then,
// as it always did, and says so.
func TestAuditOpensAnEarlierVersionsFile(t *testing.T) {
	f := newAuditFixture(t, "embedded")
	db, err := bolt.Open(f.dbPath, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("outbox_leases")) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runAudit("verify", "-config", f.cfgPath)
	if code != 0 || !strings.Contains(out, "audit chain ok: 4 records") || !strings.Contains(errOut, "earlier version") {
		t.Fatalf("verify of an earlier version's file: exit %d, %q, %q; want the chain verified and the write said", code, out, errOut)
	}
	code, _, errOut = runAudit("verify", "-config", f.cfgPath)
	if code != 0 || errOut != "" {
		t.Errorf("verify once the buckets were added: exit %d, %q; want a quiet read-only verify", code, errOut)
	}
}
