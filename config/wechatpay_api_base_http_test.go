package config

import (
	"strings"
	"testing"
)

// TestWeChatPayAPIBaseInPlainHTTP: payments.wechatpay.api_base with
// http:// to a host that may sit across the internet sends every WeChat
// Pay call (the payer's OpenID, each order and refund, the merchant's
// signed Authorization) and its answer unencrypted, and was taken without
// a word, where webhooks.url and a provider's base_url in the same case
// are warned of. It is a warning at the key's line, without the URL; none
// for https, nor for http to this machine or to a host only a private
// network has (a simulator or an egress gateway beside paygate). With the
// simulator backend serve never reads api_base (its client calls the
// simulator on a loopback port), so no call crosses any network and there
// is nothing to warn of.
func TestWeChatPayAPIBaseInPlainHTTP(t *testing.T) {
	f := wechatpayKeys(t)
	tests := []struct {
		base string
		warn bool
	}{
		{"https://api.mch.weixin.qq.com", false},
		{"http://api.mch.weixin.qq.com", true},
		{"http://203.0.113.5:8080", true},
		{"HTTP://pay-gw.example.com", true},
		{"http://127.0.0.1:9000", false},
		{"http://localhost:9000", false},
		{"http://10.0.0.5:9000", false},
		{"http://wxsim:9000", false},
		{"http://pay-gw.egress.svc.cluster.local", false},
	}
	const want = "c.yaml:4: payments.wechatpay.api_base: http:// to a host that is not on a private network"
	for _, backend := range []string{"wechatpay", "simulator"} {
		for _, tc := range tests {
			t.Run(backend+"/"+tc.base, func(t *testing.T) {
				src := "payments:\n  backend: " + backend + "\n  wechatpay:\n" +
					"    api_base: \"" + tc.base + "\"\n" + // line 4
					"    mch_id: \"1900000001\"\n    app_id: wx1\n    mch_cert_serial: S\n" +
					"    apiv3_key: \"0123456789abcdef0123456789abcdef\"\n    notify_url: \"https://pay.example.com/wechatpay/notify\"\n" +
					"    mch_private_key_file: " + f["key.pem"] + "\n" +
					"    public_key_id: PUB_KEY_ID_1\n    public_key_file: " + f["pub.pem"] + "\n"
				cfg, err := Parse([]byte(src), "c.yaml", envMap(nil))
				if err != nil {
					t.Fatalf("got %v; want it to load (a warning at most)", err)
				}
				var got []string
				for _, w := range cfg.Warnings {
					if strings.Contains(w, "api_base") {
						got = append(got, w)
					}
				}
				switch warn := tc.warn && backend == "wechatpay"; {
				case !warn && len(got) > 0:
					t.Errorf("warnings %q; want none about api_base", got)
				case warn && (len(got) != 1 || !strings.HasPrefix(got[0], want)):
					t.Errorf("warnings %q; want one starting %q", cfg.Warnings, want)
				}
				for _, w := range got {
					if strings.Contains(w, "pay-gw") || strings.Contains(w, "203.0.113.5") {
						t.Errorf("the warning prints the URL: %s", w)
					}
				}
			})
		}
	}
}
