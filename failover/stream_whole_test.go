package failover

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestEventStreamAnswersANonStreamRequest: a non-stream chat request
// answered with chat.completion.chunk events (a provider that ignores
// "stream": false) is the answer, from the provider that gave it, as the
// whole chat completion the events stream: each choice's text, reasoning,
// refusal and logprobs concatenated, its tool calls merged by index, its
// finish, the usage. Failed over as no JSON object, the answer was asked
// for again, of this provider and the next, each billed. An error event,
// or a stream cut or ended before its finish, still fails over.
func TestEventStreamAnswersANonStreamRequest(t *testing.T) {
	chunk := func(choices string) string {
		return `{"id":"chatcmpl-s","object":"chat.completion.chunk","created":1700000000,"model":"m-1","system_fingerprint":"fp","choices":[` + choices + `]}`
	}
	whole := func(c *fconn, _ int) {
		c.sse()
		c.comment("keep-alive")
		c.event(chunk(`{"index":0,"delta":{"role":"assistant","content":"","reasoning_content":"Think"},"logprobs":{"content":[{"token":"O","logprob":-0.1}]},"finish_reason":null}`))
		c.event(chunk(`{"index":1,"delta":{"role":"assistant","refusal":"No"},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{"reasoning_content":"ing.","content":"Order"},"logprobs":{"content":[{"token":"rder","logprob":-0.2}]},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{"content":"ing.","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":""}}]},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_2","type":"function","function":{"name":"get_balance","arguments":"{}"}}]},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"sku\":\"premium-monthly\","}}]},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"quantity\":1}"}}]},"finish_reason":null}`))
		c.event(chunk(`{"index":1,"delta":{},"finish_reason":"stop"}`))
		c.event(chunk(`{"index":0,"delta":{},"finish_reason":"tool_calls"}`))
		c.event(`{"id":"chatcmpl-s","object":"chat.completion.chunk","created":1700000000,"model":"m-1","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`)
		c.done()
	}
	tests := []struct {
		name     string
		script   func(c *fconn, n int)
		provider string
		attempts int // 0: not checked
	}{
		{"whole stream", whole, "a", 0},
		{"calls without an index", func(c *fconn, _ int) {
			c.sse()
			c.event(chunk(`{"index":0,"delta":{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":"}}]},"finish_reason":null}`))
			c.event(chunk(`{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"\"premium-monthly\"}"}}]},"finish_reason":null}`))
			c.event(chunk(`{"index":0,"delta":{"tool_calls":[{"id":"call_2","type":"function","function":{"name":"get_balance","arguments":"{}"}}]},"finish_reason":null}`))
			c.event(chunk(`{"index":0,"delta":{},"finish_reason":"tool_calls"}`))
			c.done()
		}, "a", 0},
		{"a completion after keep-alive comments", func(c *fconn, _ int) {
			c.status(200, ": PROCESSING\n\n: PROCESSING\n\n"+
				`{"id":"chatcmpl-s","object":"chat.completion","created":1700000000,"model":"m-1","system_fingerprint":"fp",`+
				`"choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}]}`+"\n")
		}, "a", 1},
		{"cut after its finish", func(c *fconn, _ int) {
			c.sse()
			c.event(chunk(`{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}`))
			c.event(chunk(`{"index":0,"delta":{},"finish_reason":"stop"}`))
			c.cut()
		}, "a", 0},
		{"error event after its finish", func(c *fconn, _ int) {
			c.sse()
			c.event(chunk(`{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}`))
			c.event(chunk(`{"index":0,"delta":{},"finish_reason":"stop"}`))
			c.event(errBody("server_error", "relay_hiccup", "upstream gone"))
			c.done()
		}, "a", 0},
		{"malformed events", func(c *fconn, _ int) {
			c.sse()
			c.event(chunk(`{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}`))
			c.event("{not json")
			c.event("{not json")
			c.event("{not json")
			c.event(chunk(`{"index":0,"delta":{},"finish_reason":"stop"}`))
			c.done()
		}, "b", 0},
		{"cut before its finish", func(c *fconn, _ int) {
			c.sse()
			c.event(chunk(`{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}`))
			c.cut()
		}, "b", 0},
		{"[DONE] before its finish", func(c *fconn, _ int) {
			c.sse()
			c.event(chunk(`{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}`))
			c.done()
		}, "b", 0},
		{"error event", func(c *fconn, _ int) {
			c.sse()
			c.event(errBody("server_error", "overloaded", "try again"))
			c.done()
		}, "b", 0},
		{"bare error after a keep-alive", func(c *fconn, _ int) {
			c.sse()
			c.comment("keep-alive")
			c.chunk(errBody("invalid_request_error", "context_length_exceeded", "too long") + "\n")
			c.end()
		}, "b", 2}, // the provider's reason: never the same target again
		{"no choice", func(c *fconn, _ int) {
			c.sse()
			c.event(usageChunk())
			c.done()
		}, "b", 0},
		// A completion after keep-alives is the body as it came: one
		// naming a member paygate reads twice (ambiguousMember) is
		// malformed, as the same answer sent as JSON is.
		{"a completion naming tool_calls twice after keep-alive comments", func(c *fconn, _ int) {
			c.status(200, ": PROCESSING\n\n"+
				`{"id":"chatcmpl-s","object":"chat.completion","created":1700000000,"model":"m-1",`+
				`"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[],`+
				`"tool_calls":[{"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`+"\n")
		}, "b", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]func(c *fconn, n int){"a": tc.script, "b": func(c *fconn, _ int) { okJSON(c, "from b") }},
				[]string{"a", "b"}, nil)
			got := e.open(context.Background(), false)
			if got.openErr != nil {
				t.Fatal(got.openErr)
			}
			if got.provider != tc.provider {
				t.Fatalf("answered by %q after %d attempts (%s); want %q", got.provider, got.attempts, got.body, tc.provider)
			}
			if tc.attempts != 0 && got.attempts != tc.attempts {
				t.Errorf("%d attempts; want %d", got.attempts, tc.attempts)
			}
			if tc.provider != "a" {
				return
			}
			if got.attempts != 1 || len(e.fakes["b"].hits()) != 0 {
				t.Errorf("%d attempts, b asked %d times; want the one attempt, of a", got.attempts, len(e.fakes["b"].hits()))
			}
			if !gjson.Valid(got.body) {
				t.Fatalf("body %s is no JSON", got.body)
			}
			r := gjson.GetMany(got.body, "object", "id", "model", "created", "system_fingerprint")
			if r[0].Str != "chat.completion" || r[1].Str != "chatcmpl-s" || r[2].Str != "m-1" || r[3].Int() != 1700000000 || r[4].Str != "fp" {
				t.Errorf("body %s: want a chat.completion with the chunks' id, model, created and fingerprint", got.body)
			}
			if tc.name == "calls without an index" {
				calls := gjson.Get(got.body, "choices.0.message.tool_calls")
				if calls.Get("#").Int() != 2 || calls.Get("0.id").Str != "call_1" || calls.Get("0.function.arguments").Str != `{"sku":"premium-monthly"}` ||
					calls.Get("1.id").Str != "call_2" || calls.Get("1.function.name").Str != "get_balance" || calls.Get("1.function.arguments").Str != "{}" {
					t.Errorf("tool calls %s: want create_order then get_balance, each with its own arguments", calls.Raw)
				}
				return
			}
			if tc.name != "whole stream" {
				if m := gjson.Get(got.body, "choices.0.message.content"); m.Str != "Hi" || gjson.Get(got.body, "choices.0.finish_reason").Str != "stop" {
					t.Errorf("body %s: want the message Hi, finished", got.body)
				}
				return
			}
			want := map[string]string{
				"choices.#":                                         "2",
				"choices.0.index":                                   "0",
				"choices.0.message.role":                            "assistant",
				"choices.0.message.content":                         "Ordering.",
				"choices.0.message.reasoning_content":               "Thinking.",
				"choices.0.message.tool_calls.#":                    "2",
				"choices.0.message.tool_calls.0.id":                 "call_1",
				"choices.0.message.tool_calls.0.type":               "function",
				"choices.0.message.tool_calls.0.function.name":      "create_order",
				"choices.0.message.tool_calls.0.function.arguments": `{"sku":"premium-monthly","quantity":1}`,
				"choices.0.message.tool_calls.1.id":                 "call_2",
				"choices.0.message.tool_calls.1.function.name":      "get_balance",
				"choices.0.message.tool_calls.1.function.arguments": "{}",
				"choices.0.finish_reason":                           "tool_calls",
				"choices.0.logprobs.content.#":                      "2",
				"choices.0.logprobs.content.1.token":                "rder",
				"choices.1.index":                                   "1",
				"choices.1.message.refusal":                         "No",
				"choices.1.finish_reason":                           "stop",
				"usage.total_tokens":                                "15",
			}
			wantPaths(t, got.body, want)
		})
	}
}

// TestEventStreamToolCallArgumentsAsJSON: a tool call whose arguments a
// provider streams as a JSON value rather than a string is assembled with
// that value's text as its arguments, as the stream capture and a JSON
// answer's parser read them. Taken as strings only, they were dropped: the
// payment call ran with no arguments, the bot's call lost its own.
func TestEventStreamToolCallArgumentsAsJSON(t *testing.T) {
	chunk := choicesChunk
	for _, tc := range []struct{ name, args, want string }{
		{"object", `{"sku":"premium-monthly","quantity":1}`, `{"sku":"premium-monthly","quantity":1}`},
		{"array", `[1,2]`, `[1,2]`},
		{"string", `"{\"sku\":\"premium-monthly\"}"`, `{"sku":"premium-monthly"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script := func(c *fconn, _ int) {
				c.sse()
				c.event(chunk(`{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":` + tc.args + `}}]},"finish_reason":null}`))
				c.event(chunk(`{"index":0,"delta":{},"finish_reason":"tool_calls"}`))
				c.done()
			}
			got := answerOfA(t, script)
			if g := gjson.Get(got.body, "choices.0.message.tool_calls.0.function.arguments").Str; g != tc.want {
				t.Errorf("arguments %q; want %q (body %s)", g, tc.want, got.body)
			}
		})
	}
}

// TestEventStreamCustomCallsAndExtras: an event stream's custom tool call
// (named in "custom", its text in "input") is assembled as one, and a tool
// call's members other than its index, id, type and function (Gemini's
// thought signature in extra_content) stay on it, as the stream capture
// relays them and a JSON answer carries them. Assembled as function calls
// with neither, the custom call had no name (refused as a payment call
// without one) and the signature Gemini asks back on the next round was
// gone.
func TestEventStreamCustomCallsAndExtras(t *testing.T) {
	chunk := choicesChunk
	script := func(c *fconn, _ int) {
		c.sse()
		c.event(chunk(`{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"lookup","arguments":"{\"q\":"},"extra_content":{"google":{"thought_signature":"sig-1"}}}]},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"x\"}"}}]},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_2","type":"custom","custom":{"name":"shell","input":"ls "}}]},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{"tool_calls":[{"index":1,"custom":{"input":"-la"}}]},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{},"finish_reason":"tool_calls"}`))
		c.done()
	}
	got := answerOfA(t, script)
	want := map[string]string{
		"choices.0.message.tool_calls.#":                                        "2",
		"choices.0.message.tool_calls.0.function.name":                          "lookup",
		"choices.0.message.tool_calls.0.function.arguments":                     `{"q":"x"}`,
		"choices.0.message.tool_calls.0.extra_content.google.thought_signature": "sig-1",
		"choices.0.message.tool_calls.1.id":                                     "call_2",
		"choices.0.message.tool_calls.1.type":                                   "custom",
		"choices.0.message.tool_calls.1.custom.name":                            "shell",
		"choices.0.message.tool_calls.1.custom.input":                           "ls -la",
		"choices.0.message.tool_calls.1.function":                               "",
	}
	wantPaths(t, got.body, want)
}

// TestEventStreamManyChoicesStopAtTheLimit: each choice and tool call an
// event stream shows counts toward the limit of the completion it
// assembles to, as the JSON it takes there, so that events showing a new
// index every few bytes stop being read at the limit. Not counted, a body
// of such events took memory many times its size, and time in the square
// of their count, before the completion was found too large.
func TestEventStreamManyChoicesStopAtTheLimit(t *testing.T) {
	const limit = 64 << 10
	entries := func(n int) string {
		var sb strings.Builder
		for i := range n {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(`{"index":` + strconv.Itoa(i) + `}`)
		}
		return sb.String()
	}
	for _, tc := range []struct{ name, data string }{
		{"choices", `{"choices":[` + entries(2000) + `]}`},
		{"tool calls", `{"choices":[{"index":0,"delta":{"tool_calls":[` + entries(2000) + `]}}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.data) >= limit {
				t.Fatalf("event of %d bytes: want one under the limit", len(tc.data))
			}
			b := completionBuilder{limit: limit}
			if err := b.add(tc.data, false); !errors.Is(err, errBodyTooLarge) {
				t.Errorf("an event of %d bytes showing 2000 indexes added with %v; want errBodyTooLarge", len(tc.data), err)
			}
		})
	}
}

// TestEventStreamContentParts: content an event stream gives as parts
// (Mistral's reasoning models: their thinking as a "thinking" part, their
// words as "text" parts, a piece per event) is assembled as the parts a
// JSON answer carries, each continued part extended and text sent as
// strings in its place, as the stream capture merges them. Taken as
// strings only, the answer's content was null.
func TestEventStreamContentParts(t *testing.T) {
	chunk := choicesChunk
	script := func(c *fconn, _ int) {
		c.sse()
		c.event(chunk(`{"index":0,"delta":{"role":"assistant","content":[{"type":"thinking","thinking":[{"type":"text","text":"Hmm, "}]}]},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{"content":[{"type":"thinking","thinking":[{"type":"text","text":"premium."}]}]},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{"content":[{"type":"text","text":"Premium "}]},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{"content":"costs \"49.99\"."},"finish_reason":"stop"}`))
		c.done()
	}
	got := answerOfA(t, script)
	want := `[{"type":"thinking","thinking":[{"type":"text","text":"Hmm, premium."}]},{"type":"text","text":"Premium costs \"49.99\"."}]`
	if g := gjson.Get(got.body, "choices.0.message.content").Raw; g != want {
		t.Errorf("content %s; want %s (body %s)", g, want, got.body)
	}
}

// TestEventStreamReasoningDetails: the reasoning_details an event stream
// gives in pieces (OpenRouter: each block's text, summary or data in parts
// sharing its type and index, its signature whole) are assembled as the
// blocks a JSON answer's message carries, as the stream capture merges
// them: models that sign their reasoning refuse a tool round's next
// request without them.
func TestEventStreamReasoningDetails(t *testing.T) {
	chunk := choicesChunk
	script := func(c *fconn, _ int) {
		c.sse()
		c.event(chunk(`{"index":0,"delta":{"role":"assistant","reasoning_details":[{"type":"reasoning.text","text":"The user ","format":"anthropic-claude-v1","index":0}]},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{"reasoning_details":[{"type":"reasoning.text","text":"wants premium.","signature":null,"index":0}]},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{"reasoning_details":[{"type":"reasoning.text","signature":"sig-9","index":0}]},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{"content":"Sure."},"finish_reason":"stop"}`))
		c.done()
	}
	got := answerOfA(t, script)
	want := `[{"type":"reasoning.text","text":"The user wants premium.","format":"anthropic-claude-v1","index":0,"signature":"sig-9"}]`
	if g := gjson.Get(got.body, "choices.0.message.reasoning_details").Raw; g != want {
		t.Errorf("reasoning_details %s; want %s (body %s)", g, want, got.body)
	}
}

// TestEventStreamImagesAndAnnotations: an image model's pictures
// (OpenRouter's message.images, each a data URL streamed in a delta's
// "images") and a search model's citations (OpenAI's message.annotations,
// url_citation, streamed in a delta's "annotations") are assembled as the
// arrays a JSON answer's message carries, each delta's entries after the
// last's, as a stream's client collects them. Dropped, the bot that asked
// for a picture got its caption alone, and the picture was billed.
func TestEventStreamImagesAndAnnotations(t *testing.T) {
	chunk := choicesChunk
	const (
		img1 = `{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="},"index":0}`
		img2 = `{"type":"image_url","image_url":{"url":"data:image/png;base64,R0lGODlh"},"index":1}`
		cite = `{"type":"url_citation","url_citation":{"end_index":20,"start_index":9,"title":"Cats","url":"https://example.com/cats"}}`
		more = `{"type":"url_citation","url_citation":{"end_index":8,"start_index":0,"title":"Pets","url":"https://example.org/"}}`
	)
	script := func(c *fconn, _ int) {
		c.sse()
		c.event(chunk(`{"index":0,"delta":{"role":"assistant","content":"","images":[` + img1 + `]},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{"content":"A cat, as example.com shows."},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{"images":[` + img2 + `],"annotations":[` + cite + `]},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{"annotations":[` + more + `]},"finish_reason":"stop"}`))
		c.done()
	}
	got := answerOfA(t, script)
	for path, want := range map[string]string{
		"choices.0.message.images":      "[" + img1 + "," + img2 + "]",
		"choices.0.message.annotations": "[" + cite + "," + more + "]",
		"choices.0.message.content":     `"A cat, as example.com shows."`,
	} {
		if g := gjson.Get(got.body, path).Raw; g != want {
			t.Errorf("%s %s; want %s (body %s)", path, g, want, got.body)
		}
	}
}

// TestEventStreamAudio: an audio model's spoken answer (gpt-4o-audio-
// preview with modalities ["text","audio"]), streamed in a delta's "audio"
// — its id first, then pieces of its base64 data and of its transcript,
// its expires_at last — is assembled as the message.audio a JSON answer
// carries: the id, the data and the transcript each concatenated, the
// expiry. Dropped, the bot that asked for speech got an answer with no
// content and no audio, the audio billed.
func TestEventStreamAudio(t *testing.T) {
	chunk := choicesChunk
	script := func(c *fconn, _ int) {
		c.sse()
		c.event(chunk(`{"index":0,"delta":{"role":"assistant","content":null,"refusal":null,"audio":{"id":"audio_1","transcript":"Hel"}},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{"audio":{"transcript":"lo \u00e9t\u00e9"}},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{"audio":{"data":"UklGRn"}},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{"audio":{"data":"oGAA\/XQ=="}},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{"audio":{"expires_at":1729018505}},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{},"finish_reason":"stop"}`))
		c.done()
	}
	got := answerOfA(t, script)
	const want = `{"id":"audio_1","data":"UklGRnoGAA/XQ==","expires_at":1729018505,"transcript":"Hello été"}`
	if g := gjson.Get(got.body, "choices.0.message.audio").Raw; g != want {
		t.Errorf("message.audio %s; want %s (body %s)", g, want, got.body)
	}
	if g := gjson.Get(got.body, "choices.0.message.content").Raw; g != "null" {
		t.Errorf("message.content %s; want null", g)
	}
}

// TestEventStreamPaymentCallNamedAsTheCaptureReadsIt: a tool call an event
// stream names somewhere the stream capture does not read a name (at the
// fragment's top), names twice (a "function" or a "name" repeated, also in
// another case), or names as one kind and continues as the other, carries
// its arguments on a call assembled without a name, so that the turn refuses it as the capture and
// a JSON answer's parser do. Assembled with the name gjson finds first,
// each became a clean payment call that ran where a stream or a JSON
// answer of the same call ran nothing.
func TestEventStreamPaymentCallNamedAsTheCaptureReadsIt(t *testing.T) {
	chunk := choicesChunk
	const args = `"{\"sku\":\"premium-monthly\"}"`
	for _, tc := range []struct {
		name  string
		calls []string // each the tool_calls of one delta
	}{
		{"name at the top", []string{`{"index":0,"id":"call_1","type":"function","name":"create_order","arguments":` + args + `}`}},
		{"name twice", []string{`{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","name":"lookup","arguments":` + args + `}}`}},
		{"name twice in another case", []string{`{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","Name":"lookup","arguments":` + args + `}}`}},
		{"function twice", []string{`{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":` + args + `},"function":{"name":"lookup"}}`}},
		{"function and custom", []string{`{"index":0,"id":"call_1","function":{"name":"create_order","arguments":` + args + `},"custom":{"name":"lookup"}}`}},
		{"function in another case", []string{`{"index":0,"id":"call_1","function":{"name":"create_order","arguments":` + args + `},"Function":{"name":"lookup"}}`}},
		{"twice after a name", []string{
			`{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":""}}`,
			`{"index":0,"function":{"name":"create_order","name":"lookup","arguments":` + args + `}}`}},
		{"custom text for a function", []string{
			`{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":""}}`,
			`{"index":0,"custom":{"input":"{\"sku\":\"premium-monthly\"}"}}`}},
		{"function text for a custom call", []string{
			`{"index":0,"id":"call_1","type":"custom","custom":{"name":"create_order","input":""}}`,
			`{"index":0,"function":{"arguments":` + args + `}}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script := func(c *fconn, _ int) {
				c.sse()
				for i, calls := range tc.calls {
					role := ""
					if i == 0 {
						role = `"role":"assistant",`
					}
					c.event(chunk(`{"index":0,"delta":{` + role + `"tool_calls":[` + calls + `]},"finish_reason":null}`))
				}
				c.event(chunk(`{"index":0,"delta":{},"finish_reason":"tool_calls"}`))
				c.done()
			}
			got := answerOfA(t, script)
			// The non-stream parser (proxy's callName) reads a name only
			// from exactly "function" or "custom", and none from a call
			// that has two of either or two names in one.
			gjson.Get(got.body, "choices.0.message.tool_calls").ForEach(func(_, call gjson.Result) bool {
				functions, names := 0, 0
				name, text := "", call.Get("function.arguments").Str+call.Get("custom.input").Str
				call.ForEach(func(k, fn gjson.Result) bool {
					if !strings.EqualFold(k.Str, "function") && !strings.EqualFold(k.Str, "custom") {
						return true
					}
					functions++
					fn.ForEach(func(fk, v gjson.Result) bool {
						if strings.EqualFold(fk.Str, "name") {
							names++
							if fk.Str == "name" && (k.Str == "function" || k.Str == "custom") {
								name = v.Str
							}
						}
						return true
					})
					return true
				})
				if functions <= 1 && names <= 1 && name != "" && strings.Contains(text, "premium-monthly") {
					t.Errorf("assembled call named %q with the arguments; want it without a name (body %s)", name, got.body)
				}
				return true
			})
		})
	}
}

// TestEventStreamRepeatedCallMembersReadAsTheCaptureReadsThem: a tool
// call's fragment that repeats its index, id or arguments is a chunk the
// capture skips (jsonscan.Chunk): skipped here too, it costs the answer,
// which is asked of the next target (b), as a stream's payment calls are
// refused and a JSON answer naming a call's arguments twice is. (Before
// the capture skipped it, a repeated arguments was assembled with the
// copy the capture read, the last: read with gjson's first copy, the
// payment call ran with other arguments than the capture's.)
func TestEventStreamRepeatedCallMembersReadAsTheCaptureReadsThem(t *testing.T) {
	chunk := choicesChunk
	for _, tc := range []struct {
		name  string
		calls []string
		want  map[string]string // nil: the answer is b's
	}{
		{"arguments twice", []string{
			`{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"basic\"}","arguments":"{\"sku\":\"premium-monthly\"}"}}`},
			nil},
		{"arguments in another case", []string{
			`{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"basic\"}","Arguments":"{\"sku\":\"premium-monthly\"}"}}`},
			nil},
		{"index twice", []string{
			`{"index":0,"id":"call_1","type":"function","function":{"name":"lookup","arguments":"{}"}}`,
			`{"index":1,"id":"call_2","type":"function","function":{"name":"create_order","arguments":""}}`,
			`{"index":0,"index":1,"function":{"arguments":"{\"sku\":\"premium-monthly\"}"}}`},
			nil},
		{"id twice", []string{
			`{"id":"call_1","type":"function","function":{"name":"lookup","arguments":"{}"}}`,
			`{"id":"call_2","type":"function","function":{"name":"create_order","arguments":""}}`,
			`{"id":"call_1","id":"call_2","function":{"arguments":"{\"sku\":\"premium-monthly\"}"}}`},
			nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script := func(c *fconn, _ int) {
				c.sse()
				for _, calls := range tc.calls {
					c.event(chunk(`{"index":0,"delta":{"tool_calls":[` + calls + `]},"finish_reason":null}`))
				}
				c.event(chunk(`{"index":0,"delta":{},"finish_reason":"tool_calls"}`))
				c.done()
			}
			e := newEnv(t, map[string]func(c *fconn, n int){"a": script, "b": func(c *fconn, _ int) { okJSON(c, "from b") }},
				[]string{"a", "b"}, nil)
			got := e.open(context.Background(), false)
			from := "a"
			if tc.want == nil {
				from = "b"
			}
			if got.openErr != nil || got.provider != from {
				t.Fatalf("answered by %q (%v); want %s", got.provider, got.openErr, from)
			}
			for path, v := range tc.want {
				if g := gjson.Get(got.body, "choices.0.message.tool_calls."+path).String(); g != v {
					t.Errorf("%s = %q; want %q (body %s)", path, g, v, got.body)
				}
			}
		})
	}
}

// TestEventStreamChoiceUsage: usage a provider streams inside the finish
// chunk's choice (Moonshot's Kimi does, in choices[0].usage) becomes the
// assembled completion's usage when no top-level usage came, as the stream
// capture reads it. Read at the top level only, the answer was priced at 0.
func TestEventStreamChoiceUsage(t *testing.T) {
	chunk := func(rest string) string {
		return `{"id":"chatcmpl-s","object":"chat.completion.chunk","created":1700000000,"model":"m-1",` + rest + `}`
	}
	for _, tc := range []struct {
		name  string
		extra string // a top-level usage chunk after the finish, or none
		want  string
	}{
		{"in the choice alone", "", "10"},
		{"top-level wins", chunk(`"choices":[],"usage":{"prompt_tokens":8,"completion_tokens":4,"total_tokens":12}`), "12"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script := func(c *fconn, _ int) {
				c.sse()
				c.event(chunk(`"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"}}]`))
				c.event(chunk(`"choices":[{"index":0,"delta":{},"finish_reason":"stop","usage":{"prompt_tokens":8,"completion_tokens":2,"total_tokens":10}}]`))
				if tc.extra != "" {
					c.event(tc.extra)
				}
				c.done()
			}
			e := newEnv(t, map[string]func(c *fconn, n int){"a": script}, []string{"a"}, nil)
			got := e.open(context.Background(), false)
			if got.openErr != nil {
				t.Fatal(got.openErr)
			}
			if u := gjson.Get(got.body, "usage.total_tokens").String(); u != tc.want {
				t.Errorf("usage.total_tokens = %q; want %s (body %s)", u, tc.want, got.body)
			}
		})
	}
}

// TestEventStreamAmbiguousChunkReadAsTheCaptureReadsIt: a chunk that names
// a member the stream capture reads twice or in another case is skipped,
// as the capture skips it in a stream, and so costs an answer with a tool
// call its answer (the lost event of TestEventsAnswerWithALostEventAskedAgain
// in the proxy): read with gjson's first copy, a chunk naming its choices
// twice lost the piece of the call's arguments its second copy carried
// (`,"quantity":2`), and the call that was left ran. A usage naming a
// count twice is read (TestEventStreamUsageCountTwiceReadAsTheCaptureReadsIt).
func TestEventStreamAmbiguousChunkReadAsTheCaptureReadsIt(t *testing.T) {
	chunk := func(rest string) string {
		return `{"id":"chatcmpl-s","object":"chat.completion.chunk","created":1700000000,"model":"m-1",` + rest + `}`
	}
	call := func(args string) string {
		return `"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":` + args + `}}]},"finish_reason":null}]`
	}
	for _, tc := range []struct {
		name   string
		middle string // between the call's first and last piece
		after  string // after the finish
		from   string // the provider whose answer it is
	}{
		{"choices twice in a piece of the call", chunk(`"choices":[],` + call(`",\"quantity\":2"`)), "", "b"},
		{"delta in another case in a piece of the call", chunk(`"choices":[{"index":0,"delta":{},"Delta":{"tool_calls":[{"index":0,"function":{"arguments":",\"quantity\":2"}}]}}]`), "", "b"},
		{"a count twice in the usage after the finish", "",
			chunk(`"choices":[],"usage":{"prompt_tokens":10,"prompt_tokens":1000,"completion_tokens":5,"total_tokens":15}`), "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script := func(c *fconn, _ int) {
				c.sse()
				c.event(chunk(`"choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\""}}]},"finish_reason":null}]`))
				if tc.middle != "" {
					c.event(tc.middle)
				}
				c.event(chunk(call(`"}"`)))
				c.event(chunk(`"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]`))
				if tc.after != "" {
					c.event(tc.after)
				}
				c.done()
			}
			e := newEnv(t, map[string]func(c *fconn, n int){"a": script, "b": func(c *fconn, _ int) { okJSON(c, "from b") }},
				[]string{"a", "b"}, nil)
			got := e.open(context.Background(), false)
			if got.openErr != nil || got.provider != tc.from {
				t.Fatalf("answered by %q (%v), body %s; want %s", got.provider, got.openErr, got.body, tc.from)
			}
			if why := ambiguousMember([]byte(got.body)); why != "" {
				t.Errorf("the answer names %s (body %s)", why, got.body)
			}
		})
	}
}

// answerOfA is the answer of a round whose provider a answers a non-stream
// request with script, b standing by with a JSON answer; it fails the test
// unless a answered.
func answerOfA(t *testing.T, script func(c *fconn, n int)) answer {
	t.Helper()
	e := newEnv(t, map[string]func(c *fconn, n int){"a": script, "b": func(c *fconn, _ int) { okJSON(c, "from b") }},
		[]string{"a", "b"}, nil)
	got := e.open(context.Background(), false)
	if got.openErr != nil || got.provider != "a" {
		t.Fatalf("answered by %q (%v); want a", got.provider, got.openErr)
	}
	return got
}

// choicesChunk is a chat.completion.chunk event carrying choices, a JSON
// array's members.
func choicesChunk(choices string) string {
	return `{"id":"chatcmpl-s","object":"chat.completion.chunk","created":1700000000,"model":"m-1","choices":[` + choices + `]}`
}

// wantPaths reports each gjson path of body whose value is not want's,
// and then the body.
func wantPaths(t *testing.T, body string, want map[string]string) {
	t.Helper()
	for path, v := range want {
		if g := gjson.Get(body, path).String(); g != v {
			t.Errorf("%s = %q; want %q", path, g, v)
		}
	}
	if t.Failed() {
		t.Logf("body %s", body)
	}
}

// TestEventStreamUsageCountTwiceReadAsTheCaptureReadsIt: a chunk whose only
// member read two ways is a usage count (jsonscan.ChunkButCounts) is read,
// as the stream capture reads it: its text, tool-call piece and finish are
// the answer's, and its usage is the counts' first copies, written without
// the second (so the bot's parser, which reads the last, reads the same).
// Skipped, as before, the chunk that carried the finish beside its usage
// (as some providers send it) took the finish with it: the answer with a
// tool call was asked again of the next target, billed twice; a text
// answer lost its last piece.
func TestEventStreamUsageCountTwiceReadAsTheCaptureReadsIt(t *testing.T) {
	chunk := func(rest string) string {
		return `{"id":"chatcmpl-s","object":"chat.completion.chunk","created":1700000000,"model":"m-1",` + rest + `}`
	}
	const dupUsage = `"usage":{"prompt_tokens":10,"prompt_tokens":1000,"completion_tokens":5,"total_tokens":15,"cost":0.5}`
	const counts = `{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}`
	text := chunk(`"choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]`)
	call := chunk(`"choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function",` +
		`"function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\""}}]},"finish_reason":null}]`)
	lastArgs := `"delta":{"tool_calls":[{"index":0,"function":{"arguments":",\"quantity\":2}"}}]}`
	for _, tc := range []struct {
		name   string
		events []string
		want   map[string]string
	}{
		{"text: the last piece and the finish beside it", []string{text,
			chunk(`"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}],` + dupUsage)},
			map[string]string{"choices.0.message.content": "Hello", "choices.0.finish_reason": "stop", "usage": counts}},
		{"text: the last piece beside it, the finish after", []string{text,
			chunk(`"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}],` + dupUsage),
			chunk(`"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]`)},
			map[string]string{"choices.0.message.content": "Hello", "choices.0.finish_reason": "stop", "usage": counts}},
		{"tool call: the last piece and the finish beside it", []string{call,
			chunk(`"choices":[{"index":0,` + lastArgs + `,"finish_reason":"tool_calls"}],` + dupUsage)},
			map[string]string{"choices.0.message.tool_calls.0.function.arguments": `{"sku":"premium-monthly","quantity":2}`,
				"choices.0.finish_reason": "tool_calls", "usage": counts}},
		{"tool call: the last piece beside it, the finish after", []string{call,
			chunk(`"choices":[{"index":0,` + lastArgs + `,"finish_reason":null}],` + dupUsage),
			chunk(`"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]`)},
			map[string]string{"choices.0.message.tool_calls.0.function.arguments": `{"sku":"premium-monthly","quantity":2}`,
				"choices.0.finish_reason": "tool_calls", "usage": counts}},
		{"the usage chunk after the finish", []string{text,
			chunk(`"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]`),
			chunk(`"choices":[],` + dupUsage)},
			map[string]string{"choices.0.message.content": "Hello", "usage": counts}},
		{"cached tokens twice in the details", []string{text,
			chunk(`"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,` +
				`"prompt_tokens_details":{"audio_tokens":0,"cached_tokens":4,"cached_tokens":9},"completion_tokens":5,"total_tokens":15}`)},
			map[string]string{"choices.0.message.content": "Hello",
				"usage": `{"prompt_tokens":10,"prompt_tokens_details":{"cached_tokens":4},"completion_tokens":5,"total_tokens":15}`}},
		{"a count twice in the choice's usage (Moonshot's)", []string{text,
			chunk(`"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop",` +
				`"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"cached_tokens":4,"Cached_tokens":9}}]`)},
			map[string]string{"choices.0.message.content": "Hello",
				"usage": `{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"cached_tokens":4}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script := func(c *fconn, _ int) {
				c.sse()
				for _, ev := range tc.events {
					c.event(ev)
				}
				c.done()
			}
			e := newEnv(t, map[string]func(c *fconn, n int){"a": script, "b": func(c *fconn, _ int) { okJSON(c, "from b") }},
				[]string{"a", "b"}, nil)
			got := e.open(context.Background(), false)
			if got.openErr != nil || got.provider != "a" || got.attempts != 1 {
				t.Fatalf("answered by %q after %d attempts (%v), body %s; want a's answer, asked once", got.provider, got.attempts, got.openErr, got.body)
			}
			if why := ambiguousMember([]byte(got.body)); why != "" {
				t.Errorf("the answer names %s (body %s)", why, got.body)
			}
			wantPaths(t, got.body, tc.want)
		})
	}
}

// TestEventStreamErrorsAnsweringANonStreamRequest: an event stream
// answering a non-stream request knows an error among its events as a
// stream does, by the marks of the pass that validates each event
// (scanEvent): a content filter's refusal after a chunk is the provider's
// refusal, never asked of the next provider, and DeepSeek's
// insufficient_system_resource finish is no answer but a failure the next
// provider answers. Either read as a plain chunk, the refusal failed over
// as a stream ended before its finish (the flagged input sent to b), and
// DeepSeek's empty answer was the client's.
func TestEventStreamErrorsAnsweringANonStreamRequest(t *testing.T) {
	hi := `{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}`
	t.Run("content filter after a chunk", func(t *testing.T) {
		e := newEnv(t, map[string]func(c *fconn, n int){
			"a": always(func(c *fconn) { c.sse(); c.event(hi); c.event(openRouterFlagged); c.done() }),
			"b": func(c *fconn, _ int) { okJSON(c, "from b") },
		}, []string{"a", "b"}, nil)
		got := e.open(t.Context(), false)
		var ue *UpstreamError
		if !errors.As(got.openErr, &ue) || ue.Status != 403 || !strings.Contains(ue.Message, "flagged") {
			t.Fatalf("served by %q (body %s), err %v; want a's 403 with its reason", got.provider, got.body, got.openErr)
		}
		if b := len(e.fakes["b"].hits()); b != 0 {
			t.Errorf("b saw %d requests; want none", b)
		}
	})
	t.Run("insufficient_system_resource", func(t *testing.T) {
		e := newEnv(t, map[string]func(c *fconn, n int){
			"a": always(func(c *fconn) { c.sse(); c.event(roleChunk()); c.event(deepSeekResourceFinish); c.done() }),
			"b": func(c *fconn, _ int) { okJSON(c, "from b") },
		}, []string{"a", "b"}, nil)
		if got := e.open(t.Context(), false); got.openErr != nil || got.provider != "b" {
			t.Errorf("served by %q (body %s), err %v; want b", got.provider, got.body, got.openErr)
		}
	})
}

// TestEventStreamSurrogatePairSplitAcrossFragments: a character outside the
// Basic Multilingual Plane (an emoji, a rare CJK character) a provider
// writes as a \u escaped UTF-16 surrogate pair, split between two events'
// fragments, is one character in the assembled answer, as the stream
// capture joins the fragments before decoding them. Decoded each on its
// own, each half became U+FFFD: the bot's tool arguments and the model's
// words reached it corrupted.
func TestEventStreamSurrogatePairSplitAcrossFragments(t *testing.T) {
	chunk := choicesChunk
	script := func(c *fconn, _ int) {
		c.sse()
		c.event(chunk(`{"index":0,"delta":{"role":"assistant","content":"Hi \ud83d","reasoning_content":"\\\ud842"},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{"content":"\ude00!","reasoning_content":"\udfb7"},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"\ud842"}}]},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\udfb7\u91ce\"}"}}]},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_2","type":"function","function":{"name":"echo","arguments":"\\ud83d"}}]},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"\ude00"}}]},"finish_reason":null}`))
		c.event(chunk(`{"index":0,"delta":{},"finish_reason":"tool_calls"}`))
		c.done()
	}
	got := answerOfA(t, script)
	wantPaths(t, got.body, map[string]string{
		"choices.0.message.content":                         "Hi 😀!",
		"choices.0.message.reasoning_content":               `\𠮷`,
		"choices.0.message.tool_calls.0.function.arguments": `{"city":"𠮷野"}`,
		// An escaped backslash before "ud83d" is no surrogate: its text
		// as written, and the lone low surrogate after it U+FFFD.
		"choices.0.message.tool_calls.1.function.arguments": "\\ud83d\uFFFD",
	})
}
