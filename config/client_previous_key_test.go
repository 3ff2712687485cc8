package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientPreviousKey: a client's previous_key, a rotation's outgoing
// key, acts as the client as surely as its key, so it is held to the same
// rules: not the client's own key, nor another client's, nor a provider's
// key, nor the admin token or the webhook secret, nor short on a reachable
// listener; and none of those errors prints it.
func TestClientPreviousKey(t *testing.T) {
	const (
		key  = "sk-new-0123456789abcdef"
		prev = "sk-old-0123456789abcdef"
	)
	head := "server: {listen: \"0.0.0.0:8080\"}\n"
	tests := []struct {
		name, src string
		want      string // the error's start; "" when it loads
	}{
		{"both keys", head + "clients:\n  - {name: bot, key: " + key + ", previous_key: " + prev + "}\n", ""},
		{"the client's own key", head + "clients:\n  - {name: bot, key: " + key + ", previous_key: " + key + "}\n",
			"c.yaml:3: clients[0].previous_key: the same as this client's key"},
		{"another client's key", head + "clients:\n  - {name: a, key: " + prev + "}\n  - {name: b, key: " + key + ", previous_key: " + prev + "}\n",
			"c.yaml:4: clients[1].previous_key: another client's key"},
		{"another client's previous_key", head + "clients:\n  - {name: a, key: sk-a-0123456789abcdef, previous_key: " + prev + "}\n  - {name: b, key: " + key + ", previous_key: " + prev + "}\n",
			"c.yaml:4: clients[1].previous_key: the same as clients[0].previous_key"},
		{"another client's key, listed after", head + "clients:\n  - {name: b, key: " + key + ", previous_key: " + prev + "}\n  - {name: a, key: " + prev + "}\n",
			"c.yaml:4: clients[1].key: the same as clients[0].previous_key"},
		{"a provider's key", head + "clients:\n  - {name: bot, key: " + key + ", previous_key: " + prev + "}\nproviders: [{name: p, base_url: \"https://api.example.com/v1\", api_key: " + prev + "}]\n",
			"c.yaml:3: clients[0].previous_key: the same as providers[0].api_key"},
		{"the admin token", head + "clients:\n  - {name: bot, key: " + key + ", previous_key: " + prev + "}\nadmin: {token: " + prev + "}\n",
			"c.yaml:4: admin.token: the same as a client key"},
		{"the webhook secret", head + "clients:\n  - {name: bot, key: " + key + ", previous_key: " + prev + "}\nwebhooks: {url: \"https://shop.example.com/hooks\", secret: " + prev + "}\n",
			"c.yaml:4: webhooks.secret: the same as a client key (clients[0].previous_key)"},
		{"short on a reachable listener", head + "clients:\n  - {name: bot, key: " + key + ", previous_key: bot1-old}\n",
			"c.yaml:3: clients[0].previous_key: 8 characters, and server.listen 0.0.0.0:8080 takes connections from other machines"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loadsOrRefused(t, tt.src, tt.want, func(c *Config) string { return "previous_key " + c.Clients[0].PreviousKey })
			if _, err := Parse([]byte(tt.src), "c.yaml", envMap(nil)); err != nil && (strings.Contains(err.Error(), prev) || strings.Contains(err.Error(), "bot1-old")) {
				t.Errorf("the error prints the key: %v", err)
			}
		})
	}
	t.Run("from a file, and in Secrets", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "old-key")
		if err := os.WriteFile(f, []byte(prev+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Parse([]byte("clients:\n  - {name: bot, key: "+key+", previous_key_file: \""+f+"\"}\n"), "c.yaml", envMap(nil))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Clients[0].PreviousKey != prev {
			t.Errorf("previous_key from the file: %q; want %q", cfg.Clients[0].PreviousKey, prev)
		}
		found := false
		for _, s := range cfg.Secrets() {
			found = found || s == prev
		}
		if !found {
			t.Error("Secrets() leaves out previous_key: the log would show it")
		}
	})
}
