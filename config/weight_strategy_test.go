package config

import (
	"strings"
	"testing"
)

// TestWeightWithoutWeightedStrategyWarns: a target's weight is read by the
// weighted strategy alone. Written under a model of another strategy (the
// default priority, lowest-latency), a split the operator meant ("weight:
// 3" and "weight: 1") went nowhere: every request went to the first target,
// without a word. check-config and serve now warn at the first weight's
// line.
func TestWeightWithoutWeightedStrategyWarns(t *testing.T) {
	const head = "providers:\n  - {name: a, base_url: \"https://a.example/v1\", api_key: sk-a-0123}\n" +
		"  - {name: b, base_url: \"https://b.example/v1\", api_key: sk-b-0123}\nmodels:\n  - name: m\n"
	tests := []struct {
		name, model string
		want        string // "" for no warning about weights
	}{
		{"weights under the default priority", "    targets:\n      - {provider: a, model: x}\n      - {provider: b, model: x, weight: 3}\n",
			`c.yaml:8: models[0].targets[1].weight: read by the weighted strategy only, and models[0].strategy is "priority"`},
		{"equal weights under priority", "    strategy: priority\n    targets:\n      - {provider: a, model: x, weight: 1}\n      - {provider: b, model: x, weight: 1}\n",
			`c.yaml:8: models[0].targets[0].weight: read by the weighted strategy only, and models[0].strategy is "priority"`},
		{"weights under lowest-latency", "    strategy: lowest-latency\n    targets:\n      - {provider: a, model: x, weight: 9}\n      - {provider: b, model: x, weight: 1}\n",
			`c.yaml:8: models[0].targets[0].weight: read by the weighted strategy only, and models[0].strategy is "lowest-latency"`},
		{"weights under weighted", "    strategy: weighted\n    targets:\n      - {provider: a, model: x, weight: 9}\n      - {provider: b, model: x, weight: 1}\n", ""},
		{"no weights under priority", "    targets:\n      - {provider: a, model: x}\n      - {provider: b, model: x}\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(head+tc.model), "c.yaml", envMap(nil))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range cfg.Warnings {
				if strings.Contains(w, ".weight") {
					got = append(got, w)
				}
			}
			switch {
			case tc.want == "" && len(got) > 0:
				t.Errorf("warnings %q; want none about weights", got)
			case tc.want != "" && (len(got) != 1 || !strings.HasPrefix(got[0], tc.want)):
				t.Errorf("warnings %q; want one that starts %q", got, tc.want)
			}
		})
	}
}

// TestTargetListedTwiceWarns: a model's target (provider and upstream
// model) listed twice is warned of at the second's line: a round asked it
// twice, its retry too (three attempts of a failing provider out of
// failover.max_attempts, 4, before the next target), and under the
// weighted strategy it drew twice its weight with no weight written. A
// warning, not a refusal: every earlier version loaded such a config, and
// refused, an upgraded paygate would not start on it; no key of a target
// (weight, family) makes the two entries differ in a way a round could use.
func TestTargetListedTwiceWarns(t *testing.T) {
	const head = "providers:\n  - {name: a, base_url: \"https://a.example/v1\", api_key: sk-a-0123}\n" +
		"  - {name: b, base_url: \"https://b.example/v1\", api_key: sk-b-0123}\nmodels:\n  - name: m\n    targets:\n"
	tests := []struct {
		name, targets, want string // want "" for no warning
	}{
		{"the same target twice", "      - {provider: a, model: x}\n      - {provider: b, model: x}\n      - {provider: a, model: x}\n",
			`c.yaml:9: models[0].targets[2]: provider "a" with model "x" is models[0].targets[0] already`},
		{"the same provider, two models", "      - {provider: a, model: x}\n      - {provider: a, model: y}\n", ""},
		{"the same model, two providers", "      - {provider: a, model: x}\n      - {provider: b, model: x}\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(head+tc.targets), "c.yaml", envMap(nil))
			if err != nil {
				t.Fatalf("refused: %v; want loaded", err)
			}
			var got []string
			for _, w := range cfg.Warnings {
				if strings.Contains(w, " already") {
					got = append(got, w)
				}
			}
			switch {
			case tc.want == "" && len(got) > 0:
				t.Errorf("warnings %q; want none", got)
			case tc.want != "" && (len(got) != 1 || !strings.HasPrefix(got[0], tc.want)):
				t.Errorf("warnings %q; want one that starts %q", got, tc.want)
			}
		})
	}
}
