package config

import "testing"

// TestDottedKeyIsToldToNest: the README and SPEC name keys by their paths
// (server.listen, payments.wechatpay.mch_id), and a key written so at the
// top level was an "unknown key" with no word of what was meant: YAML
// reads a dot as part of the name. The error says to nest it, with the
// names in order, when the dotted name is a path of the section it is in.
func TestDottedKeyIsToldToNest(t *testing.T) {
	tests := []struct{ src, want string }{
		{"server.listen: 127.0.0.1:9\n",
			`c.yaml:1: server.listen: unknown key: YAML does not read a dot as nesting; write "server:" with "listen:" indented under it`},
		{"payments:\n  wechatpay.mch_id: \"1900000109\"\n",
			`c.yaml:2: payments.wechatpay.mch_id: unknown key: YAML does not read a dot as nesting; write "wechatpay:" with "mch_id:" indented under it`},
		{"failover.recovery.max_attempts: 2\n",
			`c.yaml:1: failover.recovery.max_attempts: unknown key: YAML does not read a dot as nesting; write "failover:" with "recovery:" indented under it, then "max_attempts:" under that`},
		// Not a path of this section: the usual answer.
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
