package config

import (
	"strings"
	"testing"
)

// TestBearerCredentialEdgeSpaces: a client key, a client's previous_key
// and the admin token are compared with the bearer token a request sends,
// which paygate reads with its white space at the ends dropped (any
// Unicode space, not only the space and tab HTTP drops), and which the
// console's sign-in trims the same way (String.prototype.trim, U+FEFF
// too). A key or token ending in a no-break space (copied from a web page
// or a document) or an ideographic space (typed with a CJK input method)
// loaded as "ok", and then no request could ever match it: the operator
// was told "a valid admin token is required" for the token the config
// held, and a bot was refused with the key it was given. It is refused at
// its key, the value never printed; one inside the value still loads.
func TestBearerCredentialEdgeSpaces(t *testing.T) {
	const base = "providers:\n  - name: a\n    base_url: https://a.example/v1\n    api_key: sk-a-0123\n" +
		"models: [{name: m, targets: [{provider: a, model: x}]}]\n"
	const (
		end     = "ends with white space other than a space or tab (a no-break or ideographic space, say), which paygate drops from a bearer token, so no request could match it (value not shown)"
		console = "starts or ends with white space other than a space or tab (a no-break or ideographic space, say), which the console drops from the token typed at its sign-in, so it could not sign in (value not shown)"
	)
	env := envMap(map[string]string{
		"NBSP": "sk-bot-key-0123456789\u00a0", "IDEO": "adm-token-0123456789\u3000", "LEAD": "\u3000adm-token-0123456789",
		"EM": "sk-old-key-0123456789\u2003", "ZWNBSP": "adm-token-0123456789\ufeff", "INNER": "adm-token\u30000123456789",
		"KEYLEAD": "\u3000sk-bot-key-0123456789", "KEYZW": "sk-bot-key-0123456789\ufeff",
	})
	tests := []struct {
		name, src string
		want      string // the error; "" when it loads
	}{
		{"client key ending in a no-break space", base + "clients: [{name: bot, key: \"${NBSP}\"}]\n",
			"c.yaml:6: clients[0].key: " + end},
		{"previous key ending in an em space", base + "clients: [{name: bot, key: sk-bot-key-new-0123456789, previous_key: \"${EM}\"}]\n",
			"c.yaml:6: clients[0].previous_key: " + end},
		{"admin token ending in an ideographic space", base + "admin: {token: \"${IDEO}\"}\n",
			"c.yaml:6: admin.token: " + end},
		{"admin token starting with an ideographic space", base + "admin: {token: \"${LEAD}\"}\n",
			"c.yaml:6: admin.token: " + console},
		{"admin token ending in a zero-width no-break space", base + "admin: {token: \"${ZWNBSP}\"}\n",
			"c.yaml:6: admin.token: " + console},
		// A byte-order mark before a ${VAR}'s or a file's value is dropped
		// as the file's encoding; one written in the YAML stays, and the
		// console's sign-in trims it.
		{"admin token written starting with a zero-width no-break space", base + "admin: {token: \"\\uFEFFadm-token-0123456789\"}\n",
			"c.yaml:6: admin.token: " + console},
		// A bot sends its key with no console in between: paygate drops
		// white space at the token's end only (the header's), and no
		// U+FEFF, so these match and still load.
		{"client key starting with an ideographic space", base + "clients: [{name: bot, key: \"${KEYLEAD}\"}]\n", ""},
		{"client key ending in a zero-width no-break space", base + "clients: [{name: bot, key: \"${KEYZW}\"}]\n", ""},
		{"admin token with an ideographic space inside", base + "admin: {token: \"${INNER}\"}\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "c.yaml", env)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v; want it to load", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted; want %s", tc.want)
			case tc.want != "" && err.Error() != tc.want:
				t.Errorf("got:\n%v\nwant:\n%s", err, tc.want)
			}
			if err != nil && (strings.Contains(err.Error(), "sk-") || strings.Contains(err.Error(), "adm-")) {
				t.Errorf("the error prints the secret: %v", err)
			}
		})
	}
}
