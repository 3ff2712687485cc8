package config

import "testing"

// TestDefaultCutByYAML: a ${VAR:-default} is expanded inside the value YAML
// has read, so a default that holds YAML syntax is YAML's first. A ": " in
// it made yaml.v3's "mapping values are not allowed in this context", and
// a " #" started a comment that cut the value there, which the loader then
// called an "unterminated ${", quoting the cut text: neither said what was
// wrong, nor to quote the value. Each says so at its line; the quoted
// value loads with its default whole.
func TestDefaultCutByYAML(t *testing.T) {
	clarification := func(v string) string {
		return "payments:\n  budget:\n    clarification: " + v + "\n"
	}
	tests := []struct {
		name, src string
		want      string // the error; "" when it loads
	}{
		{"a colon and a space", clarification("${CLARIFY:-Which plan: monthly or yearly?}"),
			`x.yaml:3: mapping values are not allowed in this context: an unquoted value with a ${…} holds ": ", which YAML reads as a key's end: quote the value, as in "${VAR:-a: b}"`},
		{"a space and a hash", clarification("${CLARIFY:-Which plan? #1 or #2}"),
			`x.yaml:3: payments.budget.clarification: unterminated ${ in "${CLARIFY:-Which plan?": YAML reads " #" as the start of a comment, which cut the value there: quote the value, as in "${VAR:-a #1}"`},
		{"a hash in a secret's default", "admin:\n  token: ${ADMIN_TOKEN:-dev #token}\n",
			`x.yaml:2: admin.token: unterminated ${ at character 1 of the value (not shown: a secret; write $$ for a literal $): YAML reads " #" as the start of a comment, which cut the value there: quote the value, as in "${VAR:-a #1}"`},
		{"an unterminated ${ with a comment that closes nothing", clarification("${CLARIFY:-x # a comment"),
			`x.yaml:3: payments.budget.clarification: unterminated ${ in "${CLARIFY:-x"`},
		{"quoted", clarification(`"${CLARIFY:-Which plan: monthly or yearly? #1 or #2}"`), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.src), "x.yaml", envMap(nil))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v; want it to load", err)
			case tc.want == "" && cfg.Payments.Budget.Clarification != "Which plan: monthly or yearly? #1 or #2":
				t.Fatalf("clarification %q; want the default whole", cfg.Payments.Budget.Clarification)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Fatalf("got %v; want %s", err, tc.want)
			}
		})
	}
}
