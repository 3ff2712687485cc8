package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestForwardedEscapedUsageCounted: a forwarded generation's usage whose
// key is spelled with a JSON escape ("us\u0061ge", "r\u0065sponse"), which
// gjson and every SDK read as the key itself, is the call's usage: the
// provider billed it, the bot's SDK shows it, and the ledger counted
// nothing. An escaped usage key deeper down (the bot's metadata echoed
// after the usage) is still no usage of the call.
func TestForwardedEscapedUsageCounted(t *testing.T) {
	const created = "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\",\"usage\":null}}\n\n"
	completed := func(response string) string {
		return "event: response.completed\ndata: {\"type\":\"response.completed\"," + response + "}\n\n"
	}
	for _, tc := range []struct {
		name, path, body string
		json             string   // a JSON answer, or else
		events           []string // a stream's events
		prompt, compl    float64
	}{
		{name: "Responses API answer", path: "/v1/responses", body: `{"model":"gpt-test","input":"hi"}`,
			json: `{"id":"resp_1","object":"response","model":"vendor/upstream-model","output":[],"us\u0061ge":{"input_tokens":300,"output_tokens":50,"total_tokens":350}}`, prompt: 300, compl: 50},
		{name: "Responses API answer, a null usage before it", path: "/v1/responses", body: `{"model":"gpt-test","input":"hi"}`,
			json: `{"id":"resp_1","object":"response","usage":null,"model":"vendor/upstream-model","output":[],"us\u0061ge":{"input_tokens":300,"output_tokens":50,"total_tokens":350}}`, prompt: 300, compl: 50},
		{name: "embeddings answer", path: "/v1/embeddings", body: `{"model":"gpt-test","input":"hi"}`,
			json: `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1]}],"model":"vendor/upstream-model","\u0075sage":{"prompt_tokens":1000,"total_tokens":1000}}`, prompt: 1000},
		{name: "Responses API stream, usage escaped", path: "/v1/responses", body: `{"model":"gpt-test","input":"hi","stream":true}`, events: []string{created,
			completed(`"response":{"id":"resp_1","status":"completed","output":[],"us\u0061ge":{"input_tokens":1000,"output_tokens":500,"total_tokens":1500},"user":null}`)}, prompt: 1000, compl: 500},
		{name: "Responses API stream, response escaped", path: "/v1/responses", body: `{"model":"gpt-test","input":"hi","stream":true}`, events: []string{created,
			completed(`"r\u0065sponse":{"id":"resp_1","status":"completed","output":[],"usage":{"input_tokens":1000,"output_tokens":500,"total_tokens":1500},"metadata":{}}`)}, prompt: 1000, compl: 500},
		{name: "Responses API stream, an escaped usage key in the metadata after it", path: "/v1/responses", body: `{"model":"gpt-test","input":"hi","stream":true}`, events: []string{created,
			completed(`"response":{"id":"resp_1","status":"completed","output":[],"usage":{"input_tokens":1000,"output_tokens":500,"total_tokens":1500},"metadata":{"us\u0061ge":{"input_tokens":9}}}`)}, prompt: 1000, compl: 500},
		{name: "legacy completion stream", path: "/v1/completions", body: `{"model":"gpt-test","prompt":"hi","stream":true,"stream_options":{"include_usage":true}}`, events: []string{
			"data: {\"id\":\"c\",\"object\":\"text_completion\",\"choices\":[{\"text\":\"hi\",\"index\":0}],\"usage\":null}\n\n",
			"data: {\"id\":\"c\",\"object\":\"text_completion\",\"choices\":[],\"usag\\u0065\":{\"prompt_tokens\":30,\"completion_tokens\":7,\"total_tokens\":37}}\n\n",
			"data: [DONE]\n\n"}, prompt: 30, compl: 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sent := tc.json
			fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.json != "" {
					w.Header().Set("Content-Type", "application/json")
					_, _ = io.WriteString(w, tc.json)
					return
				}
				w.Header().Set("Content-Type", "text/event-stream")
				for _, ev := range tc.events {
					_, _ = io.WriteString(w, ev)
					w.(http.Flusher).Flush()
				}
			})
			if sent == "" {
				sent = strings.Join(tc.events, "")
			}
			s, ledger, reg := ledgerProxy(t, testConfig(t, fp.URL, nil), nil, nil)
			t.Cleanup(ledger.Close)
			srv, handled := waitedServer(t, s.Handler())
			resp := clientReq(t, http.MethodPost, srv.URL+tc.path, strings.NewReader(tc.body), map[string]string{"Content-Type": "application/json"})
			if b := readAll(t, resp.Body); resp.StatusCode != 200 || b != sent {
				t.Fatalf("%d %s; want the provider's answer as sent", resp.StatusCode, b)
			}
			handled.Wait()
			for kind, want := range map[string]float64{"prompt": tc.prompt, "completion": tc.compl} {
				if got := tokensCounted(t, reg, kind); got != want {
					t.Errorf("%s tokens: %v; want %v", kind, got, want)
				}
			}
		})
	}
}
