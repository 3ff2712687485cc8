package proxy

import (
	"io"
	"net/http"
	"strings"

	"testing"
)

// TestProviderErrorCutAfterAPrefixNeverShown: a cut error body whose JSON
// starts after whitespace, a UTF-8 byte order mark, or is an array, is
// never shown as text: its first bytes are the echoed request.
func TestProviderErrorCutAfterAPrefixNeverShown(t *testing.T) {
	t.Parallel()
	own := bigErrorShape(3<<20, "own")
	for name, body := range map[string]string{
		"whitespace": "\r\n \t" + own,
		"BOM":        "\xef\xbb\xbf" + own,
		"BOM array":  "\xef\xbb\xbf[" + own + "]",
		"array":      "[" + own + "]",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, body)
			})
			url, logs := newTestProxy(t, testConfig(t, fp.URL, nil))
			resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`, nil)
			answer := readAll(t, resp.Body)
			if strings.Contains(answer, "ECHOED") {
				t.Errorf("the bot got the echoed request: %.200q", answer)
			}
			if strings.Contains(logs.String(), "ECHOED") {
				t.Errorf("the log holds the echoed request")
			}
		})
	}
}
