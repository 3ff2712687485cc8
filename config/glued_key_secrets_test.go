package config

import (
	"strings"
	"testing"
)

// TestKeyWithItsValueJoinedIsNotPrinted: in a flow mapping, a key and its
// value written with no space after the ':' ({token:sk-…}) are one plain
// scalar to YAML: a key named "token:sk-…" with no value. The error about
// that key printed its name, and with it the secret, in check-config's
// and serve's stderr. An error names such a key up to its first ':', '='
// or blank; a key that holds no secret (a model's name in prices) is named
// whole.
func TestKeyWithItsValueJoinedIsNotPrinted(t *testing.T) {
	const secret = "SECRET0123456789abcdefghij"
	const base = "providers:\n  - name: a\n    base_url: https://a.example/v1\n" +
		"models: [{name: m, targets: [{provider: a, model: x}]}]\n"
	tests := []struct {
		name, src string
		want      string // the error
	}{
		{"the admin token", "admin: {token:" + secret + "}\n",
			`c.yaml:1: admin.token:…: unknown key: a value joined to token by ':' with no space after it reads as part of the key (not shown: it may be a secret); write "token: …"`},
		{"a client key", "clients:\n  - {name: bot, key:" + secret + "}\n",
			`c.yaml:2: clients[0].key:…: unknown key: a value joined to key by ':' with no space after it reads as part of the key (not shown: it may be a secret); write "key: …"`},
		{"the Redis password, twice", "store: {driver: redis, redis: {password:" + secret + ", password:" + secret + "}}\n",
			`c.yaml:1: store.redis.password:…: unknown key: a value joined to password by ':' with no space after it reads as part of the key (not shown: it may be a secret); write "password: …"` + "\n" +
				`c.yaml:1: store.redis.password:…: written twice (first at line 1)`},
		{"a key config does not know", "webhooks: {secrte:" + secret + "}\n",
			`c.yaml:1: webhooks.secrte:…: unknown key (the rest of its name not shown: it may be a secret) (did you mean "secret"?)`},
		{"an api key header", strings.Replace(base, "/v1\n", "/v1\n    headers: {X-Api-Key:"+secret+"}\n", 1),
			"c.yaml:4: providers[0].headers.X-Api-Key:…: not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only; the rest of the name not shown: it may be a secret)"},
		{"an authorization header written as one name", strings.Replace(base, "/v1\n", "/v1\n    headers: {X-Auth Bearer "+secret+"}\n", 1),
			"c.yaml:4: providers[0].headers.X-Auth …: not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only; the rest of the name not shown: it may be a secret)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "c.yaml", envMap(nil))
			if err == nil {
				t.Fatal("got no error")
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("the error prints the secret: %v", err)
			}
			if err.Error() != tc.want {
				t.Errorf("got:\n%v\nwant:\n%s", err, tc.want)
			}
		})
	}

	// A name that holds no secret is named whole: a model's price.
	src := strings.Replace(base, "/v1\n", "/v1\n    prices: {llama3:8b: {input: \"0.1\", input: \"0.2\"}}\n", 1)
	_, err := Parse([]byte(src), "c.yaml", envMap(nil))
	if err == nil || !strings.Contains(err.Error(), "providers[0].prices.llama3:8b.input: written twice") {
		t.Errorf("got %v; want the price's key named whole", err)
	}
}

// TestKeyWithAValueIsNamedWhole: a key that has a value holds no value
// joined to it, so an error names it whole, with the suggestion its whole
// name earns: "base url: https://…", a blank for the '_', was named
// "base …" and suggested "name", hiding the typo and pointing elsewhere.
func TestKeyWithAValueIsNamedWhole(t *testing.T) {
	const base = "providers:\n  - name: a\n    base_url: https://a.example/v1\n" +
		"models: [{name: m, targets: [{provider: a, model: x}]}]\n"
	tests := []struct {
		name, src, want string
	}{
		{"a blank for an underscore", strings.Replace(base, "base_url:", "base url:", 1),
			`c.yaml:3: providers[0].base url: unknown key (did you mean "base_url"?)`},
		{"a blank in a flow mapping", "admin: {\"tok en\": x}\n",
			`c.yaml:1: admin.tok en: unknown key (did you mean "token"?)`},
		{"written twice", "admin: {\"tok en\": x, \"tok en\": y}\n",
			`c.yaml:1: admin.tok en: unknown key (did you mean "token"?)` + "\n" +
				`c.yaml:1: admin.tok en: written twice (first at line 1)`},
		{"a header name with a blank", strings.Replace(base, "/v1\n", "/v1\n    headers: {X-Api Key: v}\n", 1),
			"c.yaml:4: providers[0].headers.X-Api Key: not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "c.yaml", envMap(nil))
			if err == nil || err.Error() != tc.want {
				t.Errorf("got:\n%v\nwant:\n%s", err, tc.want)
			}
		})
	}
}
