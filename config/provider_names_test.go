package config

import (
	"fmt"
	"testing"
)

// TestProviderNamesTheAdminRouteReaches: an operator ends a provider's
// cool-down with POST /admin/api/providers/{name}/reset, and the router
// cleans "." and ".." out of that path before any handler sees it (a
// redirect to another path), so a provider named so could never be reset
// short of a restart. Config refuses such names at their line; other
// names, dots within them included, still load.
func TestProviderNamesTheAdminRouteReaches(t *testing.T) {
	const refused = `cannot be reached by POST /admin/api/providers/{name}/reset (the path is cleaned of "." and ".."); choose another name`
	tests := []struct {
		name, provider string
		want           string // the error; "" when it loads
	}{
		{"dot", ".", `c.yaml:2: providers[0].name: "." ` + refused},
		{"dot dot", "..", `c.yaml:2: providers[0].name: ".." ` + refused},
		{"dots within a name", "api.openai.com", ""},
		{"three dots", "...", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := fmt.Sprintf("providers:\n  - name: %q\n    base_url: http://x/v1\n"+
				"models: [{name: m, targets: [{provider: %q, model: x}]}]\n", tt.provider, tt.provider)
			loadsOrRefused(t, src, tt.want, func(c *Config) string { return "provider " + c.Providers[0].Name })
		})
	}
}
