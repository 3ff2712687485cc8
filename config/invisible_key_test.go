package config

import (
	"strings"
	"testing"
)

// TestUnknownKeyWithAnInvisibleCharacter: a key whose name holds a
// character that does not show (the byte-order mark of a second file
// joined to the first with cat, a no-break or zero-width space pasted from
// a web page) was refused as "server: unknown key" of a line that reads
// "server:": the error names the character and the key it hides.
func TestUnknownKeyWithAnInvisibleCharacter(t *testing.T) {
	tests := []struct{ src, want string }{
		{"log:\n  level: info\n\ufeffserver:\n  listen: 127.0.0.1:8080\n",
			"c.yaml:3: \ufeffserver: unknown key: its name holds U+FEFF (a byte-order mark), hard to see: delete it (did you mean \"server\"?)"},
		{"server:\n  listen\u00a0: 127.0.0.1:8080\n",
			"c.yaml:2: server.listen\u00a0: unknown key: its name holds U+00A0 (a no-break space), hard to see: delete it (did you mean \"listen\"?)"},
		{"payments:\n  dedupe\u200b_window: 10m\n",
			"c.yaml:2: payments.dedupe\u200b_window: unknown key: its name holds U+200B (a zero-width space), hard to see: delete it (did you mean \"dedupe_window\"?)"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "c.yaml", envMap(nil))
			if err == nil || err.Error() != tc.want {
				t.Errorf("got  %q\nwant %q", err, tc.want)
			}
		})
	}
}

// TestValueJoinedByAnInvisibleSpace: a value after a key's ':' and a
// no-break or full-width space (a Chinese input method's), which YAML
// does not read as a space, is part of the key in a flow mapping, as it
// is after ':' alone: the error says to write a space there, as it did
// before the invisible character's own hint, which said to delete the
// character and left the value joined to the key.
func TestValueJoinedByAnInvisibleSpace(t *testing.T) {
	tests := []struct{ src, want string }{
		{"clients:\n  - {name: a, key:\u3000sk-secret-value-123456}\n",
			"c.yaml:2: clients[0].key:…: unknown key: a value joined to key by ':' and U+3000 (a full-width space), which YAML does not read as a space, reads as part of the key (not shown: it may be a secret); write \"key: …\""},
		{"clients:\n  - {name: a, key:\u00a0sk-secret-value-123456}\n",
			"c.yaml:2: clients[0].key:…: unknown key: a value joined to key by ':' and U+00A0 (a no-break space), which YAML does not read as a space, reads as part of the key (not shown: it may be a secret); write \"key: …\""},
		// ':' alone: as before.
		{"clients:\n  - {name: a, key:sk-secret-value-123456}\n",
			"c.yaml:2: clients[0].key:…: unknown key: a value joined to key by ':' with no space after it reads as part of the key (not shown: it may be a secret); write \"key: …\""},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "c.yaml", envMap(nil))
			if err == nil || err.Error() != tc.want {
				t.Errorf("got  %q\nwant %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "secret-value") {
				t.Errorf("the value is in the error: %v", err)
			}
		})
	}
}
