package main

import (
	"path/filepath"
	"testing"
)

// TestSimulatorWithMerchantWarned: a config that fills in a WeChat Pay
// merchant (payments.wechatpay.mch_id and its keys) but leaves
// payments.backend to its default, the simulator, is warned of by
// check-config, on a loopback server.listen too (behind a front, as the
// README deploys it): it passed in silence, and serve handed every user a
// simulated payment no wallet can pay, the merchant's settings unread.
func TestSimulatorWithMerchantWarned(t *testing.T) {
	const merchant = `
  wechatpay:
    mch_id: "1900000109"
    app_id: wx1234567890abcdef
    mch_cert_serial: 5157F09EFDC096DE15EBE81A47057A7232F1B8E1
    mch_private_key_file: /nonexistent/apiclient_key.pem
    apiv3_key: 0123456789abcdef0123456789abcdef
    notify_url: https://pay.example.com/wechatpay/notify
`
	for _, tc := range []struct {
		name, payments string
		warn           bool
	}{
		{"merchant, backend defaulted", "payments:" + merchant, true},
		{"merchant, backend simulator written", "payments:\n  backend: simulator" + merchant, true},
		{"no merchant", "payments:\n  backend: simulator\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "c.yaml")
			src := "server: {listen: \"127.0.0.1:8080\"}\nstore: {path: \"" + filepath.Join(dir, "p.db") + "\"}\n" + tc.payments
			stderr, got := checkConfigWarnings(t, file, src, "payments.backend", "payments.wechatpay")
			switch {
			case tc.warn && len(got) != 1:
				t.Errorf("check-config's warnings %q; want one at payments.backend that the payments.wechatpay merchant is not used", stderr)
			case !tc.warn && len(got) > 0:
				t.Errorf("warnings %q; want none about a merchant", got)
			}
		})
	}
}
