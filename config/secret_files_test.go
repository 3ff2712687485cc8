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
