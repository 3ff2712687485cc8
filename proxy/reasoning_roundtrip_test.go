package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/store"
)

// thinkingReasoning is what the DeepSeek fake reasons before its tool calls.
const thinkingReasoning = "The user asks about X1; I should query it."

// deepSeekThinking is DeepSeek's chat endpoint in thinking mode: a round
// that calls a tool streams (or returns) reasoning_content first, and every
// later request must carry that reasoning_content on the assistant message
// with the tool_calls, or the API answers 400
// (https://api-docs.deepseek.com/guides/thinking_mode: "for turns that do
// perform tool calls, the reasoning_content must be fully passed back to
// the API in all subsequent requests"). mixed adds a call of the client's
// own (get_weather) to the tool round.
func deepSeekThinking(mixed bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		body := string(b)
		stream := strings.Contains(body, `"stream":true`)
		if strings.Contains(body, `"role":"tool"`) {
			ok := true
			gjson.Get(body, "messages").ForEach(func(_, m gjson.Result) bool {
				if m.Get("role").Str == "assistant" && m.Get("tool_calls").Exists() {
					ok = ok && m.Get("reasoning_content").Str == thinkingReasoning
				}
				return true
			})
			if !ok {
				jsonHandler(400, `{"error":{"message":"The reasoning_content in the thinking mode must be passed back to the API.","type":"invalid_request_error","param":null,"code":"invalid_request_error"}}`)(w, r)
				return
			}
			if !stream {
				jsonHandler(200, `{"id":"c2","object":"chat.completion","created":1,"model":"deepseek-v4-flash","choices":[{"index":0,"message":{"role":"assistant","reasoning_content":"ok","content":"It is paid."},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":5,"total_tokens":25}}`)(w, r)
				return
			}
			const c = `data: {"id":"c2","object":"chat.completion.chunk","created":1,"model":"deepseek-v4-flash","choices":`
			sseHandler(
				c+`[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":"ok"},"finish_reason":null}]}`+"\n\n",
				c+`[{"index":0,"delta":{"content":"It is paid."},"finish_reason":null}]}`+"\n\n",
				c+`[{"index":0,"delta":{"content":""},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":5,"total_tokens":25}}`+"\n\n",
				"data: [DONE]\n\n")(w, r)
			return
		}
		weather := ""
		if mixed {
			weather = `,{"index":1,"id":"call_01_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}`
		}
		if !stream {
			jsonHandler(200, `{"id":"c1","object":"chat.completion","created":1,"model":"deepseek-v4-flash","choices":[{"index":0,"message":{"role":"assistant","content":"","reasoning_content":"`+thinkingReasoning+`","tool_calls":[{"index":0,"id":"call_00_abc","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}}`+weather+`]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`)(w, r)
			return
		}
		const c = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"deepseek-v4-flash","choices":`
		events := []string{
			c + `[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":""},"finish_reason":null}]}` + "\n\n",
			c + `[{"index":0,"delta":{"content":null,"reasoning_content":"The user asks about X1; "},"finish_reason":null}]}` + "\n\n",
			c + `[{"index":0,"delta":{"content":null,"reasoning_content":"I should query it."},"finish_reason":null}]}` + "\n\n",
			c + `[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_00_abc","type":"function","function":{"name":"query_order","arguments":""}}]},"finish_reason":null}]}` + "\n\n",
			c + `[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"order_no\":\"X1\"}"}}]},"finish_reason":null}]}` + "\n\n",
		}
		if mixed {
			events = append(events, c+`[{"index":0,"delta":{"tool_calls":[`+weather[1:]+`]},"finish_reason":null}]}`+"\n\n")
		}
		events = append(events,
			c+`[{"index":0,"delta":{"content":""},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`+"\n\n",
			"data: [DONE]\n\n")
		sseHandler(events...)(w, r)
	}
}

// memState keeps exchanges in memory; the user has no orders.
type memState struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *memState) LoadUserState(_ context.Context, client, user string) (*store.UserState, error) {
	return &store.UserState{Client: client, User: user}, nil
}

func (s *memState) PutExchange(_ context.Context, key string, data []byte, _ time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[key] = append([]byte(nil), data...)
	return nil
}

func (s *memState) GetExchange(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.m[key]; ok {
		return b, nil
	}
	return nil, store.ErrNotFound
}

func (s *memState) ClaimAnnouncement(context.Context, string, string, string, string, time.Duration) (bool, error) {
	return true, nil
}

// statefulProxy serves a proxy for the provider at base with the payment
// tools of queryTools and exchanges kept in memory.
func statefulProxy(t *testing.T, base string) string {
	t.Helper()
	return paymentProxy(t, base, nil, queryTools{}, &memState{}, nil)
}

// assistantToolMessage is the last assistant message with tool_calls an
// upstream request carried.
func assistantToolMessage(body []byte) string {
	asst := ""
	gjson.GetBytes(body, "messages").ForEach(func(_, m gjson.Result) bool {
		if m.Get("role").Str == "assistant" && m.Get("tool_calls").Exists() {
			asst = m.Raw
		}
		return true
	})
	return asst
}

// TestThinkingReasoningGoesBackWithToolCalls: the reasoning of a tool round
// travels back on the assistant tool_calls message paygate sends in the
// next round (DeepSeek's thinking mode refuses the request without it),
// stream and non-stream; and in the exchange kept for a mixed round, so the
// bot's next request, restored, carries it too (SPEC 3.7).
func TestThinkingReasoningGoesBackWithToolCalls(t *testing.T) {
	const openID = "o-user-1"
	for _, tc := range []struct {
		name   string
		stream bool
	}{{"stream", true}, {"non-stream", false}} {
		streamField := ""
		if tc.stream {
			streamField = `"stream":true,`
		}
		t.Run(tc.name+"/payment round", func(t *testing.T) {
			fp := newFakeProvider(t, deepSeekThinking(false))
			url := statefulProxy(t, fp.URL)
			resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test",`+streamField+`"messages":[{"role":"user","content":"is X1 paid?"}]}`,
				map[string]string{"X-WeChat-OpenID": openID})
			body := readAll(t, resp.Body)
			reqs := fp.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d upstream rounds; want 2 (client got %d %s)", len(reqs), resp.StatusCode, body)
			}
			asst := assistantToolMessage(reqs[1].Body)
			if got := gjson.Get(asst, "reasoning_content").Str; got != thinkingReasoning {
				t.Errorf("round 2's assistant tool message %s; want reasoning_content %q", asst, thinkingReasoning)
			}
			if !strings.Contains(body, "It is paid.") {
				t.Errorf("client got %d %s", resp.StatusCode, body)
			}
		})
		t.Run(tc.name+"/mixed round, exchange restored", func(t *testing.T) {
			fp := newFakeProvider(t, deepSeekThinking(true))
			url := statefulProxy(t, fp.URL)
			const tools = `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],`
			resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test",`+streamField+tools+`"messages":[{"role":"user","content":"is X1 paid? and the weather?"}]}`,
				map[string]string{"X-WeChat-OpenID": openID})
			body := readAll(t, resp.Body)
			if !strings.Contains(body, "call_01_w") || !strings.Contains(body, `"finish_reason":"tool_calls"`) {
				t.Fatalf("the client did not get its own call: %d %s", resp.StatusCode, body)
			}
			// The bot runs get_weather and comes back with its result.
			next := `{"model":"gpt-test",` + streamField + tools + `"messages":[{"role":"user","content":"is X1 paid? and the weather?"},` +
				`{"role":"assistant","content":null,"tool_calls":[{"id":"call_01_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}]},` +
				`{"role":"tool","tool_call_id":"call_01_w","content":"sunny"}]}`
			resp = post(t, url, "/v1/chat/completions", next, map[string]string{"X-WeChat-OpenID": openID})
			body = readAll(t, resp.Body)
			reqs := fp.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d upstream requests; want 2 (client got %d %s)", len(reqs), resp.StatusCode, body)
			}
			asst := assistantToolMessage(reqs[1].Body)
			if gjson.Get(asst, "tool_calls.#").Int() != 2 || gjson.Get(asst, "reasoning_content").Str != thinkingReasoning {
				t.Errorf("the restored assistant message %s; want both calls and reasoning_content %q", asst, thinkingReasoning)
			}
			if !strings.Contains(body, "It is paid.") {
				t.Errorf("client got %d %s", resp.StatusCode, body)
			}
		})
	}
}

// groqReasoning is Groq's chat endpoint with a reasoning model
// (reasoning_format "parsed"): a tool round returns (or streams) its
// thinking as "reasoning", and a request whose assistant message carries a
// member Groq does not know is a 400 ("property 'reasoning_content' is
// unsupported, did you mean 'reasoning'?"). mixed adds a call of the
// client's own (get_weather) to the tool round.
func groqReasoning(mixed bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		body := string(b)
		stream := strings.Contains(body, `"stream":true`)
		bad := ""
		gjson.Get(body, "messages").ForEach(func(k, m gjson.Result) bool {
			if m.Get("reasoning_content").Exists() {
				bad = k.String()
			}
			return true
		})
		if bad != "" {
			jsonHandler(400, `{"error":{"message":"'messages.`+bad+`' : for 'role:assistant' the following must be satisfied[('messages.`+bad+`' : property 'reasoning_content' is unsupported, did you mean 'reasoning'?)]","type":"invalid_request_error"}}`)(w, r)
			return
		}
		if strings.Contains(body, `"role":"tool"`) {
			if !stream {
				jsonHandler(200, `{"id":"c2","object":"chat.completion","created":1,"model":"qwen/qwen3-32b","choices":[{"index":0,"message":{"role":"assistant","reasoning":"ok","content":"It is paid."},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":5,"total_tokens":25}}`)(w, r)
				return
			}
			const c = `data: {"id":"c2","object":"chat.completion.chunk","created":1,"model":"qwen/qwen3-32b","choices":`
			sseHandler(
				c+`[{"index":0,"delta":{"role":"assistant","reasoning":"ok"},"finish_reason":null}]}`+"\n\n",
				c+`[{"index":0,"delta":{"content":"It is paid."},"finish_reason":null}]}`+"\n\n",
				c+`[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":5,"total_tokens":25}}`+"\n\n",
				"data: [DONE]\n\n")(w, r)
			return
		}
		weather := ""
		if mixed {
			weather = `,{"index":1,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}`
		}
		if !stream {
			jsonHandler(200, `{"id":"c1","object":"chat.completion","created":1,"model":"qwen/qwen3-32b","choices":[{"index":0,"message":{"role":"assistant","reasoning":"`+thinkingReasoning+`","tool_calls":[{"index":0,"id":"call_abc","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}}`+weather+`]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`)(w, r)
			return
		}
		const c = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"qwen/qwen3-32b","choices":`
		events := []string{
			c + `[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}` + "\n\n",
			c + `[{"index":0,"delta":{"reasoning":"The user asks about X1; "},"finish_reason":null}]}` + "\n\n",
			c + `[{"index":0,"delta":{"reasoning":"I should query it."},"finish_reason":null}]}` + "\n\n",
			c + `[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_abc","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}}` + weather + `]},"finish_reason":null}]}` + "\n\n",
			c + `[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}` + "\n\n",
			"data: [DONE]\n\n",
		}
		sseHandler(events...)(w, r)
	}
}

// TestReasoningGoesBackUnderTheProvidersName: a provider that answered with
// "reasoning" (Groq, a reasoning model) gets it back as "reasoning", never
// renamed "reasoning_content", a member Groq refuses with 400 so that every
// payment tool round failed its next round; stream and non-stream, and in
// the exchange kept for a mixed round and restored on the bot's next
// request.
func TestReasoningGoesBackUnderTheProvidersName(t *testing.T) {
	const openID = "o-user-1"
	for _, tc := range []struct {
		name   string
		stream bool
	}{{"stream", true}, {"non-stream", false}} {
		streamField := ""
		if tc.stream {
			streamField = `"stream":true,`
		}
		check := func(t *testing.T, asst string) {
			t.Helper()
			if gjson.Get(asst, "reasoning_content").Exists() || gjson.Get(asst, "reasoning").Str != thinkingReasoning {
				t.Errorf("the assistant tool message %s; want reasoning %q and no reasoning_content", asst, thinkingReasoning)
			}
		}
		t.Run(tc.name+"/payment round", func(t *testing.T) {
			fp := newFakeProvider(t, groqReasoning(false))
			url := statefulProxy(t, fp.URL)
			resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test",`+streamField+`"messages":[{"role":"user","content":"is X1 paid?"}]}`,
				map[string]string{"X-WeChat-OpenID": openID})
			body := readAll(t, resp.Body)
			reqs := fp.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d upstream rounds; want 2 (client got %d %s)", len(reqs), resp.StatusCode, body)
			}
			check(t, assistantToolMessage(reqs[1].Body))
			if resp.StatusCode != 200 || !strings.Contains(body, "It is paid.") {
				t.Errorf("client got %d %s; want the second round's answer", resp.StatusCode, body)
			}
		})
		t.Run(tc.name+"/mixed round, exchange restored", func(t *testing.T) {
			fp := newFakeProvider(t, groqReasoning(true))
			url := statefulProxy(t, fp.URL)
			const tools = `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],`
			resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test",`+streamField+tools+`"messages":[{"role":"user","content":"is X1 paid? and the weather?"}]}`,
				map[string]string{"X-WeChat-OpenID": openID})
			body := readAll(t, resp.Body)
			if !strings.Contains(body, "call_w") || !strings.Contains(body, `"finish_reason":"tool_calls"`) {
				t.Fatalf("the client did not get its own call: %d %s", resp.StatusCode, body)
			}
			next := `{"model":"gpt-test",` + streamField + tools + `"messages":[{"role":"user","content":"is X1 paid? and the weather?"},` +
				`{"role":"assistant","content":null,"tool_calls":[{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}]},` +
				`{"role":"tool","tool_call_id":"call_w","content":"sunny"}]}`
			resp = post(t, url, "/v1/chat/completions", next, map[string]string{"X-WeChat-OpenID": openID})
			body = readAll(t, resp.Body)
			reqs := fp.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d upstream requests; want 2 (client got %d %s)", len(reqs), resp.StatusCode, body)
			}
			asst := assistantToolMessage(reqs[1].Body)
			if gjson.Get(asst, "tool_calls.#").Int() != 2 {
				t.Errorf("the restored assistant message %s; want both calls", asst)
			}
			check(t, asst)
			if resp.StatusCode != 200 || !strings.Contains(body, "It is paid.") {
				t.Errorf("client got %d %s", resp.StatusCode, body)
			}
		})
	}
}

// geminiViaOpenRouter is OpenRouter in front of Gemini 3: a tool round
// streams its reasoning as reasoning_details blocks, the function call's
// thought signature as a reasoning.encrypted block, and the next request
// must carry them back on the assistant message, or Gemini refuses it
// ("Function call is missing a thought_signature";
// https://openrouter.ai/docs/use-cases/reasoning-tokens, "Preserving
// reasoning blocks").
func geminiViaOpenRouter(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	if strings.Contains(string(b), `"role":"tool"`) {
		asst := assistantToolMessage(b)
		if gjson.Get(asst, `reasoning_details.#(type=="reasoning.encrypted").data`).Str != "CiQBSIG-SIGNATURE" {
			jsonHandler(400, `{"error":{"message":"Function call is missing a thought_signature in functionCall parts.","code":400}}`)(w, r)
			return
		}
		sseHandler(
			geminiOR+`[{"index":0,"delta":{"role":"assistant","content":"X1 is paid."},"finish_reason":null}]}`+"\n\n",
			geminiOR+`[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}]}`+"\n\n",
			"data: [DONE]\n\n")(w, r)
		return
	}
	sseHandler(geminiToolRound...)(w, r)
}

// geminiOR begins a chunk of Gemini 3 streamed through OpenRouter.
const geminiOR = `data: {"id":"gen-1","object":"chat.completion.chunk","created":1,"model":"google/gemini-3-pro-preview","provider":"Google","choices":`

// geminiToolRound is geminiViaOpenRouter's tool round: a reasoning.text
// block (index 0) and the call's signature as a reasoning.encrypted block
// (index 1), each in pieces, and the query_order call.
var geminiToolRound = []string{
	geminiOR + `[{"index":0,"delta":{"role":"assistant","content":"","reasoning":"Need the ","reasoning_details":[{"type":"reasoning.text","text":"Need the ","format":"google-gemini-v1","index":0}]},"finish_reason":null}]}` + "\n\n",
	geminiOR + `[{"index":0,"delta":{"role":"assistant","content":"","reasoning":"order.","reasoning_details":[{"type":"reasoning.text","text":"order.","index":0}]},"finish_reason":null}]}` + "\n\n",
	geminiOR + `[{"index":0,"delta":{"role":"assistant","content":"","reasoning_details":[{"type":"reasoning.encrypted","data":"CiQBSIG-","id":"tool_query_order_1","format":"google-gemini-v1","index":1}]},"finish_reason":null}]}` + "\n\n",
	geminiOR + `[{"index":0,"delta":{"role":"assistant","content":"","reasoning_details":[{"type":"reasoning.encrypted","data":"SIGNATURE","index":1}],"tool_calls":[{"index":0,"id":"tool_query_order_1","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}}]},"finish_reason":null}]}` + "\n\n",
	geminiOR + `[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"tool_calls","native_finish_reason":"STOP"}]}` + "\n\n",
	"data: [DONE]\n\n",
}

// TestStreamedReasoningDetailsGoBackWithToolCalls: a streamed tool round's
// reasoning_details deltas go back, merged, on the assistant message of the
// next round, as a non-stream round's array does; without them Gemini 3
// behind OpenRouter refuses the continuation and the payment turn ends in
// an error after its call ran.
func TestStreamedReasoningDetailsGoBackWithToolCalls(t *testing.T) {
	fp := newFakeProvider(t, geminiViaOpenRouter)
	url := statefulProxy(t, fp.URL)
	resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"is X1 paid?"}]}`,
		map[string]string{"X-WeChat-OpenID": "o-user-1"})
	body := readAll(t, resp.Body)
	reqs := fp.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d upstream rounds; want 2 (client got %d %s)", len(reqs), resp.StatusCode, body)
	}
	asst := assistantToolMessage(reqs[1].Body)
	want := `[{"type":"reasoning.text","text":"Need the order.","format":"google-gemini-v1","index":0},` +
		`{"type":"reasoning.encrypted","data":"CiQBSIG-SIGNATURE","id":"tool_query_order_1","format":"google-gemini-v1","index":1}]`
	if got := gjson.Get(asst, "reasoning_details").Raw; got != want {
		t.Errorf("round 2's assistant tool message carries reasoning_details %s\nwant %s", got, want)
	}
	if !strings.Contains(body, "X1 is paid.") {
		t.Errorf("client got %d %s", resp.StatusCode, body)
	}
}

// TestStreamedReasoningDetailsIndexedAcrossRounds: a later round's
// reasoning_details blocks reach the bot under indexes after the earlier
// rounds', as its own tool calls do: each round numbers its blocks from
// 0, and the SDKs' stream helpers join the deltas of one index
// (openai-python's accumulate_delta concatenates their strings), so the
// bot read round 2's signature glued to round 1's text block, one block
// that no provider signed.
func TestStreamedReasoningDetailsIndexedAcrossRounds(t *testing.T) {
	fp := newFakeProvider(t, roundByRound(sseHandler(geminiToolRound...), sseHandler(
		geminiOR+`[{"index":0,"delta":{"role":"assistant","content":"","reasoning_details":[{"type":"reasoning.encrypted","data":"R2SIG","id":"r2","format":"google-gemini-v1","index":0}]},"finish_reason":null}]}`+"\n\n",
		geminiOR+`[{"index":0,"delta":{"role":"assistant","content":"X1 is paid."},"finish_reason":null}]}`+"\n\n",
		geminiOR+`[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}]}`+"\n\n",
		"data: [DONE]\n\n")))
	url := statefulProxy(t, fp.URL)
	body := readAll(t, post(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"is X1 paid?"}]}`,
		map[string]string{"X-WeChat-OpenID": "o-user-1"}).Body)
	// The blocks as a stream helper joins them: by index, strings
	// concatenated.
	var blocks []string
	for _, c := range streamChunks(body) {
		gjson.Get(c, "choices.0.delta.reasoning_details").ForEach(func(_, d gjson.Result) bool {
			i := int(d.Get("index").Int())
			for len(blocks) <= i {
				blocks = append(blocks, "")
			}
			blocks[i] += d.Get("type").Str + ":" + d.Get("text").Str + d.Get("data").Str + " "
			return true
		})
	}
	want := []string{"reasoning.text:Need the  reasoning.text:order. ", "reasoning.encrypted:CiQBSIG- reasoning.encrypted:SIGNATURE ", "reasoning.encrypted:R2SIG "}
	if fmt.Sprint(blocks) != fmt.Sprint(want) {
		t.Errorf("the bot's reasoning_details blocks, by index: %q\nwant %q", blocks, want)
	}
}
