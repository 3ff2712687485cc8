package config

import (
	"slices"
	"strings"
	"testing"
)

// TestWeakWebhookSecretRefused: webhooks.secret signs order.paid, on which
// the merchant delivers the goods. A short one (the "changeme" an operator
// types to get going) is guessed offline from one signed event, after which
// anyone can sign order.paid for an order nobody paid. It was taken
// silently. Like an admin token other machines can reach, it is refused
// below 16 characters, at its line; unused (no webhooks.url) or long, it
// loads.
func TestWeakWebhookSecretRefused(t *testing.T) {
	const hook = "webhooks:\n  url: https://m.example/hook\n  secret: "
	long := strings.Repeat("k", 16)
	tests := []struct {
		name, src string
		want      string // the error; "" when it loads
	}{
		{"changeme", hook + "changeme\n", `c.yaml:3: webhooks.secret: 8 characters: anyone who guesses it from one signed event can sign order.paid for an order nobody paid; use at least 16 random characters (openssl rand -hex 32)`},
		{"15 characters", hook + long[:15] + "\n", `c.yaml:3: webhooks.secret: 15 characters:`},
		{"16 characters", hook + long + "\n", ""},
		{"webhooks off", "webhooks:\n  secret: changeme\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loadsOrRefused(t, tt.src, tt.want, func(c *Config) string { return "webhooks.secret " + c.Webhooks.Secret })
		})
	}
}

// TestWeakHashKeyWarned: privacy.hash_key keys the hash that stands for the
// end user at every provider; a short one is guessed offline from one
// user's known hash, and then ties hashes to OpenIDs learned elsewhere. It
// was taken silently. It is warned of at its line, not refused: changing
// the key re-hashes every user, which a running deployment may not want at
// an upgrade, and no money rides on it. Empty (a key generated and kept in
// the store), long, or unused (forward_user other than hash), no warning.
func TestWeakHashKeyWarned(t *testing.T) {
	const want = `c.yaml:2: privacy.hash_key: 8 characters: guessed offline from one user's known hash, it ties the hashes providers see to OpenIDs; use at least 16 random characters (openssl rand -hex 32), or leave it empty for one generated and kept in the store`
	tests := []struct {
		name, src string
		warned    bool
	}{
		{"changeme", "privacy:\n  hash_key: changeme\n", true},
		{"16 characters", "privacy:\n  hash_key: " + strings.Repeat("k", 16) + "\n", false},
		{"empty", "privacy:\n  hash_key: \"\"\n", false},
		{"unused", "privacy:\n  forward_user: drop\n  hash_key: changeme\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.src), "c.yaml", envMap(nil))
			if err != nil {
				t.Fatalf("refused: %v; want it to load", err)
			}
			got := slices.ContainsFunc(cfg.Warnings, func(w string) bool { return strings.Contains(w, "privacy.hash_key") })
			if got != tt.warned || tt.warned && !slices.Contains(cfg.Warnings, want) {
				t.Errorf("warnings %q; want the hash key warned of: %v (%s)", cfg.Warnings, tt.warned, want)
			}
		})
	}
}

// TestWebhookSecretNotAClientKey: webhooks.secret signs order.paid, on
// which the merchant delivers the goods. One ${VAR} used for a client's key
// and for the secret (the slip admin.token is already refused for) handed
// that bot the key to sign order.paid for an order nobody paid, and it
// loaded silently. It is refused at the secret's line, without printing
// either value; a secret of its own, or webhooks off, loads.
func TestWebhookSecretNotAClientKey(t *testing.T) {
	const shared = "sk-shared-0123456789"
	const clients = "clients:\n  - {name: a, key: sk-a-0123456789abc}\n  - {name: b, key: " + shared + "}\n"
	tests := []struct {
		name, src string
		want      string // the error; "" when it loads
	}{
		{"the same as a client key", clients + "webhooks:\n  url: https://m.example/hook\n  secret: " + shared + "\n",
			"c.yaml:6: webhooks.secret: the same as a client key (clients[1].key): that bot could sign order.paid for an order nobody paid; give the webhooks a secret of its own"},
		{"a secret of its own", clients + "webhooks:\n  url: https://m.example/hook\n  secret: whsec-0123456789abcdef\n", ""},
		{"webhooks off", clients + "webhooks:\n  secret: " + shared + "\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loadsOrRefused(t, tt.src, tt.want, func(c *Config) string { return "webhooks.secret " + c.Webhooks.Secret })
			if _, err := Parse([]byte(tt.src), "c.yaml", envMap(nil)); err != nil && strings.Contains(err.Error(), shared) {
				t.Errorf("the error prints the secret: %v", err)
			}
		})
	}
}
