package config

import (
	"strings"
	"testing"
)

// TestYAMLErrorsHaveALine: some of yaml.v3's errors carry no "line N:"
// (its reader's, an unknown alias, and a syntax error on line 1, which it
// numbers 0 and leaves out); the loader finds the line in the file, so
// every error starts with file:line (SPEC 2.1).
func TestYAMLErrorsHaveALine(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"invalid UTF-8", "log:\n  level: info\nserver:\n  listen: \"\xff\xfe\"\n", "x.yaml:4: invalid leading UTF-8 octet"},
		{"invalid UTF-8 in a comment", "log:\n  level: info # caf\xe9\n", "x.yaml:2: incomplete UTF-8 octet sequence"},
		{"a control character", "log:\n  level: info\nserver:\n  listen: \"a\x01b\"\n", "x.yaml:4: control characters are not allowed"},
		{"DEL", "log:\n  level: info\x7f\n", "x.yaml:2: control characters are not allowed"},
		{"an unknown alias", "log:\n  level: info\nserver:\n  listen: *nowhere\n",
			"x.yaml:4: an alias (*…) to no anchor defined before it (name not shown: it may be a secret; quote a value that starts with '*')"},
		{"an unknown alias in a flow list", "log: {level: info}\nclients: [*a1, *b-2]\n",
			"x.yaml:2: an alias (*…) to no anchor defined before it (name not shown: it may be a secret; quote a value that starts with '*')"},
		{"an unknown alias after a comment naming it", "# listen: *nowhere\nlog:\n  level: info\nserver:\n  listen: *nowhere\n",
			"x.yaml:5: an alias (*…) to no anchor defined before it (name not shown: it may be a secret; quote a value that starts with '*')"},
		{"a syntax error on line 1", "log: \"\\xq\"\n", "x.yaml:1: did not find expected hexdecimal number"},
		{"a syntax error further down", "log: {level: info}\nserver:\n  listen: \"\\xq\"\n", "x.yaml:3: did not find expected hexdecimal number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "x.yaml", envMap(nil))
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v; want %s", err, tc.want)
			}
		})
	}
}

// TestValueStartingWithAYAMLIndicator: a generated password written
// unquoted may start with a character YAML reads as syntax. "*…" is an
// alias: the error ("unknown anchor '…' referenced") printed the secret
// but for its first character, with no line. "!…" is a tag: the value
// loaded as "" without a word (the admin token: the admin API then
// answers 401 to the operator who set it). "&…" alone is an anchor on
// nothing, the same silent "". Each is an error at the key's line that
// does not print the value.
func TestValueStartingWithAYAMLIndicator(t *testing.T) {
	const base = "providers:\n  - name: a\n    base_url: https://a.example/v1\n    api_key: sk-a-0123\n" +
		"models:\n  - name: m\n    targets: [{provider: a, model: x}]\n"
	const tag = "starts with a YAML tag (!…), which paygate does not read: quote a value that starts with '!' (value not shown)"
	tests := []struct{ name, src, secret, want string }{
		{"an alias", base + "admin:\n  token: *S3cretPassW0rd\n", "S3cretPassW0rd",
			"x.yaml:9: an alias (*…) to no anchor defined before it (name not shown: it may be a secret; quote a value that starts with '*')"},
		{"a tag", base + "admin:\n  token: !Adm1nSecretTok\n", "Adm1nSecretTok", "x.yaml:9: admin.token: " + tag},
		{"a tag and more", base + "admin:\n  token: !Adm1n SecretTok\n", "Adm1n", "x.yaml:9: admin.token: " + tag},
		{"a tag in a list", base + "clients:\n  - name: bot\n    key: !K3y-0123456\n", "K3y", "x.yaml:10: clients[0].key: " + tag},
		{"a tag on a mapping", base + "server: !srv {listen: \"127.0.0.1:8080\"}\n", "srv", "x.yaml:8: server: " + tag},
		{"a verbatim tag", base + "admin:\n  token: !<tag:S3cret> x\n", "S3cret", "x.yaml:9: admin.token: " + tag},
		{"an anchor on nothing", base + "admin:\n  token: &S3cretPassW0rd\n", "S3cretPassW0rd",
			"x.yaml:9: admin.token: an anchor (&…) with no value: quote a value that starts with '&' (value not shown)"},
		{"a standard tag that does not fit", base + "admin:\n  token: !!int S3cretPassW0rd\n", "S3cret",
			"x.yaml:9: admin.token: cannot decode !!str as a !!int"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.src), "x.yaml", envMap(nil))
			if err == nil {
				t.Fatalf("accepted (admin token %q); want %s", cfg.Admin.Token, tc.want)
			}
			if strings.Contains(err.Error(), tc.secret) {
				t.Errorf("the error prints the secret: %v", err)
			}
			if err.Error() != tc.want {
				t.Errorf("got:\n%v\nwant:\n%s", err, tc.want)
			}
		})
	}
	// Standard tags and anchors with a value are YAML as usual.
	cfg, err := Parse([]byte(base+"admin:\n  token: !!str 0123456789\nwebhooks:\n  secret: &s wh-secret-0123\nprivacy:\n  hash_key: *s\n"), "x.yaml", envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Admin.Token != "0123456789" || cfg.Privacy.HashKey != "wh-secret-0123" {
		t.Errorf("admin token %q, hash key %q", cfg.Admin.Token, cfg.Privacy.HashKey)
	}
}
