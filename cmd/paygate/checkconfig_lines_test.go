package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCheckConfigErrorsStartWithFileLine: check-config exits 1 and every
// line it prints starts with "file:line: " (SPEC 2.1), for configs the
// YAML library itself objects to or would half-read.
func TestCheckConfigErrorsStartWithFileLine(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // the lines printed, after "file:"
	}{
		{"a second document", "server:\n  listen: \"127.0.0.1:8080\"\n---\nclients:\n  - {name: shop, key: k-own-key-123}\n",
			[]string{"3: only one YAML document is allowed"}},
		{"bytes that are not UTF-8", "log:\n  level: info\nserver:\n  listen: \"\xff\xfe\"\n",
			[]string{"4: invalid leading UTF-8 octet"}},
		{"a control character", "log:\n  level: info\nserver:\n  listen: \"a\x01b\"\n",
			[]string{"4: control characters are not allowed"}},
		{"a secret read as an alias", "log:\n  level: info\nadmin:\n  token: *S3cretPassW0rd\n",
			[]string{"4: an alias (*…) to no anchor defined before it (name not shown: it may be a secret; quote a value that starts with '*')"}},
		{"a syntax error on line 1", "log: \"\\xq\"\n", []string{"1: did not find expected hexdecimal number"}},
		{"a key written twice", "server:\n  listen: \"127.0.0.1:8080\"\nserver:\n  admin_listen: \"off\"\nlog: {level: info}\nlog: {level: debug}\n",
			[]string{"3: server: written twice (first at line 1)", "6: log: written twice (first at line 5)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "paygate.yaml")
			if err := os.WriteFile(file, []byte(tc.src), 0o600); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			if code := run([]string{"check-config", "-config", file}, &stdout, &stderr); code != 1 {
				t.Fatalf("exit %d; want 1 (stdout %q, stderr %q)", code, stdout.String(), stderr.String())
			}
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			fileLine := regexp.MustCompile(`^` + regexp.QuoteMeta(file) + `:\d+: `)
			for _, l := range lines {
				if !fileLine.MatchString(l) {
					t.Errorf("line %q does not start with %s:LINE:", l, file)
				}
			}
			var got []string
			for _, l := range lines {
				got = append(got, strings.TrimPrefix(l, file+":"))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
