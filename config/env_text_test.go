package config

import (
	"strings"
	"testing"
)

// TestEnvValueIsTextInStringFields: a ${VAR} is expanded inside the parsed
// scalar, and a string field gets the variable's text as it is, whatever
// YAML would make of it written bare: a number, a bool, null or ~. (A
// secret sent in a header, admin.token, may not start or end with a
// space: TestHeaderValues.)
func TestEnvValueIsTextInStringFields(t *testing.T) {
	for _, v := range []string{"1230000109", "0123", "1e3", "true", "no", "null", "Null", "NULL", "~", "0x1F", "1_000", "a: b", "#x", "[1,2]", "  sp  "} {
		env := envMap(map[string]string{"V": v})
		src := "webhooks:\n  secret: ${V}\npayments:\n  wechatpay:\n    mch_id: ${V}\n    app_id: \"${V}\"\n"
		cfg, err := Parse([]byte(src), "x.yaml", env)
		if err != nil {
			t.Errorf("%q: %v", v, err)
			continue
		}
		if w := cfg.Payments.WeChatPay; cfg.Webhooks.Secret != v || w.MchID != v || w.AppID != v {
			t.Errorf("env %q: webhooks.secret %q mch_id %q app_id %q", v, cfg.Webhooks.Secret, w.MchID, w.AppID)
		}
	}
}

// TestEnvValueFillsOtherFields: an unquoted ${VAR} still fills a number,
// while null or ~ in a number is an error at the key rather than a silent
// default.
func TestEnvValueFillsOtherFields(t *testing.T) {
	parse := func(v string) (*Config, error) {
		return Parse([]byte("server:\n  max_body_bytes: ${V}\n"), "x.yaml", envMap(map[string]string{"V": v}))
	}
	if cfg, err := parse("1024"); err != nil || cfg.Server.MaxBodyBytes != 1024 {
		t.Errorf("1024: got %v, %v", cfg, err)
	}
	for _, v := range []string{"null", "~"} {
		if _, err := parse(v); err == nil {
			t.Errorf("%q in a number: accepted", v)
		} else if want := "x.yaml:2: server.max_body_bytes: "; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q in a number: got %q; want it to start with %q", v, err, want)
		}
	}
}
