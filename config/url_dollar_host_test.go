package config

import "testing"

// TestURLHostWithAnUnexpandedVariable: a URL paygate dials whose host holds
// a shell-style $NAME (http://$LLM_HOST:8000/v1, as docker compose and a
// shell would expand it) loaded, and check-config said ok: paygate expands
// ${NAME} only, and a "$" after a value's start is text, so every chat
// went to the host "$llm_host", which no resolver answers, and every
// webhook failed the same way. No host name holds a "$" (nor another
// character outside letters, digits, '-', '.' and '_'): it is an error at
// its line, naming the ${NAME} to write.
func TestURLHostWithAnUnexpandedVariable(t *testing.T) {
	provider := func(u string) string {
		return "providers:\n  - name: p\n    base_url: \"" + u + "\"\nmodels: [{name: m, targets: [{provider: p, model: x}]}]\n"
	}
	const hint = "$LLM_HOST is not expanded: write ${LLM_HOST} for a variable"
	tests := []struct {
		name, src string
		want      string // the error; "" when it loads
	}{
		{"base_url's host", provider("http://$LLM_HOST:8000/v1"), "c.yaml:3: providers[0].base_url: " + hint},
		{"base_url's host, no port", provider("https://$LLM_HOST/v1"), "c.yaml:3: providers[0].base_url: " + hint},
		{"base_url's port", provider("http://llm.example:$LLM_PORT/v1"), "c.yaml:3: providers[0].base_url: $LLM_PORT is not expanded: write ${LLM_PORT} for a variable"},
		{"webhooks.url's host", "webhooks:\n  url: https://shop-$LLM_HOST/paygate\n  secret: 0123456789abcdef0123\n", "c.yaml:2: webhooks.url: " + hint},
		{"notify_url's host", "payments:\n  wechatpay:\n    notify_url: https://$LLM_HOST/wechatpay/notify\n", "c.yaml:3: payments.wechatpay.notify_url: " + hint},
		{"another character no host has", provider("http://llm!x:8000/v1"), "c.yaml:3: providers[0].base_url: not an absolute http(s) URL: the host holds '!', which no host name has"},
		{"a $ in the path is the path's", provider("https://llm.example/v1/$batch"), ""},
		{"an IPv6 host with a zone", provider("http://[fe80::1%25eth0]:8000/v1"), ""},
		{"a host of another script", provider("https://模型.example/v1"), ""},
		{"an underscore", provider("http://llm_server:8000/v1"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loadsOrRefused(t, tc.src, tc.want, func(c *Config) string {
				return "base_url " + c.Providers[0].BaseURL + ", webhooks.url " + c.Webhooks.URL
			})
		})
	}
}
