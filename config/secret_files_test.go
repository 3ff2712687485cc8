package config

import (
	"os"
	"path/filepath"
	"testing"
)

// TestEmptySecretFile: a "*_file" naming an empty file (a secret mount that
// did not fill) used to read as "unset": admin.token_file turned the admin
// API off, privacy.hash_key_file fell back to the store's generated key,
// and clients[].key_file was reported as "key: required". It is an error
// at the "*_file" key; a file holding only a line break is empty too.
func TestEmptySecretFile(t *testing.T) {
	dir := t.TempDir()
	empty, newline := filepath.Join(dir, "empty"), filepath.Join(dir, "newline")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(newline, []byte("\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const msg = ": the file it names is empty (a secret mount that did not fill?)"
	tests := []struct{ src, want string }{
		{"admin:\n  token_file: " + empty + "\n", "c.yaml:2: admin.token_file" + msg},
		{"privacy: {hash_key_file: " + newline + "}\n", "c.yaml:1: privacy.hash_key_file" + msg},
		{"clients:\n  - name: a\n    key_file: " + empty + "\n", "c.yaml:3: clients[0].key_file" + msg},
		{"providers:\n  - name: p\n    base_url: http://x\n    api_key_file: " + newline + "\nmodels: [{name: m, targets: [{provider: p, model: u}]}]\n",
			"c.yaml:4: providers[0].api_key_file" + msg},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.src), "c.yaml", envMap(nil))
			if err == nil {
				t.Fatalf("accepted (admin token %q, hash key %q, client key %q); want %s",
					cfg.Admin.Token, cfg.Privacy.HashKey, cfg.Clients[0].Key, tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("got %q; want %q", err, tc.want)
			}
		})
	}
}

// TestSecretFileByteOrderMark: a secret file saved as "UTF-8 with BOM"
// (Windows PowerShell 5's Out-File and Set-Content -Encoding UTF8, older
// Notepad) begins with EF BB BF, an encoding mark and no part of the
// secret. Kept, it became the secret's first character: a bot sending the
// key it was given got 401 for ever, a provider got a key it never issued,
// and every merchant webhook was signed under a secret the merchant does
// not hold, all without a word at load. It is dropped as the file's
// trailing line break is; a file holding only the mark is empty.
func TestSecretFileByteOrderMark(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const bom = "\xef\xbb\xbf"
	client := write("client", bom+"sk-client-from-file\r\n")
	webhook := write("webhook", bom+"whsec-long-from-file\n")
	inner := write("inner", "sk-"+bom+"x\n") // only a leading mark is an encoding's
	src := "clients:\n  - name: a\n    key_file: " + client + "\n  - name: b\n    key_file: " + inner +
		"\nwebhooks: {url: \"http://127.0.0.1:9/h\", secret_file: " + webhook + "}\n"
	cfg, err := Parse([]byte(src), "c.yaml", envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Clients[0].Key; got != "sk-client-from-file" {
		t.Errorf("clients[0].key = %q; want %q", got, "sk-client-from-file")
	}
	if got := cfg.Webhooks.Secret; got != "whsec-long-from-file" {
		t.Errorf("webhooks.secret = %q; want %q", got, "whsec-long-from-file")
	}
	if got := cfg.Clients[1].Key; got != "sk-"+bom+"x" {
		t.Errorf("clients[1].key = %q; want the mark inside it kept", got)
	}

	only := write("only", bom+"\n")
	_, err = Parse([]byte("admin:\n  token_file: "+only+"\n"), "c.yaml", envMap(nil))
	const want = "c.yaml:2: admin.token_file: the file it names is empty (a secret mount that did not fill?)"
	if err == nil || err.Error() != want {
		t.Errorf("a file of a mark alone: got %v; want %q", err, want)
	}
}
