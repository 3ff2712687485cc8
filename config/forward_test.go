package config

import (
	"slices"
	"testing"
)

// TestClientForward: clients[].forward restricts a client's forwarded
// paths. Unset keeps every path forwarded (a config written before the key
// keeps its meaning), a written [] forwards none (so it must not load as
// nil, which is "unset"), and each pattern is checked at load, its error at
// its own line.
func TestClientForward(t *testing.T) {
	const base = "providers:\n  - name: a\n    base_url: https://a.example/v1\n    api_key: sk-a-0123\n" +
		"models: [{name: m, targets: [{provider: a, model: x}]}]\n" +
		"clients:\n  - name: bot\n    key: sk-bot-0123\n"
	env := envMap(map[string]string{"EMPTY": ""})
	tests := []struct {
		name, src string
		want      []string // the loaded list (nil: unset)
		err       string   // the error; "" when it loads
	}{
		{"unset", base, nil, ""},
		{"no value", base + "    forward:\n", nil, ""},
		{"an empty variable", base + "    forward: ${EMPTY}\n", nil, ""},
		{"an empty list forwards nothing", base + "    forward: []\n", []string{}, ""},
		{"patterns", base + "    forward: [\"POST /v1/embeddings\", \"GET /v1/responses/*\", /v1/moderations, \"/v1/*\"]\n",
			[]string{"POST /v1/embeddings", "GET /v1/responses/*", "/v1/moderations", "/v1/*"}, ""},
		{"an unknown method", base + "    forward:\n      - \"POST /v1/embeddings\"\n      - \"FETCH /v1/files\"\n", nil,
			`c.yaml:11: clients[0].forward[1]: "FETCH /v1/files": the method "FETCH" is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS (upper case), or leave it out to match any method`},
		{"a lower-case method", base + "    forward: [\"get /v1/files\"]\n", nil,
			`c.yaml:9: clients[0].forward[0]: "get /v1/files": the method "get" is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS (upper case), or leave it out to match any method`},
		{"a path outside /v1", base + "    forward: [\"POST /embeddings\"]\n", nil,
			`c.yaml:9: clients[0].forward[0]: "POST /embeddings": the path "/embeddings" must start with /v1/`},
		{"/v1 alone", base + "    forward: [/v1]\n", nil,
			`c.yaml:9: clients[0].forward[0]: "/v1": the path "/v1" must start with /v1/`},
		{"a star inside", base + "    forward: [\"GET /v1/*/content\"]\n", nil,
			`c.yaml:9: clients[0].forward[0]: "GET /v1/*/content": the path "/v1/*/content" has a "*" before its end: "*" is allowed only as the last character (a prefix wildcard)`},
		{"two stars", base + "    forward: [\"/v1/**\"]\n", nil,
			`c.yaml:9: clients[0].forward[0]: "/v1/**": the path "/v1/**" has a "*" before its end: "*" is allowed only as the last character (a prefix wildcard)`},
		{"a query", base + "    forward: [\"GET /v1/files?purpose=batch\"]\n", nil,
			`c.yaml:9: clients[0].forward[0]: "GET /v1/files?purpose=batch": the path "/v1/files?purpose=batch" holds a query or fragment: a pattern matches the path alone`},
		{"three words", base + "    forward: [\"GET POST /v1/files\"]\n", nil,
			`c.yaml:9: clients[0].forward[0]: "GET POST /v1/files": want "METHOD /v1/path" or "/v1/path", e.g. "POST /v1/embeddings" or "GET /v1/responses/*"`},
		{"an empty pattern", base + "    forward: [\"\"]\n", nil,
			`c.yaml:9: clients[0].forward[0]: "": want "METHOD /v1/path" or "/v1/path", e.g. "POST /v1/embeddings" or "GET /v1/responses/*"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.src), "c.yaml", env)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("got %v; want it to load", err)
			case tc.err != "" && err == nil:
				t.Fatalf("loaded forward %q; want %s", cfg.Clients[0].Forward, tc.err)
			case tc.err != "" && err.Error() != tc.err:
				t.Fatalf("got:\n%v\nwant:\n%s", err, tc.err)
			case tc.err != "":
				return
			}
			got := cfg.Clients[0].Forward
			if (got == nil) != (tc.want == nil) || !slices.Equal(got, tc.want) {
				t.Errorf("forward %#v; want %#v", got, tc.want)
			}
		})
	}
}

// TestForwardRuleMatches: a method-less pattern matches any method, a
// method matches only itself (HEAD is not GET), a path matches whole, and
// a trailing "*" matches the prefix before it only.
func TestForwardRuleMatches(t *testing.T) {
	tests := []struct {
		pattern, method, path string
		want                  bool
	}{
		{"POST /v1/embeddings", "POST", "/v1/embeddings", true},
		{"POST /v1/embeddings", "GET", "/v1/embeddings", false},
		{"POST /v1/embeddings", "POST", "/v1/embeddings/", false},
		{"POST /v1/embeddings", "POST", "/v1/embeddingsx", false},
		{"GET /v1/responses/*", "GET", "/v1/responses/resp_1", true},
		{"GET /v1/responses/*", "GET", "/v1/responses/resp_1/input_items", true},
		{"GET /v1/responses/*", "GET", "/v1/responses", false},
		{"GET /v1/responses/*", "HEAD", "/v1/responses/resp_1", false},
		{"GET /v1/responses/*", "DELETE", "/v1/responses/resp_1", false},
		{"/v1/moderations", "PUT", "/v1/moderations", true},
		{"/v1/*", "DELETE", "/v1/files/f1", true},
	}
	for _, tc := range tests {
		r, err := ParseForward(tc.pattern)
		if err != nil {
			t.Fatalf("%q: %v", tc.pattern, err)
		}
		if got := r.Matches(tc.method, tc.path); got != tc.want {
			t.Errorf("%q matches %s %s: %v, want %v", tc.pattern, tc.method, tc.path, got, tc.want)
		}
	}
}
