package config

import "testing"

// TestUnquotedVariableInAFlowCollection: config.yaml writes a model's
// targets, a catalog entry and a provider's timeouts as flow collections
// ([…], {…}), and a ${VAR} put there unquoted (model: ${MODEL}) breaks
// the collection: its braces are YAML's. The error was yaml.v3's "did not
// find expected ',' or '}'", which did not say the variable was at fault,
// nor what to write. It says so, at the same line; a line whose ${VAR} is
// quoted, or that has none, keeps yaml.v3's words alone.
func TestUnquotedVariableInAFlowCollection(t *testing.T) {
	const hint = `: an unquoted ${…} inside a flow collection ([…] or {…}), whose braces YAML reads as its own: quote the value, as in "${VAR}"`
	tests := []struct{ name, src, want string }{
		{"a target's model",
			"models:\n  - name: m\n    targets: [{provider: p, model: ${MODEL}}]\n",
			"x.yaml:3: did not find expected ',' or '}'" + hint},
		{"a catalog price",
			"log:\n  level: info\npayments:\n  catalog:\n    - {sku: a, name: A, price: ${PRICE}}\n",
			"x.yaml:5: did not find expected ',' or '}'" + hint},
		{"a flow list of addresses",
			"store:\n  redis:\n    addrs: [${REDIS_ADDR:-127.0.0.1:6379}]\n",
			"x.yaml:3: did not find expected ',' or ']'" + hint},
		{"a quoted ${VAR} beside another error",
			"store:\n  redis:\n    addrs: [\"${REDIS_ADDR}\" x]\n",
			"x.yaml:3: did not find expected ',' or ']'"},
		{"a ${VAR} in a comment",
			"log: {level: info] # ${LEVEL}\n",
			"x.yaml:1: did not find expected ',' or '}'"},
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
