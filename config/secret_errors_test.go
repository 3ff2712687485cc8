package config

import (
	"reflect"
	"strings"
	"testing"
)

// TestErrorsNeverPrintSecrets: check-config's and serve's start-up errors
// end up in CI output and crash-loop logs, so an error about a secret's key
// says what is wrong, and where in the value, but never the value. Two
// slips lead there: the secret itself given to a *_file key (the env var
// holds the key, not a path: easy with Docker and Kubernetes secrets),
// and a literal secret that contains "${" (generated passwords with
// symbols).
func TestErrorsNeverPrintSecrets(t *testing.T) {
	const (
		key = "sk-or-v1-SECRET0123456789abcdef"
		pem = "-----BEGIN PRIVATE KEY-----\nMIIEvSECRETSECRET\n-----END PRIVATE KEY-----\n"
	)
	env := envMap(map[string]string{"OPENROUTER_API_KEY": key, "WECHATPAY_KEY": pem})
	provider := func(kv string) string {
		return "providers:\n  - name: openrouter\n    base_url: https://openrouter.ai/api/v1\n    " + kv + "\n"
	}
	tests := []struct {
		name, src string
		secret    string // never in the error
		want      string // the error
	}{
		{"the key in a *_file key", provider("api_key_file: ${OPENROUTER_API_KEY}"), key,
			"c.yaml:4: providers[0].api_key_file: cannot read the file it names: no such file or directory (the value has no '/': it looks like a key, not a path)"},
		{"the key in a key file's key", "payments:\n  backend: simulator\n  wechatpay:\n    apiv3_key_file: " + key + "\n", key,
			"c.yaml:4: payments.wechatpay.apiv3_key_file: cannot read the file it names: no such file or directory (the value has no '/': it looks like a key, not a path)"},
		{"PEM text in the private key's *_file key",
			"payments:\n  backend: wechatpay\n  wechatpay:\n    mch_id: \"1900000001\"\n    app_id: wx1\n    mch_cert_serial: S\n" +
				"    apiv3_key: \"0123456789abcdef0123456789abcdef\"\n    notify_url: \"https://pay.example.com/n\"\n" +
				"    public_key_id: P\n    public_key_file: /nonexistent/pub.pem\n    mch_private_key_file: ${WECHATPAY_KEY}\n",
			"SECRETSECRET",
			"c.yaml:10: payments.wechatpay.public_key_file: cannot read the file it names: no such file or directory\n" + // a path: no hint
				"c.yaml:11: payments.wechatpay.mch_private_key_file: cannot read the file it names: no such file or directory (the value is PEM text, not a file name)"},
		{"a literal secret with ${", "store:\n  driver: redis\n  redis:\n    password: \"Zq8${k!pR2-SECRET-pw\"\n", "SECRET-pw",
			"c.yaml:4: store.redis.password: unterminated ${ at character 4 of the value (not shown: a secret; write $$ for a literal $)"},
		{"a literal secret with a bad ${name}", "admin:\n  token: \"tök${k!SECRET}-x\"\n", "SECRET",
			"c.yaml:2: admin.token: bad variable name in ${…} at character 4 of the value (not shown: a secret; write $$ for a literal $)"},
		{"a ${ in a *_file key", "webhooks:\n  secret_file: /run/SECRET${x\n", "SECRET",
			"c.yaml:2: webhooks.secret_file: unterminated ${ at character 12 of the value (not shown: a secret; write $$ for a literal $)"},
		{"a credential header", provider("headers: {X-Api-Key: \"ab${SECRET\"}"), "SECRET",
			"c.yaml:4: providers[0].headers.X-Api-Key: unterminated ${ at character 3 of the value (not shown: a secret; write $$ for a literal $)"},
		{"a webhook URL with a token, wrong scheme", "webhooks:\n  url: \"htps://hooks.example.com/x?token=SECRET\"\n  secret: s-long-enough-to-sign\n", "SECRET",
			`c.yaml:2: webhooks.url: not an http(s) URL: scheme "htps"`},
		{"a webhook URL with a token, unparsable", "webhooks:\n  url: \"https://hooks.example.com:port/x?token=SECRET\"\n  secret: s-long-enough-to-sign\n", "SECRET",
			`c.yaml:2: webhooks.url: not a URL: invalid port after host (value not shown: it may hold a token)`},
		{"a misspelt secret key", "admin:\n  tokn: \"ab${SECRET\"\n", "SECRET",
			"c.yaml:2: admin.tokn: unterminated ${ at character 3 of the value (not shown: a secret; write $$ for a literal $)\n" +
				`c.yaml:2: admin.tokn: unknown key (did you mean "token"?)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "c.yaml", env)
			if err == nil {
				t.Fatal("got no error")
			}
			if strings.Contains(err.Error(), tc.secret) {
				t.Errorf("the error prints the secret: %v", err)
			}
			if err.Error() != tc.want {
				t.Errorf("got:\n%v\nwant:\n%s", err, tc.want)
			}
		})
	}
}

// TestErrorsQuoteOtherValues: a key that holds no secret keeps its value in
// the error, which shows the operator what a ${VAR} expanded to.
func TestErrorsQuoteOtherValues(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"a plain key", "server:\n  listen: \"host${PORT\"\n", `c.yaml:2: server.listen: unterminated ${ in "host${PORT"`},
		{"a header that is no credential", "providers:\n  - name: p\n    base_url: http://x\n    headers: {X-Title: \"a${b!}\"}\n",
			`c.yaml:4: providers[0].headers.X-Title: bad variable name "b!" in "a${b!}"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "c.yaml", envMap(nil))
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v; want %s", err, tc.want)
			}
		})
	}
}

// TestSecretKey: which key paths hold a value no error may print.
func TestSecretKey(t *testing.T) {
	tests := []struct {
		path   string
		secret bool
	}{
		{"clients[0].key", true},
		{"clients[12].key_file", true},
		{"clients[0].name", false},
		{"admin.token", true},
		{"store.redis.password", true},
		{"store.redis.username", false},
		{"store.redis.addrs[0]", false},
		{"providers[0].api_key", true},
		{"providers[0].base_url", false},
		{"providers[0].headers.Authorization", true},
		{"providers[0].headers.api-key", true},
		{"providers[0].headers.x.auth.v2", true},
		{"providers[0].headers.X-Title", false},
		{"providers[0].prices.gpt-4.1.input", false},
		{"payments.wechatpay.apiv3_key", true},
		{"payments.wechatpay.mch_private_key_file", true},
		{"payments.wechatpay.platform_cert_files[1]", true},
		{"payments.wechatpay.mch_id", false},
		{"webhooks.secret", true},
		{"webhooks.url", false},
		{"privacy.hash_key", true},
		{"server.listen", false},
		{"server.lisen", true}, // unknown: perhaps a misspelt secret
		{"admin.tokn", true},
	}
	for _, tc := range tests {
		if got := secretKey(tc.path); got != tc.secret {
			t.Errorf("secretKey(%q) = %v; want %v", tc.path, got, tc.secret)
		}
	}
}

// TestSecretKeyCoversTaggedFields: every field tagged secret:"true" (what
// Secrets hands the logger) is a secret to the errors too, so a new secret
// needs its tag only.
func TestSecretKeyCoversTaggedFields(t *testing.T) {
	var walk func(t reflect.Type, path string)
	walk = func(typ reflect.Type, path string) {
		for typ.Kind() == reflect.Slice || typ.Kind() == reflect.Pointer {
			typ, path = typ.Elem(), path+"[0]"
		}
		if typ.Kind() != reflect.Struct {
			return
		}
		for name, f := range yamlFields(typ) {
			p := childPath(path, name)
			if f.Tag.Get("secret") == "true" && !secretKey(p) {
				t.Errorf("%s is tagged secret but secretKey says it is not", p)
			}
			walk(f.Type, p)
		}
	}
	walk(reflect.TypeOf(Config{}), "")
}

// TestShapeErrorsNeverPrintTheValue: a single value where a list or a
// mapping belongs is most often a ${VAR} meant for a key inside it
// (clients: ${PAYGATE_CLIENT_KEY}, headers: ${API_KEY}). yaml's error for it
// quoted the value's first bytes ("cannot unmarshal !!str `sk-live...`"),
// a whole short secret, at a key that is no secret's own. No shape error
// prints the value, whatever the key.
func TestShapeErrorsNeverPrintTheValue(t *testing.T) {
	const secret = "sk-live-Zq9"
	env := envMap(map[string]string{"K": secret})
	const models = "models:\n  - name: m\n    targets: [{provider: p, model: x}]\n"
	provider := func(kv string) string {
		return "providers:\n  - name: p\n    base_url: http://x/v1\n    " + kv + "\n" + models
	}
	const hidden = " (value not shown: it may be a secret)"
	tests := []struct{ name, src, want string }{
		{"clients", "clients: ${K}\n", "c.yaml:1: clients: want a list, not a single value" + hidden},
		{"clients, a short value", "clients: sk-1\n", "c.yaml:1: clients: want a list, not a single value" + hidden},
		{"a provider's headers", provider("headers: ${K}"), "c.yaml:4: providers[0].headers: want a mapping of keys, not a single value" + hidden},
		{"a provider's prices", provider("prices: ${K}"), "c.yaml:4: providers[0].prices: want a mapping of keys, not a single value" + hidden},
		{"a provider's drop_fields", provider("drop_fields: ${K}"), "c.yaml:4: providers[0].drop_fields: want a list, not a single value" + hidden},
		{"a client's allowed_skus", "clients:\n  - {name: b, key: k-0123, allowed_skus: \"${K}\"}\n",
			"c.yaml:2: clients[0].allowed_skus: want a list, not a single value" + hidden},
		{"store.redis.addrs", "store:\n  redis:\n    addrs: ${K}\n", "c.yaml:3: store.redis.addrs: want a list, not a single value" + hidden},
		{"a list for a mapping", provider("headers: [a, b]"), "c.yaml:4: providers[0].headers: want a mapping of keys, not a list"},
		{"a mapping for a list", "clients: {a: b}\n", "c.yaml:1: clients: want a list, not a mapping"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "c.yaml", env)
			if err == nil {
				t.Fatal("got no error")
			}
			if strings.Contains(err.Error(), "sk-") {
				t.Errorf("the error prints the value: %v", err)
			}
			if err.Error() != tc.want {
				t.Errorf("got:\n%v\nwant:\n%s", err, tc.want)
			}
		})
	}
}
