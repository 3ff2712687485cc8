package config

import (
	"strings"
	"testing"
)

// TestProviderKeyInAHeaderIsNoMissingKey: a provider authenticated by a
// header of its own (Azure OpenAI's api-key, a gateway's x-api-key) or by
// a credential in its base_url has no api_key, and was warned of as one
// that "will answer 401 until a key is set", which it never does: a false
// warning at every start and check-config, of the kind operators learn to
// pass over. Without any credential the warning stays.
func TestProviderKeyInAHeaderIsNoMissingKey(t *testing.T) {
	const models = "models:\n  - {name: m, targets: [{provider: p, model: x}]}\n"
	tests := []struct {
		name, provider string
		warn           bool
	}{
		{"no credential", "  - {name: p, base_url: \"https://p.example/v1\"}\n", true},
		{"a header that is no credential", "  - {name: p, base_url: \"https://p.example/v1\", headers: {X-Title: shop}}\n", true},
		{"an empty credential header", "  - {name: p, base_url: \"https://p.example/v1\", headers: {api-key: \"${AZURE_KEY}\"}}\n", true},
		{"Azure's api-key header", "  - {name: p, base_url: \"https://r.openai.azure.com/openai/deployments/d?api-version=2024-10-21\", headers: {api-key: az-0123456789abcdef}}\n", false},
		{"a gateway's x-api-key", "  - {name: p, base_url: \"https://gw.example/v1\", headers: {X-Api-Key: gw-0123456789abcdef}}\n", false},
		{"a key in the base_url", "  - {name: p, base_url: \"https://gw.example/v1?api_key=gw-0123456789abcdef\"}\n", false},
		{"Google's x-goog-api-key", "  - {name: p, base_url: \"https://g.example/v1\", headers: {x-goog-api-key: g-0123456789abcdef}}\n", false},
		{"a gateway's x-auth-token", "  - {name: p, base_url: \"https://gw.example/v1\", headers: {X-Auth-Token: gw-0123456789abcdef}}\n", false},
		{"a token limit header", "  - {name: p, base_url: \"https://p.example/v1\", headers: {X-Max-Tokens: \"4096\"}}\n", true},
		{"a key id header", "  - {name: p, base_url: \"https://p.example/v1\", headers: {X-Idempotency-Key: shop-1}}\n", true},
		{"a proxy's own credential", "  - {name: p, base_url: \"https://p.example/v1\", headers: {Proxy-Authorization: \"Basic cHJveHk6MDEyMzQ1Njc4OWFi\"}}\n", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte("providers:\n"+tc.provider+models), "c.yaml", envMap(nil))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range cfg.Warnings {
				if strings.Contains(w, "providers[0].api_key") {
					got = append(got, w)
				}
			}
			switch {
			case tc.warn && len(got) != 1:
				t.Errorf("warnings %q; want one about the missing api_key", cfg.Warnings)
			case !tc.warn && len(got) > 0:
				t.Errorf("warnings %q; want none about api_key: the provider has its credential", got)
			}
		})
	}
}
