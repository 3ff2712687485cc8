package config

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestDuplicateKeysNameFileLineAndKey: a key written twice in one mapping
// is an error like every other: "file:line: key.path: ...", one line per
// duplicate, at the second key's line.
func TestDuplicateKeysNameFileLineAndKey(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"top level", "server:\n  listen: \"127.0.0.1:8080\"\nserver:\n  admin_listen: off\n",
			[]string{"dup.yaml:3: server: written twice (first at line 1)"}},
		{"nested", "failover:\n  max_attempts: 2\n  breaker: {failures: 3}\n  max_attempts: 5\n",
			[]string{"dup.yaml:4: failover.max_attempts: written twice (first at line 2)"}},
		{"in a list item", "providers:\n  - name: p\n    base_url: http://x\n    name: q\n",
			[]string{"dup.yaml:4: providers[0].name: written twice (first at line 2)"}},
		{"in a map", "providers:\n  - name: p\n    base_url: http://x\n    headers:\n      X-Title: a\n      X-Title: b\n",
			[]string{"dup.yaml:6: providers[0].headers.X-Title: written twice (first at line 5)"}},
		{"several at once", "log: {level: info, level: debug}\naudit:\n  retain_text: 1h\n  retain_text: 2h\n",
			[]string{"dup.yaml:1: log.level: written twice (first at line 1)", "dup.yaml:4: audit.retain_text: written twice (first at line 3)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "dup.yaml", envMap(nil))
			if err == nil {
				t.Fatalf("accepted; want %q", tc.want)
			}
			if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", err, strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestDecodeTypeErrorsOneLineEach: yaml's decode error listing several
// problems becomes one error per problem, each at its file:line. With no
// key to tell a secret from another value, the values yaml quotes are
// left out (checkValue, which knows the key, keeps them where they are no
// secret).
func TestDecodeTypeErrorsOneLineEach(t *testing.T) {
	l := &loader{file: "x.yaml"}
	err := &yaml.TypeError{Errors: []string{`line 3: mapping key "server" already defined at line 1`, "line 7: cannot unmarshal !!str `x` into int"}}
	if !strings.HasPrefix(err.Error(), "yaml: unmarshal errors:\n  line 3") {
		t.Fatalf("yaml's message changed shape: %q", err)
	}
	got := Errors(l.yamlErrors(err)).Error()
	want := "x.yaml:3: mapping key \"server\" already defined at line 1\nx.yaml:7: cannot unmarshal !!str into int"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := Errors(l.yamlErrors(errors.New("yaml: line 4: found a tab"))).Error(); got != "x.yaml:4: found a tab" {
		t.Errorf("one error: got %q", got)
	}
	fileLine := regexp.MustCompile(`^x\.yaml:\d+: `)
	for _, e := range l.yamlErrors(err) {
		if !fileLine.MatchString(e.Error()) {
			t.Errorf("%q does not start with x.yaml:LINE:", e)
		}
	}
}
