package config

import (
	"strings"
	"testing"
)

// TestProviderBaseURLInPlainHTTP: a provider's base_url with http:// to a
// host that may sit across the internet sends the provider's key
// (Authorization: Bearer) and every conversation unencrypted, and was
// taken without a word, where webhooks.url in the same case is warned of.
// It is a warning at the key's line, without the URL's credentials; none
// for https, nor for http to this machine (a local model server) or to a
// host only a private network has (a compose service, a private address).
func TestProviderBaseURLInPlainHTTP(t *testing.T) {
	tests := []struct {
		url  string
		warn bool
	}{
		{"https://openrouter.ai/api/v1", false},
		{"http://openrouter.ai/api/v1", true},
		{"http://203.0.113.5:8000/v1", true},
		{"http://user:hunter2@llm.example.com/v1?api_key=s3cret", true},
		{"http://127.0.0.1:11434/v1", false},
		{"http://localhost:8000/v1", false},
		{"http://10.0.0.5:8000/v1", false},
		{"http://vllm:8000/v1", false},
		{"http://vllm.models.svc.cluster.local/v1", false},
	}
	const want = "c.yaml:3: providers[0].base_url: http:// to a host that is not on a private network"
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			src := "providers:\n  - name: p\n    base_url: \"" + tc.url + "\"\n    api_key: sk-0123456789abcdef\n" +
				"models:\n  - {name: m, targets: [{provider: p, model: x}]}\n"
			cfg, err := Parse([]byte(src), "c.yaml", envMap(nil))
			if err != nil {
				t.Fatalf("got %v; want it to load (a warning at most)", err)
			}
			var got []string
			for _, w := range cfg.Warnings {
				if strings.Contains(w, "base_url") {
					got = append(got, w)
				}
			}
			switch {
			case !tc.warn && len(got) > 0:
				t.Errorf("warnings %q; want none about base_url", got)
			case tc.warn && (len(got) != 1 || !strings.HasPrefix(got[0], want)):
				t.Errorf("warnings %q; want one starting %q", cfg.Warnings, want)
			}
			for _, w := range got {
				if strings.Contains(w, "hunter2") || strings.Contains(w, "s3cret") {
					t.Errorf("the warning prints the URL's credentials: %s", w)
				}
			}
		})
	}
}
