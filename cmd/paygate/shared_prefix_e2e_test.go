package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/internal/redistest"
)

// TestAnotherDeploymentUnderOnePrefix: a second paygate deployment added
// on the same Redis without a store.redis.key_prefix of its own (a staging
// on the simulator beside production, another merchant) shared the first
// one's keys: its sweep queried its own WeChat Pay for the other's orders,
// expiring those it did not find and prepaying the unfinished ones at its
// own merchant. It now refuses to start there, naming the setting; one
// started while Redis was away answers /readyz 503 saying so, from when it
// first reaches it. Replicas of the first deployment share the prefix as
// before.
func TestAnotherDeploymentUnderOnePrefix(t *testing.T) {
	srv := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	deployment := func(mchID string) string {
		return merchantDeployment(`{driver: redis, redis: {addrs: ["`+srv.Addr()+`"]}}`, mchID)
	}
	ready := func(t *testing.T, base string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	prod, _ := serveConfig(t, deployment("1900000109"), io.Discard)
	if code, body := ready(t, prod); code != http.StatusOK {
		t.Fatalf("/readyz of the first deployment: %d %s", code, body)
	}
	replica, _ := serveConfig(t, deployment("1900000109"), io.Discard)
	if code, body := ready(t, replica); code != http.StatusOK {
		t.Fatalf("/readyz of its replica: %d %s", code, body)
	}

	err := startApp(t, deployment("1900000200"))
	if err == nil {
		t.Fatal("a deployment of another merchant started under the first one's key prefix")
	}
	if !strings.Contains(err.Error(), "store.redis.key_prefix") || !strings.Contains(err.Error(), "simulator:1900000109") {
		t.Errorf("the refusal does not name store.redis.key_prefix and the deployment there: %v", err)
	}

	// Started while Redis was away (restarting, with its data): not
	// ready, saying why, once it reaches it.
	srv.Shutdown()
	staging, _ := serveConfig(t, deployment("1900000200"), io.Discard)
	srv.Restart()
	if code, body := ready(t, prod); code != http.StatusOK {
		t.Fatalf("/readyz of the first deployment after Redis restarted with its data: %d %s", code, body)
	}
	// Its first check of Redis runs once a command reaches it; a /readyz
	// that comes while another command's check is under way answers
	// "store unreachable" for that moment, so the test asks until the
	// check has run.
	var code int
	var body string
	awaitCondition(t, "the other deployment's first check of Redis", 15*time.Second, func() bool {
		code, body = ready(t, staging)
		return body != "store unreachable\n"
	})
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "store.redis.key_prefix") {
		t.Errorf("/readyz of the other deployment: %d %q; want 503 naming store.redis.key_prefix", code, body)
	}
}

// merchantDeployment is the config of a deployment of WeChat Pay merchant
// mchID (the simulator's) on store (its YAML), whose provider is never
// reached.
func merchantDeployment(store, mchID string) string {
	return `
clients: [{name: bot, key: ` + e2eClientKey + `}]
store: ` + store + `
privacy: {hash_key: fixed-key-for-this-test}
providers:
  - {name: fake, base_url: "http://127.0.0.1:9/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
payments:
  wechatpay: {mch_id: "` + mchID + `"}
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
`
}

// startApp starts the application of the config src as serve does, closes
// it, and returns the error it was refused with, if it was.
func startApp(t *testing.T, src string) error {
	t.Helper()
	cfg, err := config.Parse([]byte(src), "paygate.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(cfg, io.Discard, "http://127.0.0.1:9/wechatpay/notify")
	if err == nil {
		a.close()
	}
	return err
}
