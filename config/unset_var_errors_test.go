package config

import (
	"strings"
	"testing"
)

// TestErrorNamesUnsetVariable: a key whose ${VAR} is not set reads as empty,
// and when that makes it an error the error names the variable, since the
// warning that would have named it is not printed beside errors: the
// README's minimal config without PAYGATE_CLIENT_KEY exported said only
// "clients[0].key: required", of a line that plainly sets it.
func TestErrorNamesUnsetVariable(t *testing.T) {
	cases := []struct {
		name, src, path, want string
	}{
		{"client key", "clients:\n  - {name: shop-bot, key: \"${PAYGATE_CLIENT_KEY}\"}\n", "clients[0].key", "${PAYGATE_CLIENT_KEY} is not set"},
		{"webhook secret", "webhooks:\n  url: https://merchant.example/hook\n  secret: ${HOOK_SECRET}\n", "webhooks.secret", "${HOOK_SECRET} is not set"},
		{"wechatpay app id", "payments:\n  backend: wechatpay\n  wechatpay:\n    app_id: ${WX_APP_ID}\n", "payments.wechatpay.app_id", "${WX_APP_ID} is not set"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.src), "x.yaml", envMap(nil))
			es, _ := err.(Errors)
			var found bool
			for _, e := range es {
				if e.Path != c.path {
					continue
				}
				found = true
				if !strings.Contains(e.Msg, c.want) || !strings.Contains(e.Msg, "export") {
					t.Errorf("%s: %q; want it to say %q and to export it", e.Path, e.Msg, c.want)
				}
			}
			if !found {
				t.Fatalf("no error at %s: %v", c.path, err)
			}
		})
	}
	// A variable that is set, or an error at another key, says nothing of it.
	_, err := Parse([]byte("clients:\n  - {name: a, key: \"${K}\"}\n  - {name: b, key: \"${K}\"}\n"), "x.yaml", envMap(map[string]string{"K": "sk-1234567890"}))
	if err == nil || strings.Contains(err.Error(), "not set") {
		t.Errorf("two clients with one key from a set variable: got %v; want the shared key alone", err)
	}
}
