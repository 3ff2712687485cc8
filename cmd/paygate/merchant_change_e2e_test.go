package main

import (
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
)

// TestMerchantChangedOnTheEmbeddedFile: an operator changes
// payments.wechatpay.mch_id and restarts on the same embedded store file,
// which holds the first merchant's orders. Started, the new merchant's
// sweep queried its own WeChat Pay for them, expiring the pending ones it
// did not find (paid or payable at the first merchant, whose notifications
// the new keys can neither verify nor decrypt) and sending refunds where
// nothing was paid. It is refused at start, as another merchant under a
// Redis prefix is, naming both merchants and what to do; the first
// merchant's config starts on the file again.
func TestMerchantChangedOnTheEmbeddedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "paygate.db")
	deployment := func(mchID string) *config.Config {
		t.Helper()
		cfg, err := config.Parse([]byte(`
clients: [{name: bot, key: `+e2eClientKey+`}]
store: {driver: embedded, path: `+path+`}
privacy: {hash_key: fixed-key-for-this-test}
providers:
  - {name: fake, base_url: "http://127.0.0.1:9/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
payments:
  wechatpay: {mch_id: "`+mchID+`"}
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
`), "config.yaml", func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	start := func(mchID string) error {
		t.Helper()
		a, err := newApp(deployment(mchID), io.Discard, "http://127.0.0.1:9/wechatpay/notify")
		if err == nil {
			a.close()
		}
		return err
	}
	if err := start("1900000109"); err != nil {
		t.Fatalf("the first merchant: %v", err)
	}
	err := start("1900000200")
	if err == nil {
		t.Fatal("another merchant started on the first one's store file")
	}
	for _, want := range []string{path, "simulator:1900000109", "simulator:1900000200", "store.path", "payments.wechatpay.mch_id"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not name %s: %v", want, err)
		}
	}
	if err := start("1900000109"); err != nil {
		t.Errorf("the first merchant again: %v", err)
	}
}
