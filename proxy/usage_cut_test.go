package proxy

import (
	"net/http"
	"strings"
	"testing"
)

// TestStreamCutBeforeUsageWarnedAsCut: a stream whose connection was cut
// after its finish chunk, before the usage chunk that was to follow, is
// complete (SPEC 5) but its tokens are unknown. The ledger's warning told
// the operator to check that the provider returns usage on streams with
// stream_options.include_usage, a setting that was right: it now says the
// stream ended before its usage chunk, and keeps that hint for a whole
// stream that had none.
func TestStreamCutBeforeUsageWarnedAsCut(t *testing.T) {
	const (
		body   = `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}`
		chunk  = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"delta":{"role":"assistant","content":"hello"},"finish_reason":null}]}` + "\n\n"
		finish = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n"
	)
	const (
		cutLine  = "the provider's stream ended before its usage chunk"
		hintLine = "stream_options.include_usage"
	)
	signedIn := map[string]string{"X-WeChat-OpenID": "o-user-1"}
	tests := []struct {
		name      string
		provider  http.HandlerFunc
		hdr       map[string]string
		want, not string
	}{
		{"plain, cut after the finish", abruptClose(chunk, finish), nil, cutLine, hintLine},
		{"signed in, cut after the finish", abruptClose(chunk, finish), signedIn, cutLine, hintLine},
		{"plain, whole without usage", sseHandler(chunk, finish, "data: [DONE]\n\n"), nil, hintLine, cutLine},
		{"signed in, whole without usage", sseHandler(chunk, finish, "data: [DONE]\n\n"), signedIn, hintLine, cutLine},
		// A body that ends cleanly after the finish, with no [DONE], ended.
		{"plain, whole without [DONE] nor usage", sseHandler(chunk, finish), nil, hintLine, cutLine},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, tc.provider)
			s, ledger, _, logs := ledgerProxyLog(t, pricedConfig(t, fp.URL), nil, noTools{})
			t.Cleanup(ledger.Close)
			srv, handled := waitedServer(t, s.Handler())
			resp := post(t, srv.URL, "/v1/chat/completions", body, tc.hdr)
			if b := readAll(t, resp.Body); resp.StatusCode != 200 || !strings.Contains(b, "hello") || !strings.Contains(b, `"finish_reason":"stop"`) {
				t.Fatalf("answer %d %s", resp.StatusCode, b)
			}
			handled.Wait()
			lines := usageWarnings(logs.String())
			if len(lines) != 1 || !strings.Contains(lines[0], tc.want) || strings.Contains(lines[0], tc.not) ||
				!strings.Contains(lines[0], `"level":"WARN"`) || !strings.Contains(lines[0], `"provider":"fake"`) ||
				!strings.Contains(lines[0], `"target":"vendor/upstream-model"`) {
				t.Errorf("log lines about the usage %q; want one WARN of provider fake and target vendor/upstream-model that says %q, not %q\nlog:\n%s",
					lines, tc.want, tc.not, logs.String())
			}
		})
	}
}

// usageWarnings are the lines of log in which the ledger speaks of a
// provider's usage (accounting.Ledger.Unmetered, UsageCut).
func usageWarnings(log string) []string {
	var lines []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "accounting:") && strings.Contains(line, "usage") {
			lines = append(lines, line)
		}
	}
	return lines
}
