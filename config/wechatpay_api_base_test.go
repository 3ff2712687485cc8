package config

import (
	"strings"
	"testing"
)

// TestWeChatPayAPIBase: payments.wechatpay.api_base is checked as serve
// takes it (wechatpay.NewHostRewriter): scheme://host[:port], http or
// https, no path, query, fragment or userinfo. The errors never print the
// value: a URL may carry a password in its userinfo.
func TestWeChatPayAPIBase(t *testing.T) {
	tests := []struct {
		base string
		want string // the error after "c.yaml:3: payments.wechatpay.api_base: "; "" when it loads
	}{
		{"https://api.mch.weixin.qq.com", ""},
		{"https://api.mch.weixin.qq.com/", ""},
		{"http://127.0.0.1:9000", ""},
		{"https://api.mch.weixin.qq.com/v3", "want scheme://host[:port] only: no path (requests keep their own, /v3/...)"},
		{"https://api.mch.weixin.qq.com?x=1", "want scheme://host[:port] only: no query"},
		{"https://api.mch.weixin.qq.com#v3", "want scheme://host[:port] only: no fragment"},
		{"https://ops:hunter2@api.mch.weixin.qq.com", "want scheme://host[:port] only: no user or password (value not shown)"},
		{"ftp://api.mch.weixin.qq.com", `not an http(s) URL: scheme "ftp"`},
		{"api.mch.weixin.qq.com", `not an http(s) URL: scheme ""`},
		{"https://", "not an absolute http(s) URL: no host"},
		{"https://ops:hunter2@api.mch.weixin.qq.com:port", `not a URL: invalid port after host (value not shown: it may hold a token)`},
	}
	for _, tc := range tests {
		t.Run(tc.base, func(t *testing.T) {
			src := "payments:\n  wechatpay:\n    api_base: \"" + tc.base + "\"\n"
			_, err := Parse([]byte(src), "c.yaml", envMap(nil))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v; want it to load", err)
			case tc.want == "":
				return
			case err == nil:
				t.Fatalf("accepted; serve refuses it (%s)", tc.want)
			case err.Error() != "c.yaml:3: payments.wechatpay.api_base: "+tc.want:
				t.Errorf("got %q; want %q", err, "c.yaml:3: payments.wechatpay.api_base: "+tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error prints the password: %v", err)
			}
		})
	}
}
