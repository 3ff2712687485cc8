package main

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestHashKeyRotationKeepsUserState: README (privacy.hash_key): a new key
// gives providers a new hash for every user, and nothing paygate keeps is
// keyed by it. A user's order, made under the old key, is still theirs
// after a restart under the new one, and the day's order count still
// holds: the second purchase of the day is refused, not counted afresh.
func TestHashKeyRotationKeepsUserState(t *testing.T) {
	sku := "premium-monthly"
	up := newScriptedProvider(t, moneyScript("create_order", func() string { return `{"sku":"` + sku + `"}` }))
	db := filepath.Join(t.TempDir(), "paygate.db")
	serve := func(hashKey string) (string, *app) {
		return serveConfig(t, `
clients: [{name: bot, key: `+e2eClientKey+`}]
store: {path: "`+db+`"}
providers: [{name: fake, base_url: "`+up.URL+`/v1", api_key: sk-upstream-secret}]
models: [{name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}]
privacy: {hash_key: `+hashKey+`}
payments:
  rules: {max_orders_per_user_per_day: 1}
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99"}
    - {sku: premium-yearly, name: "Premium tier, 1 year", price: "499.00"}
`, io.Discard)
	}
	sentUser := func() string {
		reqs := up.requests()
		return gjson.Get(reqs[len(reqs)-1], "user").Str
	}
	url, a := serve("hash-key-before-0123456789abcdef")
	chat := func(url, content string) gjson.Result {
		t.Helper()
		return postChat(t, url, e2eClientKey, testOpenID, `{"model":"gpt-4o","user":"`+testOpenID+`","messages":[{"role":"user","content":"`+content+`"}]}`)
	}
	ans := chat(url, "premium please")
	if ans.Get("paygate.actions.0.type").Str != "order_created" {
		t.Fatalf("the first purchase: %s", ans.Raw)
	}
	before := sentUser()
	a.close()

	url, _ = serve("hash-key-after-0123456789abcdefg")
	status, list := httpCall(t, http.MethodGet, url+"/v1/paygate/orders", "Bearer "+e2eClientKey, testOpenID)
	if status != http.StatusOK || list.Get("data.#").Int() != 1 {
		t.Errorf("the user's orders after the new key: %d %s; want the 1 made before", status, list.Raw)
	}
	sku = "premium-yearly"
	ans = chat(url, "the yearly one too")
	reqs := up.requests()
	result := gjson.Get(reqs[len(reqs)-1], "messages.@reverse.0.content").Str
	if typ := ans.Get("paygate.actions.0.type").Str; typ == "order_created" || !strings.Contains(result, "maximum number of orders for today") {
		t.Errorf("a second purchase the same day after the new key: %s, tool result %s; want it refused by max_orders_per_user_per_day 1", ans.Raw, result)
	}
	if after := sentUser(); !strings.HasPrefix(after, "u_") || after == before || before == "" {
		t.Errorf("the user's hash toward the provider: %q before, %q after; want two hashes", before, after)
	}
}
