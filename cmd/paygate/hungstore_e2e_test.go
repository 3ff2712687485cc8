package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
)

// blackhole accepts connections and reads what is sent, never answering: a
// Redis that hangs (a paused process, a stalled host, a path that drops
// packets) rather than one that is down (TestStoreDown).
func blackhole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	return ln.Addr().String()
}

// TestHungStore: with a store that accepts connections and never answers,
// /readyz says not ready within its own 2s deadline, chat goes on without
// payment state after the turn's state deadline, and a payment tool fails
// closed with a clear tool result; none waits for go-redis's own read
// timeout once per call (before: /readyz 5.0s, a plain turn 5.0s).
func TestHungStore(t *testing.T) {
	addr := blackhole(t)
	up := newScriptedProvider(t, stateScript)
	src := `
clients: [{name: bot, key: ` + e2eClientKey + `}]
store: {driver: redis, redis: {addrs: ["` + addr + `"]}}
privacy: {hash_key: fixed-key-for-this-test}
providers: [{name: fake, base_url: "` + up.URL + `/v1", api_key: sk-upstream-secret}]
models: [{name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}]
payments:
  catalog: [{sku: premium-monthly, name: "Premium", price: "49.99", max_quantity: 12}]
`
	base, a := serveConfig(t, src, io.Discard)

	start := time.Now()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	took := time.Since(start)
	t.Logf("/readyz: %d after %v", resp.StatusCode, took.Round(time.Millisecond))
	if resp.StatusCode != http.StatusServiceUnavailable || took > 3*time.Second {
		t.Errorf("/readyz with a hung store: %d after %v; want 503 within its 2s deadline", resp.StatusCode, took.Round(time.Millisecond))
	}

	start = time.Now()
	ans := chatJSON(t, base, `{"model":"gpt-4o","messages":[{"role":"user","content":"hello"}]}`)
	took = time.Since(start)
	t.Logf("plain turn: %v", took.Round(time.Millisecond))
	if ans.Get("choices.0.message.content").Str != "Noted." {
		t.Errorf("chat without payment state: %s", ans.Raw)
	}
	if took > 3*time.Second {
		t.Errorf("a plain turn with a hung store took %v; want about the state deadline (1s)", took.Round(time.Millisecond))
	}

	// The purchase: its payment call waits on the store by the driver's
	// read timeout (3s); a blackhole that never completes the handshake
	// fails the connection, which go-redis does not send the command on
	// again (a reply that timed out on a live connection it does: README).
	start = time.Now()
	chatJSON(t, base, `{"model":"gpt-4o","messages":[{"role":"user","content":"I want premium"}]}`)
	took = time.Since(start)
	t.Logf("purchase turn: %v", took.Round(time.Millisecond))
	if took > 7*time.Second {
		t.Errorf("a purchase turn with a hung store took %v; want the state deadline and one read timeout", took.Round(time.Millisecond))
	}
	reqs := up.requests()
	result := gjson.Get(reqs[len(reqs)-1], `messages.#(role=="tool").content`).Str
	if !strings.Contains(result, `"status":"failed"`) || !strings.Contains(result, "temporarily unavailable") {
		t.Errorf("tool result with a hung store: %q; want a clear fail-closed answer", result)
	}
	if a.sim.OrderCount() != 0 {
		t.Errorf("an order reached WeChat Pay with a hung store")
	}
}

// TestShutdownWithHungStore: SIGTERM on an idle server whose store hangs
// exits within shutdown_timeout: the sweeper, the audit worker, the webhook
// relay and the ledger, each waiting on the store, are not waited for one
// after the other past it (before: 15.3s with shutdown_timeout 10s).
func TestShutdownWithHungStore(t *testing.T) {
	addr := blackhole(t)
	src := `
server: {listen: "127.0.0.1:0", admin_listen: "off", shutdown_timeout: 2s}
clients: [{name: bot, key: ` + e2eClientKey + `}]
store: {driver: redis, redis: {addrs: ["` + addr + `"]}}
privacy: {hash_key: fixed-key-for-this-test}
providers: [{name: fake, base_url: "http://127.0.0.1:9/v1", api_key: x}]
models: [{name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}]
webhooks: {url: "http://127.0.0.1:9/hooks", secret: ` + testWebhookSecret + `}
audit: {head_every: 1s}
`
	cfg, err := config.Parse([]byte(src), filepath.Join(t.TempDir(), "c.yaml"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	ready := make(chan map[string]string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, io.Discard, ready) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	stop() // what SIGTERM does
	start := time.Now()
	select {
	case err := <-done:
		took := time.Since(start)
		t.Logf("exit after SIGTERM: %v", took.Round(time.Millisecond))
		if err != nil {
			t.Errorf("serve: %v", err)
		}
		if took > 3*time.Second {
			t.Errorf("exit %v after SIGTERM with a hung store; want within shutdown_timeout (2s)", took.Round(time.Millisecond))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve still running 30s after SIGTERM with a hung store")
	}
}
