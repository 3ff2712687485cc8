package config

import "testing"

// TestTabIndentationErrors: a tab in a line's indentation, which YAML does
// not allow, is named at its own line and called a tab. After a plain
// value yaml.v3 named the line the value starts on (a good "listen" line
// above the tab, or further up past blank lines), and its "found character
// that cannot start any token" did not say the character is a tab, which
// an editor does not show.
func TestTabIndentationErrors(t *testing.T) {
	const hint = ": a tab in the indentation; YAML indents with spaces"
	tests := []struct{ name, src, want string }{
		{"a tab after a plain value",
			"log:\n  level: info\nserver:\n  listen: 127.0.0.1:8080\n\tadmin_listen: \"off\"\n",
			"x.yaml:5: found a tab character that violates indentation" + hint},
		{"a tab after a plain value and blank lines",
			"log:\n  level: info\nserver:\n  listen: 127.0.0.1:8080\n\n  \n\tadmin_listen: \"off\"\n",
			"x.yaml:7: found a tab character that violates indentation" + hint},
		{"a tab after a quoted value",
			"log:\n  level: info\nserver:\n  listen: \"127.0.0.1:8080\"\n\tadmin_listen: \"off\"\n",
			"x.yaml:5: found character that cannot start any token" + hint},
		{"a tab after spaces",
			"server:\n  \tlisten: 127.0.0.1:8080\n",
			"x.yaml:2: found character that cannot start any token" + hint},
		{"a tab before a list entry",
			"log:\n  level: info\nclients:\n\t- name: a\n",
			"x.yaml:4: found character that cannot start any token" + hint},
		// Not a tab: yaml's words as they are.
		{"another character", "log:\n  level: info\nserver:\n  listen: @x\n",
			"x.yaml:4: found character that cannot start any token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "x.yaml", envMap(nil))
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v; want %s", err, tc.want)
			}
		})
	}
}
