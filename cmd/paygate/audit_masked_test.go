package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/paygate/paygate/logging"
)

// TestAuditStderrMasksSecretsMidRun: once verify or export has the store
// open, what it writes to stderr goes through the config's redactor, and a
// writer's caller is told every byte it gave was written.
func TestAuditStderrMasksSecretsMidRun(t *testing.T) {
	const pw = "redis-pass-0123456789abcdef"
	for _, tc := range []struct{ name, msg string }{
		{"whole", "paygate audit verify: ERR unknown command 'auth', with args beginning with: '" + pw + "'"},
		{"in the middle of a line", "paygate audit export: dial: " + pw + " (after 3 records)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			w := maskedWriter{&b, logging.NewRedactor([]string{pw})}
			n, err := fmt.Fprintln(w, tc.msg)
			if err != nil || n != len(tc.msg)+1 {
				t.Fatalf("Fprintln = %d, %v; want %d, nil", n, err, len(tc.msg)+1)
			}
			if strings.Contains(b.String(), pw) || !strings.HasPrefix(b.String(), "paygate audit") {
				t.Fatalf("stderr = %q; want the line with the password masked", b.String())
			}
		})
	}
}
