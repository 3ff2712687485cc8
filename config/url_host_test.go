package config

import "testing"

// TestURLWithAPortAndNoHost: a URL paygate dials whose host is a port
// alone (http://:8080/v1, what "http://${UPSTREAM_HOST}:8080/v1" becomes
// with the variable unset) loaded, and check-config said ok, while Go's
// dialer reads the empty host as this machine: every chat went to
// 127.0.0.1:8080, paygate's own default listener, which refused the
// provider's key as a bot's (the provider then marked misconfigured), and
// every webhook to whatever listened on this host. It is "no host" at its
// line, as a URL with nothing after the scheme is.
func TestURLWithAPortAndNoHost(t *testing.T) {
	provider := func(u string) string {
		return "providers:\n  - name: p\n    base_url: \"" + u + "\"\nmodels: [{name: m, targets: [{provider: p, model: x}]}]\n"
	}
	const noHost = "not an absolute http(s) URL: no host"
	tests := []struct {
		name, src string
		want      string // the error; "" when it loads
	}{
		{"base_url", provider("http://:8080/v1"), "c.yaml:3: providers[0].base_url: " + noHost},
		{"base_url from an unset variable", provider("http://${UPSTREAM_HOST}:8080/v1"), "c.yaml:3: providers[0].base_url: " + noHost},
		{"webhooks.url", "webhooks:\n  url: \"https://:9443/paygate\"\n  secret: 0123456789abcdef0123\n", "c.yaml:2: webhooks.url: " + noHost},
		{"notify_url", "payments:\n  wechatpay:\n    notify_url: \"https://:443/wechatpay/notify\"\n", "c.yaml:3: payments.wechatpay.notify_url: " + noHost},
		{"api_base", "payments:\n  wechatpay:\n    api_base: \"https://:443\"\n", "c.yaml:3: payments.wechatpay.api_base: " + noHost},
		{"an IPv6 host", provider("http://[::1]:8080/v1"), ""},
		{"a host and a port", provider("http://localhost:8080/v1"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loadsOrRefused(t, tc.src, tc.want, func(c *Config) string {
				return "base_url " + c.Providers[0].BaseURL + ", webhooks.url " + c.Webhooks.URL
			})
		})
	}
}
