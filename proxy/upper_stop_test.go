package proxy

import (
	"slices"
	"testing"

	"github.com/tidwall/gjson"
)

// TestToolRoundFinishStopInAnyCase: a round that hands the bot its own tool
// calls, alone or after a payment call paygate ran (a mixed round), ended
// by the provider with "STOP", Gemini's finishReason as a relay passes it
// on, reached the bot as "STOP" where "stop" is told as "tool_calls",
// stream and non-stream: an SDK that branches on finish_reason (the
// Agents SDK, LangChain's streaming agents) saw no tool round and ran none
// of the bot's tools. "stop" is read in any case, as the cut words are.
func TestToolRoundFinishStopInAnyCase(t *testing.T) {
	const weather = `{"index":0,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}`
	for _, tc := range []struct {
		name, calls string
		ran         int
	}{
		{"the bot's calls alone", `[` + weather + `]`, 0},
		{"a mixed round", `[` + queryCall(0, "call_q", "X1") + `,` + weather[:len(`{"index":`)] + `1` + weather[len(`{"index":0`):] + `]`, 1},
	} {
		for _, finish := range []string{"STOP", "Stop", "stop"} {
			for _, stream := range []bool{false, true} {
				t.Run(tc.name+"/"+finish+map[bool]string{false: "/non-stream", true: "/stream"}[stream], func(t *testing.T) {
					events := []string{roundChunk + `[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}` + "\n\n"}
					fp := newFakeProvider(t, endedRound(stream, events, `{"role":"assistant","content":null`, tc.calls, finish))
					tools := &recordingTools{}
					url := toolsProxy(t, fp.URL, tools, nil)
					resp := post(t, url, "/v1/chat/completions", chatBody(stream, weatherTool), map[string]string{"X-WeChat-OpenID": "o-user-1"})
					body := readAll(t, resp.Body)
					if got := botCallIDs(stream, body); !slices.Equal(got, []string{"call_w"}) {
						t.Fatalf("the bot got calls %q; want its own, call_w (%d %s)", got, resp.StatusCode, body)
					}
					if got := tools.executed(); len(got) != tc.ran {
						t.Errorf("executed %q; want %d payment calls", got, tc.ran)
					}
					if fin := answerFinish(stream, body); fin != "tool_calls" {
						t.Errorf("finish_reason %q; want \"tool_calls\": %s", fin, body)
					}
				})
			}
		}
	}
}

// answerFinish is the finish_reason the bot heard: a non-stream answer's,
// or the last a stream's chunks gave.
func answerFinish(stream bool, body string) string {
	if !stream {
		return gjson.Get(body, "choices.0.finish_reason").Str
	}
	fin := ""
	for _, c := range streamChunks(body) {
		if f := gjson.Get(c, "choices.0.finish_reason").Str; f != "" {
			fin = f
		}
	}
	return fin
}
