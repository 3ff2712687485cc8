package config

import "testing"

// TestBaseURLIsTheAPIRoot: paygate appends the request's path to a
// provider's base_url (/chat/completions, /models, /embeddings…). A
// base_url copied with the endpoint on it (the URL a provider's docs show
// for curl) loaded silently, and every chat went to
// …/chat/completions/chat/completions, answered 404 on every turn. It is an
// error at its line, naming the part to remove and not the URL (a
// base_url may carry a key in its query).
func TestBaseURLIsTheAPIRoot(t *testing.T) {
	const want = "c.yaml:3: providers[0].base_url: ends in /chat/completions, which paygate appends to it itself: give the API root (the part before /chat/completions, e.g. https://openrouter.ai/api/v1)"
	tests := []struct {
		name, url string
		want      string // the error; "" when it loads
	}{
		{"the endpoint", "https://openrouter.ai/api/v1/chat/completions", want},
		{"with a slash", "https://openrouter.ai/api/v1/chat/completions/", want},
		{"with a query", "https://x.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21&key=sk-secret", want},
		{"the root", "https://openrouter.ai/api/v1", ""},
		{"the root with a query", "https://x.openai.azure.com/openai/deployments/d?api-version=2024-10-21", ""},
		{"a path that only contains it", "https://gw.example/chat/completions-proxy/v1", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "providers:\n  - name: p\n    base_url: \"" + tc.url + "\"\nmodels: [{name: m, targets: [{provider: p, model: x}]}]\n"
			loadsOrRefused(t, src, tc.want, func(c *Config) string { return "base_url " + c.Providers[0].BaseURL })
		})
	}
}
