package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
)

// What bots that ask for a shape of answer read of a payment turn, through
// the binary's application against a scripted provider and the WeChat Pay
// simulator, with the SDK that parses the shape.

// shapedRound is a scripted round of text (content, may be empty) then one
// call (name and arguments as JSON text, none when name is empty), with
// usage prompt/completion.
func shapedRound(id, content, name, args string, prompt, completion int) scriptRound {
	head := `{"id":"` + id + `","object":"chat.completion.chunk","created":1700000000,"model":"openai/gpt-4o-2024","choices":[`
	usage := `"usage":{"prompt_tokens":` + strconv.Itoa(prompt) + `,"completion_tokens":` + strconv.Itoa(completion) + `,"total_tokens":` + strconv.Itoa(prompt+completion) + `}`
	qc, _ := json.Marshal(content)
	qa, _ := json.Marshal(args)
	var r scriptRound
	r.chunks = append(r.chunks, head+`{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`)
	if content != "" {
		r.chunks = append(r.chunks, head+`{"index":0,"delta":{"content":`+string(qc)+`},"finish_reason":null}]}`)
	}
	finish, msg := "stop", `{"role":"assistant","content":`+string(qc)
	if content == "" {
		msg = `{"role":"assistant","content":null`
	}
	if name != "" {
		call := `{"id":"call_` + id + `","type":"function","function":{"name":"` + name + `","arguments":` + string(qa) + `}}`
		r.chunks = append(r.chunks, head+`{"index":0,"delta":{"tool_calls":[{"index":0,`+call[1:]+`]},"finish_reason":null}]}`)
		finish, msg = "tool_calls", msg+`,"tool_calls":[`+call+`]`
	}
	r.chunks = append(r.chunks, head+`{"index":0,"delta":{},"finish_reason":"`+finish+`"}]}`,
		`{"id":"`+id+`","object":"chat.completion.chunk","created":1700000000,"model":"openai/gpt-4o-2024","choices":[],`+usage+`}`)
	r.whole = `{"id":"` + id + `","object":"chat.completion","created":1700000000,"model":"openai/gpt-4o-2024","choices":[{"index":0,"message":` + msg + `},"finish_reason":"` + finish + `"}],` + usage + `}`
	return r
}

// rounds is the number of rounds the request body has had: one more than
// its tool results.
func rounds(body string) int {
	return strings.Count(body, `"role":"tool"`) + 1
}

// shapedTurn serves script (shapedRound's rounds) to a paymentApp and runs
// the Node SDK's structured-outputs bot against it in mode (test/node's
// chat.mjs: parse, parse-stream) with env, and returns what the bot read,
// the provider (the rounds it was asked) and the app (its simulator's
// orders). It exists because each structured-outputs payment test sets up
// this same turn and differs in the script and what it asks of the answer.
func shapedTurn(t *testing.T, script func(body string) scriptRound, mode string, env ...string) (gjson.Result, *scriptedProvider, *app) {
	t.Helper()
	up := newScriptedProvider(t, script)
	url, a := paymentApp(t, up.URL, "")
	return gjson.ParseBytes(nodeChat(t, url, mode, env...)), up, a
}

// TestStructuredOutputsAcrossAPaymentRound: a bot on the Node SDK's
// structured outputs (zodResponseFormat, a strict json_schema; parse() and
// the stream helper) reads a purchase continued past create_order as the
// schema's object, and a turn whose rounds are spent (a model that calls
// query_order in every round) as a refusal carrying the clarification, as
// OpenAI answers what it will not put in the schema: the SDK gives
// parsed null and the refusal, where the clarification as content,
// {"clarification": …}, is JSON the schema refuses and the SDK raised.
func TestStructuredOutputsAcrossAPaymentRound(t *testing.T) {
	purchase := func(body string) scriptRound {
		if rounds(body) == 1 {
			return shapedRound("r1", "", "create_order", `{"sku":"premium-monthly","quantity":1}`, 100, 20)
		}
		return shapedRound("r2", `{"reply":"Your order is ready: tap Pay."}`, "", "", 150, 10)
	}
	loop := func(body string) scriptRound {
		n := strconv.Itoa(rounds(body))
		return shapedRound("q"+n, "", "query_order", `{"order_no":"PG-NONE-`+n+`"}`, 100, 5)
	}
	for _, mode := range []string{"parse", "parse-stream"} {
		t.Run(mode+"/purchase", func(t *testing.T) {
			t.Parallel()
			res, up, a := shapedTurn(t, purchase, mode, "PAYGATE_PARSE_TOKENS=200")
			if res.Get("error").Exists() || res.Get("parsed.reply").Str != "Your order is ready: tap Pay." || res.Get("finish").Str != "stop" {
				t.Errorf("the SDK read %s; want parsed.reply, finish stop", res.Raw)
			}
			if u := res.Get("usage"); u.Get("prompt_tokens").Int() != 250 || u.Get("completion_tokens").Int() != 30 {
				t.Errorf("usage %s; want 250/30, both rounds", u.Raw)
			}
			// The bot's cap bounds the turn: the second round is asked for
			// what the first (20 tokens) left of 200.
			if reqs := up.requests(); len(reqs) != 2 || gjson.Get(reqs[0], "max_completion_tokens").Int() != 200 || gjson.Get(reqs[1], "max_completion_tokens").Int() != 180 ||
				gjson.Get(reqs[1], "response_format.json_schema.strict").Raw != "true" {
				t.Errorf("%d rounds; want 2 asked for 200 then 180 tokens, the strict schema in each", len(reqs))
			}
			if a.sim.OrderCount() != 1 || len(res.Get("paygate.actions").Array()) != 1 {
				t.Errorf("%d orders, paygate %s; want one order_created", a.sim.OrderCount(), res.Get("paygate").Raw)
			}
		})
		t.Run(mode+"/rounds spent", func(t *testing.T) {
			t.Parallel()
			res, up, _ := shapedTurn(t, loop, mode)
			if n := len(up.requests()); n != 3 {
				t.Fatalf("%d rounds; want the 3 of max_rounds", n)
			}
			if res.Get("error").Exists() || res.Get("refusal").Str != config.DefaultClarification || res.Get("parsed").Type != gjson.Null {
				t.Errorf("the SDK read %s; want parsed null and the clarification as the refusal", res.Raw)
			}
			if u := res.Get("usage"); u.Get("prompt_tokens").Int() != 300 || u.Get("completion_tokens").Int() != 15 {
				t.Errorf("usage %s; want 300/15, the three rounds", u.Raw)
			}
		})
		// A forced call (tool_choice "required", met by create_order) with
		// parallel_tool_calls false and a strict tool of the bot's: the
		// round after the payment is asked with "auto", the rest as sent.
		t.Run(mode+"/required", func(t *testing.T) {
			t.Parallel()
			res, up, a := shapedTurn(t, purchase, mode, `PAYGATE_PARSE_CHOICE="required"`)
			if res.Get("error").Exists() || res.Get("parsed.reply").Str != "Your order is ready: tap Pay." || a.sim.OrderCount() != 1 {
				t.Errorf("the SDK read %s, %d orders; want parsed.reply and one order", res.Raw, a.sim.OrderCount())
			}
			reqs := up.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d rounds; want 2", len(reqs))
			}
			for i, want := range []string{`"required"`, `"auto"`} {
				r := gjson.Parse(reqs[i])
				if r.Get("tool_choice").Raw != want || r.Get("parallel_tool_calls").Raw != "false" || r.Get("tools.0.function.strict").Raw != "true" ||
					r.Get("response_format.json_schema.strict").Raw != "true" {
					t.Errorf("round %d: tool_choice %s, parallel_tool_calls %s, bot tool strict %s; want %s, false, true", i+1,
						r.Get("tool_choice").Raw, r.Get("parallel_tool_calls").Raw, r.Get("tools.0.function.strict").Raw, want)
				}
			}
		})
	}
}

// TestStructuredOutputsParseAfterASpokenPaymentRound: a model in JSON mode
// writes its document in the payment round too ({"reply":"Let me order
// it."} beside create_order), then the answer's in the next. The Node
// SDK's parse() (not streamed) read the content of both rounds joined by a
// break, two documents, and raised a SyntaxError; it now gets the last
// round's document, parsed.
func TestStructuredOutputsParseAfterASpokenPaymentRound(t *testing.T) {
	res, _, a := shapedTurn(t, func(body string) scriptRound {
		if rounds(body) == 1 {
			return shapedRound("r1", `{"reply":"Let me order it."}`, "create_order", `{"sku":"premium-monthly","quantity":1}`, 100, 20)
		}
		return shapedRound("r2", `{"reply":"Your order is ready: tap Pay."}`, "", "", 150, 10)
	}, "parse")
	if res.Get("error").Exists() || res.Get("parsed.reply").Str != "Your order is ready: tap Pay." || a.sim.OrderCount() != 1 {
		t.Errorf("the SDK read %s, %d orders; want parsed.reply of the last round and one order", res.Raw, a.sim.OrderCount())
	}
}

// TestStructuredOutputsRefusalInHistory: a bot on the Node SDK's
// structured outputs that pushes each answer's message into its history
// sends the refusal a spent turn ended with (content null, the
// clarification as the refusal) back before the user's answer. A provider
// that refuses an assistant message without content or calls, as
// DeepSeek's API does (400 "Invalid assistant message: content or
// tool_calls must be set"; Mistral's, Ollama and vLLM alike), answers the
// next turn, and its model reads the question it asked as the message's
// content.
func TestStructuredOutputsRefusalInHistory(t *testing.T) {
	script := func(body string) scriptRound {
		if !strings.Contains(body, "Premium monthly, one.") {
			n := strconv.Itoa(rounds(body))
			return shapedRound("q"+n, "", "query_order", `{"order_no":"PG-NONE-`+n+`"}`, 100, 5)
		}
		return shapedRound("a1", `{"reply":"Ordering premium monthly."}`, "", "", 150, 10)
	}
	for _, mode := range []string{"parse-history", "parse-stream-history"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			up := newScriptedProvider(t, script)
			deepseek := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				bare := false
				gjson.GetBytes(b, "messages").ForEach(func(_, m gjson.Result) bool {
					c := m.Get("content")
					bare = m.Get("role").Str == "assistant" && m.Get("tool_calls.#").Int() == 0 && (c.Type == gjson.Null || c.Type == gjson.String && c.Str == "")
					return !bare
				})
				if bare {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusBadRequest)
					_, _ = io.WriteString(w, `{"error":{"message":"Invalid assistant message: content or tool_calls must be set","type":"invalid_request_error","param":null,"code":"invalid_request_error"}}`)
					return
				}
				req, _ := http.NewRequest(r.Method, up.URL+r.URL.RequestURI(), bytes.NewReader(b))
				req.Header = r.Header.Clone()
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					w.WriteHeader(http.StatusBadGateway)
					return
				}
				defer resp.Body.Close()
				w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
				w.WriteHeader(resp.StatusCode)
				_, _ = io.Copy(w, resp.Body)
			}))
			t.Cleanup(deepseek.Close)
			url, _ := paymentApp(t, deepseek.URL, "")
			res := gjson.ParseBytes(nodeChat(t, url, mode))
			if res.Get("kept.refusal").Str != config.DefaultClarification {
				t.Fatalf("the bot kept %s; want the clarification as the refusal", res.Get("kept").Raw)
			}
			if res.Get("error").Exists() || res.Get("parsed.reply").Str != "Ordering premium monthly." {
				t.Fatalf("the next turn: the SDK read %s; want parsed.reply", res.Raw)
			}
			reqs := up.requests()
			last := reqs[len(reqs)-1]
			asked := false
			gjson.Get(last, "messages").ForEach(func(_, m gjson.Result) bool {
				asked = asked || m.Get("role").Str == "assistant" && strings.HasSuffix(m.Get("content").Str, config.DefaultClarification)
				return true
			})
			if !asked {
				t.Errorf("the model got the messages %s; want the question asked as an assistant's content", gjson.Get(last, "messages").Raw)
			}
		})
	}
}
