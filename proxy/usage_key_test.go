package proxy

import (
	"bytes"
	"testing"
)

// TestHasUsageString: usageIn's pre-check, which hops on 'u', finds
// `"usage"` exactly where bytes.Contains does: a key, a value, after an
// escaped quote, at either end of the data, after near misses.
func TestHasUsageString(t *testing.T) {
	for _, s := range []string{
		``, `"usage"`, `usage"`, `"usage`, `{"usage":null}`, `{"usage":{"prompt_tokens":1}}`,
		`{"choices":[{"delta":{"content":"usage"}}]}`, `{"content":"\"usage\""}`,
		`{"content":"unusual usages"}`, `{"u":"uuusage"}`, `"uusage"`, `""usage"`, `"usag"usage"`,
		`{"id":"chatcmpl-bench","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"tok1 "},"finish_reason":null}]}`,
		`{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`,
		`{"USAGE":1}`, `{"Usage":1}`, `u`, `"u`, `"usage"u`, `x"usage"`,
	} {
		want := bytes.Contains([]byte(s), []byte(`"usage"`))
		if got := hasUsageString([]byte(s)); got != want {
			t.Errorf("hasUsageString(%s) = %v; bytes.Contains says %v", s, got, want)
		}
	}
}
