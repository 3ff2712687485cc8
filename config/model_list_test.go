package config

import "testing"

// TestWrittenEmptyModelList: with the providers key unset, the provider
// from the environment comes with its model (PAYGATE_MODEL, gpt-4o, served
// by openai/gpt-4o) when the file sets none. A written empty list
// ("models: []", what a template renders when the models were not filled
// in) read as unset too: the file said no model, and check-config said
// "ok (1 providers, 1 models, ...)" while every bot's gpt-4o went to
// openrouter.ai. It is an error at its line, as "providers: []" is; with
// providers written, the error that names the models none is kept as it
// was, and a key with no value is unset, as everywhere.
func TestWrittenEmptyModelList(t *testing.T) {
	tests := []struct {
		name, src string
		want      string // the error; "" when it loads
	}{
		{"an empty list", "log: {level: info}\nmodels: []\n",
			"x.yaml:2: models: an empty list: no model a bot could ask for; list the models, each with a name and targets, or leave the key out for the one from the environment (PAYGATE_MODEL)"},
		{"an empty list beside providers", "providers: [{name: p, base_url: \"https://llm.example/v1\", api_key: k}]\nmodels: []\n",
			"x.yaml:2: models: none: the bots ask for a model by name, and no name leads to these providers (add models, each with targets)"},
		{"no value", "models:\n", ""},
		{"from an empty variable", "models: ${EMPTY}\n", ""},
		{"left out", "log: {level: info}\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.src), "x.yaml", envMap(map[string]string{"EMPTY": "", "OPENROUTER_API_KEY": "sk-or-0123"}))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v; want it to load", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted with models %+v; want %s", cfg.Models, tc.want)
			case tc.want != "" && err.Error() != tc.want:
				t.Errorf("got %q; want %q", err, tc.want)
			}
		})
	}
}
