package config

import (
	"strings"
	"testing"
	"time"
)

// anchored is a config whose first two providers anchor their timeouts (&t
// and &i) and the first provider itself (&p); each case adds provider b,
// last, and reads its timeouts.
const anchored = "providers:\n" +
	"  - &p\n    name: a\n    base_url: https://a.example/v1\n    api_key: sk-a-0123\n    timeouts: &t {connect: 2s, total: 60s}\n" +
	"  - name: c\n    base_url: https://c.example/v1\n    api_key: sk-c-0123\n    timeouts: &i {idle: 7s, total: 70s}\n" +
	"  - name: b\n    base_url: https://b.example/v1\n    api_key: sk-b-0123\n"

const anchoredModels = "models: [{name: m, targets: [{provider: a, model: x}, {provider: b, model: x}, {provider: c, model: x}]}]\n"

// TestAnchorsAliasesAndMergeKeys: YAML anchors are the usual way to share
// one block between providers; yaml.v3 decodes aliases and "<<" merge keys,
// and the loader now reads them as it does: an alias to a mapping used to
// be refused ("want a mapping of keys") and a merge key as an unknown key.
// Keys written in the mapping win over merged ones, and the first merged
// mapping that sets a key wins over the next.
func TestAnchorsAliasesAndMergeKeys(t *testing.T) {
	type timeouts struct{ connect, idle, total time.Duration }
	s := time.Second
	tests := []struct {
		name, b string // provider b's timeouts
		want    timeouts
	}{
		{"an alias", "    timeouts: *t\n", timeouts{2 * s, 30 * s, 60 * s}},
		{"a merge key", "    timeouts:\n      <<: *t\n      idle: 10s\n", timeouts{2 * s, 10 * s, 60 * s}},
		{"written keys win, before or after the merge", "    timeouts:\n      total: 90s\n      <<: *t\n      connect: 3s\n", timeouts{3 * s, 30 * s, 90 * s}},
		{"a list of merged mappings: the first wins", "    timeouts: {<<: [*t, *i]}\n", timeouts{2 * s, 7 * s, 60 * s}},
		{"an inline merged mapping", "    timeouts: {<<: {idle: 5s}}\n", timeouts{5 * s, 5 * s, 300 * s}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(anchored+tc.b+anchoredModels), "x.yaml", envMap(nil))
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			to := cfg.Providers[2].Timeouts
			if got := (timeouts{to.Connect.D(), to.Idle.D(), to.Total.D()}); got != tc.want {
				t.Errorf("providers[2].timeouts: connect %v idle %v total %v; want %v %v %v",
					got.connect, got.idle, got.total, tc.want.connect, tc.want.idle, tc.want.total)
			}
		})
	}
	// A whole provider merged in, its name replaced.
	src := strings.Replace(anchored, "  - name: b\n    base_url: https://b.example/v1\n    api_key: sk-b-0123\n", "  - {<<: *p, name: b}\n", 1)
	cfg, err := Parse([]byte(src+anchoredModels), "x.yaml", envMap(nil))
	if err != nil {
		t.Fatalf("a merged provider: refused: %v", err)
	}
	if p := cfg.Providers[2]; p.Name != "b" || p.BaseURL != "https://a.example/v1" || p.Timeouts.Total.D() != 60*s {
		t.Errorf("a merged provider: got %q %q total %v", p.Name, p.BaseURL, p.Timeouts.Total.D())
	}
	// An alias to a scalar expands its ${VAR} once: "$$" stays a "$".
	cfg, err = Parse([]byte(anchored+anchoredModels+"webhooks: {secret: &s \"wh-$${not}-0123\"}\nprivacy: {hash_key: *s}\n"), "x.yaml", envMap(nil))
	if err != nil {
		t.Fatalf("an aliased secret: refused: %v", err)
	}
	if cfg.Webhooks.Secret != "wh-${not}-0123" || cfg.Privacy.HashKey != "wh-${not}-0123" {
		t.Errorf("an aliased secret: webhooks.secret %q, privacy.hash_key %q; want both wh-${not}-0123", cfg.Webhooks.Secret, cfg.Privacy.HashKey)
	}
}

// TestErrorsInAnchoredBlocks: a problem in a block used through an alias
// or a merge key is reported at the key path where it is used, at the
// line where the anchored block writes it.
func TestErrorsInAnchoredBlocks(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"an unknown key, merged", strings.Replace(anchored, "{connect: 2s, total: 60s}", "{connect: 2s, totl: 60s}", 1) +
			"    timeouts: {<<: *t, idle: 1s}\n" + anchoredModels,
			"x.yaml:6: providers[0].timeouts.totl: unknown key (did you mean \"total\"?)\n" +
				"x.yaml:6: providers[2].timeouts.totl: unknown key (did you mean \"total\"?)"},
		{"a bad value, aliased", strings.Replace(anchored, "{connect: 2s, total: 60s}", "{connect: 2 s, total: 60s}", 1) +
			"    timeouts: *t\n" + anchoredModels,
			"x.yaml:6: providers[0].timeouts.connect: \"2 s\" is not a duration (use e.g. \"500ms\", \"30s\", \"10m\")\n" +
				"x.yaml:6: providers[2].timeouts.connect: \"2 s\" is not a duration (use e.g. \"500ms\", \"30s\", \"10m\")"},
		{"a written zero, merged", strings.Replace(anchored, "{connect: 2s, total: 60s}", "{connect: 2s, total: 60s, idle: 0s}", 1) +
			"    timeouts:\n      <<: *t\n" + anchoredModels,
			"x.yaml:6: providers[0].timeouts.idle: must be above 0 (0 would mean the default, 30s)\n" +
				"x.yaml:6: providers[2].timeouts.idle: must be above 0 (0 would mean the default, 30s)"},
		{"a check after the load, aliased", "providers:\n  - name: a\n    base_url: https://a.example/v1\n    headers: &h\n      X Bad: v\n" +
			"  - name: b\n    base_url: https://b.example/v1\n    headers: *h\n" + "models: [{name: m, targets: [{provider: a, model: x}]}]\n",
			"x.yaml:5: providers[0].headers.X Bad: not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only)\n" +
				"x.yaml:5: providers[1].headers.X Bad: not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only)"},
		{"a merge of a scalar", anchored + "    timeouts: {<<: 5s}\n" + anchoredModels,
			"x.yaml:14: providers[2].timeouts.<<: want a mapping, or a list of mappings, to merge"},
		{"two merge keys", anchored + "    timeouts:\n      <<: *t\n      <<: *i\n" + anchoredModels,
			"x.yaml:16: providers[2].timeouts.<<: written twice (first at line 15): merge a list, <<: [*a, *b]"},
		{"an alias inside its own anchor", "clients: &c [{name: a, key: sk-a-0123}, *c]\n",
			"x.yaml:1: clients[1]: an alias inside its own anchor's value"},
		{"a merge of its own mapping", "server: &s {listen: \"127.0.0.1:8080\", <<: *s}\n",
			"x.yaml:1: server.<<: an alias inside its own anchor's value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "x.yaml", envMap(nil))
			if err == nil || err.Error() != tc.want {
				t.Errorf("got:\n%v\nwant:\n%s", err, tc.want)
			}
		})
	}
}

// TestAliasExpansionIsBounded: aliases of aliases multiply ("billion
// laughs"); the loader stops walking them past a bound instead of running
// out of time or memory.
func TestAliasExpansionIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("clients:\n  - &a0 {name: a, key: sk-a-0123, allowed_skus: [x, x, x, x, x, x, x, x, x, x]}\n")
	for i := 1; i <= 9; i++ {
		b.WriteString("  - &a" + string(rune('0'+i)) + " [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	start := time.Now()
	_, err := Parse([]byte(b.String()), "x.yaml", envMap(nil))
	if err == nil || !strings.Contains(err.Error(), "aliases expand to more than") {
		t.Errorf("got %v; want the aliases refused", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}
