package config

import "testing"

// TestWrittenEmptyProviderList: with the providers key unset, the one
// provider comes from the environment (PAYGATE_PROVIDER_*, openrouter by
// default) with its model. A written empty list ("providers: []", what a
// template renders when the providers were not filled in) read as unset
// too: the file said no provider, and every chat went to openrouter.ai
// (with OPENROUTER_API_KEY, if the environment had one), check-config
// saying "ok (1 providers, 1 models, ...)". It is an error at its line, as
// "clients: []" is; a key with no value is unset, as everywhere.
func TestWrittenEmptyProviderList(t *testing.T) {
	const want = "x.yaml:1: providers: an empty list: no provider could answer; list the providers, each with a name and a base_url, or leave the key out for one from the environment (PAYGATE_PROVIDER_*)"
	tests := []struct {
		name, src string
		want      string // the error; "" when it loads
	}{
		{"an empty list", "providers: []\n", want},
		{"an empty list and models", "providers: []\nmodels: [{name: gpt-4o, targets: [{provider: openrouter, model: openai/gpt-4o}]}]\n", want},
		{"no value", "providers:\n", ""},
		{"from an empty variable", "providers: ${EMPTY}\n", ""},
		{"left out", "log: {level: info}\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.src), "x.yaml", envMap(map[string]string{"EMPTY": "", "OPENROUTER_API_KEY": "sk-or-0123"}))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v; want it to load", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted with providers %q at %q; want %s", cfg.Providers[0].Name, cfg.Providers[0].BaseURL, tc.want)
			case tc.want != "" && err.Error() != tc.want:
				t.Errorf("got %q; want %q", err, tc.want)
			}
		})
	}
}
