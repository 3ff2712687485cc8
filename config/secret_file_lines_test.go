package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretFileValueErrorsAtTheFileKey: a problem with a secret read from
// a "*_file" (a line break inside it, a token also used as a client key,
// one too short for a listener others reach) is reported at the "*_file"
// key's line and says the value came from it, because it was reported at
// the line of the mapping holding it ("- name: a", "admin:"): the file's
// key was named nowhere, and an operator looked for a key the file does
// not have.
func TestSecretFileValueErrorsAtTheFileKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	twoLines := write("two-lines", "sk-first-line-0123456789\nsecond line\n")
	clientKey := write("client-key", "sk-client-key-0123456789\n")
	short := write("short", "short\n")
	tests := []struct{ name, src, want string }{
		{"a line break in a client key",
			"clients:\n  - name: a\n    key_file: " + twoLines + "\n",
			"c.yaml:3: clients[0].key (from key_file): holds a line break"},
		{"the admin token is a client's key",
			"clients:\n  - name: a\n    key_file: " + clientKey + "\nadmin:\n  token_file: " + clientKey + "\n",
			"c.yaml:5: admin.token (from token_file): the same as a client key"},
		{"a short admin token on a listener others reach",
			"clients: [{name: a, key: sk-client-key-0123456789}]\nserver:\n  admin_listen: 0.0.0.0:8081\nadmin:\n  token_file: " + short + "\n",
			"c.yaml:5: admin.token (from token_file): 5 characters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "c.yaml", envMap(nil))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("got %v; want an error starting %q", err, tc.want)
			}
			for _, secret := range []string{"sk-first-line", "sk-client-key", "short\n"} {
				if err != nil && strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows the secret %q: %v", secret, err)
				}
			}
		})
	}
}
