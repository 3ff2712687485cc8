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

// wordsRound answers one round with text and tool calls (createOrderCall's
// shape, "" for none), streamed as openaiRound does or as a
// chat.completion.
func wordsRound(stream bool, text, calls, finish string) http.HandlerFunc {
	if stream {
		return openaiRound("r", 1700000000, []string{text}, calls, finish)
	}
	msg := `{"role":"assistant","content":` + string(jsonstr.Append(nil, text))
	if calls != "" {
		msg += `,"tool_calls":` + calls
	}
	return jsonHandler(200, `{"id":"r","object":"chat.completion","created":1700000000,"model":"m","choices":[{"index":0,"message":`+msg+`}`+
		`,"logprobs":null,"finish_reason":"`+finish+`"}]}`)
}

// answerText is the text the bot reads in an answer, streamed or not.
func answerText(stream bool, body string) string {
	if stream {
		return streamText(body)
	}
	return gjson.Get(body, "choices.0.message.content").Str
}

// TestRoundsTextSeparated: the text of a turn's rounds reaches the bot as
// paragraphs, streamed or not: a model ends a round's text with a sentence
// and no trailing space, and starts the next round's with one, and the bot
// read "…for you.Your order is ready.". Where white space already separates
// them nothing is added. Each of the rounds that end in the clarification
// said "On it." (the provider was asked three times): each is relayed once,
// now with the clarification as paragraphs of their own.
func TestRoundsTextSeparated(t *testing.T) {
	tests := []struct {
		name     string
		rounds   func(stream bool) []http.HandlerFunc
		want     string
		upstream int
	}{
		{"two rounds", func(stream bool) []http.HandlerFunc {
			return []http.HandlerFunc{wordsRound(stream, "Let me set that up for you.", createOrderCall, "tool_calls"), wordsRound(stream, "Your order is ready.", "", "stop")}
		}, "Let me set that up for you.\n\nYour order is ready.", 2},
		{"a space between them already", func(stream bool) []http.HandlerFunc {
			return []http.HandlerFunc{wordsRound(stream, "Let me set that up. ", createOrderCall, "tool_calls"), wordsRound(stream, "Your order is ready.", "", "stop")}
		}, "Let me set that up. Your order is ready.", 2},
		{"the clarification", func(stream bool) []http.HandlerFunc {
			return []http.HandlerFunc{wordsRound(stream, "On it.", createOrderCall, "tool_calls")}
		}, "On it.\n\nOn it.\n\nOn it.\n\n" + config.DefaultClarification, 3},
	}
	for _, tc := range tests {
		for _, stream := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s, stream %v", tc.name, stream), func(t *testing.T) {
				fp := newFakeProvider(t, roundByRound(tc.rounds(stream)...))
				url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				if got := answerText(stream, readAll(t, resp.Body)); got != tc.want {
					t.Errorf("the bot read %q; want %q", got, tc.want)
				}
				if n := len(fp.requests()); n != tc.upstream {
					t.Errorf("%d upstream rounds; want %d", n, tc.upstream)
				}
			})
		}
	}
}

// TestRoundsTextSeparatedNotInTheExchange: the paragraph break between two
// rounds' text is the bot's to read only: when the bot's next request
// carries the assistant message it got (break included) with its tool
// results, the kept exchange put back in its place gives the provider each
// round's text as the model wrote it.
func TestRoundsTextSeparatedNotInTheExchange(t *testing.T) {
	const weatherCall = `[{"index":0,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}]`
	for _, stream := range []bool{true, false} {
		t.Run(fmt.Sprintf("stream %v", stream), func(t *testing.T) {
			fp := newFakeProvider(t, roundByRound(
				wordsRound(stream, "Let me order it.", createOrderCall, "tool_calls"),
				wordsRound(stream, "And the weather:", weatherCall, "tool_calls"),
				wordsRound(stream, "Sunny.", "", "stop")))
			url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
			hdr := map[string]string{"X-WeChat-OpenID": "o-user-1"}
			got := answerText(stream, readAll(t, post(t, url, "/v1/chat/completions", chatBody(stream, weatherTool), hdr).Body))
			if got != "Let me order it.\n\nAnd the weather:" {
				t.Fatalf("the bot read %q", got)
			}
			follow := `{"model":"gpt-test","stream":` + fmt.Sprint(stream) + `,` + weatherTool + `"messages":[{"role":"user","content":"buy premium"},` +
				`{"role":"assistant","content":` + string(jsonstr.Append(nil, got)) + `,"tool_calls":[{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}]},` +
				`{"role":"tool","tool_call_id":"call_w","content":"sunny"}]}`
			readAll(t, post(t, url, "/v1/chat/completions", follow, hdr).Body)
			reqs := fp.requests()
			if len(reqs) != 3 {
				t.Fatalf("%d upstream requests; want 3", len(reqs))
			}
			var texts []string
			gjson.GetBytes(reqs[2].Body, `messages.#(role=="assistant")#.content`).ForEach(func(_, c gjson.Result) bool {
				texts = append(texts, c.Str)
				return true
			})
			if strings.Join(texts, "|") != "Let me order it.|And the weather:" {
				t.Errorf("the provider got the assistant messages %q; want each round's own text", texts)
			}
		})
	}
}

// TestRoundsTextSeparatedUnderStopSequences: a bot whose stop sequences
// include a line break (stop "\n" for one-line answers, "\n\n" for one
// paragraph) is promised by OpenAI that the text it gets never contains
// one, and read paygate's paragraph break between two rounds' text, the
// very sequence it had asked the model to stop at. There the rounds' text
// is joined with a space, streamed or not, the clarification too; a stop
// sequence without a line break keeps the paragraph break.
func TestRoundsTextSeparatedUnderStopSequences(t *testing.T) {
	twoRounds := func(stream bool) []http.HandlerFunc {
		return []http.HandlerFunc{wordsRound(stream, "Let me set that up for you.", createOrderCall, "tool_calls"), wordsRound(stream, "Your order is ready.", "", "stop")}
	}
	spent := func(stream bool) []http.HandlerFunc {
		return []http.HandlerFunc{wordsRound(stream, "On it.", createOrderCall, "tool_calls")}
	}
	tests := []struct {
		name, stop string
		rounds     func(stream bool) []http.HandlerFunc
		want       string
	}{
		{"stop a line break", `"\n"`, twoRounds, "Let me set that up for you. Your order is ready."},
		{"stop a blank line among others", `["END","\n\n"]`, twoRounds, "Let me set that up for you. Your order is ready."},
		{"stop without a line break", `["END"]`, twoRounds, "Let me set that up for you.\n\nYour order is ready."},
		{"the clarification, stop a line break", `["\n"]`, spent, "On it. On it. On it. " + config.DefaultClarification},
	}
	for _, tc := range tests {
		for _, stream := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s, stream %v", tc.name, stream), func(t *testing.T) {
				fp := newFakeProvider(t, roundByRound(tc.rounds(stream)...))
				url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, `"stop":`+tc.stop+`,`), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				if got := answerText(stream, readAll(t, resp.Body)); got != tc.want {
					t.Errorf("the bot read %q; want %q", got, tc.want)
				}
			})
		}
	}
}
