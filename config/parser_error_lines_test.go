package config

import (
	"strconv"
	"strings"
	"testing"
)

// TestYAMLParserErrorLines: yaml.v3 numbers the line of a parser error
// (a key at the wrong indentation, a flow mapping cut by an unquoted
// "{", a second document without "---") from 0, where its scanner's
// errors and every other line are numbered from 1: the error named the
// line above the one at fault (a mis-indented admin_listen on line 5 was
// reported at line 4, a good "listen" line). The loader names the line
// yaml.v3 means: the token at fault, or where the block or flow
// collection it breaks starts.
func TestYAMLParserErrorLines(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"a key at the wrong indentation",
			"log:\n  level: info\nserver:\n    listen: 127.0.0.1:8080\n  admin_listen: \"off\"\n",
			"x.yaml:5: did not find expected key"},
		{"an unquoted ${VAR} in a flow mapping",
			"log:\n  level: info\npayments:\n  catalog:\n    - {sku: a, name: A, price: ${PRICE}}\n",
			"x.yaml:5: did not find expected ',' or '}': an unquoted ${…} inside a flow collection ([…] or {…}), whose braces YAML reads as its own: quote the value, as in \"${VAR}\""},
		{"an unclosed flow list",
			"log:\n  level: info\nserver:\n  listen: 127.0.0.1:8080\nclients: [a, b\n",
			"x.yaml:5: did not find expected ',' or ']'"},
		{"a list entry at the wrong indentation",
			"log:\n  level: info\nclients:\n  - name: a\n  key: b\n",
			"x.yaml:5: did not find expected '-' indicator"},
		{"a key at the wrong indentation after a comment",
			"# paygate\nlog:\n  level: info\nserver:\n    listen: 127.0.0.1:8080\n  admin_listen: \"off\"\n",
			"x.yaml:6: did not find expected key"},
		{"a parser error on line 1",
			"log: {level: info]\n",
			"x.yaml:1: did not find expected ',' or '}'"},
		{"a document after \"...\" without \"---\"",
			"log:\n  level: info\n...\nserver:\n  listen: 127.0.0.1:8080\n",
			"x.yaml:4: did not find expected <document start>"},
		{"a parser error in a second document",
			"log:\n  level: info\n---\nserver:\n    listen: 127.0.0.1:8080\n  admin_listen: \"off\"\n",
			"x.yaml:6: did not find expected key"},
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

// TestYAMLErrorLinesOtherLineBreaks: YAML's line breaks are CR LF and a
// lone CR as well as LF, and yaml.v3 counts lines by them: a file saved
// with CR LF or CR line ends has its errors at the same lines.
func TestYAMLErrorLinesOtherLineBreaks(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"a key at the wrong indentation",
			"# paygate\nlog:\n  level: info\nserver:\n    listen: 127.0.0.1:8080\n  admin_listen: \"off\"\n",
			"x.yaml:6: did not find expected key"},
		{"an unclosed flow list",
			"log:\n  level: info\nserver:\n  listen: 127.0.0.1:8080\nclients: [a, b\n",
			"x.yaml:5: did not find expected ',' or ']'"},
		{"a tab after a plain value",
			"log:\n  level: info\nserver:\n  listen: 127.0.0.1:8080\n\tadmin_listen: \"off\"\n",
			"x.yaml:5: found a tab character that violates indentation: a tab in the indentation; YAML indents with spaces"},
	}
	for _, tc := range tests {
		for _, br := range []string{"\r\n", "\r"} {
			t.Run(tc.name+" "+strconv.Quote(br), func(t *testing.T) {
				src := strings.ReplaceAll(tc.src, "\n", br)
				_, err := Parse([]byte(src), "x.yaml", envMap(nil))
				if err == nil || err.Error() != tc.want {
					t.Errorf("got %v; want %s", err, tc.want)
				}
			})
		}
	}
}

// TestYAMLDocumentStartErrorLine: yaml.v3 gives a token where a document
// should start (an indented first key's section ending, a key after
// "...") with no enclosing collection, and names the token's own line,
// from 0. Read again from that line, the rest of the file failed the same
// way further on (at the next section), and that later line was named.
func TestYAMLDocumentStartErrorLine(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"the first key indented",
			"   server:\n  listen: 127.0.0.1:8080\n  admin_listen: \"off\"\nlog:\n  level: info\n",
			"x.yaml:2: did not find expected <document start>"},
		{"the first key indented, after comments",
			"# paygate\n# example\n   server:\n  listen: 127.0.0.1:8080\n  admin_listen: \"off\"\nclients:\n  - {name: a, key: b}\n",
			"x.yaml:4: did not find expected <document start>"},
		{"an indented key after \"...\"",
			"log:\n  level: info\n...\n  server:\n    listen: 127.0.0.1:8080\nclients: []\n",
			"x.yaml:4: did not find expected <document start>"},
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

// TestYAMLErrorLinesContextOnFirstLine: yaml.v3 names the line where the
// collection or plain value an error breaks starts, unless that is the
// file's first line: then it names the line at fault itself. The loader
// took that line for the start too and looked further on: a tab-indented
// file under a plain value on line 1 was reported at its second tab, and
// a list entry out of line in a mapping that starts on line 1 at a later
// line that failed the same way when read again from it.
func TestYAMLErrorLinesContextOnFirstLine(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"a tab after a plain value on line 1",
			"listen: 127.0.0.1:8080\n\tadmin_listen: \"off\"\n\tnotify_listen: \"\"\n",
			"x.yaml:2: found a tab character that violates indentation: a tab in the indentation; YAML indents with spaces"},
		{"a list entry out of line in the mapping of line 1",
			"clients:\n  - {name: a, key: b}\n- providers:\n    - name: p\n   base_url: https://x.example/v1\n",
			"x.yaml:3: did not find expected key"},
		// The collection or value on a later line: the token at fault, as before.
		{"a tab after a plain value on line 2",
			"# paygate\nlisten: 127.0.0.1:8080\n\tadmin_listen: \"off\"\n\tnotify_listen: \"\"\n",
			"x.yaml:3: found a tab character that violates indentation: a tab in the indentation; YAML indents with spaces"},
		{"a list entry out of line in the mapping of line 2",
			"# paygate\nclients:\n  - {name: a, key: b}\n- providers:\n    - name: p\n   base_url: https://x.example/v1\n",
			"x.yaml:4: did not find expected key"},
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
