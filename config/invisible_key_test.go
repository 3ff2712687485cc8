package config

import "testing"

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
