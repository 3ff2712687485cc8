package config

import (
	"strings"
	"testing"
)

// TestSecretInABlockScalar: a secret written as a YAML block scalar
// ("secret: |" and the value on the next line) keeps the block's last line
// break, which YAML adds and no editor shows. webhooks.secret and
// store.redis.password took it in silence: every webhook was signed with a
// key the merchant's copy does not have (each signature refused), and
// Redis refused the password at run time, with no line to point at; a key
// sent in a header was refused as holding "a line break or another
// control character", which did not say where it came from. A "*_file"
// key and a ${VAR} drop a trailing line break for that reason; written in
// the file, it is an error at its line that says to write |- (or the
// value on the key's line), the value not shown.
func TestSecretInABlockScalar(t *testing.T) {
	const secret = "0123456789abcdefSECRET"
	const want = "a block scalar (| or >) keeps its last line break, which would be part of the secret (value not shown): write |- or >-, or the value on the key's line"
	webhooks := func(v string) string {
		return "webhooks:\n  url: https://shop.example/paygate\n  secret: " + v + "\n"
	}
	tests := []struct {
		name, src string
		want      string // the error; "" when it loads
	}{
		{"webhooks.secret, |", webhooks("|\n    " + secret), "c.yaml:3: webhooks.secret: " + want},
		{"webhooks.secret, >", webhooks(">\n    " + secret), "c.yaml:3: webhooks.secret: " + want},
		{"webhooks.secret, |+", webhooks("|+\n    " + secret + "\n"), "c.yaml:3: webhooks.secret: " + want},
		{"webhooks.secret, a ${VAR} in a block", webhooks("|\n    ${WEBHOOK_SECRET}"), "c.yaml:3: webhooks.secret: " + want},
		{"store.redis.password", "store:\n  driver: redis\n  redis:\n    addrs: [\"10.0.0.5:6379\"]\n    password: |\n      " + secret + "\n",
			"c.yaml:5: store.redis.password: " + want},
		{"admin.token", "admin:\n  token: >\n    " + secret + "\n", "c.yaml:2: admin.token: " + want},
		{"a *_file key", "webhooks:\n  url: https://shop.example/paygate\n  secret_file: |\n    /run/secrets/webhook\n", "c.yaml:3: webhooks.secret_file: " + strings.Replace(want, "the secret", "the file's name", 1)},
		{"PEM text in a *_file key", "payments:\n  backend: wechatpay\n  wechatpay:\n    mch_private_key_file: |\n      -----BEGIN PRIVATE KEY-----\n      MIIEvSECRET\n      -----END PRIVATE KEY-----\n",
			"c.yaml:4: payments.wechatpay.mch_private_key_file: cannot read the file it names: no such file or directory (the value is PEM text, not a file name)"},
		{"webhooks.secret, |-", webhooks("|-\n    " + secret), ""},
		{"webhooks.secret, >-", webhooks(">-\n    " + secret), ""},
		{"a text that is no secret", "payments:\n  budget:\n    clarification: |\n      Which plan, and how many?\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.src), "c.yaml", envMap(map[string]string{"WEBHOOK_SECRET": secret}))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v; want it to load", err)
			case tc.want != "" && err == nil:
				t.Fatalf("loaded (webhooks.secret %q, store.redis.password %q); want %s", cfg.Webhooks.Secret, cfg.Store.Redis.Password, tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("got %q; want %q", err, tc.want)
			case err != nil && (strings.Contains(err.Error(), "control character") || strings.Contains(err.Error(), "spans lines")):
				t.Fatalf("got %q; want %q alone", err, tc.want)
			case err != nil && strings.Contains(err.Error(), "SECRET"):
				t.Fatalf("the error prints the secret: %v", err)
			}
		})
	}
}
