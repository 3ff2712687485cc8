package main

import (
	"io"
	"net/http"
	"path/filepath"
	"testing"
)

// TestClientKeyRotation follows the README's rotation of a bot's key
// (Changing the config between restarts, clients[].key): the new key in key and the outgoing one in
// previous_key, so both act as the one client while the bots move over
// (their users' orders are the same client's under either), then
// previous_key removed, after which the old key is refused at the
// restart, on chat and on the user API alike.
func TestClientKeyRotation(t *testing.T) {
	const (
		oldKey = "sk-rotate-old-3f9a1c7e5b"
		newKey = "sk-rotate-new-8d2b6e4a0c"
	)
	up := newScriptedProvider(t, moneyScript("create_order", func() string { return `{"sku":"premium-monthly"}` }))
	db := filepath.Join(t.TempDir(), "paygate.db")
	serve := func(client string) (string, *app) {
		return serveConfig(t, `
clients: [`+client+`]
store: {path: "`+db+`"}
providers: [{name: fake, base_url: "`+up.URL+`/v1", api_key: sk-upstream-secret}]
models: [{name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}]
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99"}
`, io.Discard)
	}
	orders := func(url, key string) (int, int) {
		t.Helper()
		status, body := httpCall(t, http.MethodGet, url+"/v1/paygate/orders", "Bearer "+key, testOpenID)
		return status, len(body.Get("data").Array())
	}

	// Before: the old key alone; the user buys.
	url, a := serve(`{name: bot, key: ` + oldKey + `}`)
	if r := chatWith(t, url, oldKey, testOpenID, "I want premium"); !r.Get("choices").Exists() {
		t.Fatalf("the purchase under the old key: %s", r.Raw)
	}
	if status, n := orders(url, oldKey); status != http.StatusOK || n != 1 {
		t.Fatalf("orders under the old key: %d, %d orders; want 200 and 1", status, n)
	}
	a.close()

	// During: both keys are the client's.
	url, a = serve(`{name: bot, key: ` + newKey + `, previous_key: ` + oldKey + `}`)
	for _, key := range []string{oldKey, newKey} {
		if status, n := orders(url, key); status != http.StatusOK || n != 1 {
			t.Errorf("during the rotation, orders under %s: %d, %d orders; want 200 and the user's 1", key, status, n)
		}
	}
	a.close()

	// After: previous_key removed; the old key is refused at once.
	url, _ = serve(`{name: bot, key: ` + newKey + `}`)
	if status, n := orders(url, newKey); status != http.StatusOK || n != 1 {
		t.Errorf("after the rotation, orders under the new key: %d, %d orders; want 200 and 1", status, n)
	}
	if status, _ := orders(url, oldKey); status != http.StatusUnauthorized {
		t.Errorf("after the rotation, the old key on the user API: %d; want 401", status)
	}
	status, _ := httpCall(t, http.MethodGet, url+"/v1/models", "Bearer "+oldKey, testOpenID)
	if status != http.StatusUnauthorized {
		t.Errorf("after the rotation, the old key on /v1/models: %d; want 401", status)
	}
}
