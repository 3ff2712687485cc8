package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestStoreDown: with the store unreachable, chat still works (without
// payment state), payment tools fail closed with a clear tool result, and
// /readyz says not ready.
func TestStoreDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there any more: every dial is refused

	up := newScriptedProvider(t, stateScript)
	src := `
clients: [{name: bot, key: ` + e2eClientKey + `}]
store: {driver: redis, redis: {addrs: ["` + dead + `"]}}
privacy: {hash_key: fixed-key-for-this-test}
providers:
  - {name: fake, base_url: "` + up.URL + `/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
`
	base, a := serveConfig(t, src, io.Discard)

	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d with the store down; want 503", resp.StatusCode)
	}

	ans := chatJSON(t, base, `{"model":"gpt-4o","messages":[{"role":"user","content":"hello"}]}`)
	if ans.Get("choices.0.message.content").Str != "Noted." {
		t.Errorf("chat without payment state: %s", ans.Raw)
	}
	chatJSON(t, base, `{"model":"gpt-4o","messages":[{"role":"user","content":"I want premium"}]}`)
	reqs := up.requests()
	last := reqs[len(reqs)-1]
	result := gjson.Get(last, `messages.#(role=="tool").content`).Str
	if !strings.Contains(result, `"status":"failed"`) || !strings.Contains(result, "temporarily unavailable") {
		t.Errorf("tool result with the store down: %q; want a clear fail-closed answer", result)
	}
	if a.sim.OrderCount() != 0 {
		t.Errorf("an order reached WeChat Pay with the store down")
	}
}
