package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paygate/paygate/logging/logtest"
)

// TestPurchaseLogLinesCarryRequestID: the lines a purchase turn writes
// below the handler (the payment tool's, the order's creation and its
// transitions, written by code that knows no request) carry the
// X-Request-Id the bot was answered with, so an operator finds every line
// of the turn that created an order.
func TestPurchaseLogLinesCarryRequestID(t *testing.T) {
	up := newScriptedProvider(t, purchaseScript)
	logs := &logtest.Buffer{}
	src := `
clients: [{name: bot, key: ` + e2eClientKey + `}]
store: {path: "` + filepath.Join(t.TempDir(), "paygate.db") + `"}
providers:
  - {name: fake, base_url: "` + up.URL + `/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
`
	url, a := serveConfig(t, src, logs)
	resp := postAs(t, url, e2eClientKey, testOpenID, `{"model":"gpt-4o","messages":[{"role":"user","content":"premium please"}]}`)
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	if resp.StatusCode != 200 || id == "" {
		t.Fatalf("%d, X-Request-Id %q", resp.StatusCode, id)
	}
	no := lastOrderNo(t, a.sim)
	var created bool
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		ours := rec["order_no"] == no && rec["component"] != "webhook" && rec["component"] != "audit"
		if !ours && rec["component"] != "tools" && rec["component"] != "accounting" {
			continue // background work: the relay, the audit worker, the head
		}
		created = created || rec["msg"] == "order created"
		if rec["request_id"] != id {
			t.Errorf("a line of the turn (order %s) without its request id %s: %s", no, id, line)
		}
	}
	if !created {
		t.Errorf("no order created line for %s", no)
	}
}
