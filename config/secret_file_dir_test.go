package config

import (
	"os"
	"testing"
)

// TestSecretFileThatIsADirectory: a "*_file" naming a directory that is
// there (secrets, a mount point given for the file in it) was told "the
// value has no '/': it looks like a key, not a path", of a path that
// exists: the hint is for a value that names nothing, a secret pasted
// where its file's name belongs.
func TestSecretFileThatIsADirectory(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.Mkdir("secrets", 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ src, want string }{
		{"admin:\n  token_file: secrets\n",
			"c.yaml:2: admin.token_file: cannot read the file it names: is a directory"},
		{"clients:\n  - name: a\n    key_file: ./secrets\n",
			"c.yaml:3: clients[0].key_file: cannot read the file it names: is a directory"},
		// A name that is nowhere keeps the hint.
		{"admin:\n  token_file: sk-adm1n-t0ken-0123\n",
			"c.yaml:2: admin.token_file: cannot read the file it names: no such file or directory (the value has no '/': it looks like a key, not a path)"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "c.yaml", envMap(nil))
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v; want %s", err, tc.want)
			}
		})
	}
}
