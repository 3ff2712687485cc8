package main

import (
	"context"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/proxy/h1/h1test"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestShutdownPublishesTheAuditHead: when paygate stops, the audit chain's
// head is logged once more, after the worker's last append. The head was
// logged only every audit.head_every (and at start), so the records of the
// last interval before a stop were in no outside record: the embedded
// file, which can be changed only while paygate is stopped, could be cut
// from the end then, and the next start logged the cut head as if whole.
func TestShutdownPublishesTheAuditHead(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			up := newScriptedProvider(t, purchaseScript)
			place := testdrivers.NewPlace(t, driver, nil)
			storeCfg := `{path: "` + place.Path + `"}`
			if driver == "redis" {
				storeCfg = `{driver: redis, redis: {addrs: ["` + testdrivers.RedisAddr() + `"], key_prefix: "` + place.Prefix + `"}}`
			}
			// head_every long enough that only the start's publication
			// falls within the test.
			src := `
clients: [{name: bot, key: ` + e2eClientKey + `}]
store: ` + storeCfg + `
privacy: {hash_key: fixed-key-for-this-test}
audit: {head_every: 24h}
providers:
  - {name: fake, base_url: "` + up.URL + `/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
`
			cfg, err := config.Parse([]byte(src), "test.yaml", func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			logs := &logtest.Buffer{}
			srv := h1test.NewUnstartedServer()
			a, err := newApp(cfg, logs, "http://"+srv.Listener.Addr().String()+"/wechatpay/notify")
			if err != nil {
				t.Fatal(err)
			}
			srv.Start(a.server.Handler())
			closed := false
			t.Cleanup(func() {
				srv.Close()
				if !closed {
					a.close()
				}
			})
			_, err = userClient(srv.URL).CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
				Model:    "gpt-4o",
				Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "I want premium for a month"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if _, err := a.audit.worker.Drain(ctx); err != nil {
				t.Fatal(err)
			}
			want, err := a.store.AuditHead(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want.Seq != 2 {
				t.Fatalf("chain head %d; want 2 (order created, awaiting payment)", want.Seq)
			}
			srv.Close()
			a.close()
			closed = true

			if last := lastHeadLogged(logs.String()); last != audit.FormatHead(want) {
				t.Errorf("last head logged %q; want the head at the stop, %q", last, audit.FormatHead(want))
			}
		})
	}
}

// lastHeadLogged is the head of the last "audit head" line in the JSON
// log logs ("" if none).
func lastHeadLogged(logs string) string {
	var last string
	for _, l := range strings.Split(logs, "\n") {
		if gjson.Get(l, "msg").Str == "audit head" {
			last = gjson.Get(l, "head").Str
		}
	}
	return last
}
