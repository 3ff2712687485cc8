package config

import "testing"

// TestDottedKeyIsToldToNest: the README and SPEC name keys by their paths
// (server.listen, payments.wechatpay.mch_id), and a key written so at the
// top level was an "unknown key" with no word of what was meant: YAML
// reads a dot as part of the name. The error says to nest it, with the
// names in order, when the dotted name is a path of the section it is in,
// in words that hold whether the file has that section already (a second
// "server:" would be a key written twice).
func TestDottedKeyIsToldToNest(t *testing.T) {
	tests := []struct{ src, want string }{
		{"server.listen: 127.0.0.1:9\n",
			`c.yaml:1: server.listen: unknown key: YAML does not read a dot as nesting; write "listen:" indented under "server:" (the one already there, if the file has it)`},
		{"payments:\n  wechatpay.mch_id: \"1900000109\"\n",
			`c.yaml:2: payments.wechatpay.mch_id: unknown key: YAML does not read a dot as nesting; write "mch_id:" indented under "wechatpay:" (the one already there, if the file has it)`},
		{"failover.recovery.max_attempts: 2\n",
			`c.yaml:1: failover.recovery.max_attempts: unknown key: YAML does not read a dot as nesting; write "max_attempts:" indented under "recovery:", itself under "failover:" (the one already there, if the file has it)`},
		// Not a path of this section: the usual answer.
		{"server:\n  admin_listen: 127.0.0.1:8\nserver.listen: 127.0.0.1:9\n",
			`c.yaml:3: server.listen: unknown key: YAML does not read a dot as nesting; write "listen:" indented under "server:" (the one already there, if the file has it)`},
		{"server.colour: blue\n", `c.yaml:1: server.colour: unknown key`},
		{"colour.server: blue\n", `c.yaml:1: colour.server: unknown key`},
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
