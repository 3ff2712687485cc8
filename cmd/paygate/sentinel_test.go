package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// TestOpenStoreSentinel: store.redis in sentinel mode as the README has it
// written (master_name, the sentinels in addrs, the password of the master
// and its replicas, wait_replicas) goes through the config and openStore,
// which serve and audit use, to a store on the master the sentinel names
// whose money writes wait for the replica.
func TestOpenStoreSentinel(t *testing.T) {
	const password = "sentinel-test-pw"
	set := redistest.StartSentinelAuth(t, password)
	pwFile := filepath.Join(t.TempDir(), "redis_password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := `
clients: [{name: bot, key: sk-paygate-test-0123456789}]
store:
  driver: redis
  redis:
    master_name: ` + set.Name + `
    addrs: ["` + set.Addrs()[0] + `"]
    password_file: ` + pwFile + `
    wait_replicas: 1
providers: [{name: fake, base_url: "http://127.0.0.1:1/v1", api_key: x}]
models: [{name: m, targets: [{provider: fake, model: u}]}]
`
	cfg, err := config.Parse([]byte(src), "paygate.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	st, err := openStore(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("openStore: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	o := storetest.NewOrder("SN-1", "bot", "u1", time.Now())
	if err := st.CreateOrder(ctx, o, store.Event{ID: "sn-e1", Kind: "webhook"}); err != nil {
		t.Fatalf("CreateOrder: %v", err)
	}
	if got, err := st.GetOrder(ctx, "SN-1"); err != nil || got.OrderNo != "SN-1" {
		t.Fatalf("GetOrder: %+v, %v", got, err)
	}
	// The default key_prefix, on the master and, the write acknowledged, on
	// its replica: the sentinel was asked, not written to.
	key := cfg.Store.Redis.KeyPrefix + "{o:SN-1}:rec"
	for _, srv := range []struct {
		name string
		s    *redistest.Server
	}{{"master", set.Master}, {"replica", set.Replica}} {
		if n, err := srv.s.Client().Exists(ctx, key).Result(); err != nil || n != 1 {
			t.Errorf("%s: %s exists %d, %v; want the order there", srv.name, key, n, err)
		}
	}
}
