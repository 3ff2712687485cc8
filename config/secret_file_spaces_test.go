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

// TestAPIv3KeyWithSpacesOrLines: WeChat Pay's APIv3 key is 32 letters and
// digits. Read from a file with a space or tab after it, it was refused as
// "got 33" bytes of a key the operator counts 32 characters in; a key cut
// one character short with a space after it (32 bytes) loaded, and no
// notification decrypted. Either is refused as what it is, at the
// apiv3_key_file's line, the value never printed; the mark and CRLF a
// "*_file" key drops still load the key.
func TestAPIv3KeyWithSpacesOrLines(t *testing.T) {
	const key = "0123456789abcdefGHIJKLMNOPqrstuv"
	const refused = "c.yaml:3: payments.wechatpay.apiv3_key (from apiv3_key_file): holds a space, tab or line break (an APIv3 key is 32 letters and digits)"
	tests := []struct {
		name, content string
		want          string // the error; "" when it loads key
	}{
		{"plain", key + "\n", ""},
		{"byte-order mark and CRLF", "\xef\xbb\xbf" + key + "\r\n", ""},
		{"trailing space", key + " \n", refused},
		{"cut short, trailing space", key[:31] + " ", refused},
		{"trailing tab", key + "\t\n", refused},
		{"pasted twice", key + "\n" + key + "\n", refused},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.Repeat("k", i+1))
			if err := os.WriteFile(file, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			src := "payments:\n  wechatpay:\n    apiv3_key_file: " + file + "\n"
			cfg, err := Parse([]byte(src), "c.yaml", envMap(nil))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got %v; want it to load", err)
			case tt.want == "" && cfg.Payments.WeChatPay.APIv3Key != key:
				t.Fatalf("apiv3_key = %q; want %q", cfg.Payments.WeChatPay.APIv3Key, key)
			case tt.want != "" && err == nil:
				t.Fatalf("loaded apiv3_key %q; want %s", cfg.Payments.WeChatPay.APIv3Key, tt.want)
			case tt.want != "" && !strings.HasPrefix(err.Error(), tt.want):
				t.Fatalf("got %q; want it to start with %q", err, tt.want)
			case tt.want != "" && strings.Contains(err.Error(), key[:16]):
				t.Fatalf("the error prints the key: %q", err)
			}
		})
	}
}

// TestHeaderCredentialFileWithSpacesOrLines: a client key, the admin token
// and a provider's key travel in an HTTP header, whose surrounding spaces
// HTTP drops (paygate trims the bearer token it is sent), so a key read
// from a file with a space or tab at an end could never match, and one
// pasted twice on two lines cannot be sent at all. Each is refused at its
// "*_file" key's line, the value never printed; the mark, CRLF and
// trailing blank line a "*_file" key drops still load the intended key.
func TestHeaderCredentialFileWithSpacesOrLines(t *testing.T) {
	const key = "sk-from-a-file-0123456789"
	const edge = "starts or ends with a space or tab, which HTTP drops from a header (value not shown)"
	const lines = "holds a line break or another control character, which an HTTP header cannot carry (value not shown)"
	keys := []struct {
		name, src, at string // src holds %s where the file's path goes
		got           func(*Config) string
	}{
		{"clients[0].key_file", "clients:\n  - name: a\n    key_file: %s\n", "c.yaml:3: clients[0].key (from key_file): ",
			func(c *Config) string { return c.Clients[0].Key }},
		{"admin.token_file", "clients: [{name: a, key: sk-client-key-0123456789}]\nadmin:\n  token_file: %s\n", "c.yaml:3: admin.token (from token_file): ",
			func(c *Config) string { return c.Admin.Token }},
		{"providers[0].api_key_file", "clients: [{name: a, key: sk-client-key-0123456789}]\nproviders:\n  - name: p\n    base_url: http://x\n    api_key_file: %s\nmodels: [{name: m, targets: [{provider: p, model: u}]}]\n",
			"c.yaml:5: providers[0].api_key (from api_key_file): ", func(c *Config) string { return c.Providers[0].APIKey }},
	}
	contents := []struct {
		name, content string
		want          string // the error after the key's path; "" when it loads key
	}{
		{"byte-order mark and CRLF", "\xef\xbb\xbf" + key + "\r\n", ""},
		{"trailing blank line", key + "\n\n", ""},
		{"trailing space", key + " \n", edge},
		{"trailing tab", key + "\t", edge},
		{"pasted twice", key + "\n" + key + "\n", lines},
	}
	dir := t.TempDir()
	n := 0
	for _, k := range keys {
		for _, c := range contents {
			t.Run(k.name+"/"+c.name, func(t *testing.T) {
				n++
				file := filepath.Join(dir, strings.Repeat("h", n))
				if err := os.WriteFile(file, []byte(c.content), 0o600); err != nil {
					t.Fatal(err)
				}
				cfg, err := Parse([]byte(strings.Replace(k.src, "%s", file, 1)), "c.yaml", envMap(nil))
				switch {
				case c.want == "" && err != nil:
					t.Fatalf("got %v; want it to load", err)
				case c.want == "" && k.got(cfg) != key:
					t.Fatalf("loaded %q; want %q", k.got(cfg), key)
				case c.want != "" && err == nil:
					t.Fatalf("loaded %q; want %s%s", k.got(cfg), k.at, c.want)
				case c.want != "" && err.Error() != k.at+c.want:
					t.Fatalf("got %q; want %q", err, k.at+c.want)
				}
			})
		}
	}
}
