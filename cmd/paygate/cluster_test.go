package main

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// TestOpenStoreClusterSeed: a Redis Cluster reached through one address (a
// managed cluster's single endpoint) with store.redis.cluster goes through
// the config and openStore to a cluster client, which follows each key to
// its slot's node: as a single-node client it wrote only the slots of the
// seed, and every other write failed with MOVED.
func TestOpenStoreClusterSeed(t *testing.T) {
	srvs := redistest.StartCluster(t, 3)
	src := `
clients: [{name: bot, key: sk-paygate-test-0123456789}]
store:
  driver: redis
  redis:
    addrs: ["` + srvs[0].Addr() + `"]
    cluster: true
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
	// Ten orders hash to slots all over the three nodes.
	for i := range 10 {
		no := fmt.Sprintf("CL-%d", i)
		if err := st.CreateOrder(ctx, storetest.NewOrder(no, "bot", "u1", time.Now()), store.Event{ID: "cl-e" + no, Kind: "webhook"}); err != nil {
			t.Errorf("CreateOrder %s: %v", no, err)
			continue
		}
		if got, err := st.GetOrder(ctx, no); err != nil || got.OrderNo != no {
			t.Errorf("GetOrder %s: %+v, %v", no, got, err)
		}
	}
	if err := st.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}
