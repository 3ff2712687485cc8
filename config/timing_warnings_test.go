package config

import (
	"strings"
	"testing"
)

// TestUnworkableTimingsWarn: timing keys accepted alone but unworkable
// together were loaded without a word. failover.max_round_time: 1ms (or
// any time below a provider's first_token) cuts every stream before its
// first token, on the round's last target too; a retry_after_max_wait not
// below max_round_time is a wait the round's time ends first; a
// first_token above its provider's total is a wait total cuts first.
// check-config and serve now warn at the written key's line, and only of
// a key written: a total written alone, below the default first_token, is
// a short attempt chosen on purpose, not a wait cut short.
func TestUnworkableTimingsWarn(t *testing.T) {
	const head = "providers:\n  - name: a\n    base_url: \"https://a.example/v1\"\n    api_key: sk-a-0123\n"
	const models = "models:\n  - name: m\n    targets: [{provider: a, model: x}]\n"
	tests := []struct {
		name, src string
		want      string // "" for no timing warning
	}{
		{"defaults", head + models, ""},
		{"max_round_time 1ms", head + models + "failover:\n  max_round_time: 1ms\n",
			"c.yaml:9: failover.max_round_time: 1ms is below providers[0].timeouts.first_token (30s)"},
		{"first_token above the default round", head + "    timeouts: {first_token: 180s}\n" + models,
			"c.yaml:5: providers[0].timeouts.first_token: 3m0s is above failover.max_round_time (1m0s)"},
		{"first_token above total", head + "    timeouts: {first_token: 50s, total: 40s}\n" + models,
			"c.yaml:5: providers[0].timeouts.first_token: 50s is above providers[0].timeouts.total (40s)"},
		{"retry wait past the round", head + models + "failover:\n  retry_after_max_wait: 90s\n",
			"c.yaml:9: failover.retry_after_max_wait: 1m30s is not below failover.max_round_time (1m0s)"},
		// A short total written alone bounds the default first_token's
		// wait, as it is meant to: nothing the operator wrote is unworkable.
		{"total alone below the default first_token", head + "    timeouts: {total: 20s}\n" + models, ""},
		{"workable", head + "    timeouts: {first_token: 100s}\n" + models + "failover:\n  max_round_time: 200s\n  retry_after_max_wait: 10s\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.src), "c.yaml", envMap(nil))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range cfg.Warnings {
				if strings.Contains(w, "max_round_time") || strings.Contains(w, "first_token") {
					got = append(got, w)
				}
			}
			found := false
			for _, w := range got {
				found = found || strings.HasPrefix(w, tc.want)
			}
			switch {
			case tc.want == "" && len(got) > 0:
				t.Errorf("warnings %q; want none about timings", got)
			case tc.want != "" && !found:
				t.Errorf("warnings %q; want one that starts %q", got, tc.want)
			}
		})
	}
}
