package config

import (
	"testing"
)

// TestOnlyOneDocument: yaml reads the first document of a stream only, so
// a config split by "---" would lose everything after it unread (here the
// operator's client, leaving the default client and its published key in
// force, and a misspelt key nobody is told about). It is refused at the
// "---" line.
func TestOnlyOneDocument(t *testing.T) {
	tests := []struct{ src, want string }{
		{"server:\n  listen: \"127.0.0.1:8080\"\n---\nclients:\n  - {name: shop, key: k-own-key-123}\nbogus_key: 1\n",
			"m.yaml:3: only one YAML document is allowed"},
		// An empty trailing document drops nothing: allowed.
		{"log: {level: info}\n---\n", ""},
		{"log: {level: info}\n---\n# the end\n", ""},
		{"log: {level: info}\n---\n---\nclients: [{name: shop, key: k-own-key-123}]\n", "m.yaml:3: only one YAML document is allowed"},
		{"log: {level: info}\n--- \nserver: [\n", "m.yaml:3: did not find expected node content"},
		{"---\nlog: {level: info}\n", ""},
		{"log: {level: info}\n...\n", ""},
		{"", ""},
		{"# nothing but a comment\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.src, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.src), "m.yaml", envMap(nil))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v; want it to load", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted; clients in effect: %+v; want %s", cfg.Clients, tc.want)
			case tc.want != "" && err.Error() != tc.want:
				t.Fatalf("got %q; want %q", err, tc.want)
			}
		})
	}
}
