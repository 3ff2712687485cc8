package redis

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/store"
)

// TestAddTalliesLoadsItsScript: AddTallies sends its adds as EVALSHA in one
// pipeline, which go-redis does not fall back to EVAL for. On a server that
// has not seen the script (a fresh one, a restart, a Sentinel failover, a
// SCRIPT FLUSH) the batch loads it and is sent again: every add made once.
func TestAddTalliesLoadsItsScript(t *testing.T) {
	srv := redistest.StartServer(t)
	st := openOn(t, nil, Options{Addrs: []string{srv.Addr()}, EpochInterval: -1})
	ctx := context.Background()
	adds := []store.TallyAdd{{Key: "a", Delta: 2}, {Key: "b", Delta: 3}, {Key: "a", Delta: 4}}
	for round := range 2 {
		if err := srv.Client().ScriptFlush(ctx).Err(); err != nil {
			t.Fatalf("SCRIPT FLUSH: %v", err)
		}
		if err := st.AddTallies(ctx, adds, time.Hour); err != nil {
			t.Fatalf("round %d: AddTallies on a server without the script: %v", round, err)
		}
	}
	for key, want := range map[string]int64{"a": 12, "b": 6} {
		if got, err := st.TakeTally(ctx, key); err != nil || got != want {
			t.Errorf("%s: took %d, %v; want %d (each add made once per batch)", key, got, err, want)
		}
	}
}
