package proxy

import (
	"net/http"
	"strings"
	"testing"
)

// TestRoundWithoutUsageWarned: a provider that answers whole but reports no
// usage (a relay that drops it, a server that ignores
// stream_options.include_usage) was priced at 0 without a word: the LLM
// spend and the cost per completed transaction came out short, and the
// model did not even appear in the stats, whatever its configured price.
// So was one whose usage counts nothing (every count 0), which no answer
// costs. The first such answer of each provider and model is now logged, as a
// model without a price is; an answer with usage, and a later answer
// without, add no line.
func TestRoundWithoutUsageWarned(t *testing.T) {
	const (
		plainBody  = `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`
		streamBody = `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}`
		chunk      = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"delta":{"role":"assistant","content":"hello"},"finish_reason":null}]}` + "\n\n"
		finish     = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n"
		usageChunk = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}` + "\n\n"
		totalOnly  = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[],"usage":{"total_tokens":15}}` + "\n\n"
		zeroUsage  = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[],"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}` + "\n\n"
		completion = `{"id":"c1","object":"chat.completion","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}]`
	)
	signedIn := map[string]string{"X-WeChat-OpenID": "o-user-1"}
	tests := []struct {
		name     string
		provider http.HandlerFunc
		body     string
		hdr      map[string]string
		warned   bool
	}{
		{"plain, non-stream, no usage", jsonHandler(200, completion+`}`), plainBody, nil, true},
		{"plain, stream, no usage", sseHandler(chunk, finish, "data: [DONE]\n\n"), streamBody, nil, true},
		{"signed in, non-stream, no usage", jsonHandler(200, completion+`}`), plainBody, signedIn, true},
		{"signed in, stream, no usage", sseHandler(chunk, finish, "data: [DONE]\n\n"), streamBody, signedIn, true},
		// A relay that fills the usage with zeros has counted nothing either.
		{"plain, non-stream, zero usage", jsonHandler(200, completion+`,"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}`), plainBody, nil, true},
		{"plain, stream, zero usage", sseHandler(chunk, finish, zeroUsage, "data: [DONE]\n\n"), streamBody, nil, true},
		{"signed in, non-stream, zero usage", jsonHandler(200, completion+`,"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}`), plainBody, signedIn, true},
		{"signed in, stream, zero usage", sseHandler(chunk, finish, zeroUsage, "data: [DONE]\n\n"), streamBody, signedIn, true},
		// A total alone names no prompt or completion tokens: the ledger
		// prices none of it (accounting.Ledger.Round), so the answer cost 0.
		{"plain, non-stream, total only", jsonHandler(200, completion+`,"usage":{"total_tokens":15}}`), plainBody, nil, true},
		{"plain, stream, total only", sseHandler(chunk, finish, totalOnly, "data: [DONE]\n\n"), streamBody, nil, true},
		{"signed in, non-stream, total only", jsonHandler(200, completion+`,"usage":{"total_tokens":15}}`), plainBody, signedIn, true},
		{"signed in, stream, total only", sseHandler(chunk, finish, totalOnly, "data: [DONE]\n\n"), streamBody, signedIn, true},
		{"plain, non-stream, usage", jsonHandler(200, completion+`,"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`), plainBody, nil, false},
		{"plain, stream, usage", sseHandler(chunk, finish, usageChunk, "data: [DONE]\n\n"), streamBody, nil, false},
		{"signed in, stream, usage", sseHandler(chunk, finish, usageChunk, "data: [DONE]\n\n"), streamBody, signedIn, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, tc.provider)
			s, ledger, _, logs := ledgerProxyLog(t, pricedConfig(t, fp.URL), nil, noTools{})
			t.Cleanup(ledger.Close)
			srv, handled := waitedServer(t, s.Handler())
			for range 2 {
				resp := post(t, srv.URL, "/v1/chat/completions", tc.body, tc.hdr)
				if b := readAll(t, resp.Body); resp.StatusCode != 200 || !strings.Contains(b, "hello") {
					t.Fatalf("answer %d %s", resp.StatusCode, b)
				}
			}
			handled.Wait()
			var lines []string
			for _, line := range strings.Split(logs.String(), "\n") {
				if strings.Contains(line, "no usage") {
					lines = append(lines, line)
				}
			}
			switch {
			case !tc.warned && len(lines) > 0:
				t.Errorf("an answer with usage was warned of: %q", lines)
			case tc.warned && len(lines) != 1:
				t.Errorf("%d log lines about the missing usage after two answers; want 1, naming the provider and target:\n%s", len(lines), logs.String())
			case tc.warned && !(strings.Contains(lines[0], `"provider":"fake"`) && strings.Contains(lines[0], `"target":"vendor/upstream-model"`) &&
				strings.Contains(lines[0], `"level":"WARN"`)):
				t.Errorf("warning %s; want a WARN naming provider fake and target vendor/upstream-model", lines[0])
			}
		})
	}
}
