package main

import (
	"path/filepath"
	"strings"
	"testing"
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
	start := func(mchID string) error {
		t.Helper()
		return startApp(t, merchantDeployment(`{driver: embedded, path: `+path+`}`, mchID))
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
