package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWebhookSecretWithSpacesOrLines: webhooks.secret signs every event,
// and the merchant verifies with the secret as it was handed over. Read
// from a file an editor left a trailing space or tab in, or one with the
// secret pasted twice on two lines, it loaded as it was: paygate signed
// under a secret the merchant never held and every event failed
// verification at the merchant's endpoint, while paygate started without a
// word. It is refused at the secret_file's line, the value never printed;
// what a "*_file" key drops (a byte-order mark, CRLF, a trailing blank
// line) still loads the intended secret, and so does a Kubernetes secret
// mount (a symlink through ..data).
func TestWebhookSecretWithSpacesOrLines(t *testing.T) {
	const secret = "whsec-0123456789abcdefXYZ"
	const refused = "c.yaml:4: webhooks.secret (from secret_file): starts or ends with a space or tab, or holds a line break (pasted twice?)"
	dir := t.TempDir()
	// A Kubernetes secret volume: secret -> ..data/secret -> ..2026_12_05/secret.
	if err := os.MkdirAll(filepath.Join(dir, "k8s", "..2026_12_05"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "k8s", "..2026_12_05", "secret"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..2026_12_05", filepath.Join(dir, "k8s", "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "secret"), filepath.Join(dir, "k8s", "secret")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, content string
		want          string // the error; "" when it loads secret
	}{
		{"plain", secret + "\n", ""},
		{"byte-order mark and CRLF", "\xef\xbb\xbf" + secret + "\r\n", ""},
		{"trailing blank line", secret + "\n\n", ""},
		{"trailing space", secret + " \n", refused},
		{"trailing tab", secret + "\t", refused},
		{"leading space", " " + secret + "\n", refused},
		{"pasted twice", secret + "\n" + secret + "\n", refused},
		{"a line of spaces after it", secret + "\n \n", refused},
		{"Kubernetes mount", "", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, "k8s", "secret")
			if tt.content != "" {
				file = filepath.Join(dir, strings.Repeat("s", i+1))
				if err := os.WriteFile(file, []byte(tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			src := "webhooks:\n  url: https://m.example/hook\n  # the merchant's copy\n  secret_file: " + file + "\n"
			cfg, err := Parse([]byte(src), "c.yaml", envMap(nil))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got %v; want it to load", err)
			case tt.want == "" && cfg.Webhooks.Secret != secret:
				t.Fatalf("webhooks.secret = %q; want %q", cfg.Webhooks.Secret, secret)
			case tt.want != "" && err == nil:
				t.Fatalf("loaded webhooks.secret %q; want %s", cfg.Webhooks.Secret, tt.want)
			case tt.want != "" && !strings.HasPrefix(err.Error(), tt.want):
				t.Fatalf("got %q; want it to start with %q", err, tt.want)
			case tt.want != "" && strings.Contains(err.Error(), "whsec-"):
				t.Fatalf("the error prints the secret: %q", err)
			}
		})
	}
}
