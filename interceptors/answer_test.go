package interceptors

import (
	"testing"

	"github.com/tidwall/gjson"
)

// answerByPath is ReadAnswer written as gjson path lookups: what each field
// means, for the differential test.
func answerByPath(body string) Answer {
	var a Answer
	root := gjson.Parse(body)
	if !root.IsObject() {
		return a
	}
	first := func(obj gjson.Result, key string) gjson.Result {
		var v gjson.Result
		obj.ForEach(func(k, val gjson.Result) bool {
			if k.Str == key {
				v = val
				return false
			}
			return true
		})
		return v
	}
	a.ID = first(root, "id").Str
	a.Model = first(root, "model").Str
	a.Created = first(root, "created").Int()
	if ch := first(root, "choices"); ch.IsArray() {
		a.Choices = len(ch.Array())
		var c0 gjson.Result
		ch.ForEach(func(_, v gjson.Result) bool { c0 = v; return false })
		if c0.IsObject() {
			if msg := first(c0, "message"); msg.IsObject() {
				c := first(msg, "content")
				a.Content = c.Str
				if c.IsArray() && len(c.Array()) > 0 {
					a.ContentParts = c.Raw
				}
				if tc := first(msg, "tool_calls"); tc.IsArray() {
					a.ToolCalls = tc.Raw
				}
			}
		}
	}
	if u := first(root, "usage"); u.IsObject() {
		a.HasUsage = true
		a.UsageRaw = u.Raw
		a.Usage = Usage{
			PromptTokens:     first(u, "prompt_tokens").Int(),
			CompletionTokens: first(u, "completion_tokens").Int(),
			TotalTokens:      first(u, "total_tokens").Int(),
		}
		if a.Usage.TotalTokens == 0 { // left out (or 0): the sum, as the stream's reader does
			a.Usage.TotalTokens = a.Usage.PromptTokens + a.Usage.CompletionTokens
		}
		// The cached prompt tokens: the first of the places that names some.
		var details int64
		if d := first(u, "prompt_tokens_details"); d.IsObject() {
			details = first(d, "cached_tokens").Int()
		}
		for _, n := range []int64{details, first(u, "prompt_cache_hit_tokens").Int(), first(u, "cached_tokens").Int()} {
			if n != 0 {
				a.Usage.CachedTokens = n
				break
			}
		}
	}
	return a
}

var answerCases = []struct {
	name, body string
	want       Answer
}{
	{"plain", `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-x","choices":[{"index":0,"message":{"role":"assistant","content":"Hi there","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}`,
		Answer{ID: "chatcmpl-1", Model: "gpt-x", Created: 1, Content: "Hi there", HasUsage: true, Usage: Usage{3, 4, 7, 0}, Choices: 1}},
	{"keys sorted, usage first", `{"choices":[{"finish_reason":"stop","index":0,"message":{"content":"a","role":"assistant"}}],"created":1,"id":"x","model":"m","usage":{"total_tokens":2,"prompt_tokens":1,"completion_tokens":1}}`,
		Answer{ID: "x", Model: "m", Created: 1, Content: "a", HasUsage: true, Usage: Usage{1, 1, 2, 0}, Choices: 1}},
	{"escapes decoded", `{"id":"a\"b","model":"m","choices":[{"message":{"content":"caf\u00e9 \"ok\"\n"}}]}`,
		Answer{ID: `a"b`, Model: "m", Content: "café \"ok\"\n", Choices: 1}},
	{"repeated keys: the first counts", `{"id":"one","id":"two","choices":[{"message":{"content":"c1","content":"c2"}}],"choices":[{"message":{"content":"later"}}]}`,
		Answer{ID: "one", Content: "c1", Choices: 1}},
	{"the first message counts, also when it is not an object", `{"choices":[{"":0,"message":0,"message":{"content":"later"}}]}`, Answer{Choices: 1}},
	{"only the first choice", `{"choices":[{"index":0,"message":{"content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]}},{"index":1,"message":{"content":"second"}}]}`,
		Answer{ToolCalls: `[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]`, Choices: 2}},
	{"escaped key", `{"mod\u0065l":"m","choices":[{"m\u0065ssage":{"content":"x"}}]}`,
		Answer{Model: "m", Content: "x", Choices: 1}},
	{"white space everywhere", " { \"id\" : \"i\" ,\n\t\"choices\" : [ { \"message\" : { \"content\" : \"c\" } } ] , \"usage\" : { \"prompt_tokens\" : 5 } } ",
		Answer{ID: "i", Content: "c", HasUsage: true, Usage: Usage{PromptTokens: 5, TotalTokens: 5}, Choices: 1}},
	{"usage null is no usage", `{"usage":null,"choices":[]}`, Answer{}},
	{"the first choices counts, also when it is not an array", `{"choices":null,"usage":7,"choices":[{"message":{"content":"later"}}],"usage":{"total_tokens":1}}`, Answer{}},
	{"usage with odd numbers", `{"usage":{"prompt_tokens":1e2,"completion_tokens":"7","total_tokens":-3}}`,
		Answer{HasUsage: true, Usage: Usage{100, 7, -3, 0}}},
	{"cached prompt tokens", `{"usage":{"prompt_tokens":10,"prompt_tokens_details":{"audio_tokens":0,"cached_tokens":8},"completion_tokens":1}}`,
		Answer{HasUsage: true, Usage: Usage{10, 1, 11, 8}}},
	{"cached prompt tokens, DeepSeek", `{"usage":{"prompt_tokens":10,"completion_tokens":1,"total_tokens":11,"prompt_cache_hit_tokens":8,"prompt_cache_miss_tokens":2}}`,
		Answer{HasUsage: true, Usage: Usage{10, 1, 11, 8}}},
	{"cached prompt tokens, Moonshot", `{"usage":{"prompt_tokens":10,"completion_tokens":1,"total_tokens":11,"cached_tokens":8}}`,
		Answer{HasUsage: true, Usage: Usage{10, 1, 11, 8}}},
	{"cached prompt tokens: details first, not an object", `{"usage":{"prompt_tokens_details":7,"prompt_tokens_details":{"cached_tokens":8},"cached_tokens":"3"}}`,
		Answer{HasUsage: true, Usage: Usage{0, 0, 0, 3}}},
	{"tool_calls not an array", `{"choices":[{"message":{"content":"x","tool_calls":null}}]}`, Answer{Content: "x", Choices: 1}},
	{"not an object", `[1,2]`, Answer{}},
	{"empty", ``, Answer{}},
	{"cut short", `{"id":"abc","model":"m","choices":[{"message":{"content":"unterminated`, Answer{ID: "abc", Model: "m", Choices: 1}},
}

func TestReadAnswer(t *testing.T) {
	for _, tc := range answerCases {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			want := tc.want
			if want.HasUsage {
				// The object as sent: what a path lookup finds.
				want.UsageRaw = gjson.Get(tc.body, "usage").Raw
			}
			got := ReadAnswer(body)
			// Nothing kept may share the body's memory: the turn patches it.
			for i := range body {
				body[i] = '#'
			}
			if got != want {
				t.Fatalf("ReadAnswer =\n  %+v\nwant\n  %+v", got, want)
			}
		})
	}
}

// FuzzReadAnswer checks the walker against path lookups on every valid JSON
// input, and that no input makes it panic.
func FuzzReadAnswer(f *testing.F) {
	for _, tc := range answerCases {
		f.Add(tc.body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		got := ReadAnswer([]byte(body))
		if !gjson.Valid(body) {
			return
		}
		if want := answerByPath(body); got != want {
			t.Fatalf("ReadAnswer(%q) =\n  %+v\npath lookups give\n  %+v", body, got, want)
		}
	})
}
