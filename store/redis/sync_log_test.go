package redis

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/store/storetest"
)

// TestDeferredSyncLinesCarryTheRequest: a write whose money step commits
// and whose syncs then fail (its connection cut right after) is logged as
// deferred to repair. The write runs for a request (a payment tool's order,
// a refund proposal), so the line carries that request's id from the
// context, as every other line of the request does, and names an order by
// order_no, as every other line about an order does: without them an
// operator cannot tie the store's trouble to the bot's report of it.
func TestDeferredSyncLinesCarryTheRequest(t *testing.T) {
	requireSharedRedis(t)
	const id = "req_store_sync_1"
	for _, rw := range raceWrites() {
		t.Run(rw.name, func(t *testing.T) {
			logs := &logtest.Buffer{}
			clock := storetest.NewClock()
			w := openOn(t, clock, Options{Addrs: []string{sharedAddr}, Logger: logging.New(logs, slog.LevelDebug, nil)})
			ctx := context.Background()
			if rw.setup != nil {
				if err := rw.setup(ctx, w, clock); err != nil {
					t.Fatalf("setup: %v", err)
				}
			}
			h := &writerHook{money: rw.money(w.sc).Hash(), syncs: []string{w.sc.syncUser.Hash(), w.sc.syncIndex.Hash()}}
			w.Client().AddHook(h)
			if err := rw.write(logging.WithRequestID(ctx, id), w, clock); err != nil {
				t.Fatalf("write: %v", err)
			}
			if !h.dead.Load() {
				t.Fatal("the hook did not see the money step")
			}
			found := false
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("log line %q: %v", line, err)
				}
				if !strings.Contains(rec["msg"].(string), "deferred to repair") {
					continue
				}
				found = true
				if rec["request_id"] != id {
					t.Errorf("request_id %v; want %q: %s", rec["request_id"], id, line)
				}
				if _, ok := rec["order"]; ok || rw.order != "" && rec["order_no"] != "RR-1" && rec["member"] != "RR-1" {
					t.Errorf("the order not named by order_no (or the synced member): %s", line)
				}
			}
			if !found {
				t.Fatalf("no deferred to repair line: %s", logs.String())
			}
		})
	}
}
