package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/store"
	redisstore "github.com/paygate/paygate/store/redis"
	"github.com/paygate/paygate/store/testdrivers"
)

// auditFixture is a config file and a store holding a four-record chain.
type auditFixture struct {
	t       *testing.T
	driver  string
	cfgPath string
	dbPath  string
	prefix  string
	place   *testdrivers.Place
	hashes  []string
}

func (f *auditFixture) open() store.Store {
	f.t.Helper()
	return f.place.Open()
}

func newAuditFixture(t *testing.T, driver string) *auditFixture {
	t.Helper()
	p := testdrivers.NewPlace(t, driver, nil)
	f := &auditFixture{t: t, driver: driver, cfgPath: filepath.Join(t.TempDir(), "paygate.yaml"), dbPath: p.Path, prefix: p.Prefix, place: p}
	storeYAML := `store: {path: "` + f.dbPath + `"}`
	if driver == "redis" {
		storeYAML = `store: {driver: redis, redis: {addrs: ["` + testdrivers.RedisAddr() + `"], key_prefix: "` + f.prefix + `"}}`
	}
	writeFile(t, f.cfgPath, `
clients: [{name: bot, key: k-audit}]
`+storeYAML+`
providers: [{name: fake, base_url: "http://127.0.0.1:1/v1", api_key: x}]
models: [{name: m, targets: [{provider: fake, model: u}]}]
`)
	st := f.open()
	defer st.Close()
	ctx := context.Background()
	for i := 1; i <= 4; i++ {
		ev, err := audit.ActionEvent(audit.Action{Name: "order.created", Client: "bot", User: "oAlice",
			OrderNo: fmt.Sprintf("PG%d", i), AmountFen: 4999, Currency: "CNY"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.EnqueueEvents(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	w, err := audit.NewWorker(audit.WorkerOptions{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := w.Drain(ctx); err != nil || n != 4 {
		t.Fatalf("drain: %d %v", n, err)
	}
	recs, err := st.ReadAudit(ctx, 1, 10)
	if err != nil || len(recs) != 4 {
		t.Fatalf("read: %d %v", len(recs), err)
	}
	for _, r := range recs {
		f.hashes = append(f.hashes, r.Hash)
	}
	return f
}

// edit changes the stored chain directly, as someone with access to the file
// or to Redis could: put (rec at pos), delete pos, or set the head.
func (f *auditFixture) edit(put map[uint64]store.AuditRecord, del []uint64, head *store.AuditHead) {
	f.t.Helper()
	if f.driver == "embedded" {
		db, err := bolt.Open(f.dbPath, 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			f.t.Fatal(err)
		}
		defer db.Close()
		err = db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte("audit"))
			for pos, r := range put {
				v, _ := json.Marshal(r)
				if err := b.Put(binary.BigEndian.AppendUint64(nil, pos), v); err != nil {
					return err
				}
			}
			for _, pos := range del {
				if err := b.Delete(binary.BigEndian.AppendUint64(nil, pos)); err != nil {
					return err
				}
			}
			if head != nil {
				v, _ := json.Marshal(head)
				return tx.Bucket([]byte("audit_meta")).Put([]byte("head"), v)
			}
			return nil
		})
		if err != nil {
			f.t.Fatal(err)
		}
		return
	}
	st := f.open().(*redisstore.Store)
	defer st.Close()
	c, ctx := st.Client(), context.Background()
	for pos, r := range put {
		v, _ := json.Marshal(r)
		c.HSet(ctx, f.prefix+"{audit}:rec", strconv.FormatUint(pos, 10), v)
	}
	for _, pos := range del {
		c.HDel(ctx, f.prefix+"{audit}:rec", strconv.FormatUint(pos, 10))
	}
	if head != nil {
		c.HSet(ctx, f.prefix+"{audit}:head", "seq", strconv.FormatUint(head.Seq, 10), "hash", head.Hash)
	}
}

func (f *auditFixture) record(seq uint64) store.AuditRecord {
	f.t.Helper()
	st := f.open()
	defer st.Close()
	recs, err := st.ReadAudit(context.Background(), seq, 1)
	if err != nil || len(recs) != 1 {
		f.t.Fatalf("read %d: %v", seq, err)
	}
	return recs[0]
}

func runAudit(args ...string) (int, string, string) {
	var out, errb strings.Builder
	code := run(append([]string{"audit"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestAuditVerifyCommand(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			cases := []struct {
				name     string
				tamper   func(f *auditFixture)
				head     func(f *auditFixture) string
				code     int
				contains string
			}{
				{name: "intact", code: 0, contains: "audit chain ok: 4 records, head 4:"},
				{name: "intact with published head", head: func(f *auditFixture) string { return "4:" + f.hashes[3] }, code: 0, contains: "is on the chain"},
				{name: "body edited", code: 1, contains: "broken at record 2: its hash does not match its body", tamper: func(f *auditFixture) {
					r := f.record(2)
					r.Body = []byte(strings.Replace(string(r.Body), `"amount_fen":4999`, `"amount_fen":1`, 1))
					f.edit(map[uint64]store.AuditRecord{2: r}, nil, nil)
				}},
				{name: "record deleted", code: 1, contains: "broken at record 3", tamper: func(f *auditFixture) {
					f.edit(nil, []uint64{3}, nil)
				}},
				{name: "records swapped", code: 1, contains: "broken at record 2", tamper: func(f *auditFixture) {
					a, b := f.record(2), f.record(3)
					f.edit(map[uint64]store.AuditRecord{2: b, 3: a}, nil, nil)
				}},
				{name: "cut from the end, published head given", code: 1, contains: "broken at record 4: missing: the chain ends at record 3 but the published head is record 4",
					head: func(f *auditFixture) string { return "4:" + f.hashes[3] },
					tamper: func(f *auditFixture) {
						f.edit(nil, []uint64{4}, &store.AuditHead{Seq: 3, Hash: f.hashes[2]})
					}},
				// Said "(4 records before it verified)" of record 4, the
				// head's record, verified with the 3 before it.
				{name: "store head's hash edited", code: 1, contains: "broken at record 4: its hash differs from the store's head hash (4 records verified)", tamper: func(f *auditFixture) {
					f.edit(nil, nil, &store.AuditHead{Seq: 4, Hash: f.hashes[2]})
				}},
				{name: "malformed head flag", head: func(*auditFixture) string { return "four" }, code: 2, contains: "SEQ:HASH"},
				// Verified without the head, exit 0: a script's
				// --head "$HEAD" whose fetch of the head came back empty
				// took that for the head found on the chain.
				{name: "empty head flag", head: func(*auditFixture) string { return "" }, code: 2, contains: "SEQ:HASH"},
				{name: "blank head flag", head: func(*auditFixture) string { return " " }, code: 2, contains: "SEQ:HASH"},
				// Said "published head 0:… is on the chain" of any hash: no
				// record 0 is there to compare it with.
				{name: "head 0 with a hash", head: func(f *auditFixture) string { return "0:" + f.hashes[3] }, code: 2, contains: "record 0"},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					f := newAuditFixture(t, driver)
					if c.tamper != nil {
						c.tamper(f)
					}
					args := []string{"verify", "-config", f.cfgPath}
					if c.head != nil {
						args = append(args, "--head", c.head(f))
					}
					code, out, errOut := runAudit(args...)
					if code != c.code || !strings.Contains(out+errOut, c.contains) {
						t.Errorf("exit %d, stdout %q, stderr %q; want %d containing %q", code, out, errOut, c.code, c.contains)
					}
				})
			}
		})
	}
}

func TestAuditExportCommand(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			f := newAuditFixture(t, driver)
			out := filepath.Join(t.TempDir(), "audit.jsonl")
			code, _, errOut := runAudit("export", "-config", f.cfgPath, "-o", out)
			if code != 0 || !strings.Contains(errOut, "exported 4 records") {
				t.Fatalf("export: exit %d %q", code, errOut)
			}
			file, err := os.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer file.Close()
			sc := bufio.NewScanner(file)
			n := 0
			for sc.Scan() {
				var e audit.Entry
				if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
					t.Fatalf("line %d: %v", n+1, err)
				}
				if e.Seq != uint64(n+1) || e.Hash != f.hashes[n] || audit.Hash(e.Body) != e.Hash {
					t.Errorf("line %d: seq %d hash %s body hash %s; want %s", n+1, e.Seq, e.Hash, audit.Hash(e.Body), f.hashes[n])
				}
				n++
			}
			if n != 4 {
				t.Errorf("lines: %d; want 4", n)
			}
			code, stdout, _ := runAudit("export", "-config", f.cfgPath, "-from", "3")
			if code != 0 || strings.Count(stdout, "\n") != 2 || !strings.HasPrefix(stdout, `{"seq":3,`) {
				t.Errorf("export -from 3 to stdout: exit %d %q", code, stdout)
			}
		})
	}
}

// TestAuditVerifyWhileServing: the embedded file is locked by the running
// process; verify says so after the lock timeout instead of hanging.
func TestAuditVerifyWhileServing(t *testing.T) {
	f := newAuditFixture(t, "embedded")
	held := f.open()
	defer held.Close()
	start := time.Now()
	code, _, errOut := runAudit("verify", "-config", f.cfgPath)
	if code != 1 || !strings.Contains(errOut, "in use by a running paygate") {
		t.Errorf("exit %d %q; want 1 and the file named as in use", code, errOut)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("verify took %s against a locked file", d)
	}
}

func TestAuditVerifyMissingStore(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	writeFile(t, cfg, `
clients: [{name: bot, key: k}]
store: {path: "`+filepath.Join(dir, "nope.db")+`"}
providers: [{name: fake, base_url: "http://127.0.0.1:1/v1", api_key: x}]
models: [{name: m, targets: [{provider: fake, model: u}]}]
`)
	code, _, errOut := runAudit("verify", "-config", cfg)
	if code != 1 || !strings.Contains(errOut, "no store file") {
		t.Errorf("exit %d %q; want 1 and no store file", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "nope.db")); !os.IsNotExist(err) {
		t.Errorf("verify created the store file: %v", err)
	}
}

// TestAuditVerifyEmptyStoreFile: a store file of no bytes (touched, or
// created by a start that died before its first write) holds no chain and
// no deployment; read-only, the open tried to write one and verify said
// "embedded: open …: write …: bad file descriptor", which reads as a
// broken disk or a bug, not as the wrong file.
func TestAuditVerifyEmptyStoreFile(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "empty.db")
	writeFile(t, db, "")
	cfg := filepath.Join(dir, "c.yaml")
	writeFile(t, cfg, `
clients: [{name: bot, key: k}]
store: {path: "`+db+`"}
providers: [{name: fake, base_url: "http://127.0.0.1:1/v1", api_key: x}]
models: [{name: m, targets: [{provider: fake, model: u}]}]
`)
	for _, cmd := range []string{"verify", "export"} {
		code, out, errOut := runAudit(cmd, "-config", cfg)
		if code != 1 || out != "" || !strings.Contains(errOut, db+" is empty") || strings.Contains(errOut, "bad file descriptor") {
			t.Errorf("audit %s: exit %d, stdout %q, stderr %q; want 1 and %s is empty", cmd, code, out, errOut, db)
		}
	}
	if fi, err := os.Stat(db); err != nil || fi.Size() != 0 {
		t.Errorf("the empty file was changed: %v %v", fi, err)
	}
}

// TestAuditingWithWebhooksOff: a webhook event left in an order's outbox by
// a run with webhooks on does not hold back that order's audit events once
// paygate runs with webhooks off: it is set aside, kept in its order's
// delivery queue for a relay, never dropped. One that a live relay on
// another replica may still take (committed moments ago) is left alone.
func TestAuditingWithWebhooksOff(t *testing.T) {
	ctx := context.Background()
	cfg, err := config.Parse([]byte(`clients: [{name: bot, key: sk-paygate-test-0123456789}]`), "t.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	st := testdrivers.Open(t, "embedded", nil)
	ev, err := audit.ActionEvent(audit.Action{Name: "refund.succeeded", OrderNo: "PG1", User: "oA"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hook := store.Event{ID: "evt_hook", Kind: "webhook", Key: "PG1", Payload: []byte(`{}`), CreatedAt: time.Now().Add(-time.Hour)}
	if err := st.EnqueueEvents(ctx, hook, ev); err != nil {
		t.Fatal(err)
	}
	fresh, err := audit.ActionEvent(audit.Action{Name: "order.paid", OrderNo: "PG2", User: "oA"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	live := store.Event{ID: "evt_live", Kind: "webhook", Key: "PG2", Payload: []byte(`{}`), CreatedAt: time.Now()}
	if err := st.EnqueueEvents(ctx, live, fresh); err != nil {
		t.Fatal(err)
	}
	au, err := newAuditing(cfg, st, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := au.worker.Drain(ctx); err != nil || n != 1 {
		t.Fatalf("drain: %d appended, %v; want 1", n, err)
	}
	if res, err := audit.Verify(ctx, st, audit.VerifyOptions{}); err != nil || res.Records != 1 {
		t.Errorf("chain: %+v, %v; want one record", res, err)
	}
	due, err := st.DueEvents(ctx, time.Now(), 10)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range due {
		got[e.ID] = e.Key
	}
	if len(due) != 2 || got["evt_hook"] != "webhook:PG1" || got["evt_live"] != "PG2" {
		t.Errorf("due after drain: %v; want evt_hook kept in PG1's delivery queue, evt_live left on PG2's", got)
	}
}

// TestAuditVerifyTextRemovedWithoutErasure: `audit verify -text` reported a
// conversation text deleted from the store as "erased or expired". It now
// fails on it, judging expiry by the config's audit.retain_text: with
// retain_text 0 no text was kept, and a missing one is no finding.
func TestAuditVerifyTextRemovedWithoutErasure(t *testing.T) {
	cases := []struct {
		name, audit string
		code        int
		contains    string
	}{
		{name: "default retain_text", code: 1, contains: "broken at record 1: its conversation text is missing, though no erasure of its client's user is recorded in the chain and audit.retain_text (4320h0m0s)"},
		// Said "(1 records before it verified)" of record 1: the chain was
		// walked whole, its one record verified, the text found missing
		// after the walk.
		{name: "the chain verified whole", code: 1, contains: "text removed without erasure (the chain itself verified: 1 records, head 1:"},
		{name: "retain_text from the config", audit: "audit: {retain_text: 2h}", code: 1, contains: "audit.retain_text (2h0m0s)"},
		{name: "retain_text 0 kept none", audit: "audit: {retain_text: 0s}", code: 0, contains: "texts: 0 match their hashes, 1 erased or expired"},
	}
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					p := testdrivers.NewPlace(t, driver, nil)
					storeYAML := `store: {path: "` + p.Path + `"}`
					if driver == "redis" {
						storeYAML = `store: {driver: redis, redis: {addrs: ["` + testdrivers.RedisAddr() + `"], key_prefix: "` + p.Prefix + `"}}`
					}
					cfgPath := filepath.Join(t.TempDir(), "paygate.yaml")
					writeFile(t, cfgPath, "clients: [{name: bot, key: k-audit}]\n"+storeYAML+"\n"+c.audit+`
providers: [{name: fake, base_url: "http://127.0.0.1:1/v1", api_key: x}]
models: [{name: m, targets: [{provider: fake, model: u}]}]
`)
					ctx := context.Background()
					st := p.Open()
					turn := audit.TurnFromRequest("bot", "oAlice", []byte(`{"messages":[{"role":"user","content":"buy"}]}`), "fake", "u")
					ev, err := audit.ActionEvent(audit.Action{Name: "order.created", Client: "bot", User: "oAlice", OrderNo: "PG1", AmountFen: 4999}, turn)
					if err != nil {
						t.Fatal(err)
					}
					if err := st.EnqueueEvents(ctx, ev); err != nil {
						t.Fatal(err)
					}
					w, err := audit.NewWorker(audit.WorkerOptions{Store: st, RetainText: time.Hour})
					if err != nil {
						t.Fatal(err)
					}
					if n, err := w.Drain(ctx); err != nil || n != 1 {
						t.Fatalf("drain: %d %v", n, err)
					}
					if _, err := st.GetAuditText(ctx, 1); err != nil {
						t.Fatalf("text kept: %v", err)
					}
					// Deleted as someone with access to the file or to Redis
					// could, without an erasure.
					if driver == "redis" {
						if err := st.(*redisstore.Store).Client().Del(ctx, p.Prefix+"{audit}:t:1").Err(); err != nil {
							t.Fatal(err)
						}
						st.Close()
					} else {
						st.Close()
						db, err := bolt.Open(p.Path, 0o600, &bolt.Options{Timeout: time.Second})
						if err != nil {
							t.Fatal(err)
						}
						err = db.Update(func(tx *bolt.Tx) error {
							return tx.Bucket([]byte("audit_text")).Delete(binary.BigEndian.AppendUint64(nil, 1))
						})
						db.Close()
						if err != nil {
							t.Fatal(err)
						}
					}
					code, out, errOut := runAudit("verify", "-text", "-config", cfgPath)
					if code != c.code || !strings.Contains(out+errOut, c.contains) {
						t.Errorf("exit %d, stdout %q, stderr %q; want %d containing %q", code, out, errOut, c.code, c.contains)
					}
				})
			}
		})
	}
}

// TestAuditRefusesStrayArguments: like check-config and serve, audit verify
// and export refuse an argument left after their flags. The flag package
// stops at the first argument, so `paygate audit verify prod.yaml --head
// SEQ:HASH` would verify ./config.yaml's store and ignore --head as well:
// a chain cut from the end would be reported "audit chain ok", exit 0.
func TestAuditRefusesStrayArguments(t *testing.T) {
	local := newAuditFixture(t, "embedded") // what ./config.yaml names: intact
	prod := newAuditFixture(t, "embedded")  // what the operator meant: record 4 cut
	prod.edit(nil, []uint64{4}, &store.AuditHead{Seq: 3, Hash: prod.hashes[2]})
	published := "4:" + prod.hashes[3]
	if code, _, errOut := runAudit("verify", "-config", prod.cfgPath, "--head", published); code != 1 {
		t.Fatalf("control: verify -config prod --head: exit %d %q; want 1 (cut from the end)", code, errOut)
	}
	data, err := os.ReadFile(local.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "config.yaml"), string(data))
	t.Chdir(dir)
	for _, args := range [][]string{
		{"verify", prod.cfgPath, "--head", published},
		{"verify", "-text", prod.cfgPath},
		{"export", prod.cfgPath},
		{"export", "-from", "2", prod.cfgPath},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errOut := runAudit(args...)
			want := `paygate audit ` + args[0] + `: unexpected argument "` + prod.cfgPath + `": give the config file with -config FILE`
			if code != 2 || !strings.Contains(errOut, want) || out != "" {
				first, _, _ := strings.Cut(out, "\n")
				t.Errorf("exit %d, stdout %q…, stderr %q; want exit 2, nothing on stdout, stderr %q", code, first, errOut, want)
			}
		})
	}
}

// TestAuditTrustMarksNeedsText: -trust-marks changes how -text reads the
// texts; without -text no text is checked, and `audit verify -trust-marks`
// answered "audit chain ok" as if the texts had been, the flag ignored.
func TestAuditTrustMarksNeedsText(t *testing.T) {
	f := newAuditFixture(t, "embedded")
	code, out, errOut := runAudit("verify", "-config", f.cfgPath, "-trust-marks")
	if code != 2 || out != "" || !strings.Contains(errOut, "-trust-marks") || !strings.Contains(errOut, "-text") {
		t.Errorf("verify -trust-marks: exit %d, stdout %q, stderr %q; want exit 2 saying it needs -text", code, out, errOut)
	}
	if code, out, errOut := runAudit("verify", "-config", f.cfgPath, "-text", "-trust-marks"); code != 0 || !strings.Contains(out, "texts:") {
		t.Errorf("verify -text -trust-marks: exit %d, stdout %q, stderr %q; want the texts checked", code, out, errOut)
	}
}
