package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/proxy/console"
	"github.com/paygate/paygate/store"
)

// payMethodsApp serves the application with payments.pay_methods [jsapi]
// (a mini-program merchant without Native Pay) and a second client, web,
// whose own pay_methods are [native] (a desktop web bot on the same
// sidecar), and a provider whose model calls create_order with args in
// its first round and then answers in words.
func payMethodsApp(t *testing.T, args string) (string, *app, *scriptedProvider) {
	t.Helper()
	escaped := strings.ReplaceAll(args, `"`, `\"`)
	up := newScriptedProvider(t, func(body string) scriptRound {
		if !strings.Contains(body, `"role":"tool"`) {
			r := chunkRound("c0", [2]string{"create_order", args})
			r.whole = `{"id":"c0","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"On it. ","tool_calls":[` +
				`{"id":"call_0","type":"function","function":{"name":"create_order","arguments":"` + escaped + `"}}]},"finish_reason":"tool_calls"}]}`
			return r
		}
		r := textRound("c1", "Done.")
		r.whole = `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Done."},"finish_reason":"stop"}]}`
		return r
	})
	url, a := serveConfig(t, `
clients:
  - {name: bot, key: `+e2eClientKey+`}
  - {name: web, key: sk-web-0123456789, pay_methods: [native]}
store: {path: "`+filepath.Join(t.TempDir(), "paygate.db")+`"}
providers:
  - {name: fake, base_url: "`+up.URL+`/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
payments:
  pay_methods: [jsapi]
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
`, io.Discard)
	return url, a, up
}

func payTurn(t *testing.T, url, key string, stream bool) turnResult {
	t.Helper()
	body := fmt.Sprintf(`{"model":"gpt-4o","stream":%v,"messages":[{"role":"user","content":"premium, by QR code please"}]}`, stream)
	resp := postAs(t, url, key, testOpenID, body)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return parseTurn(resp.StatusCode, stream, b)
}

// TestPayMethodNotOfferedEndToEnd: on a jsapi-only config the model is
// offered create_order without pay_method, and told it pays inside WeChat
// with no QR code; its create_order naming "native" anyway (models ignore
// schemas) gets a clarification naming jsapi, the next round is offered
// no tool, the bot is handed no order, and the simulator sees no prepay:
// before, WeChat Pay refused it (NO_AUTH for a merchant without Native),
// the order closed as failed and the operator was paged.
func TestPayMethodNotOfferedEndToEnd(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream %v", stream), func(t *testing.T) {
			url, a, up := payMethodsApp(t, `{"sku":"premium-monthly","pay_method":"native"}`)
			res := payTurn(t, url, e2eClientKey, stream)
			if res.failed() {
				t.Fatalf("turn failed: %d %s", res.status, res.raw)
			}
			if acts := res.paygate.Get("actions"); len(acts.Array()) != 0 {
				t.Errorf("paygate.actions %s; want none", acts.Raw)
			}
			if n := len(a.sim.Requests()); n != 0 {
				t.Errorf("the simulator saw %d requests; want no prepay", n)
			}
			reqs := up.requests()
			if len(reqs) != 2 {
				t.Fatalf("the provider saw %d rounds; want 2", len(reqs))
			}
			create := gjson.Get(reqs[0], `tools.#(function.name=="create_order").function`)
			if !create.Exists() || create.Get("parameters.properties.pay_method").Exists() {
				t.Errorf("create_order offered %s; want it without pay_method", create.Raw)
			}
			if d := create.Get("description").Str; !strings.Contains(d, "no QR code can be offered") {
				t.Errorf("create_order's description %q; want it to say no QR code can be offered", d)
			}
			tool := gjson.Get(reqs[1], `messages.#(role=="tool").content`).Str
			if !strings.Contains(tool, "needs_clarification") || !strings.Contains(tool, `\"native\" is not offered`) || !strings.Contains(tool, `\"jsapi\" (to pay inside WeChat)`) {
				t.Errorf("the tool result the model read: %s; want a clarification naming jsapi", tool)
			}
			if tc := gjson.Get(reqs[1], "tool_choice").Str; tc != "none" {
				t.Errorf("the round after the clarification has tool_choice %q; want none", tc)
			}
		})
	}
}

// TestPayMethodOfClientEndToEnd: the web client's own pay_methods
// [native] replace payments.pay_methods [jsapi] for it: its model is
// offered no pay_method and told the user pays by QR code, and its
// create_order without one gets a native order whose code_url the bot is
// handed, the simulator's one prepay a native one.
func TestPayMethodOfClientEndToEnd(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream %v", stream), func(t *testing.T) {
			url, a, up := payMethodsApp(t, `{"sku":"premium-monthly"}`)
			res := payTurn(t, url, "sk-web-0123456789", stream)
			if res.failed() {
				t.Fatalf("turn failed: %d %s", res.status, res.raw)
			}
			acts := res.actions("order_created")
			if len(acts) != 1 || acts[0].Get("code_url").Str == "" || acts[0].Get("order.pay_method").Str != "native" {
				t.Fatalf("paygate %s; want one native order_created with a code_url", res.paygate.Raw)
			}
			var prepays []string
			for _, r := range a.sim.Requests() {
				if strings.HasPrefix(r.Op, "prepay") {
					prepays = append(prepays, r.Op)
				}
			}
			if len(prepays) != 1 || prepays[0] != "prepay-native" {
				t.Errorf("prepays at the simulator %q; want one native", prepays)
			}
			create := gjson.Get(up.requests()[0], `tools.#(function.name=="create_order").function`)
			if create.Get("parameters.properties.pay_method").Exists() || !strings.Contains(create.Get("description").Str, "scanning a QR code") {
				t.Errorf("create_order offered %s; want it without pay_method, saying the user scans a QR code", create.Raw)
			}
		})
	}
}

// TestApprovalOfMethodNoLongerOfferedEndToEnd: an order held for a
// manager in a method its client is no longer offered (held under an
// earlier config: here made on the service directly, as it stood) is
// prepaid, when a manager approves it through the admin API, in the
// client's first method: payments.pay_methods [jsapi] for bot, its own
// [native, jsapi] for web, whose held native order stays native. Before,
// bot's held QR order went to WeChat Pay as a Native prepay, which a
// merchant without Native Pay has refused (NO_AUTH), closed as failed and
// paged for.
func TestApprovalOfMethodNoLongerOfferedEndToEnd(t *testing.T) {
	_, a := serveConfig(t, `
clients:
  - {name: bot, key: `+e2eClientKey+`}
  - {name: web, key: sk-web-0123456789, pay_methods: [native, jsapi]}
admin: {token: `+consoleToken+`}
store: {path: "`+filepath.Join(t.TempDir(), "paygate.db")+`"}
providers:
  - {name: fake, base_url: "http://127.0.0.1:1/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
payments:
  pay_methods: [jsapi]
  rules: {approval_above: "100.00"}
  catalog:
    - {sku: premium-yearly, name: "Premium tier, 1 year", price: "499.00"}
`, io.Discard)
	admin := httptest.NewServer(a.adminHandler())
	t.Cleanup(admin.Close)
	for _, tc := range []struct{ client, want string }{{"bot", "jsapi"}, {"web", "native"}} {
		res, err := a.payments.CreateOrder(context.Background(), payments.CreateRequest{Client: tc.client, User: testOpenID, SKU: "premium-yearly", PayMethod: "native"})
		if err != nil || res.Order.Status != store.StatusApprovalRequired {
			t.Fatalf("%s: create: %+v %v; want approval_required", tc.client, res, err)
		}
		no := res.Order.OrderNo
		before := len(a.sim.Requests())
		resp, b := adminDo(t, http.MethodPost, admin.URL+"/admin/api/approvals/"+no+"/approve",
			map[string]string{"Authorization": "Bearer " + consoleToken, console.CSRFHeader: "1"})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: approve: %d %s", tc.client, resp.StatusCode, b)
		}
		var ops []string
		for _, r := range a.sim.Requests()[before:] {
			if strings.HasPrefix(r.Op, "prepay") {
				ops = append(ops, r.Op)
			}
		}
		if len(ops) != 1 || ops[0] != "prepay-"+tc.want {
			t.Errorf("%s: prepays at the simulator after the approval %q; want one %s", tc.client, ops, tc.want)
		}
		if m := gjson.GetBytes(b, "order.pay_method").Str; m != tc.want {
			t.Errorf("%s: the approved order's pay_method %q; want %s", tc.client, m, tc.want)
		}
	}
}
