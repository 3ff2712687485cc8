package config

import "testing"

// TestURLPortInRange: a URL paygate dials (a provider's base_url, the
// merchant's webhooks.url, payments.wechatpay.api_base) with a port
// outside 1-65535 (a digit too many: 84430) loaded, and check-config said
// ok, while every request to it failed at the dial ("invalid port"): each
// chat fell over to the next provider or failed, each webhook was retried
// for a day. It is an error at its line, naming the port (no token lives
// there).
func TestURLPortInRange(t *testing.T) {
	provider := func(u string) string {
		return "providers:\n  - name: p\n    base_url: \"" + u + "\"\nmodels: [{name: m, targets: [{provider: p, model: x}]}]\n"
	}
	tests := []struct {
		name, src string
		want      string // the error; "" when it loads
	}{
		{"base_url above 65535", provider("https://gw.example.com:84430/v1"), `c.yaml:3: providers[0].base_url: the port must be a number from 1 to 65535, not 84430`},
		{"base_url port 0", provider("http://127.0.0.1:0/v1"), `c.yaml:3: providers[0].base_url: the port must be a number from 1 to 65535, not 0`},
		{"webhooks.url above 65535", "webhooks:\n  url: \"https://hooks.example.com:70000/paygate\"\n  secret: 0123456789abcdef0123\n",
			`c.yaml:2: webhooks.url: the port must be a number from 1 to 65535, not 70000`},
		{"base_url with its port", provider("http://127.0.0.1:65535/v1"), ""},
		{"base_url with port 1", provider("http://127.0.0.1:1/v1"), ""},
		{"base_url without a port", provider("https://openrouter.ai/api/v1"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loadsOrRefused(t, tc.src, tc.want, func(c *Config) string {
				return "base_url " + c.Providers[0].BaseURL + ", webhooks.url " + c.Webhooks.URL
			})
		})
	}
}
