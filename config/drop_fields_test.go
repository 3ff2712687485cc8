package config

import (
	"strings"
	"testing"
)

// TestDropFieldsRefused: drop_fields removes a top-level member from every
// request to the provider, whatever it is, and nothing checked the names.
// drop_fields: [stream] sent a bot's streamed request non-streamed, which
// paygate then read as a broken stream (SPEC 3: the client's stream mode is
// kept upstream); [messages] sent every chat turn without its
// conversation; an empty name dropped nothing. Each is an error at its
// line; the names strict providers really refuse (user, stream_options,
// parallel_tool_calls, …) load.
func TestDropFieldsRefused(t *testing.T) {
	const base = "providers:\n  - name: a\n    base_url: https://a.example/v1\n    drop_fields: [%s]\n" +
		"models: [{name: m, targets: [{provider: a, model: x}]}]\n"
	tests := []struct{ fields, want string }{
		{"stream", `c.yaml:4: providers[0].drop_fields[0]: "stream" cannot be dropped: paygate keeps the bot's stream mode upstream and reads the answer in it`},
		{"user, messages", `c.yaml:4: providers[0].drop_fields[1]: "messages" cannot be dropped: every chat turn would reach the provider without its conversation`},
		{`""`, `c.yaml:4: providers[0].drop_fields[0]: an empty name drops nothing`},
		{"user, stream_options, parallel_tool_calls, safety_identifier", ""},
		// The path a provider's 422 names (Mistral's loc ["body",
		// "stream_options","include_usage"] reaches the bot as
		// "stream_options.include_usage: Extra inputs are not permitted")
		// is no top-level name: kept, it dropped nothing, and the 422 went on.
		{"stream_options.include_usage", `c.yaml:4: providers[0].drop_fields[0]: "stream_options.include_usage" names a member inside "stream_options", and drop_fields removes top-level members only: it would drop nothing (name "stream_options" to drop it whole)`},
	}
	for _, tc := range tests {
		t.Run(tc.fields, func(t *testing.T) {
			src := strings.Replace(base, "%s", tc.fields, 1)
			_, err := Parse([]byte(src), "c.yaml", envMap(nil))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("got %q; want %q", got, tc.want)
			}
		})
	}
}
