package proxy

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"
	"github.com/tidwall/gjson"
)

// TestBotToolNameSplitAcrossDeltas: a provider that streams a tool's name
// in pieces (Gemini's compatible endpoint is reported to), "get_" in a
// call's first delta and "weather" in a later one of the same index or id,
// for a tool of the bot's own whose name starts no payment tool's. An SDK
// talking to the provider directly joins the pieces of one index into one
// call, get_weather, as the OpenAI SDKs' stream accumulators do. paygate
// took the later piece for a call of its own: the bot got "get_" without
// arguments and "weather" with them, under two indexes, a call of a tool
// it does not have; and the payment exchange of a mixed round, kept under
// those two calls, was never restored into the bot's next request, which
// sent get_weather back: the model was not told of the order it made. The
// later piece now goes to the bot under the earlier one's (renumbered)
// index, as the provider sent it, and the bot's SDK joins them as it would
// without paygate; a payment call beside it runs as before and its
// exchange comes back, and a name repeated whole in every delta (Qwen,
// MiniMax) stays one call, its deltas as sent. Without a signed-in user
// the stream is relayed as is.
func TestBotToolNameSplitAcrossDeltas(t *testing.T) {
	tests := []struct {
		name     string
		user     bool // a signed-in user: the payment tools are offered
		deltas   []string
		executed []string // the payment calls that ran
		bot      []string // the calls the bot's SDK accumulated
	}{
		{"by index", true, []string{
			callDelta(`{"index":0,"id":"call_w","type":"function","function":{"name":"get_","arguments":""}}`),
			callDelta(`{"index":0,"function":{"name":"weather"}}`),
			callDelta(`{"index":0,"function":{"arguments":"{\"city\":"}}`),
			callDelta(`{"index":0,"function":{"arguments":"\"Hangzhou\"}"}}`),
		}, nil, []string{`call_w get_weather {"city":"Hangzhou"}`}},
		{"in three pieces, the later ones with arguments", true, []string{
			callDelta(`{"index":0,"id":"call_w","type":"function","function":{"name":"get"}}`),
			callDelta(`{"index":0,"function":{"name":"_wea","arguments":""}}`),
			callDelta(`{"index":0,"function":{"name":"ther","arguments":"{\"city\":\"Hangzhou\"}"}}`),
		}, nil, []string{`call_w get_weather {"city":"Hangzhou"}`}},
		{"by id, without an index", true, []string{
			callDelta(`{"id":"call_w","type":"function","function":{"name":"get_"}}`),
			callDelta(`{"id":"call_w","function":{"name":"weather","arguments":"{\"city\":\"Hangzhou\"}"}}`),
		}, nil, []string{`call_w get_weather {"city":"Hangzhou"}`}},
		{"after a payment call, renumbered", true, []string{
			callDelta(`{"index":0,"id":"call_c","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium\"}"}}`),
			callDelta(`{"index":1,"id":"call_w","type":"function","function":{"name":"get_","arguments":""}}`),
			callDelta(`{"index":1,"function":{"name":"weather"}}`),
			callDelta(`{"index":1,"function":{"arguments":"{\"city\":\"Hangzhou\"}"}}`),
		}, []string{`create_order {"sku":"premium"}`}, []string{`call_w get_weather {"city":"Hangzhou"}`}},
		{"beside another call of the bot's", true, []string{
			callDelta(`{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Beijing\"}"}}`),
			callDelta(`{"index":1,"id":"call_w","type":"function","function":{"name":"get_","arguments":""}}`),
			callDelta(`{"index":1,"function":{"name":"weather"}}`),
			callDelta(`{"index":1,"function":{"arguments":"{\"city\":\"Hangzhou\"}"}}`),
		}, nil, []string{`call_a get_weather {"city":"Beijing"}`, `call_w get_weather {"city":"Hangzhou"}`}},
		{"whole, and empty in later deltas (Qwen)", true, []string{
			callDelta(`{"index":0,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}`),
			callDelta(`{"index":0,"id":"","type":"function","function":{"name":"","arguments":"\"Hangzhou\"}"}}`),
		}, nil, []string{`call_w get_weather {"city":"Hangzhou"}`}},
		// One call, its deltas as the provider sent them: an SDK that joins
		// the name's pieces reads it twice, as it would without paygate.
		{"whole, repeated in every delta (Qwen, MiniMax)", true, []string{
			callDelta(`{"index":0,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}`),
			callDelta(`{"index":0,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"\"Hangzhou\"}"}}`),
		}, nil, []string{`call_w get_weatherget_weather {"city":"Hangzhou"}`}},
		{"without a signed-in user", false, []string{
			callDelta(`{"index":0,"id":"call_w","type":"function","function":{"name":"get_","arguments":""}}`),
			callDelta(`{"index":0,"function":{"name":"weather"}}`),
			callDelta(`{"index":0,"function":{"arguments":"{\"city\":\"Hangzhou\"}"}}`),
		}, nil, []string{`call_w get_weather {"city":"Hangzhou"}`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			round0 := append([]string{roundChunk + `[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}` + "\n\n"}, tc.deltas...)
			round0 = append(round0, roundChunk+`[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n", "data: [DONE]\n\n")
			// A mixed round ends the turn: the payment call runs, the bot
			// gets its own call, and the payment exchange is kept for the
			// bot's next request.
			fp := newFakeProvider(t, roundByRound(sseHandler(round0...), textRound(true, "Sunny; order O1 awaits payment.")))
			recording := &recordingTools{}
			url := toolsProxy(t, fp.URL, recording, nil)
			got, finish := sdkStreamCalls(t, botClient(url, tc.user))
			// What the bot's SDK reads talking to the provider itself, the
			// payment calls left out.
			dc := openai.DefaultConfig("sk-provider")
			dc.BaseURL = newFakeProvider(t, sseHandler(round0...)).URL + "/v1"
			direct, _ := sdkStreamCalls(t, openai.NewClientWithConfig(dc))
			direct = slices.DeleteFunc(direct, func(call string) bool { return strings.Contains(call, " create_order ") })
			if !slices.Equal(got, direct) {
				t.Errorf("the bot's SDK accumulated the calls %q; from the provider itself %q", got, direct)
			}
			if got := recording.executed(); !slices.Equal(got, tc.executed) {
				t.Errorf("executed %q; want %q", got, tc.executed)
			}
			if n := len(fp.requests()); n != 1 {
				t.Errorf("%d upstream rounds; want 1", n)
			}
			if !slices.Equal(got, tc.bot) {
				t.Errorf("the bot's SDK accumulated the calls %q; want %q", got, tc.bot)
			}
			if finish != openai.FinishReasonToolCalls {
				t.Errorf("finish_reason %q; want tool_calls", finish)
			}
			if len(tc.executed) == 0 {
				return
			}
			// The bot sends back its call, get_weather, and its result:
			// the kept exchange is restored into that request, the
			// payment call beside the bot's.
			if got, up := restoredWeatherCalls(t, url, fp, "call_w"); got != `["create_order","get_weather"]` {
				t.Errorf("the restored assistant message calls %s; want the payment call, then the bot's get_weather:\n%s", got, up)
			}
		})
	}
}

// restoredWeatherCalls sends the bot's next request after a round that
// gave it its get_weather call (id) and ran a payment call: the call and
// its result sent back. It wants that request to be the turn's second
// upstream request, and returns the names of the calls of the assistant
// message restored into it, and its body.
func restoredWeatherCalls(t *testing.T, url string, fp *fakeProvider, id string) (names string, up []byte) {
	t.Helper()
	next := chatBodyWith(true, weatherTool, `{"role":"user","content":"weather in Hangzhou, and buy premium"}`,
		`{"role":"assistant","content":null,"tool_calls":[{"id":"`+id+`","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Hangzhou\"}"}}]}`,
		`{"role":"tool","tool_call_id":"`+id+`","content":"sunny"}`)
	resp := post(t, url, "/v1/chat/completions", next, map[string]string{"X-WeChat-OpenID": "o-user-1"})
	body := readAll(t, resp.Body)
	reqs := fp.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d upstream requests; want 2 (the bot got %d %s)", len(reqs), resp.StatusCode, body)
	}
	up = reqs[1].Body
	return gjson.Get(assistantToolMessage(up), "tool_calls.#.function.name").String(), up
}

// sdkStreamCalls streams a chat completion offering the bot's tool with
// go-openai and accumulates its tool-call deltas as the OpenAI SDKs'
// stream accumulators do: by index (by id without one), an id taken when
// one comes, the name's and the arguments' pieces concatenated. Each call
// is "id name arguments"; the finish_reason is the last one given.
func sdkStreamCalls(t *testing.T, c *openai.Client, more ...string) ([]string, openai.FinishReason) {
	t.Helper()
	req := openai.ChatCompletionRequest{
		Model:    "gpt-test",
		Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "weather in Hangzhou, and buy premium"}},
		Tools:    botTools(more),
	}
	s, err := c.CreateChatCompletionStream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var calls []openai.ToolCall
	var finish openai.FinishReason
	for {
		r, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range r.Choices {
			if ch.Index != 0 {
				t.Fatalf("a chunk of choice %d", ch.Index)
			}
			if ch.FinishReason != "" {
				finish = ch.FinishReason
			}
			for _, d := range ch.Delta.ToolCalls {
				var i int
				switch {
				case d.Index != nil:
					i = *d.Index
				case d.ID != "":
					// A provider's own stream without indexes (Gemini) is
					// read by id; paygate's always has them.
					i = slices.IndexFunc(calls, func(c openai.ToolCall) bool { return c.ID == d.ID })
					if i < 0 {
						i = len(calls)
					}
				default:
					t.Fatalf("a tool-call delta without an index or id: %+v", d)
				}
				for len(calls) <= i {
					calls = append(calls, openai.ToolCall{})
				}
				if d.ID != "" {
					calls[i].ID = d.ID
				}
				calls[i].Function.Name += d.Function.Name
				calls[i].Function.Arguments += d.Function.Arguments
			}
		}
	}
	var out []string
	for _, call := range calls {
		out = append(out, call.ID+" "+call.Function.Name+" "+call.Function.Arguments)
	}
	return out, finish
}

// TestPaymentNameInPiecesAfterABotCallUnderItsIndex: a provider that gives
// every call index 0 and no id, and streams a name in pieces, made a call
// of the bot's own tool without arguments ("get_time", a tool with no
// parameters) and then create_order, its name in pieces ("create_", then
// "order"). Each piece was taken for the next piece of the bot's call's
// name: the payment call went to the bot as part of "get_timecreate_order",
// with its arguments, and the order the model made was never created. A
// piece that may start a payment tool's name is a call of its own, held
// while its name might grow: the payment call runs, and the bot gets its
// own call alone.
func TestPaymentNameInPiecesAfterABotCallUnderItsIndex(t *testing.T) {
	const timeTool = `"tools":[{"type":"function","function":{"name":"get_time","parameters":{"type":"object"}}}],`
	executed, bot, body, _ := streamedCallTurn(t, timeTool, roundByRound(callRound(
		callDelta(`{"index":0,"type":"function","function":{"name":"get_time","arguments":""}}`),
		callDelta(`{"index":0,"type":"function","function":{"name":"create_","arguments":""}}`),
		callDelta(`{"index":0,"function":{"name":"order"}}`),
		callDelta(`{"index":0,"function":{"arguments":"{\"sku\":\"premium\"}"}}`)),
		textRound(true, "Order O1 is waiting for payment.")))
	if want := []string{`create_order {"sku":"premium"}`}; !slices.Equal(executed, want) {
		t.Errorf("executed %q; want %q", executed, want)
	}
	if want := []string{"get_time "}; !slices.Equal(bot, want) {
		t.Errorf("the bot got calls %q; want %q:\n%s", bot, want, body)
	}
	if strings.Contains(body, "create_") || strings.Contains(body, "premium") {
		t.Errorf("the payment call reached the bot:\n%s", body)
	}
}

// TestToolNameInPiecesAnsweringANonStreamRequest: a provider that ignores
// "stream": false streams a call's name in pieces ("create_", then "order";
// "get_", then "weather"), as some do, each piece under the call's index
// (or id). The events are assembled into the whole completion the bot's
// non-stream request asked for, and each piece had been taken there for a
// call of its own: create_order became "create_" and "order", a call the
// bot does not have, and the order was never made; get_weather reached the
// bot (go-openai, not streaming) as two calls, "get_" without arguments
// and "weather". The pieces are joined as the stream capture and the
// OpenAI SDKs' accumulators join them, by index (by id without one), a
// new call only under another id or, once its arguments started, another
// name: the payment call runs as it does streamed, and the bot gets one
// call, as a streaming bot does.
func TestToolNameInPiecesAnsweringANonStreamRequest(t *testing.T) {
	tests := []struct {
		name     string
		deltas   []string
		executed []string // the payment calls that ran
		bot      []string // the calls the bot got, "id name arguments"
	}{
		{"a payment call by index", []string{
			callDelta(`{"index":0,"id":"call_c","type":"function","function":{"name":"create_","arguments":""}}`),
			callDelta(`{"index":0,"function":{"name":"order"}}`),
			callDelta(`{"index":0,"function":{"arguments":"{\"sku\":\"premium\"}"}}`),
		}, []string{`create_order {"sku":"premium"}`}, nil},
		{"the bot's call by index", []string{
			callDelta(`{"index":0,"id":"call_w","type":"function","function":{"name":"get_","arguments":""}}`),
			callDelta(`{"index":0,"function":{"name":"weather"}}`),
			callDelta(`{"index":0,"function":{"arguments":"{\"city\":\"Hangzhou\"}"}}`),
		}, nil, []string{`call_w get_weather {"city":"Hangzhou"}`}},
		{"in three pieces, the later ones with arguments", []string{
			callDelta(`{"index":0,"id":"call_w","type":"function","function":{"name":"get"}}`),
			callDelta(`{"index":0,"function":{"name":"_wea","arguments":""}}`),
			callDelta(`{"index":0,"function":{"name":"ther","arguments":"{\"city\":\"Hangzhou\"}"}}`),
		}, nil, []string{`call_w get_weather {"city":"Hangzhou"}`}},
		{"by id, without an index", []string{
			callDelta(`{"id":"call_w","type":"function","function":{"name":"get_"}}`),
			callDelta(`{"id":"call_w","function":{"name":"weather","arguments":"{\"city\":\"Hangzhou\"}"}}`),
		}, nil, []string{`call_w get_weather {"city":"Hangzhou"}`}},
		{"whole, repeated in every delta (Qwen, MiniMax)", []string{
			callDelta(`{"index":0,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}`),
			callDelta(`{"index":0,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"\"Hangzhou\"}"}}`),
		}, nil, []string{`call_w get_weather {"city":"Hangzhou"}`}},
		{"two calls under index 0, another id", []string{
			callDelta(`{"index":0,"id":"call_a","type":"function","function":{"name":"get_","arguments":""}}`),
			callDelta(`{"index":0,"function":{"name":"weather","arguments":"{\"city\":\"Beijing\"}"}}`),
			callDelta(`{"index":0,"id":"call_b","type":"function","function":{"name":"get_","arguments":""}}`),
			callDelta(`{"index":0,"function":{"name":"weather","arguments":"{\"city\":\"Hangzhou\"}"}}`),
		}, nil, []string{`call_a get_weather {"city":"Beijing"}`, `call_b get_weather {"city":"Hangzhou"}`}},
		{"two calls under index 0 without ids, after arguments", []string{
			callDelta(`{"index":0,"type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Beijing\"}"}}`),
			callDelta(`{"index":0,"type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium\"}"}}`),
		}, []string{`create_order {"sku":"premium"}`}, []string{`made get_weather {"city":"Beijing"}`}},
		// Told from a piece by the payment tools' names, as the capture
		// tells it: joined, "get_weathercreate_order" went to the bot
		// with the payment call's arguments, and the order never ran.
		{"a payment call's whole name after the bot's call without arguments, under index 0 without ids", []string{
			callDelta(`{"index":0,"type":"function","function":{"name":"get_weather"}}`),
			callDelta(`{"index":0,"type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium\"}"}}`),
		}, []string{`create_order {"sku":"premium"}`}, []string{`made get_weather {}`}},
		{"a payment call's name in pieces after the bot's call without arguments, under index 0 without ids", []string{
			callDelta(`{"index":0,"type":"function","function":{"name":"get_weather"}}`),
			callDelta(`{"index":0,"function":{"name":"create_"}}`),
			callDelta(`{"index":0,"function":{"name":"order","arguments":"{\"sku\":\"premium\"}"}}`),
		}, []string{`create_order {"sku":"premium"}`}, []string{`made get_weather {}`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			round0 := append([]string{roundChunk + `[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}` + "\n\n"}, tc.deltas...)
			round0 = append(round0, roundChunk+`[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n", "data: [DONE]\n\n")
			for _, stream := range []bool{true, false} {
				fp := newFakeProvider(t, roundByRound(sseHandler(round0...), sseHandler(round0...), sseHandler(
					roundChunk+`[{"index":0,"delta":{"role":"assistant","content":"Order O1 awaits payment."},"finish_reason":null}]}`+"\n\n",
					roundChunk+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n", "data: [DONE]\n\n")))
				recording := &recordingTools{}
				url := toolsProxy(t, fp.URL, recording, nil)
				if got := recording.executed(); len(got) > 0 {
					t.Fatalf("ran %q before the turn", got)
				}
				client := botClient(url, true)
				var bot []string
				if stream {
					bot, _ = sdkStreamCalls(t, client)
				} else {
					bot = sdkCalls(t, client)
				}
				if got := recording.executed(); !slices.Equal(got, tc.executed) {
					t.Errorf("stream %v: executed %q; want %q", stream, got, tc.executed)
				}
				if stream {
					continue // the bot's SDK joins what the provider sent (a name repeated whole, twice)
				}
				if !slices.Equal(bot, tc.bot) {
					t.Errorf("the bot (not streaming) got the calls %q; want %q", bot, tc.bot)
				}
			}
		})
	}
}

// botTools are the bot's tools the SDK helpers offer: get_weather, and
// the more named.
func botTools(more []string) []openai.Tool {
	var tools []openai.Tool
	for _, n := range append([]string{"get_weather"}, more...) {
		tools = append(tools, openai.Tool{Type: openai.ToolTypeFunction, Function: &openai.FunctionDefinition{
			Name: n, Parameters: map[string]any{"type": "object"}}})
	}
	return tools
}

// sdkCalls asks, with go-openai and not streaming, for a chat completion
// offering the bot's tools (botTools), and returns its calls, each "id
// name arguments", an id paygate made (interceptors.MadeCallID) as "made".
func sdkCalls(t *testing.T, c *openai.Client, more ...string) []string {
	t.Helper()
	resp, err := c.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
		Model:    "gpt-test",
		Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "weather in Hangzhou, and buy premium"}},
		Tools:    botTools(more),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Choices) != 1 {
		t.Fatalf("%d choices; want 1", len(resp.Choices))
	}
	var out []string
	for _, call := range resp.Choices[0].Message.ToolCalls {
		id := call.ID
		if strings.HasPrefix(id, "call_pg") {
			id = "made"
		}
		out = append(out, id+" "+call.Function.Name+" "+call.Function.Arguments)
	}
	return out
}

// TestCallIDChangedMidCall: a provider that gives a later delta of a call
// another id (a relay that makes one per chunk) streams one call, under
// its index, that paygate keeps under its first id, as the whole
// completion of events answering a non-stream request names it. The
// bot's SDK took the later id (openai-node and go-openai accumulators
// keep the last; openai-python joins them), answered the call by it, and
// the payment exchange of the mixed round, kept under the first, was not
// restored into the bot's next request: the model was not told of the
// order it made. The later id is left out of what the bot reads, which
// then has the first alone, streamed or not.
func TestCallIDChangedMidCall(t *testing.T) {
	round0 := []string{roundChunk + `[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}` + "\n\n",
		callDelta(`{"index":0,"id":"call_c","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium\"}"}}`),
		callDelta(`{"index":1,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}`),
		callDelta(`{"index":1,"id":"call_b","function":{"arguments":"\"Hangzhou\"}"}}`),
		roundChunk + `[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}` + "\n\n", "data: [DONE]\n\n"}
	for _, stream := range []bool{true, false} {
		fp := newFakeProvider(t, roundByRound(sseHandler(round0...), textRound(true, "Sunny; order O1 awaits payment.")))
		recording := &recordingTools{}
		url := toolsProxy(t, fp.URL, recording, nil)
		var got []string
		if stream {
			got, _ = sdkStreamCalls(t, botClient(url, true))
		} else {
			got = sdkCalls(t, botClient(url, true))
		}
		if want := []string{`call_a get_weather {"city":"Hangzhou"}`}; !slices.Equal(got, want) {
			t.Errorf("stream %v: the bot got the calls %q; want %q", stream, got, want)
		}
		if got := recording.executed(); !slices.Equal(got, []string{`create_order {"sku":"premium"}`}) {
			t.Errorf("stream %v: executed %q; want the order", stream, got)
		}
		// The bot answers its call by the id it got.
		id := "call_a"
		if len(got) == 1 {
			id = strings.Fields(got[0])[0]
		}
		if got, _ := restoredWeatherCalls(t, url, fp, id); got != `["create_order","get_weather"]` {
			t.Errorf("stream %v: the restored assistant message calls %s; want the payment call, then the bot's get_weather", stream, got)
		}
	}
}

// TestBotCallAfterABotCallWithoutArguments: a provider that gives every
// call index 0 and no id calls the bot's get_weather without arguments,
// then the bot's get_time. get_weather is a whole name of the bot's that
// none of its tools extends, so get_time is another call, not the next
// piece of the name: joined, since names in pieces are joined (the
// streamed capture, and Request.Names for events answering a
// non-stream request), the bot got one call of "get_weatherget_time", a
// tool it does not have, with get_time's arguments, where it had got both
// calls before, streamed or not, with a payment user or without one.
func TestBotCallAfterABotCallWithoutArguments(t *testing.T) {
	round0 := []string{roundChunk + `[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}` + "\n\n",
		callDelta(`{"index":0,"type":"function","function":{"name":"get_weather"}}`),
		callDelta(`{"index":0,"type":"function","function":{"name":"get_time","arguments":"{\"tz\":\"UTC\"}"}}`),
		roundChunk + `[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}` + "\n\n", "data: [DONE]\n\n"}
	want := []string{"get_weather ", `get_time {"tz":"UTC"}`}
	for _, tc := range []struct {
		name         string
		stream, user bool
	}{{"streamed", true, true}, {"not streamed", false, true}, {"not streamed, without a payment user", false, false}} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, sseHandler(round0...))
			recording := &recordingTools{}
			url := toolsProxy(t, fp.URL, recording, nil)
			var calls []string
			if tc.stream {
				calls, _ = sdkStreamCalls(t, botClient(url, tc.user), "get_time")
			} else {
				calls = sdkCalls(t, botClient(url, tc.user), "get_time")
			}
			var got []string
			for _, call := range calls {
				_, nameArgs, _ := strings.Cut(call, " ")
				got = append(got, strings.Replace(nameArgs, " {}", " ", 1))
			}
			if !slices.Equal(got, want) {
				t.Errorf("the bot got the calls %q; want %q", got, want)
			}
			if ran := recording.executed(); len(ran) > 0 {
				t.Errorf("ran %q", ran)
			}
		})
	}
}
