package config

import (
	"strings"
	"testing"
)

// TestWebhookURLInPlainHTTP: webhooks.url with http:// to another machine
// sends every event, the payer's OpenID and the order with it, across the
// network unencrypted, and was taken without a word. It is a warning at the
// key's line, not an error (a sidecar beside the merchant's backend on a
// private network is legitimate), without the URL's credentials; none for
// https, nor for http to this machine or to a host only a private network
// has (a private address, a compose service, a Kubernetes Service), which
// the shipped Kubernetes example uses.
func TestWebhookURLInPlainHTTP(t *testing.T) {
	tests := []struct {
		url  string
		warn bool
	}{
		{"https://shop.example.com/paygate/events", false},
		{"http://shop.example.com/paygate/events", true},
		{"http://203.0.113.5:8080/paygate/events", true},
		{"http://10.0.0.5:8080/paygate/events", false},
		{"http://[fd00::5]:8080/paygate/events", false},
		{"http://169.254.10.1/paygate/events", false},
		{"http://shop-backend.shop.svc.cluster.local/paygate/events", false},
		{"http://shop-backend.shop.svc/paygate/events", false},
		{"http://shop-backend:8080/paygate/events", false},
		{"http://shop.corp.internal/paygate/events", false},
		{"http://shop.internal.example.com/paygate/events", true},
		{"http://user:hunter2@shop.example.com/paygate/events?token=s3cret", true},
		{"HTTP://shop.example.com/paygate/events", true},
		{"http://127.0.0.1:9000/paygate/events", false},
		{"http://127.0.0.53:9000/paygate/events", false},
		{"http://[::1]:9000/paygate/events", false},
		{"http://localhost:9000/paygate/events", false},
		{"http://LOCALHOST./paygate/events", false},
		{"http://shop.localhost:9000/paygate/events", false},
		{"http://localhost.example.com/paygate/events", true},
	}
	const want = "c.yaml:2: webhooks.url: http:// to a host that is not on a private network"
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			src := "webhooks:\n  url: \"" + tc.url + "\"\n  secret: whsec_0123456789abcdef\n"
			cfg, err := Parse([]byte(src), "c.yaml", envMap(nil))
			if err != nil {
				t.Fatalf("got %v; want it to load (a warning at most)", err)
			}
			var got []string
			for _, w := range cfg.Warnings {
				if strings.Contains(w, "webhooks.url") {
					got = append(got, w)
				}
			}
			switch {
			case !tc.warn && len(got) > 0:
				t.Errorf("warnings %q; want none about webhooks.url", got)
			case tc.warn && (len(got) != 1 || !strings.HasPrefix(got[0], want)):
				t.Errorf("warnings %q; want one starting %q", cfg.Warnings, want)
			}
			for _, w := range got {
				if strings.Contains(w, "hunter2") || strings.Contains(w, "s3cret") {
					t.Errorf("the warning prints the URL's credentials: %s", w)
				}
			}
		})
	}
}
