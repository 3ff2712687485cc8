package config

import (
	"strings"
	"testing"
)

// TestEnvValueNotPrintedInErrors: a value a ${VAR} brought in is not in
// the file, and check-config's output ends up in CI logs: a secret's
// variable given to the wrong key (listen: ${OPENROUTER_API_KEY}, a level
// or a size swapped for a token) had its error quote the secret, whole or
// its first bytes. The error names the variable instead; a value written
// in the file is still quoted.
func TestEnvValueNotPrintedInErrors(t *testing.T) {
	env := envMap(map[string]string{"KEY": "sk-or-v1-SECRET0123456789"})
	tests := []struct{ src, want string }{
		{"server:\n  listen: ${KEY}\n", `c.yaml:2: server.listen: "${KEY}" is not host:port`},
		{"payments:\n  rules:\n    approval_above: \"${KEY}\"\n", `c.yaml:3: payments.rules.approval_above: "${KEY}": not a decimal amount`},
		{"log:\n  level: ${KEY}\n", `c.yaml:2: log.level: "${KEY}": want debug, info, warn or error`},
		{"server:\n  max_body_bytes: ${KEY}\n", `c.yaml:2: server.max_body_bytes: cannot unmarshal !!str into int64`},
		{"server:\n  listen: &l \"${KEY}:8080\"\n  admin_listen: *l\n", `c.yaml:3: server.admin_listen: "${KEY}:8080" and server.listen "${KEY}:8080"`},
		{"server:\n  shutdown_timeout: ${KEY}\n", `c.yaml:2: server.shutdown_timeout: "${KEY}" is not a duration`},
	}
	for _, tc := range tests {
		t.Run(tc.src, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "c.yaml", env)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "sk-or") {
				t.Errorf("the error prints the variable's value: %v", err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("got %q; want it to start with %q", err, tc.want)
			}
		})
	}
	_, err := Parse([]byte("log:\n  level: loud-and-clear\n"), "c.yaml", env)
	if want := `c.yaml:2: log.level: "loud-and-clear": want`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("a value written in the file: got %v; want it quoted, %q", err, want)
	}
}
