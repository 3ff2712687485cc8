package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestHashKeyWithSpacesOrLinesWarned: privacy.hash_key keys the hash that
// stands for the end user at every provider. One with a space or tab at an
// end (an editor's, in its file) or a line break inside (pasted twice) was
// kept silently, as written: only the pseudonyms providers see change, so
// nothing showed it. Refusing or trimming it would re-hash every user of a
// deployment that has run with it, so it is warned of at the key's line
// (the hash_key_file's when read from one), the value never printed; what
// a "*_file" key drops (a mark, CRLF) leaves no warning, and neither does
// a key forward_user does not use.
func TestHashKeyWithSpacesOrLinesWarned(t *testing.T) {
	const key = "hk-0123456789abcdefXYZuvw"
	const msg = "starts or ends with a space or tab, or holds a line break (pasted twice?), which is kept as part of the key (value not shown): the hashes providers see are keyed with it as written, and changing the key re-hashes every user, so providers see each as a new one"
	const inline, fromFile = "c.yaml:3: privacy.hash_key: " + msg, "c.yaml:3: privacy.hash_key (from hash_key_file): " + msg
	tests := []struct {
		name    string
		value   string // hash_key's YAML value, or "" for hash_key_file
		file    string // the file's content
		forward string
		want    string // the warning; "" for none of hash_key's
	}{
		{"plain", key, "", "hash", ""},
		{"leading space", `" ` + key + `"`, "", "hash", inline},
		{"trailing space", `"` + key + ` "`, "", "hash", inline},
		{"leading tab", `"\t` + key + `"`, "", "hash", inline},
		{"trailing tab", `"` + key + `\t"`, "", "hash", inline},
		{"a line break inside", `"` + key + `\n` + key + `"`, "", "hash", inline},
		{"a CR inside", `"` + key + `\r` + key + `"`, "", "hash", inline},
		{"unused: forward_user drop", `" ` + key + `"`, "", "drop", ""},
		{"file: plain", "", key + "\n", "hash", ""},
		{"file: byte-order mark and CRLF", "", "\xef\xbb\xbf" + key + "\r\n", "hash", ""},
		{"file: trailing space", "", key + " \n", "hash", fromFile},
		{"file: leading tab", "", "\t" + key + "\n", "hash", fromFile},
		{"file: pasted twice", "", key + "\n" + key + "\n", "hash", fromFile},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := "  hash_key: " + tt.value + "\n"
			if tt.value == "" {
				file := filepath.Join(dir, strings.Repeat("k", i+1))
				if err := os.WriteFile(file, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
				line = "  hash_key_file: " + file + "\n"
			}
			src := "privacy:\n  forward_user: " + tt.forward + "\n" + line
			cfg, err := Parse([]byte(src), "c.yaml", envMap(nil))
			if err != nil {
				t.Fatalf("refused: %v; want it to load", err)
			}
			if !strings.Contains(cfg.Privacy.HashKey, key) {
				t.Fatalf("hash_key %q; want it to hold %q", cfg.Privacy.HashKey, key)
			}
			var got []string
			for _, w := range cfg.Warnings {
				if strings.Contains(w, "privacy.hash_key") {
					got = append(got, w)
				}
				if strings.Contains(w, key[:12]) {
					t.Errorf("a warning prints the key: %q", w)
				}
			}
			if want := []string{tt.want}; tt.want == "" && len(got) != 0 || tt.want != "" && !slices.Equal(got, want) {
				t.Errorf("hash_key warnings %q; want %q", got, tt.want)
			}
		})
	}
}
