package config

import (
	"strings"
	"testing"
)

// TestFamily: which wire adaptations a target's conversation gets
// (Mistral's tool call ids and assistant members, no stream_options on
// Mistral's API, DeepSeek's reasoning_content) was only ever guessed from
// base_url and the model's name, wrong for an Azure deployment named
// "prod-large", a gateway before api.mistral.ai and a fine-tune named
// "ft:gpt-4o-mini:acme:mistral-distill" alike. providers[].family names it
// (default auto: the guess), and a target's family overrides its
// provider's; an unknown value is an error at its line.
func TestFamily(t *testing.T) {
	const models = "models:\n  - name: m\n    targets:\n      - {provider: p, model: x%s}\n"
	tests := []struct {
		name             string
		provider, target string // "" leaves the key out; else its YAML text
		wantProvider     string
		wantTarget       string
		wantErr          string
	}{
		{name: "default", wantProvider: FamilyAuto, wantTarget: ""},
		{name: "provider openai", provider: "openai", wantProvider: FamilyOpenAI},
		{name: "provider mistral", provider: "mistral", wantProvider: FamilyMistral},
		{name: "provider mistral_api", provider: "mistral_api", wantProvider: FamilyMistralAPI},
		{name: "provider deepseek_api", provider: "deepseek_api", wantProvider: FamilyDeepSeekAPI},
		{name: "provider auto", provider: "auto", wantProvider: FamilyAuto},
		{name: "target overrides", provider: "openai", target: "mistral", wantProvider: FamilyOpenAI, wantTarget: FamilyMistral},
		{name: "target auto", provider: "mistral_api", target: "auto", wantProvider: FamilyMistralAPI, wantTarget: FamilyAuto},
		{name: "provider unknown", provider: "Mistral",
			wantErr: `c.yaml:4: providers[0].family: "Mistral": want auto, openai, mistral, mistral_api or deepseek_api`},
		{name: "provider deepseek", provider: "deepseek",
			wantErr: `c.yaml:4: providers[0].family: "deepseek": want auto, openai, mistral, mistral_api or deepseek_api`},
		{name: "target unknown", target: "azure",
			wantErr: `c.yaml:8: models[0].targets[0].family: "azure": want auto, openai, mistral, mistral_api or deepseek_api (or leave it out for the provider's)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "providers:\n  - name: p\n    base_url: \"http://x\"\n"
			if tc.provider != "" {
				src += "    family: " + tc.provider + "\n"
			} else {
				src += "    api_key: k\n" // the same line count either way
			}
			tf := ""
			if tc.target != "" {
				tf = ", family: " + tc.target
			}
			src += strings.Replace(models, "%s", tf, 1)
			cfg, err := Parse([]byte(src), "c.yaml", envMap(nil))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v; want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Providers[0].Family; got != tc.wantProvider {
				t.Errorf("providers[0].family = %q; want %q", got, tc.wantProvider)
			}
			if got := cfg.Models[0].Targets[0].Family; got != tc.wantTarget {
				t.Errorf("models[0].targets[0].family = %q; want %q", got, tc.wantTarget)
			}
		})
	}
}

// TestFamilyOnMistralsAPIWarns: a family written for a provider on
// mistral.ai is used as it is, and "mistral" (a Mistral model on any
// server, the name a user reaches for first) keeps stream_options, which
// Mistral's API refuses with a 422 on every stream; "openai" and
// "deepseek_api" send it ids and members it refuses. check-config said ok.
// It now warns at the family's line, naming mistral_api, and the base_url
// without its userinfo and query, which may carry a key: check-config
// prints warnings to its stderr as they are, which ends up in CI output.
func TestFamilyOnMistralsAPIWarns(t *testing.T) {
	tests := []struct {
		name             string
		baseURL          string
		provider, target string
		want             string // "": no family warning
	}{
		{"mistral on api.mistral.ai", "https://api.mistral.ai/v1", "mistral", "",
			`c.yaml:4: providers[0].family: "mistral" on Mistral's API (base_url https://api.mistral.ai/v1)`},
		{"openai on api.mistral.ai", "https://api.mistral.ai/v1", "openai", "",
			`c.yaml:4: providers[0].family: "openai" on Mistral's API`},
		{"target deepseek_api on api.mistral.ai", "https://api.mistral.ai/v1", "auto", "deepseek_api",
			`c.yaml:9: models[0].targets[0].family: "deepseek_api" on Mistral's API`},
		{"mistral_api on api.mistral.ai", "https://api.mistral.ai/v1", "mistral_api", "", ""},
		{"auto on api.mistral.ai", "https://api.mistral.ai/v1", "auto", "", ""},
		{"target mistral_api over provider mistral", "https://api.mistral.ai/v1", "mistral", "mistral_api", ""},
		{"mistral on vLLM", "http://vllm:8000/v1", "mistral", "", ""},
		// The base_url's credentials (Secrets masks them in the log, but
		// check-config prints its warnings as they are) are not named.
		{"mistral on a base_url with credentials", "https://gw:pw-SECRET-0123@api.mistral.ai/v1?token=tok-SECRET-4567", "mistral", "",
			`c.yaml:4: providers[0].family: "mistral" on Mistral's API (base_url https://api.mistral.ai/v1)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "providers:\n  - name: p\n    base_url: \"" + tc.baseURL + "\"\n    family: " + tc.provider + "\n" +
				"    api_key: k\nmodels:\n  - name: m\n    targets:\n      - {provider: p, model: x"
			if tc.target != "" {
				src += ", family: " + tc.target
			}
			src += "}\n"
			cfg, err := Parse([]byte(src), "c.yaml", envMap(nil))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range cfg.Warnings {
				if strings.Contains(w, "SECRET") {
					t.Errorf("a warning prints the base_url's credentials: %s", w)
				}
				if strings.Contains(w, "family") {
					got = append(got, w)
				}
			}
			switch {
			case tc.want == "" && len(got) != 0:
				t.Errorf("warnings %q; want none", got)
			case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want) || !strings.Contains(got[0], "mistral_api")):
				t.Errorf("warnings %q; want one with %q naming mistral_api", got, tc.want)
			}
		})
	}
}
