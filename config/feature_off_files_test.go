package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretFileOfAFeatureOff: a "*_file" secret of a feature the config
// turns off (store.redis with the embedded store, webhooks with no url, the
// admin API with admin_listen off, the user hash with forward_user drop or
// keep) is not read, as the feature's other keys
// are not checked, because a missing file there refused the whole config:
// an operator moving a deployment to the embedded store, or a staging copy
// without the webhook's or Redis's secret mounted, could not start paygate
// over a secret it would never use. With the feature on, the file is read
// and a missing one is still an error at its key.
func TestSecretFileOfAFeatureOff(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "not-mounted")
	const client = "clients: [{name: a, key: sk-client-key-0123456789}]\n"
	tests := []struct{ name, src, wantErr string }{
		{"redis password with the embedded store",
			client + "store:\n  driver: embedded\n  redis:\n    password_file: " + missing + "\n", ""},
		{"redis password with the default store",
			client + "store:\n  redis:\n    password_file: " + missing + "\n", ""},
		{"webhook secret with no url",
			client + "webhooks:\n  url: \"\"\n  secret_file: " + missing + "\n", ""},
		{"admin token with the admin API off",
			client + "server: {admin_listen: \"off\"}\nadmin:\n  token_file: " + missing + "\n", ""},
		{"user hash key with forward_user drop",
			client + "privacy:\n  forward_user: drop\n  hash_key_file: " + missing + "\n", ""},
		{"user hash key with forward_user keep",
			client + "privacy:\n  forward_user: keep\n  hash_key_file: " + missing + "\n", ""},
		{"user hash key with forward_user hash",
			client + "privacy:\n  forward_user: hash\n  hash_key_file: " + missing + "\n",
			"c.yaml:4: privacy.hash_key_file: cannot read the file it names"},
		{"user hash key with the default forward_user",
			client + "privacy:\n  hash_key_file: " + missing + "\n",
			"c.yaml:3: privacy.hash_key_file: cannot read the file it names"},
		{"redis password with the redis store",
			client + "store:\n  driver: redis\n  redis:\n    password_file: " + missing + "\n",
			"c.yaml:5: store.redis.password_file: cannot read the file it names"},
		{"webhook secret with a url",
			client + "webhooks:\n  url: https://merchant.example.com/hooks\n  secret_file: " + missing + "\n",
			"c.yaml:4: webhooks.secret_file: cannot read the file it names"},
		{"admin token with the admin API on",
			client + "admin:\n  token_file: " + missing + "\n",
			"c.yaml:3: admin.token_file: cannot read the file it names"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "c.yaml", envMap(nil))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("refused: %v; want it accepted, the feature being off", err)
			case tc.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.wantErr)):
				t.Errorf("got %v; want an error starting %q", err, tc.wantErr)
			}
		})
	}
}
