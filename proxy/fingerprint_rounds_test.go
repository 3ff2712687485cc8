package proxy

import (
	"io"
	"net/http"
	"testing"

	"github.com/tidwall/gjson"
)

// fingerprintRound streams one round as api.openai.com does, every chunk
// with its system_fingerprint: text, the tool calls (a raw tool_calls
// array, "" for none), the finish and, when the request asked, the usage
// chunk.
func fingerprintRound(fp, text, calls, finish string) http.HandlerFunc {
	head := `data: {"id":"chatcmpl-` + fp + `","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","service_tier":"default","system_fingerprint":"` + fp + `","choices":`
	return func(w http.ResponseWriter, r *http.Request) {
		events := []string{head + `[{"index":0,"delta":{"role":"assistant","content":"` + text + `"},"logprobs":null,"finish_reason":null}],"obfuscation":"x1"}` + "\n\n"}
		if calls != "" {
			events = append(events, head+`[{"index":0,"delta":{"tool_calls":`+calls+`},"logprobs":null,"finish_reason":null}],"obfuscation":"x2"}`+"\n\n")
		}
		events = append(events, head+`[{"index":0,"delta":{},"logprobs":null,"finish_reason":"`+finish+`"}],"obfuscation":"x3"}`+"\n\n")
		if b, _ := io.ReadAll(r.Body); gjson.GetBytes(b, "stream_options.include_usage").Bool() {
			events = append(events, head+`[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15},"obfuscation":"x4"}`+"\n\n")
		}
		sseHandler(append(events, "data: [DONE]\n\n")...)(w, r)
	}
}

// TestStitchedStreamEndsWithTheFingerprint: the chunks paygate writes
// itself at a turn's end (the summed usage, a finish of its own) carry the
// system_fingerprint of the round that answered last, as OpenAI's every
// chunk does: openai-python's stream helper takes the completion's
// system_fingerprint from the last chunk, and read none.
func TestStitchedStreamEndsWithTheFingerprint(t *testing.T) {
	mixed := `[{"index":0,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{}"}},` +
		`{"index":1,"id":"call_pay","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]`
	for _, tc := range []struct {
		name, members string
		rounds        []http.HandlerFunc
	}{
		{"the summed usage after two rounds", `"stream_options":{"include_usage":true},`, []http.HandlerFunc{
			fingerprintRound("fp_one", "Sure. ", createOrderCall, "tool_calls"), fingerprintRound("fp_two", "Done.", "", "stop")}},
		{"paygate's finish after a mixed round", weatherTool, []http.HandlerFunc{
			fingerprintRound("fp_one", "Sure. ", createOrderCall, "tool_calls"), fingerprintRound("fp_two", "Checking. ", mixed, "tool_calls")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, roundByRound(tc.rounds...))
			url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
			body := readAll(t, post(t, url, "/v1/chat/completions", chatBody(true, tc.members), map[string]string{"X-WeChat-OpenID": "o-user-1"}).Body)
			chunks := streamChunks(body)
			if len(chunks) < 3 {
				t.Fatalf("stream %q", chunks)
			}
			if got := gjson.Get(chunks[len(chunks)-1], "system_fingerprint").Str; got != "fp_two" {
				t.Errorf("the last chunk %s has system_fingerprint %q; want the last round's fp_two", chunks[len(chunks)-1], got)
			}
		})
	}
}
