package config

import (
	"strings"
	"testing"
)

// TestPprofWithNothingToServeIt: server.pprof mounts the profiles on the
// admin listener, behind admin.token (serve's adminHandler), so with the
// listener off or no token set, pprof: true served nothing, and check-config
// and serve said not a word of it. Each is a warning at the key; with both,
// none.
func TestPprofWithNothingToServeIt(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"admin listener off", "server: {pprof: true, admin_listen: \"off\"}\nadmin: {token: admin-token-0123456789abcdef}\n",
			"c.yaml:1: server.pprof: true, and server.admin_listen is off"},
		{"no admin token", "server:\n  pprof: true\n",
			"c.yaml:2: server.pprof: true, and admin.token is not set"},
		{"listener and token", "server: {pprof: true}\nadmin: {token: admin-token-0123456789abcdef}\n", ""},
		{"pprof off", "server: {admin_listen: \"off\"}\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.src), "c.yaml", envMap(nil))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range cfg.Warnings {
				if strings.Contains(w, "server.pprof") {
					got = append(got, w)
				}
			}
			switch {
			case tc.want == "" && len(got) > 0:
				t.Errorf("warnings %q; want none about server.pprof", got)
			case tc.want != "" && (len(got) != 1 || !strings.HasPrefix(got[0], tc.want)):
				t.Errorf("warnings %q; want one starting %q", got, tc.want)
			}
		})
	}
}
