package config

import (
	"strings"
	"testing"
)

// TestHeaderValues: the values paygate sends or receives in HTTP headers
// (a provider's key as "Authorization: Bearer", providers[].headers, the
// client keys and the admin token the bots and operators send) must be
// what a header can carry. A ${VAR} whose value ends in a line break (a
// Kubernetes secret made with `echo`, exposed as an env var) loaded as it
// was; serve then failed every attempt to the provider as
// upstream_connect_error, or no bot could send its key. In a secret's key a
// variable's trailing line break is dropped, as a *_file's is; a line
// break or control character left inside, or a header name that is not a
// token, is an error at the key that never prints the value.
func TestHeaderValues(t *testing.T) {
	env := envMap(map[string]string{
		"K": "sk-upstream-123\n", "CRLF": "sk-upstream-123\r\n", "T": "line1\nline2", "INNER": "sk-up\nstream",
		"SP": "sk-bot-key-123 ", "TAB": "sk-bot\tkey",
		// A Kubernetes secret made from a file saved as "UTF-8 with BOM".
		"BOM": "\xef\xbb\xbfsk-upstream-123\r\n",
	})
	const base = "providers:\n  - name: a\n    base_url: https://a.example/v1\n    api_key: sk-a-0123\n" +
		"models: [{name: m, targets: [{provider: a, model: x}]}]\n"
	provider := func(kv string) string { return strings.Replace(base, "api_key: sk-a-0123", kv, 1) }
	const noBreak = "holds a line break or another control character, which an HTTP header cannot carry (value not shown)"
	tests := []struct {
		name, src string
		want      string // the error; "" when it loads
		check     func(*Config) bool
	}{
		{"api_key with a trailing newline", provider("api_key: ${K}"), "",
			func(c *Config) bool { return c.Providers[0].APIKey == "sk-upstream-123" }},
		{"api_key with a trailing CRLF", provider("api_key: \"${CRLF}\""), "",
			func(c *Config) bool { return c.Providers[0].APIKey == "sk-upstream-123" }},
		{"client key with a trailing newline", base + "clients: [{name: bot, key: \"${K}\"}]\n", "",
			func(c *Config) bool { return c.Clients[0].Key == "sk-upstream-123" }},
		{"client key with a byte-order mark", base + "clients: [{name: bot, key: \"${BOM}\"}]\n", "",
			func(c *Config) bool { return c.Clients[0].Key == "sk-upstream-123" }},
		{"admin token with a trailing newline", base + "admin: {token: \"${CRLF}\"}\n", "",
			func(c *Config) bool { return c.Admin.Token == "sk-upstream-123" }},
		{"a secret header with a trailing newline", provider("headers: {api-key: \"${K}\"}"), "",
			func(c *Config) bool { return c.Providers[0].Headers["api-key"] == "sk-upstream-123" }},
		{"a header with a tab", provider("headers: {X-Title: \"${TAB}\"}"), "",
			func(c *Config) bool { return c.Providers[0].Headers["X-Title"] == "sk-bot\tkey" }},
		{"api_key with a newline inside", provider("api_key: ${INNER}"), "c.yaml:4: providers[0].api_key: " + noBreak, nil},
		{"api_key written with a newline", provider("api_key: \"sk-up\\nstream\""), "c.yaml:4: providers[0].api_key: " + noBreak, nil},
		{"client key with a newline inside", base + "clients:\n  - {name: bot, key: \"${INNER}\"}\n", "c.yaml:7: clients[0].key: " + noBreak, nil},
		{"admin token with a NUL", base + "admin:\n  token: \"adm\\0in-0123\"\n", "c.yaml:7: admin.token: " + noBreak, nil},
		{"client key ending in a space", base + "clients: [{name: bot, key: \"${SP}\"}]\n",
			"c.yaml:6: clients[0].key: starts or ends with a space or tab, which HTTP drops from a header (value not shown)", nil},
		{"header value with a newline", provider("headers: {X-Title: \"${T}\"}"), "c.yaml:4: providers[0].headers.X-Title: " + noBreak, nil},
		{"header name with a space", provider("headers: {\"X Bad\": v}"),
			"c.yaml:4: providers[0].headers.X Bad: not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only)", nil},
		{"header name with a colon", provider("headers:\n      \"X-Bad:\": v"),
			"c.yaml:5: providers[0].headers.X-Bad:: not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only)", nil},
		// HTTP header names ignore case: the provider got one of the two
		// values, picked by map order at each start.
		{"one header written twice in two cases", provider("headers: {X-Api-Key: sk-up-one, x-api-key: sk-up-two}"),
			`c.yaml:4: providers[0].headers.x-api-key: written twice, as "X-Api-Key" (line 4) and "x-api-key": HTTP header names ignore case; keep one`, nil},
		{"one header written twice on two lines", provider("headers:\n      x-title: shop\n      X-TITLE: shop"),
			`c.yaml:6: providers[0].headers.X-TITLE: written twice, as "x-title" (line 5) and "X-TITLE": HTTP header names ignore case; keep one`, nil},
		{"one header written three times", provider("headers:\n      X-Title: a\n      x-title: b\n      X-TITLE: c"),
			`c.yaml:6: providers[0].headers.x-title: written twice, as "X-Title" (line 5) and "x-title": HTTP header names ignore case; keep one` + "\n" +
				`c.yaml:7: providers[0].headers.X-TITLE: written twice, as "X-Title" (line 5) and "X-TITLE": HTTP header names ignore case; keep one`, nil},
		{"two headers", provider("headers: {X-Title: shop, X-Api-Key: sk-up-one}"), "",
			func(c *Config) bool { return len(c.Providers[0].Headers) == 2 }},
		{"the default provider's key from the environment", "log: {level: info}\n", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.src), "c.yaml", env)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v; want it to load", err)
			case tc.want == "" && tc.check != nil && !tc.check(cfg):
				t.Errorf("loaded api_key %q, client key %q, admin token %q, headers %q",
					cfg.Providers[0].APIKey, cfg.Clients[0].Key, cfg.Admin.Token, cfg.Providers[0].Headers)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted (api_key %q, client key %q, admin token %q, headers %q); want %s",
					cfg.Providers[0].APIKey, cfg.Clients[0].Key, cfg.Admin.Token, cfg.Providers[0].Headers, tc.want)
			case tc.want != "" && err.Error() != tc.want:
				t.Errorf("got:\n%v\nwant:\n%s", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "sk-up") {
				t.Errorf("the error prints the secret: %v", err)
			}
		})
	}
}

// TestDefaultProviderKeyFromTheEnvironment: the default provider's key from
// PAYGATE_PROVIDER_API_KEY drops a trailing line break like a ${VAR} in
// a secret's key, and one inside is an error naming the variable.
func TestDefaultProviderKeyFromTheEnvironment(t *testing.T) {
	cfg, err := Parse(nil, "(defaults)", envMap(map[string]string{"PAYGATE_PROVIDER_API_KEY": "sk-or-0123\n"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Providers[0].APIKey; got != "sk-or-0123" {
		t.Errorf("api_key %q; want sk-or-0123", got)
	}
	_, err = Parse(nil, "(defaults)", envMap(map[string]string{"OPENROUTER_API_KEY": "sk-or\n0123"}))
	want := "(defaults): providers[0].api_key (from OPENROUTER_API_KEY): holds a line break or another control character, which an HTTP header cannot carry (value not shown)"
	if err == nil || err.Error() != want {
		t.Errorf("got %v; want %s", err, want)
	}
}
