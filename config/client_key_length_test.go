package config

import (
	"strings"
	"testing"
)

// TestShortClientKeyOnAReachableListener: a client key is all that stands
// between anyone who reaches server.listen and acting as that bot for any
// user it vouches for (X-WeChat-OpenID): their orders, refund proposals and
// confirmations. Nothing slows a guesser down (every wrong key is a plain
// 401), and a key of a few characters (key: bot1) loaded silently on an
// address other machines reach, where a short admin token is refused. It is
// refused there, as the admin token is, at the key's line without printing
// it; on loopback (a sidecar's bots on the same host) it loads, and the
// built-in development key keeps its own warning.
func TestShortClientKeyOnAReachableListener(t *testing.T) {
	tests := []struct {
		name, listen, key string
		want              string // the error; "" when it loads
	}{
		{"short, reachable", "0.0.0.0:8080", "bot1-key",
			"c.yaml:4: clients[0].key: 8 characters, and server.listen 0.0.0.0:8080 takes connections from other machines: anyone who guesses it acts as this bot for any of its users, their orders and refunds; use at least 16 random characters (openssl rand -hex 16)"},
		{"short, every interface by port alone", ":8080", "k-0123456789abc",
			"c.yaml:4: clients[0].key: 15 characters, and server.listen :8080 takes connections from other machines"},
		{"long enough, reachable", "0.0.0.0:8080", "k-0123456789abcd", ""},
		{"short, loopback", "127.0.0.1:8080", "bot1-key", ""},
		{"the development key, reachable (warned)", "0.0.0.0:8080", DefaultClientKey, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "server:\n  listen: \"" + tt.listen + "\"\nclients:\n  - {name: bot, key: " + tt.key + "}\n"
			loadsOrRefused(t, src, tt.want, func(c *Config) string { return "clients[0].key " + c.Clients[0].Key })
			if _, err := Parse([]byte(src), "c.yaml", envMap(nil)); err != nil && strings.Contains(err.Error(), tt.key) {
				t.Errorf("the error prints the key: %v", err)
			}
		})
	}
}
