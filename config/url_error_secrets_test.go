package config

import (
	"strings"
	"testing"
)

// TestURLErrorsNeverQuoteTheValue: a URL paygate cannot parse is named as
// such "(value not shown: it may hold a token)", but url.Parse's own
// reason, printed beside it, quotes a piece of the value, and the piece is
// often a password's: a userinfo password with a '/', '?' or '#' in it
// (base64 and generated passwords hold them) ends the authority there, so
// the parser reads "user:<the password's head>" as host and port and
// answered `invalid port ":<the password's head>" after host`, printed by
// check-config into CI output. The reason is given without the quoted
// piece, for every URL key.
func TestURLErrorsNeverQuoteTheValue(t *testing.T) {
	const models = "models:\n  - {name: m, targets: [{provider: p, model: x}]}\n"
	const wechat = "payments:\n  backend: wechatpay\n  wechatpay:\n    "
	for _, pw := range []string{"SECRETpw/x9", "SECRETpw?x9", "SECRETpw#x9", "SECRET%zzpw"} {
		tests := []struct{ name, src, want string }{
			{"webhooks.url", "webhooks:\n  url: \"https://merchant:" + pw + "@hooks.example.com/x\"\n  secret: s-long-enough-to-sign-x\n",
				"c.yaml:2: webhooks.url: not a URL: "},
			{"providers[0].base_url", "providers:\n  - name: p\n    base_url: \"https://gw:" + pw + "@gw.example.com/v1\"\n" + models,
				"c.yaml:3: providers[0].base_url: not a URL: "},
			{"payments.wechatpay.api_base", wechat + "api_base: \"https://gw:" + pw + "@api.example.com\"\n",
				"c.yaml:4: payments.wechatpay.api_base: not a URL: "},
			{"payments.wechatpay.notify_url", wechat + "notify_url: \"https://gw:" + pw + "@pay.example.com/n\"\n",
				"c.yaml:4: payments.wechatpay.notify_url: not a URL: "},
		}
		for _, tc := range tests {
			t.Run(tc.name+" "+pw, func(t *testing.T) {
				_, err := Parse([]byte(tc.src), "c.yaml", envMap(nil))
				if err == nil {
					t.Fatal("got no error")
				}
				if strings.Contains(err.Error(), "SECRET") {
					t.Errorf("the error prints the password's head: %v", err)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("got:\n%v\nwant a line starting %q", err, tc.want)
				}
			})
		}
	}
}

// TestURLPortNeverAPasswordsHead: a userinfo password that starts with
// digits and holds a '/', '?' or '#' (user:9876543210/x9@host) ends the
// authority there too, and url.Parse then takes the digits for a port it
// accepts; the port-range error named that "port", the password's head,
// into check-config's CI output. When the value holds an '@' the port is
// not named (it may be a password's); without one it still is (84430).
func TestURLPortNeverAPasswordsHead(t *testing.T) {
	const head = "9876543210"
	const models = "models:\n  - {name: m, targets: [{provider: p, model: x}]}\n"
	const wechat = "payments:\n  backend: wechatpay\n  wechatpay:\n    "
	const notShown = "the port must be a number from 1 to 65535 (not shown: the value holds an '@', so it may be a password's)"
	for _, pw := range []string{head + "/x9", head + "?x9", head + "#x9"} {
		tests := []struct{ name, src, want string }{
			{"webhooks.url", "webhooks:\n  url: \"https://merchant:" + pw + "@hooks.example.com/x\"\n  secret: s-long-enough-to-sign-x\n",
				"c.yaml:2: webhooks.url: " + notShown},
			{"providers[0].base_url", "providers:\n  - name: p\n    base_url: \"https://gw:" + pw + "@gw.example.com/v1\"\n" + models,
				"c.yaml:3: providers[0].base_url: " + notShown},
			{"payments.wechatpay.notify_url", wechat + "notify_url: \"https://gw:" + pw + "@pay.example.com/n\"\n",
				"c.yaml:4: payments.wechatpay.notify_url: " + notShown},
		}
		for _, tc := range tests {
			t.Run(tc.name+" "+pw, func(t *testing.T) {
				_, err := Parse([]byte(tc.src), "c.yaml", envMap(nil))
				if err == nil {
					t.Fatal("got no error")
				}
				if strings.Contains(err.Error(), head) {
					t.Errorf("the error prints the password's head: %v", err)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("got:\n%v\nwant a line %q", err, tc.want)
				}
			})
		}
	}
}

// TestURLAtAfterTheHost: a userinfo password with a '/', '?' or '#' in it,
// after a port-like head in range (merchant:8080/SECRET@hooks.example.com),
// ends the authority early and parses without complaint as host "merchant"
// with the password's tail in the path, query or fragment: paygate would
// send the provider's key (Authorization) or the signed webhook to the
// host "merchant", which a resolver's search domain may well answer. An
// '@' where no userinfo was read is refused, the value not shown, with the
// fix (percent-encode); a percent-encoded password loads.
func TestURLAtAfterTheHost(t *testing.T) {
	const models = "models:\n  - {name: m, targets: [{provider: p, model: x}]}\n"
	const wechat = "payments:\n  backend: wechatpay\n  wechatpay:\n    "
	const refused = "an '@' after the host (value not shown)"
	for _, pw := range []string{"8080/SECRET", "8080?SECRET", "8080#SECRET"} {
		tests := []struct{ name, src, want string }{
			{"webhooks.url", "webhooks:\n  url: \"https://merchant:" + pw + "@hooks.example.com/x\"\n  secret: s-long-enough-to-sign-x\n",
				"c.yaml:2: webhooks.url: " + refused},
			{"providers[0].base_url", "providers:\n  - name: p\n    base_url: \"https://gw:" + pw + "@gw.example.com/v1\"\n" + models,
				"c.yaml:3: providers[0].base_url: " + refused},
			{"payments.wechatpay.notify_url", wechat + "notify_url: \"https://gw:" + pw + "@pay.example.com/n\"\n",
				"c.yaml:4: payments.wechatpay.notify_url: " + refused},
		}
		for _, tc := range tests {
			t.Run(tc.name+" "+pw, func(t *testing.T) {
				_, err := Parse([]byte(tc.src), "c.yaml", envMap(nil))
				if err == nil {
					t.Fatal("got no error: the request would go to the password's user name as a host")
				}
				if strings.Contains(err.Error(), "SECRET") {
					t.Errorf("the error prints the password: %v", err)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("got:\n%v\nwant a line starting %q", err, tc.want)
				}
			})
		}
	}
	t.Run("percent-encoded password loads", func(t *testing.T) {
		src := "providers:\n  - name: p\n    base_url: \"https://gw:8080%2FSECRET@gw.example.com/v1\"\n" + models
		if _, err := Parse([]byte(src), "c.yaml", envMap(nil)); err != nil {
			t.Fatalf("a percent-encoded password is refused: %v", err)
		}
	})
}
