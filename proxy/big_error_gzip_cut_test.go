package proxy

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestProviderErrorGzipCutNeverShown: a gzip-encoded error answer whose
// stream ends early (a relay that closed mid-body), decoding to more or
// less than the 64 KiB read for its reason, never shows its echo.
func TestProviderErrorGzipCutNeverShown(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write([]byte(bigErrorShape(3<<20, "own")))
	_ = w.Close()
	full := b.Bytes()
	for _, keep := range []int{len(full) / 2, 400, 100, 70} {
		t.Run(fmt.Sprintf("%d of %d bytes", keep, len(full)), func(t *testing.T) {
			t.Parallel()
			fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Content-Encoding", "gzip")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write(full[:keep])
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
			t.Logf("%d %.200s", resp.StatusCode, answer)
		})
	}
}
