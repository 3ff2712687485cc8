package audit

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
)

// oldEvent is an order.created payload as an earlier version enqueued it,
// with params as given (JSON).
func oldEvent(params string) []byte {
	text := base64.StdEncoding.EncodeToString([]byte(`[{"role":"user","content":"buy"}]`))
	return []byte(`{"action":{"time":"` + time.Now().UTC().Format(time.RFC3339Nano) + `","action":"order.created","cause":"create","client":"shop-bot",` +
		`"user":"oAlice","order_no":"PG0001","status":"creating","sku":"premium-monthly","quantity":1,"amount_fen":4999,"currency":"CNY",` +
		`"provider":"openrouter","model":"openai/gpt-4o","params":` + params + `},"text":"` + text + `"}`)
}

// TestWorkerRecordsUndecodableEventWithoutParams: an event an earlier
// version enqueued with such a parameter (gjson's Value() of it, too deep for
// encoding/json) is still in the outbox after an upgrade, holding its order's
// queue. The worker records its action with the params marked unencodable
// (read with gjson, which has no depth limit), as the fixed enqueue does,
// and the order's queue moves on.
func TestWorkerRecordsUndecodableEventWithoutParams(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			st := e.store()
			payload := oldEvent(`{"temperature":0.7,"thinking":{"x":` + nested(10001) + `}}`)
			if _, err := decodePayload(payload); err == nil {
				t.Fatal("the payload must not decode")
			}
			enqueue(t, st,
				store.Event{Kind: KindAudit, Key: "PG0001", Payload: payload},
				store.Event{Kind: "webhook", Key: "PG0001", Payload: []byte(`{"type":"order.paid"}`)})
			wantOrderQueueFlows(t, st, newTestWorker(t, st, nil), func(params map[string]any) string {
				if s, _ := params["unencodable"].(string); !strings.Contains(s, "depth") || len(params) != 1 {
					return "want the params replaced by unencodable, naming the depth"
				}
				return ""
			})
		})
	}
}

// TestWorkerRecordsUnsealableEventWithoutParams: the same for an event an
// earlier version enqueued with a number the canonical form cannot carry
// (seed 1e400): it decodes, but its record could never be sealed.
func TestWorkerRecordsUnsealableEventWithoutParams(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			st := e.store()
			enqueue(t, st,
				store.Event{Kind: KindAudit, Key: "PG0001", Payload: oldEvent(`{"seed":1e400}`)},
				store.Event{Kind: "webhook", Key: "PG0001", Payload: []byte(`{"type":"order.paid"}`)})
			wantOrderQueueFlows(t, st, newTestWorker(t, st, nil), func(params map[string]any) string {
				if s, _ := params["unencodable"].(string); !strings.Contains(s, "1e400") || len(params) != 1 {
					return "want the params replaced by unencodable, naming the number"
				}
				return ""
			})
		})
	}
}
