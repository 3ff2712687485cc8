package proxy

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
)

// familyProvider is one target of a familyTurn: a fake provider and the
// upstream model name its target asks for.
type familyProvider struct {
	fp    *fakeProvider
	model string
}

// familyProxy serves a proxy whose model gpt-test has provs as its
// targets, in priority order, under the names pa, pb, …; it returns its
// URL.
func familyProxy(t *testing.T, tools *recordingTools, provs ...familyProvider) string {
	t.Helper()
	return familyProxyWith(t, tools, nil, provs...)
}

// familyProxyWith is familyProxy with edit (nil: none) run on its config
// once the providers and targets are in place.
func familyProxyWith(t *testing.T, tools *recordingTools, edit func(*config.Config), provs ...familyProvider) string {
	t.Helper()
	return toolsProxy(t, provs[0].fp.URL, tools, func(c *config.Config) {
		base := c.Providers[0]
		c.Providers = c.Providers[:0]
		c.Models = c.Models[:1]
		c.Models[0].Targets = c.Models[0].Targets[:0]
		for i, p := range provs {
			pc := base
			pc.Name = "p" + string(rune('a'+i))
			pc.BaseURL = p.fp.URL + "/v1"
			c.Providers = append(c.Providers, pc)
			c.Models[0].Targets = append(c.Models[0].Targets, config.Target{Provider: pc.Name, Model: p.model, Weight: 1})
		}
		if edit != nil {
			edit(c)
		}
	})
}

// mistralID is the tool call id Mistral's API takes, in an assistant
// message's tool_calls and a tool message's tool_call_id alike.
var mistralID = regexp.MustCompile(`^[a-zA-Z0-9]{9}$`)

// mistralStrict answers as Mistral's API does a request naming a tool call
// id of any other shape (https://github.com/langchain-ai/langchain/pull/24668),
// and passes every other request to next.
func mistralStrict(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		bad := ""
		gjson.GetBytes(body, "messages").ForEach(func(_, m gjson.Result) bool {
			m.Get("tool_calls.#.id").ForEach(func(_, id gjson.Result) bool {
				if !mistralID.MatchString(id.Str) && bad == "" {
					bad = id.Str
				}
				return true
			})
			if id := m.Get("tool_call_id"); id.Exists() && !mistralID.MatchString(id.Str) && bad == "" {
				bad = id.Str
			}
			return true
		})
		if bad != "" {
			jsonHandler(400, `{"object":"error","message":"Tool call id was `+bad+` but must be a-z, A-Z, 0-9, with a length of 9.","type":"invalid_request_error","param":null,"code":null}`)(w, r)
			return
		}
		next(w, r)
	}
}

// callsRoundID answers one round with one create_order call under id
// ("": none), streamed or not.
func callsRoundID(stream bool, id string) http.HandlerFunc {
	idm := ""
	if id != "" {
		idm = `"id":"` + id + `",`
	}
	return callsRound(stream, `[{"index":0,`+idm+`"type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]`)
}

// unavailable is a provider's 503, which fails the round over.
func unavailable() http.HandlerFunc {
	return jsonHandler(503, `{"error":{"message":"overloaded","type":"server_error"}}`)
}

// turnText is the text the bot read, stream or not: a non-stream content
// must be a string, as an OpenAI SDK types it, when no round answered in
// parts (a plain provider's turn); readBot reads a content given as parts.
func turnText(stream bool, body string) string {
	if stream {
		return streamText(body)
	}
	return gjson.Get(body, "choices.0.message.content").Str
}

// TestMistralToolCallIDsAfterFailover: Mistral's API refuses a request
// whose tool call ids are not exactly 9 characters of [a-zA-Z0-9] ("Tool
// call id was call_… but must be a-z, A-Z, 0-9, with a length of 9."),
// in the assistant message's tool_calls and the tool message's
// tool_call_id alike. A payment round answered by OpenAI (call_ ids of 24
// characters), or by a provider that gave its call no id (paygate's own
// call_pg_1_0), whose next round failed over to Mistral ended the turn
// with Mistral's 400 after the order was made; so did a bot's history of
// calls another provider answered. Mistral's targets get every other id
// mapped to one it takes, the same in the call and its result.
func TestMistralToolCallIDsAfterFailover(t *testing.T) {
	hist := []string{
		`{"role":"user","content":"weather?"}`,
		`{"role":"assistant","content":null,"tool_calls":[{"id":"call_w3ath3rW3ath3rW3ath3r1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]}`,
		`{"role":"tool","tool_call_id":"call_w3ath3rW3ath3rW3ath3r1","content":"sunny"}`,
		`{"role":"user","content":"buy premium"}`,
	}
	for _, tc := range []struct {
		name  string
		id    string // the first round's call id, as OpenAI (or a provider giving none) made it
		model string // Mistral's target
		msgs  []string
	}{
		{"openai id", "call_Ab12cD34eF56gH78iJ90kL12", "mistral-small-latest", nil},
		{"no id", "", "mistral-small-latest", nil},
		{"openrouter mistral", "call_Ab12cD34eF56gH78iJ90kL12", "mistralai/mistral-medium-3.1", nil},
		{"bot history", "Xy9Zw8Vu7", "magistral-medium-2509", hist},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(tc.name+"/stream="+strconv.FormatBool(stream), func(t *testing.T) {
				openai := newFakeProvider(t, roundByRound(callsRoundID(stream, tc.id), unavailable()))
				mistral := newFakeProvider(t, mistralStrict(textRound(stream, "Your order is ready.")))
				tools := &recordingTools{}
				url := familyProxy(t, tools, familyProvider{openai, "gpt-4o-mini"}, familyProvider{mistral, tc.model})
				body := chatBody(stream, "")
				if tc.msgs != nil {
					body = chatBodyWith(stream, "", tc.msgs...)
				}
				resp := post(t, url, "/v1/chat/completions", body, map[string]string{"X-WeChat-OpenID": "o-user-1"})
				out := readAll(t, resp.Body)
				if resp.StatusCode != 200 || turnText(stream, out) != "Your order is ready." {
					t.Fatalf("status %d, answer %s; want the turn answered after failover to Mistral", resp.StatusCode, out)
				}
				if got := tools.executed(); len(got) != 1 {
					t.Errorf("executed %v; want one create_order", got)
				}
				reqs := mistral.requests()
				if len(reqs) != 1 {
					t.Fatalf("Mistral got %d requests; want 1", len(reqs))
				}
				checkToolIDs(t, reqs[0].Body)
				// Every other byte as paygate sends it elsewhere: the bot's
				// history reaches Mistral with only its ids mapped.
				if got := gjson.GetBytes(reqs[0].Body, `messages.#(role=="tool")#.content`).Raw; tc.msgs != nil && !strings.Contains(got, `"sunny"`) {
					t.Errorf("Mistral's tool results %s; want the bot's kept", got)
				}
			})
		}
	}
}

// textPartsOnly answers as OpenAI (OpenAI's API, and the many servers
// that take its schema: Qwen's DashScope) and DeepSeek do an assistant
// message whose content parts are not text (OpenAI also takes a refusal),
// and passes every other request to next.
func textPartsOnly(deepseek bool, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		i, bad := 0, ""
		gjson.GetBytes(body, "messages").ForEach(func(_, m gjson.Result) bool {
			if !m.Get("content").IsArray() {
				i++
				return true
			}
			m.Get("content").ForEach(func(j, p gjson.Result) bool {
				if typ := p.Get("type").Str; typ != "text" && !(typ == "refusal" && !deepseek) && bad == "" {
					if deepseek {
						bad = `{"error":{"message":"Failed to deserialize the JSON body into the target type: messages[` + strconv.Itoa(i) + `].content: unknown variant ` + "`" + typ + "`" + `, expected ` + "`text`" + ` at line 1 column 150","type":"invalid_request_error","param":null,"code":"invalid_request_error"}}`
					} else {
						bad = `{"error":{"message":"Invalid value: '` + typ + `'. Supported values are: 'text' and 'refusal'.","type":"invalid_request_error","param":"messages[` + strconv.Itoa(i) + `].content[` + strconv.Itoa(int(j.Num)) + `].type","code":"invalid_value"}}`
					}
				}
				return true
			})
			i++
			return true
		})
		if bad != "" {
			jsonHandler(400, bad)(w, r)
			return
		}
		next(w, r)
	}
}

// TestMistralContentPartsAfterFailover: a payment round answered by one of
// Mistral's reasoning models (its content a "thinking" block and text)
// went on to the next round with that content on its assistant message,
// as Mistral takes it back; when that round failed over to OpenAI or
// DeepSeek, they refused the thinking block with a 400 and the turn ended
// after the order was made. A target that is not Mistral gets the round's
// text as the message's content, the thinking left out.
func TestMistralContentPartsAfterFailover(t *testing.T) {
	head := `data: {"id":"c3c7","object":"chat.completion.chunk","created":1762355135,"model":"magistral-medium-2509","choices":[{"index":0,"delta":`
	mistralRound := func(stream bool) http.HandlerFunc {
		if stream {
			return sseHandler(
				head+`{"role":"assistant","content":""},"finish_reason":null}]}`+"\n\n",
				head+`{"content":[{"type":"thinking","thinking":[{"type":"text","text":"The user wants premium."}]}]},"finish_reason":null}]}`+"\n\n",
				head+`{"content":"Let me order that."},"finish_reason":null}]}`+"\n\n",
				head+`{"tool_calls":[{"id":"AbCdE1234","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"},"index":0}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":1,"total_tokens":3,"completion_tokens":2}}`+"\n\n",
				"data: [DONE]\n\n")
		}
		return jsonHandler(200, mistralPaymentAnswer)
	}
	for _, tc := range []struct {
		name     string
		model    string
		deepseek bool
	}{
		{"openai", "gpt-4o-mini", false},
		{"deepseek", "deepseek-chat", true},
		{"qwen", "qwen-plus", false},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(tc.name+"/stream="+strconv.FormatBool(stream), func(t *testing.T) {
				mistral := newFakeProvider(t, roundByRound(mistralRound(stream), unavailable()))
				other := newFakeProvider(t, textPartsOnly(tc.deepseek, textRound(stream, "Your order is ready.")))
				tools := &recordingTools{}
				url := familyProxy(t, tools, familyProvider{mistral, "magistral-medium-2509"}, familyProvider{other, tc.model})
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				out := readAll(t, resp.Body)
				// The payment round's thinking kept before the text, a
				// streaming bot reads it (TestPaymentTurnSameAnswerStreamedOrNot):
				// the content is parts, its text parts the rounds' text.
				if resp.StatusCode != 200 || readBot(stream, out).text != "Let me order that.\n\nYour order is ready." {
					t.Fatalf("status %d, answer %s; want the turn answered after failover", resp.StatusCode, out)
				}
				reqs := other.requests()
				if len(reqs) != 1 {
					t.Fatalf("%s got %d requests; want 1", tc.name, len(reqs))
				}
				asst := gjson.GetBytes(reqs[0].Body, `messages.#(role=="assistant")`)
				if got := asst.Get("content").Raw; got != `"Let me order that."` {
					t.Errorf("%s got the round's assistant message %s; want its text as content", tc.name, asst.Raw)
				}
				if got := asst.Get("tool_calls.0.id").Str; got != "call_pg_1_0" {
					t.Errorf("assistant message %s; want the call", asst.Raw)
				}
			})
		}
	}
}

// mistralSchema answers as Mistral's API does an assistant message with a
// member its schema does not name (https://github.com/charmbracelet/crush/issues/1590:
// reasoning_content), and passes every other request to next.
func mistralSchema(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		i, bad := 0, ""
		gjson.GetBytes(body, "messages").ForEach(func(_, m gjson.Result) bool {
			if m.Get("role").Str == "assistant" {
				m.ForEach(func(k, v gjson.Result) bool {
					switch k.Str {
					case "role", "content", "tool_calls", "prefix":
					default:
						if bad == "" {
							bad = `{"object":"error","message":{"detail":[{"type":"extra_forbidden","loc":["body","messages",` + strconv.Itoa(i) + `,"assistant",` + k.Raw + `],"msg":"Extra inputs are not permitted","input":` + v.Raw + `}]},"type":"invalid_request_error","param":null,"code":null}`
						}
					}
					return true
				})
				m.Get("tool_calls").ForEach(func(j, c gjson.Result) bool {
					c.ForEach(func(k, v gjson.Result) bool {
						switch k.Str {
						case "id", "type", "function", "index":
						default:
							if bad == "" {
								bad = `{"detail":[{"type":"extra_forbidden","loc":["body","messages",` + strconv.Itoa(i) + `,"assistant","tool_calls",` + strconv.Itoa(int(j.Num)) + `,` + k.Raw + `],"msg":"Extra inputs are not permitted","input":` + v.Raw + `}]}`
							}
						}
						return true
					})
					return true
				})
			}
			i++
			return true
		})
		if bad != "" {
			jsonHandler(422, bad)(w, r)
			return
		}
		next(w, r)
	}
}

// TestReasoningLeftOutForMistral: a payment round of a thinking model
// (DeepSeek's reasoning_content; OpenRouter's reasoning and
// reasoning_details; Gemini's extra_content on the call) goes to the next
// round with its reasoning on the assistant message, as those providers
// want it back; when that round failed over to Mistral, whose API refuses
// any member of an assistant message or a call it does not know (422
// extra_forbidden), the turn ended after the order was made. A Mistral
// target gets the message without them.
func TestReasoningLeftOutForMistral(t *testing.T) {
	for _, tc := range []struct {
		name, model string
		message     string // the first round's message members before tool_calls
		delta       string // the same streamed
	}{
		{"deepseek", "deepseek-reasoner", `"content":"","reasoning_content":"The user wants premium."`, `"content":null,"reasoning_content":"The user wants premium."`},
		{"openrouter", "deepseek/deepseek-r1", `"content":"","reasoning":"The user wants premium.","reasoning_details":[{"type":"reasoning.text","text":"The user wants premium.","format":"unknown","index":0}]`,
			`"content":"","reasoning":"The user wants premium.","reasoning_details":[{"type":"reasoning.text","text":"The user wants premium.","format":"unknown","index":0}]`},
		{"gemini", "gemini-2.5-flash", `"content":null`, `"content":null`},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(tc.name+"/stream="+strconv.FormatBool(stream), func(t *testing.T) {
				call := `[{"index":0,"id":"call_0_a1b2c3d4-e5f6","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]`
				if tc.name == "gemini" {
					// Gemini's thought signature, which Gemini wants back on the call.
					call = `[{"index":0,"id":"function-call-1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"},"extra_content":{"google":{"thought_signature":"CiQB0e2Kb3"}}}]`
				}
				first := jsonHandler(200, `{"id":"d1","object":"chat.completion","created":1,"model":"`+tc.model+`","choices":[{"index":0,"message":{"role":"assistant",`+tc.message+`,"tool_calls":`+call+`},"finish_reason":"tool_calls"}]}`)
				if stream {
					first = sseHandler(
						roundChunk+`[{"index":0,"delta":{"role":"assistant",`+tc.delta+`},"finish_reason":null}]}`+"\n\n",
						roundChunk+`[{"index":0,"delta":{"tool_calls":`+call+`},"finish_reason":null}]}`+"\n\n",
						roundChunk+`[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n", "data: [DONE]\n\n")
				}
				thinker := newFakeProvider(t, roundByRound(first, unavailable()))
				mistral := newFakeProvider(t, mistralSchema(mistralStrict(textRound(stream, "Your order is ready."))))
				tools := &recordingTools{}
				url := familyProxy(t, tools, familyProvider{thinker, tc.model}, familyProvider{mistral, "mistral-large-latest"})
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				out := readAll(t, resp.Body)
				if resp.StatusCode != 200 || !strings.HasSuffix(turnText(stream, out), "Your order is ready.") {
					t.Fatalf("status %d, answer %s; want the turn answered after failover to Mistral", resp.StatusCode, out)
				}
				if got := tools.executed(); len(got) != 1 {
					t.Errorf("executed %v; want one create_order", got)
				}
				reqs := mistral.requests()
				if len(reqs) != 1 {
					t.Fatalf("Mistral got %d requests; want 1", len(reqs))
				}
				checkToolIDs(t, reqs[0].Body)
			})
		}
	}
}

// TestValidationErrorDetailNamed: Mistral's API (and FastAPI servers,
// vLLM's 422 among them) answer a request their schema refuses with
// pydantic's list of what is wrong, under a "message" object or a
// top-level "detail", not an OpenAI error object. The bot got "provider pa
// refused the request (HTTP 422)", and neither it nor an operator could
// tell that max_completion_tokens was the member to drop (drop_fields).
func TestValidationErrorDetailNamed(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"mistral", `{"object":"error","message":{"detail":[{"type":"extra_forbidden","loc":["body","max_completion_tokens"],"msg":"Extra inputs are not permitted","input":32000}]},"type":"invalid_request_error","param":null,"code":null}`,
			"max_completion_tokens: Extra inputs are not permitted"},
		{"mistral two", `{"object":"error","message":{"detail":[{"type":"extra_forbidden","loc":["body","messages",0,"user","name"],"msg":"Extra inputs are not permitted","input":""},{"type":"extra_forbidden","loc":["body","messages",0,"user","tool_calls"],"msg":"Extra inputs are not permitted","input":null}]},"type":"invalid_request_error","param":null,"code":null}`,
			"messages.0.user.name: Extra inputs are not permitted; messages.0.user.tool_calls: Extra inputs are not permitted"},
		{"fastapi", `{"detail":[{"type":"missing","loc":["body","messages"],"msg":"Field required","input":{}}]}`, "messages: Field required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, jsonHandler(422, tc.body))
			url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
			resp := post(t, url, "/v1/chat/completions", chatBody(false, `"max_completion_tokens":32000,`), map[string]string{"X-WeChat-OpenID": "o-user-1"})
			out := readAll(t, resp.Body)
			if got := gjson.Get(out, "error.message").Str; resp.StatusCode != 422 || !strings.Contains(got, tc.want) {
				t.Errorf("status %d, error %s; want 422 naming %q", resp.StatusCode, out, tc.want)
			}
		})
	}
}

// deepseekThinking answers as DeepSeek's thinking mode does an assistant
// message with tool calls but no reasoning_content
// (https://api-docs.deepseek.com/guides/thinking_mode#tool-calls), and
// passes every other request to next.
func deepseekThinking(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		i, bad := 0, -1
		gjson.GetBytes(body, "messages").ForEach(func(_, m gjson.Result) bool {
			if m.Get("role").Str == "assistant" && m.Get("tool_calls.#").Int() > 0 && m.Get("reasoning_content").Type != gjson.String && bad < 0 {
				bad = i
			}
			i++
			return true
		})
		if bad >= 0 {
			jsonHandler(400, `{"error":{"message":"Missing `+"`reasoning_content`"+` field in the assistant message at message index `+strconv.Itoa(bad)+`. For more information, please refer to https://api-docs.deepseek.com/guides/thinking_mode#tool-calls","type":"invalid_request_error","param":null,"code":"invalid_request_error"}}`)(w, r)
			return
		}
		next(w, r)
	}
}

// TestDeepSeekReasoningAfterFailover: DeepSeek's thinking mode refuses a
// conversation whose assistant message with tool calls has no
// reasoning_content (400 "Missing `reasoning_content` field in the
// assistant message at message index 2"). A payment round answered by
// OpenAI (no reasoning) or by OpenRouter (its "reasoning") whose next round
// failed over to DeepSeek ended the turn after the order was made. A
// DeepSeek target gets the round's reasoning under DeepSeek's name, or
// an empty one.
func TestDeepSeekReasoningAfterFailover(t *testing.T) {
	for _, tc := range []struct {
		name, model string
		members     string // the first round's message members before tool_calls
		want        string // the reasoning_content DeepSeek gets
	}{
		{"openai", "gpt-4o-mini", `"content":null`, ""},
		{"openrouter", "anthropic/claude-sonnet-4", `"content":"","reasoning":"The user wants premium."`, "The user wants premium."},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(tc.name+"/stream="+strconv.FormatBool(stream), func(t *testing.T) {
				call := `[{"index":0,"id":"call_Ab12cD34eF56gH78iJ90kL12","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]`
				first := jsonHandler(200, `{"id":"o1","object":"chat.completion","created":1,"model":"`+tc.model+`","choices":[{"index":0,"message":{"role":"assistant",`+tc.members+`,"tool_calls":`+call+`},"finish_reason":"tool_calls"}]}`)
				if stream {
					first = sseHandler(
						roundChunk+`[{"index":0,"delta":{"role":"assistant",`+tc.members+`},"finish_reason":null}]}`+"\n\n",
						roundChunk+`[{"index":0,"delta":{"tool_calls":`+call+`},"finish_reason":null}]}`+"\n\n",
						roundChunk+`[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n", "data: [DONE]\n\n")
				}
				other := newFakeProvider(t, roundByRound(first, unavailable()))
				deepseek := newFakeProvider(t, deepseekThinking(textRound(stream, "Your order is ready.")))
				tools := &recordingTools{}
				url := familyProxy(t, tools, familyProvider{other, tc.model}, familyProvider{deepseek, "deepseek-reasoner"})
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				out := readAll(t, resp.Body)
				if resp.StatusCode != 200 || !strings.HasSuffix(turnText(stream, out), "Your order is ready.") {
					t.Fatalf("status %d, answer %s; want the turn answered after failover to DeepSeek", resp.StatusCode, out)
				}
				reqs := deepseek.requests()
				if len(reqs) != 1 {
					t.Fatalf("DeepSeek got %d requests; want 1", len(reqs))
				}
				if got := gjson.GetBytes(reqs[0].Body, `messages.#(role=="assistant").reasoning_content`); got.Type != gjson.String || got.Str != tc.want {
					t.Errorf("DeepSeek's assistant message has reasoning_content %s; want %q", got.Raw, tc.want)
				}
			})
		}
	}
}
