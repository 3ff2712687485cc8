package audit

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/store"
)

// TestWorkerSetAsideLogNamesKey: the warning about an outbox event set
// aside because it held back its key's audit events names that key, as
// written: the operator reads it to find the order whose audit records
// waited. Logged under the attribute "key", the redacting log handler
// masks it whatever it holds ("key" names a credential there), and the
// line said [REDACTED]. The event is named event_id, as the worker's other
// lines name it: under "event", which the notification's lines use for
// WeChat Pay's event type, a search for the event's id missed it.
func TestWorkerSetAsideLogNamesKey(t *testing.T) {
	st := newEnv(t, "embedded").store()
	enqueue(t, st, store.Event{ID: "evt_hook", Kind: "webhook", Key: "PG1", Payload: []byte(`{}`)})
	enqueue(t, st, mustEvent(t, Action{Name: "refund.succeeded", OrderNo: "PG1", User: "oA"}, ""))
	logs := &logtest.Buffer{}
	w := newTestWorker(t, st, func(o *WorkerOptions) {
		o.Logger = logging.New(logs, slog.LevelDebug, nil)
		o.SetAside = func(ctx context.Context, e store.Event) (bool, error) {
			if strings.HasPrefix(e.Key, "parked:") {
				return false, nil
			}
			cp := e
			cp.Key = "parked:" + e.Key
			if err := st.EnqueueEvents(ctx, cp); err != nil {
				return false, err
			}
			return true, st.AckEvent(ctx, e.Key, e.ID)
		}
	})
	if got := drainAll(t, w); got != 1 {
		t.Fatalf("drain: %d appended; want 1", got)
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if msg, _ := rec["msg"].(string); strings.HasPrefix(msg, "outbox event nothing here consumes set aside") {
			found = true
			if !strings.Contains(line, `"PG1"`) {
				t.Errorf("set-aside line does not name the key PG1: %s", line)
			}
			if rec["event_id"] != "evt_hook" {
				t.Errorf("set-aside line does not name the event as event_id evt_hook: %s", line)
			}
		}
	}
	if !found {
		t.Fatalf("no set-aside line: %s", logs.String())
	}
}
