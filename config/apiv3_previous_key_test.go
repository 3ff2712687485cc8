package config

import (
	"strings"
	"testing"
)

// TestAPIv3PreviousKey: payments.wechatpay.apiv3_previous_key, a rotation's
// outgoing APIv3 key, is held to apiv3_key's rules (32 bytes, no space),
// is not apiv3_key itself, is listed among the secrets the log masks, and
// no error prints it.
func TestAPIv3PreviousKey(t *testing.T) {
	const (
		key  = "NEWapiv3key-0123456789abcdefghij"
		prev = "OLDapiv3key-0123456789abcdefghij"
	)
	src := func(p string) string {
		return "payments:\n  wechatpay: {apiv3_key: " + key + ", apiv3_previous_key: \"" + p + "\"}\n"
	}
	tests := []struct{ name, prev, want string }{
		{"a key of its own", prev, ""},
		{"31 bytes", prev[:31], "c.yaml:2: payments.wechatpay.apiv3_previous_key: must be exactly 32 bytes, got 31"},
		{"a space at its end", prev[:31] + " ", "c.yaml:2: payments.wechatpay.apiv3_previous_key: holds a space, tab or line break"},
		{"apiv3_key itself", key, "c.yaml:2: payments.wechatpay.apiv3_previous_key: the same as apiv3_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loadsOrRefused(t, src(tt.prev), tt.want, func(c *Config) string { return "apiv3_previous_key " + c.Payments.WeChatPay.APIv3PreviousKey })
			cfg, err := Parse([]byte(src(tt.prev)), "c.yaml", envMap(nil))
			if err != nil && strings.Contains(err.Error(), strings.TrimSpace(tt.prev)) {
				t.Errorf("the error prints the key: %v", err)
			}
			if err == nil {
				found := false
				for _, s := range cfg.Secrets() {
					found = found || s == tt.prev
				}
				if !found {
					t.Error("Secrets() leaves out apiv3_previous_key: the log would show it")
				}
			}
		})
	}
}
