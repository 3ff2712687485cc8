package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestAuditRefusesAFileNoPaygateWrote: store.path naming a bbolt file of
// another program (or one whose chain's buckets were dropped) is no
// paygate store: every version's file has held the audit chain's buckets
// since the first. verify took it for an earlier version's file, opened it
// for writing, added paygate's buckets to it and said "audit chain ok: 0
// records", exit 0, as the Redis store's check refuses a key prefix no
// deployment used.
func TestAuditRefusesAFileNoPaygateWrote(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "other.db")
	db, err := bolt.Open(dbPath, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("sessions"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "paygate.yaml")
	writeFile(t, cfgPath, `
clients: [{name: bot, key: k-audit}]
store: {path: "`+dbPath+`"}
providers: [{name: fake, base_url: "http://127.0.0.1:1/v1", api_key: x}]
models: [{name: m, targets: [{provider: fake, model: u}]}]
`)
	for _, args := range [][]string{
		{"verify", "-config", cfgPath},
		{"export", "-config", cfgPath},
	} {
		before, err := os.ReadFile(dbPath)
		if err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runAudit(args...)
		if code != 1 || !strings.Contains(errOut, "no paygate store") || strings.Contains(out, "audit chain ok") {
			t.Errorf("audit %s of another program's bbolt file: exit %d, stdout %q, stderr %q; want exit 1 saying it is no paygate store",
				args[0], code, out, errOut)
		}
		after, err := os.ReadFile(dbPath)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Errorf("audit %s wrote into another program's file", args[0])
		}
	}
}

// TestAuditRefusesAStoreWhoseChainBucketsWereDropped: a paygate file
// whose audit buckets were deleted (the whole chain with its head, in one
// edit) was taken for an earlier version's file, given empty buckets and
// verified as "audit chain ok: 0 records", exit 0.
func TestAuditRefusesAStoreWhoseChainBucketsWereDropped(t *testing.T) {
	f := newAuditFixture(t, "embedded")
	db, err := bolt.Open(f.dbPath, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{"audit", "audit_meta"} {
			if err := tx.DeleteBucket([]byte(b)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runAudit("verify", "-config", f.cfgPath)
	if code != 1 || strings.Contains(out, "audit chain ok") || !strings.Contains(errOut, `no bucket "audit"`) {
		t.Errorf("verify of a store without its chain's buckets: exit %d, stdout %q, stderr %q; want exit 1 naming the missing chain", code, out, errOut)
	}
}
