package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
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
			if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			if code := run([]string{"check-config", "-config", file}, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d; want 0 (stdout %q, stderr %q)", code, stdout.String(), stderr.String())
			}
			var got []string
			for _, l := range strings.Split(stderr.String(), "\n") {
				if strings.Contains(l, "payments.backend") && strings.Contains(l, "payments.wechatpay") {
					got = append(got, l)
				}
			}
			switch {
			case tc.warn && len(got) != 1:
				t.Errorf("check-config's warnings %q; want one at payments.backend that the payments.wechatpay merchant is not used", stderr.String())
			case !tc.warn && len(got) > 0:
				t.Errorf("warnings %q; want none about a merchant", got)
			}
		})
	}
}
