package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/internal/jsonstr"
)

// openaiRound streams one round as api.openai.com does: id and created on
// every chunk, a role delta, the text pieces, the tool calls (a raw
// tool_calls array, "" for none) in one delta, the finish chunk, and a usage
// chunk when the request asked for one.
func openaiRound(id string, created int64, texts []string, calls, finish string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		head := fmt.Sprintf(`data: {"id":%q,"object":"chat.completion.chunk","created":%d,"model":"m","choices":`, id, created)
		events := []string{head + `[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}` + "\n\n"}
		for _, s := range texts {
			events = append(events, head+`[{"index":0,"delta":{"content":`+string(jsonstr.Append(nil, s))+`},"logprobs":null,"finish_reason":null}]}`+"\n\n")
		}
		if calls != "" {
			events = append(events, head+`[{"index":0,"delta":{"tool_calls":`+calls+`},"logprobs":null,"finish_reason":null}]}`+"\n\n")
		}
		events = append(events, head+`[{"index":0,"delta":{},"logprobs":null,"finish_reason":"`+finish+`"}]}`+"\n\n")
		if gjson.GetBytes(b, "stream_options.include_usage").Bool() {
			events = append(events, head+`[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`+"\n\n")
		}
		sseHandler(append(events, "data: [DONE]\n\n")...)(w, r)
	}
}

// streamChunks is the data of every event of a stream but [DONE].
func streamChunks(body string) []string {
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if d, ok := strings.CutPrefix(line, "data: "); ok && d != "[DONE]" {
			out = append(out, d)
		}
	}
	return out
}

// streamText is the text a stream's deltas carry, joined.
func streamText(body string) string {
	var b strings.Builder
	for _, c := range streamChunks(body) {
		b.WriteString(gjson.Get(c, "choices.0.delta.content").Str)
	}
	return b.String()
}

// createOrderCall is a round's create_order call.
const createOrderCall = `[{"index":0,"id":"call_pay","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]`

// TestStreamTurnCreated: every chunk of a stitched stream carries the first
// round's "created", the later rounds' chunks and those paygate writes (the
// summed usage, the clarification, the final chunk) alike: OpenAI gives
// every chunk of a stream the same timestamp, and the stream carried each
// round's and paygate's clock.
func TestStreamTurnCreated(t *testing.T) {
	tests := []struct {
		name, last string // last: the text the stream ends with
		rounds     []http.HandlerFunc
	}{
		{"a payment round, then words, with usage", "Done.", []http.HandlerFunc{
			openaiRound("r1", 1700000000, []string{"Sure. "}, createOrderCall, "tool_calls"),
			openaiRound("r2", 1700000005, []string{"Done."}, "", "stop"),
		}},
		{"the rounds spent: the clarification ends the turn", config.DefaultClarification, []http.HandlerFunc{
			openaiRound("r1", 1700000000, []string{"On it. "}, createOrderCall, "tool_calls"),
			openaiRound("r2", 1700000005, []string{"On it. "}, createOrderCall, "tool_calls"),
			openaiRound("r3", 1700000009, []string{"On it. "}, createOrderCall, "tool_calls"),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, roundByRound(tc.rounds...))
			url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
			resp := post(t, url, "/v1/chat/completions", chatBody(true, `"stream_options":{"include_usage":true},`), map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			chunks := streamChunks(body)
			if len(chunks) < 4 || !gjson.Get(chunks[len(chunks)-1], "usage").IsObject() || !strings.HasSuffix(streamText(body), tc.last) {
				t.Fatalf("stream %q; want the rounds' chunks ending with %q, and the usage", chunks, tc.last)
			}
			for _, c := range chunks {
				if got := gjson.Get(c, "created").Int(); got != 1700000000 {
					t.Errorf("chunk %s; want the first round's created, 1700000000", c)
				}
			}
		})
	}
}
