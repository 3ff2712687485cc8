package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestDoneBeforeFinishIsACut: a relay (one-api, new-api) that ends a broken
// upstream stream with "data: [DONE]" ends a round that never finished: a
// payment call it held must not run (its arguments may be cut, and the
// model never said it was done), and the client must not hear
// finish_reason "tool_calls" for its own half-sent call. With no other
// provider to continue the round, the client gets an error event.
func TestDoneBeforeFinishIsACut(t *testing.T) {
	const head = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[`
	stream := head + `{"index":0,"delta":{"role":"assistant","content":"Ok."},"finish_reason":null}]}` + "\n\n" +
		head + `{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_p","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]},"finish_reason":null}]}` + "\n\n" +
		head + `{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"ci"}}]},"finish_reason":null}]}` + "\n\n" +
		"data: [DONE]\n\n"
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, stream)
	})
	tools := &countingTools{}
	s, ledger, _ := ledgerProxy(t, testConfig(t, fp.URL, nil), nil, tools)
	defer ledger.Close()
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(
		`{"model":"gpt-test","stream":true,"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],`+
			`"messages":[{"role":"user","content":"buy premium, and the weather?"}]}`))
	req.Header.Set("Authorization", "Bearer "+testClientKey)
	req.Header.Set("X-WeChat-OpenID", "o-user-1")
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	body := w.Body.String()
	if n := tools.executed.Load(); n != 0 {
		t.Errorf("%d payment calls run from a round that never finished; want 0", n)
	}
	sawError := false
	for _, line := range strings.Split(body, "\n") {
		d, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		if f := gjson.Get(d, "choices.0.finish_reason").Str; f == "tool_calls" {
			t.Errorf("the client heard finish_reason tool_calls for a cut round: %s", d)
		}
		sawError = sawError || gjson.Get(d, "error.message").Exists()
	}
	if !sawError {
		t.Errorf("no error event for a round cut short; the client got:\n%s", body)
	}
}
