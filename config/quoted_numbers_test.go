package config

import (
	"strings"
	"testing"
)

// TestQuotedNumbersSayWhatToDo: YAML reads a number or a bool in quotes as
// text, which a key that counts (or a switch) refuses. The config puts
// prices in quotes ("49.99") beside such keys, so a quoted count is an easy
// slip, and yaml's own words ("cannot unmarshal !!str `20` into int") name
// neither the quotes nor the fix.
func TestQuotedNumbersSayWhatToDo(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"count in double quotes", "payments:\n  rules:\n    max_orders_per_user_per_day: \"20\"\n",
			`c.yaml:3: payments.rules.max_orders_per_user_per_day: "20" is in quotes, which makes it text: write the number without them`},
		{"count in single quotes", "server:\n  max_body_bytes: '1048576'\n",
			`c.yaml:2: server.max_body_bytes: "1048576" is in quotes, which makes it text: write the number without them`},
		{"count from a quoted variable", "failover:\n  max_attempts: \"${ATTEMPTS}\"\n",
			`c.yaml:2: failover.max_attempts: "6" is in quotes, which makes it text: write the number without them`},
		{"switch in quotes", "server:\n  pprof: \"true\"\n",
			`c.yaml:2: server.pprof: "true" is in quotes, which makes it text: write true or false without them`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.src), "c.yaml", envMap(map[string]string{"ATTEMPTS": "6"}))
			if err == nil || err.Error() != c.want {
				t.Errorf("got:\n%v\nwant:\n%s", err, c.want)
			}
		})
	}
	// Unquoted they load; a word in quotes is still yaml's error.
	if _, err := Parse([]byte("payments:\n  rules:\n    max_orders_per_user_per_day: 20\nserver:\n  pprof: true\n"), "c.yaml", envMap(nil)); err != nil {
		t.Errorf("unquoted: %v", err)
	}
	if _, err := Parse([]byte("failover:\n  max_attempts: \"four\"\n"), "c.yaml", envMap(nil)); err == nil || strings.Contains(err.Error(), "in quotes") {
		t.Errorf("a word in quotes: got %v; want yaml's error, not the quotes'", err)
	}
}
