package config

import (
	"strings"
	"testing"
)

// TestWeChatPayNotifyURLHost: WeChat Pay calls notify_url from the
// internet, and its docs refuse localhost, 127.0.0.1 and 192.168.x.x there.
// With backend wechatpay such a URL was taken without a word, and every
// payment and refund notification was lost: payments learnt only by
// querying, late. Against WeChat Pay's own API (the default api_base, or
// its backup domain) an IP literal of a loopback, private, link-local or
// carrier-grade NAT range is an error at the key's line: nothing can make
// WeChat Pay reach it. Against another api_base (a simulator, a stand-in,
// which may call a loopback URL) it is a warning. A name only this machine
// or a private network resolves (localhost, one label, .internal) is a
// warning either way: public DNS or a tunnel may make it work. The
// simulator backend calls no one from the internet: nothing is said.
func TestWeChatPayNotifyURLHost(t *testing.T) {
	f := wechatpayKeys(t)
	const (
		none = iota
		warn
		fail
	)
	tests := []struct {
		notify  string
		apiBase string // "": the default
		want    int
		kind    string // in the message when not none
	}{
		{notify: "https://pay.example.com/wechatpay/notify", want: none},
		{notify: "https://203.0.113.5/wechatpay/notify", want: none},
		{notify: "https://pay.example.com/wechatpay/notify", apiBase: "http://127.0.0.1:9000", want: none},
		{notify: "http://127.0.0.1:8080/wechatpay/notify", want: fail, kind: "host 127.0.0.1 is a loopback address"},
		{notify: "https://192.168.1.10/wechatpay/notify", want: fail, kind: "host 192.168.1.10 is a private network address"},
		{notify: "https://10.0.0.5:8443/wechatpay/notify", want: fail, kind: "host 10.0.0.5 is a private network address"},
		{notify: "https://[::1]/wechatpay/notify", want: fail, kind: "host ::1 is a loopback address"},
		{notify: "https://[fd00::5]/wechatpay/notify", want: fail, kind: "host fd00::5 is a private network address"},
		{notify: "https://[::ffff:192.168.0.7]/wechatpay/notify", want: fail, kind: "is a private network address"},
		{notify: "https://169.254.10.1/wechatpay/notify", want: fail, kind: "host 169.254.10.1 is a link-local address"},
		{notify: "https://0.0.0.0/wechatpay/notify", want: fail, kind: "host 0.0.0.0 is the unspecified address"},
		{notify: "https://100.64.3.4/wechatpay/notify", want: fail, kind: "host 100.64.3.4 is a carrier-grade NAT address"},
		{notify: "https://192.168.1.10/wechatpay/notify", apiBase: "https://api2.mch.weixin.qq.com", want: fail, kind: "host 192.168.1.10 is a private network address"},
		{notify: "https://192.168.1.10/wechatpay/notify", apiBase: "https://API.mch.weixin.qq.com.", want: fail, kind: "host 192.168.1.10 is a private network address"},
		{notify: "http://127.0.0.1:8080/wechatpay/notify", apiBase: "http://127.0.0.1:9000", want: warn, kind: "host 127.0.0.1 is a loopback address"},
		{notify: "http://10.1.2.3/wechatpay/notify", apiBase: "http://wxsim:9000", want: warn, kind: "host 10.1.2.3 is a private network address"},
		{notify: "https://localhost/wechatpay/notify", want: warn, kind: "host localhost is not a public name"},
		{notify: "https://paygate:8080/wechatpay/notify", want: warn, kind: "host paygate is not a public name"},
		{notify: "https://paygate.internal/wechatpay/notify", want: warn, kind: "host paygate.internal is not a public name"},
		{notify: "https://paygate.pay.svc.cluster.local/wechatpay/notify", apiBase: "http://127.0.0.1:9000", want: warn, kind: "is not a public name"},
	}
	const at = "c.yaml:4: payments.wechatpay.notify_url: "
	for _, backend := range []string{"wechatpay", "simulator"} {
		for _, tc := range tests {
			t.Run(backend+"/"+tc.notify+"/"+tc.apiBase, func(t *testing.T) {
				src := "payments:\n  backend: " + backend + "\n  wechatpay:\n" +
					"    notify_url: \"" + tc.notify + "\"\n" + // line 4
					"    mch_id: \"1900000001\"\n    app_id: wx1\n    mch_cert_serial: S\n" +
					"    apiv3_key: \"0123456789abcdef0123456789abcdef\"\n" +
					"    mch_private_key_file: " + f["key.pem"] + "\n" +
					"    public_key_id: PUB_KEY_ID_1\n    public_key_file: " + f["pub.pem"] + "\n"
				if tc.apiBase != "" {
					src += "    api_base: \"" + tc.apiBase + "\"\n"
				}
				want := tc.want
				if backend == "simulator" {
					want = none
				}
				cfg, err := Parse([]byte(src), "c.yaml", envMap(nil))
				if want == fail {
					if err == nil {
						t.Fatalf("loaded; want an error: WeChat Pay can never reach %s", tc.notify)
					}
					if !strings.Contains(err.Error(), at) || !strings.Contains(err.Error(), tc.kind) {
						t.Errorf("got %q; want an error at %q saying %q", err, at, tc.kind)
					}
					return
				}
				if err != nil {
					t.Fatalf("got %v; want it to load", err)
				}
				var got []string
				for _, w := range cfg.Warnings {
					if strings.HasPrefix(w, at+"host ") {
						got = append(got, w)
					}
				}
				switch {
				case want == none && len(got) > 0:
					t.Errorf("warnings %q; want none about notify_url's host", got)
				case want == warn && (len(got) != 1 || !strings.Contains(got[0], tc.kind)):
					t.Errorf("warnings %q; want one at %q saying %q", cfg.Warnings, at, tc.kind)
				}
			})
		}
	}
}
