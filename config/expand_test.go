package config

import "testing"

// TestDollarBeforeANameIsRefused: the loader expands ${NAME} and
// ${NAME:-default} only, and "$$" is the escape for a literal "$". A value
// that starts with "$VAR" (shell style) and a nested default "${A:-${B}}"
// (compose style) used to load as literal text, into secrets too:
// admin.token became the text "$ADMIN_TOKEN", the token that approves
// orders. Both are refused at the key, and for a secret's key without
// printing the value. A "$" before a name later in a value stays text
// (TestDollarAsText).
func TestDollarBeforeANameIsRefused(t *testing.T) {
	env := envMap(map[string]string{"ADMIN_TOKEN": "adm-0123456789", "OPENROUTER_API_KEY": "sk-or-real-0123", "HOST": "10.0.0.1"})
	tests := []struct{ name, src, want string }{
		{"$VAR in a secret", "admin: {token: $ADMIN_TOKEN}\n",
			"c.yaml:1: admin.token: a $ before a name at character 1 of the value (not shown: a secret; write ${NAME} for a variable, $$ for a literal $)"},
		{"$VAR elsewhere", "server: {listen: \"$HOST:8080\"}\n",
			`c.yaml:1: server.listen: $HOST is not expanded: write ${HOST} for a variable, or $$ for a literal $, in "$HOST:8080"`},
		{"a nested default in a secret", "providers:\n  - name: p\n    base_url: http://x\n    api_key: ${PAYGATE_KEY:-${OPENROUTER_API_KEY}}\n" +
			"models: [{name: m, targets: [{provider: p, model: u}]}]\n",
			"c.yaml:4: providers[0].api_key: a ${ or $ before a name inside a default at character 16 of the value (not shown: a secret; a default is text: write $$ for a literal $)"},
		{"$VAR in a default", "server:\n  listen: \"${LISTEN:-$HOST:8080}\"\n",
			`c.yaml:2: server.listen: a ${ or $ before a name inside a default is not expanded (a default is text: write $$ for a literal $) in "${LISTEN:-$HOST:8080}"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.src), "c.yaml", env)
			if err == nil {
				t.Fatalf("accepted (admin token %q, listen %q, api_key %q); want %s", cfg.Admin.Token, cfg.Server.Listen, cfg.Providers[0].APIKey, tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("got:\n%v\nwant:\n%s", err, tc.want)
			}
		})
	}
}

// TestDollarAsText: a "$" that starts no name, or one within a value's
// text, stays text; "$$" is a "$", in a default too.
func TestDollarAsText(t *testing.T) {
	for _, tc := range []struct{ value, want string }{
		{"US$", "US$"},
		{"pa$5word", "pa$5word"},
		{"$", "$"},
		// Text written before the loader refused $NAME keeps loading.
		{"tok-$ADMIN_TOKEN", "tok-$ADMIN_TOKEN"},
		{"Zx9$kLm2Qp", "Zx9$kLm2Qp"},
		{"Prices are in $USD.", "Prices are in $USD."},
		{"${UNSET:-sk-pay$gate}", "sk-pay$gate"},
		{"$-x $.y", "$-x $.y"},
		{"$$HOME", "$HOME"},
		{"a$${B}", "a${B}"},
		{"${UNSET:-a$$b}", "a$b"},
		{"${UNSET:-US$}", "US$"},
	} {
		cfg, err := Parse([]byte("admin: {token: \""+tc.value+"\"}\n"), "c.yaml", envMap(nil))
		if err != nil {
			t.Errorf("%q: %v", tc.value, err)
			continue
		}
		if cfg.Admin.Token != tc.want {
			t.Errorf("%q loaded as %q; want %q", tc.value, cfg.Admin.Token, tc.want)
		}
	}
}
