package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/store/testdrivers"
)

func redisClient(t *testing.T) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: testdrivers.RedisAddr()})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestAuditLeavesRedisUnchanged: verify, verify -text and export -text
// read a deployment's Redis keys and change none of them, not a value nor
// an expiry, as they leave an embedded file byte for byte as it was. The
// store's open set the epoch marker where there was none (a chain written
// by a version before the marker, an evidence copy without it), and
// nothing kept a read path from writing.
func TestAuditLeavesRedisUnchanged(t *testing.T) {
	for _, c := range []struct {
		name   string
		before func(f *auditFixture, rc *goredis.Client)
	}{
		{name: "as written"},
		{name: "without an epoch marker", before: func(f *auditFixture, rc *goredis.Client) {
			if err := rc.Del(context.Background(), f.prefix+"{meta:epoch}").Err(); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newAuditFixture(t, "redis")
			rc := redisClient(t)
			// A record with a conversation text kept an hour: a key with
			// an expiry among the chain's.
			st := f.open()
			ctx := context.Background()
			turn := audit.TurnFromRequest("bot", "oAlice", []byte(`{"messages":[{"role":"user","content":"buy"}]}`), "fake", "u")
			ev, err := audit.ActionEvent(audit.Action{Name: "order.created", Client: "bot", User: "oAlice", OrderNo: "PG5", AmountFen: 4999}, turn)
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
			_ = st.Close()
			if c.before != nil {
				c.before(f, rc)
			}
			before := redistest.PrefixState(t, rc, f.prefix)
			if ttl := rc.PTTL(ctx, f.prefix+"{audit}:t:5").Val(); ttl <= 0 {
				t.Fatalf("the text's key has no expiry (%v): the check would miss one changed", ttl)
			}
			for _, args := range [][]string{
				{"verify", "-config", f.cfgPath},
				{"verify", "-config", f.cfgPath, "-text"},
				{"export", "-config", f.cfgPath, "-text"},
			} {
				code, out, errOut := runAudit(args...)
				if code != 0 {
					t.Fatalf("audit %s: exit %d: %s", strings.Join(args, " "), code, errOut)
				}
				if args[0] == "verify" && !strings.Contains(out, "audit chain ok: 5 records") {
					t.Errorf("audit %s: %q; want the chain's 5 records verified", strings.Join(args, " "), out)
				}
				if d := redistest.DiffState(before, redistest.PrefixState(t, rc, f.prefix)); len(d) > 0 {
					t.Errorf("audit %s changed the keys it read: %v", strings.Join(args, " "), d)
				}
			}
		})
	}
}

// TestAuditOfAnEmptyPlace: a key prefix (or database) where no paygate
// deployment ever was, as a mistyped store.redis.key_prefix names, was
// verified as an empty chain, "audit chain ok: 0 records", exit 0, and
// exported as nothing: the auditor was told all was well. It is now exit
// 1 naming the prefix and the settings to check, with nothing written
// there nor to -o FILE; a deployment that has started but made no money
// action yet still verifies as empty.
func TestAuditOfAnEmptyPlace(t *testing.T) {
	rc := redisClient(t)
	config := func(t *testing.T, redis string) string {
		p := filepath.Join(t.TempDir(), "paygate.yaml")
		writeFile(t, p, `
clients: [{name: bot, key: k-audit}]
store: {driver: redis, redis: {addrs: ["`+testdrivers.RedisAddr()+`"], `+redis+`}}
providers: [{name: fake, base_url: "http://127.0.0.1:1/v1", api_key: x}]
models: [{name: m, targets: [{provider: fake, model: u}]}]
`)
		return p
	}

	t.Run("nothing there", func(t *testing.T) {
		f := newAuditFixture(t, "redis") // a deployment, under another prefix
		mistyped := testdrivers.NewPlace(t, "redis", nil).Prefix
		for _, c := range []struct {
			name, redis, names string
		}{
			{name: "mistyped key_prefix", redis: `key_prefix: "` + mistyped + `"`, names: `"` + mistyped + `"`},
			{name: "wrong db", redis: `key_prefix: "` + f.prefix + `", db: 3`, names: "db 3"},
		} {
			t.Run(c.name, func(t *testing.T) {
				cfg := config(t, c.redis)
				out := filepath.Join(t.TempDir(), "chain.jsonl")
				for _, args := range [][]string{
					{"verify", "-config", cfg},
					{"verify", "-config", cfg, "-text"},
					{"export", "-config", cfg, "-o", out},
				} {
					code, stdout, errOut := runAudit(args...)
					if code != 1 || stdout != "" || !strings.Contains(errOut, c.names) ||
						!strings.Contains(errOut, "store.redis.key_prefix") || !strings.Contains(errOut, cfg) {
						t.Errorf("audit %s: exit %d, stdout %q, stderr %q; want exit 1 naming %s, the setting and %s",
							strings.Join(args, " "), code, stdout, errOut, c.names, cfg)
					}
				}
				if _, err := os.Stat(out); !os.IsNotExist(err) {
					t.Errorf("export -o of an empty place: %s is there (%v)", out, err)
				}
			})
		}
		if got := redistest.PrefixState(t, rc, mistyped); len(got) > 0 {
			t.Errorf("audit left keys under the mistyped prefix: %v", redistest.DiffState(nil, got))
		}
		db3 := goredis.NewClient(&goredis.Options{Addr: testdrivers.RedisAddr(), DB: 3})
		defer db3.Close()
		if got := redistest.PrefixState(t, db3, f.prefix); len(got) > 0 {
			t.Errorf("audit left keys in the mistyped db: %v", redistest.DiffState(nil, got))
			for k := range got {
				db3.Del(context.Background(), k) // the shared Redis's db 3 is no test's
			}
		}
		st := f.open()
		defer st.Close()
		if h, err := st.AuditHead(context.Background()); err != nil || h.Seq != 4 {
			t.Errorf("the deployment's chain: head %+v, %v; want it as it was", h, err)
		}
	})

	t.Run("a deployment before its first money action", func(t *testing.T) {
		p := testdrivers.NewPlace(t, "redis", nil)
		cfgPath := config(t, `key_prefix: "`+p.Prefix+`"`)
		cfg, err := loadConfig(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		// Opened as `paygate serve` opens it, and closed.
		st, err := openStore(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		_ = st.Close()
		code, out, errOut := runAudit("verify", "-config", cfgPath)
		if code != 0 || !strings.Contains(out, "audit chain ok: 0 records") {
			t.Errorf("verify: exit %d, stdout %q, stderr %q; want an empty chain verified", code, out, errOut)
		}
		code, out, errOut = runAudit("export", "-config", cfgPath)
		if code != 0 || out != "" {
			t.Errorf("export: exit %d, stdout %q, stderr %q; want nothing exported, exit 0", code, out, errOut)
		}
	})
}
