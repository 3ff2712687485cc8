package audit

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/store"
)

// TestWorkerSaysTheChainWasCut: a worker that finds the chain's head
// behind records it read in the chain (records cut from the end, the head
// moved back) says so at once, at error level with the alert mark, naming
// both, before it appends on. A live cut is only possible on Redis (the
// embedded file is locked while paygate runs). Before, the worker forgot
// what it had read and appended on the cut chain in silence: the cut was
// found only by an auditor who verified against a head published earlier,
// and the running replicas, which had seen it happen, left no trace of it.
func TestWorkerSaysTheChainWasCut(t *testing.T) {
	e := newEnv(t, "redis")
	st := e.store()
	logs := &logtest.Buffer{}
	w := newTestWorker(t, st, func(o *WorkerOptions) { o.Logger = logging.New(logs, slog.LevelDebug, nil) })
	for i := 1; i <= 4; i++ {
		enqueue(t, st, mustEvent(t, Action{Time: time.Now(), Name: "order.created", Client: "shop-bot", User: "oAlice",
			OrderNo: fmt.Sprintf("PG%d", i), AmountFen: 4999}, ""))
	}
	if got := drainAll(t, w); got != 4 {
		t.Fatalf("drained %d; want 4", got)
	}
	recs := readAll(t, st)
	e.rawDelete(4)
	e.rawDelete(3)
	e.rawSetHead(store.AuditHead{Seq: 2, Hash: recs[1].Hash})
	if strings.Contains(logs.String(), "cut") {
		t.Fatalf("a cut reported before any: %s", logs.String())
	}
	enqueue(t, st, mustEvent(t, Action{Time: time.Now(), Name: "order.paid", Client: "shop-bot", User: "oAlice", OrderNo: "PG9", AmountFen: 4999}, ""))
	if got := drainAll(t, w); got != 1 {
		t.Fatalf("drained %d after the cut; want 1", got)
	}
	var found map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if msg, _ := rec["msg"].(string); strings.Contains(msg, "cut") {
			found = rec
		}
	}
	if found == nil {
		t.Fatalf("no line about the cut chain: %s", logs.String())
	}
	if found["level"] != "ERROR" || found["alert"] != true || found["head_seq"] != float64(2) || found["read_to_seq"] != float64(4) {
		t.Errorf("the cut's line: %v; want level ERROR, alert, head_seq 2, read_to_seq 4", found)
	}
}
