package failover

import (
	"reflect"
	"strings"
	"testing"

	"github.com/paygate/paygate/interceptors"
)

// TestScanAnswerDifferential holds scanAnswer to the checks it replaced on
// answers built level by level: each member of completionLevel named twice,
// in another case and with an escape at the level it is read, and beside
// it where it is not read; choices in each shape; error members of every
// kind; whitespace, a BOM, n>1 choices and nesting at maxNesting's edge.
func TestScanAnswerDifferential(t *testing.T) {
	// wrap puts members at one level of a completion.
	wraps := map[string]func(string) string{
		"top":      func(m string) string { return `{` + m + `,"choices":[{"message":{"content":"a"}}]}` },
		"top only": func(m string) string { return `{` + m + `}` },
		"choice":   func(m string) string { return `{"choices":[{"message":{"content":"a"},` + m + `}]}` },
		"choice 2": func(m string) string { return `{"choices":[{"index":0},{` + m + `}],"usage":{}}` },
		"message":  func(m string) string { return `{"choices":[{"message":{` + m + `}}]}` },
		"call":     func(m string) string { return `{"choices":[{"message":{"tool_calls":[{"id":"c"},{` + m + `}]}}]}` },
		"function": func(m string) string { return `{"choices":[{"message":{"tool_calls":[{"function":{` + m + `}}]}}]}` },
		"custom":   func(m string) string { return `{"choices":[{"message":{"tool_calls":[{"custom":{` + m + `}}]}}]}` },
		"usage":    func(m string) string { return `{"choices":[{}],"usage":{` + m + `}}` },
		"details":  func(m string) string { return `{"choices":[{}],"usage":{"prompt_tokens_details":{` + m + `}}}` },
		"cdetails": func(m string) string { return `{"choices":[{}],"usage":{"completion_tokens_details":{` + m + `}}}` },
		"logprobs": func(m string) string { return `{"choices":[{"logprobs":{` + m + `}}]}` },
		"in array": func(m string) string { return `{"choices":[[{` + m + `}]]}` },
		"deep":     func(m string) string { return `{"x":{"y":[{"z":{` + m + `}}]}}` },
	}
	names := []string{"choices", "usage", "error", "index", "message", "finish_reason", "content", "tool_calls",
		"reasoning_content", "reasoning", "reasoning_details", "id", "type", "function", "custom", "arguments",
		"input", "prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details", "cached_tokens",
		"prompt_cache_hit_tokens", "logprobs", "refusal", "name"}
	values := []string{`1`, `null`, `[]`, `{}`, `""`, `"error"`, `false`, `[{"a":1}]`, `{"message":"m","code":429}`}
	spell := func(n string, k int) string {
		switch k {
		case 0:
			return n
		case 1:
			return strings.ToUpper(n[:1]) + n[1:]
		case 2:
			return `\u00` + strings.ToLower(strings.TrimPrefix(strings.ToUpper(string([]byte{"0123456789abcdef"[n[0]>>4], "0123456789abcdef"[n[0]&15]})), "")) + n[1:]
		default:
			return n[:len(n)-1] + `\u00` + string([]byte{"0123456789abcdef"[n[len(n)-1]>>4], "0123456789abcdef"[n[len(n)-1]&15]})
		}
	}
	n := 0
	for _, wrap := range wraps {
		for _, name := range names {
			for k1 := 0; k1 < 4; k1++ {
				for _, v := range values {
					one := `"` + spell(name, k1) + `":` + v
					checkScanAnswer(t, []byte(wrap(one)))
					for k2 := 0; k2 < 4; k2++ {
						two := `"` + spell(name, k2) + `":` + values[(len(v)+k2)%len(values)]
						checkScanAnswer(t, []byte(wrap(one+","+two)))
						checkScanAnswer(t, []byte(wrap(one+`,"other":0,`+two)))
						n += 2
					}
				}
			}
		}
	}
	var more []string
	for _, s := range []string{
		"\ufeff" + scanAnswerCases[0], " \t\r\n" + scanAnswerCases[0] + "\n\t ", "\x00" + scanAnswerCases[0], scanAnswerCases[0] + "\x00",
		`{"\u0063hoices":[1]}`, `{"\u0063hoices":[],"choices":[1]}`, `{"choices":[],"\u0063hoices":[1]}`, `{"CHOICES":[1]}`,
		`{"choices":[{"message":{"content":"a"}},{"message":{"content":"b"}},{"message":{"content":"c","content":"d"}}]}`,
		`{"choices":[{"index":0,"message":{"content":"a"}},{"index":1,"message":{"content":"b"}}],"usage":{"total_tokens":1}}`,
		`{"choices":[1,2,3]}`, `{"choices":true}`, `{"choices":false}`, `{"choices":"[1]"}`, `{"choices":{}}`, `{"choices":{"0":1}}`,
		`{"choices":[[]]}`, `{"choices":[[1]]}`, `{"choices":[{}]}`, `{"choices" : [ ] }`, `{ "choices" :[ {} ] }`,
		`{"error":null,"choices":[{}]}`, `{"error":{},"choices":[{}]}`, `{"error":"","choices":[{}]}`, `{"error":false,"choices":[{}]}`,
		`{"error":[],"choices":[{}]}`, `{"error":0,"choices":[{}]}`, `{"error":true,"choices":[{}]}`, `{"error":"x","choices":[{}]}`,
		`{"error":{"message":"m"},"choices":[{}]}`, `{"error":null}`, `{"error":{}}`, `{"error":""}`, `{"error":false}`,
		`{"choices":[{}],"error":{"code":"insufficient_quota"}}`, `{"type":"error","choices":[{}]}`, `{"object":"error","choices":[]}`,
		`{"choices":[{"finish_reason":"error"}]}`, `{"choices":[{"error":{"code":500}}]}`, `{"choices":[{"error":null}]}`,
		`{"id":"x","error":{},"choices":[]}`, `{"error":{"message":"a","message":"b"},"choices":[{}]}`, `{"Error":{"message":"m"}}`,
		`{"\u0065rror":{"message":"m"}}`, `{"err\u006fr":{"message":"m"},"choices":[{}]}`,
		`{"choices":[{"finish_reason":"insufficient_system_resource"}]}`, `{"choices":[{"finish_reason":"insufficient_system_resourc\u0065"}]}`,
	} {
		more = append(more, s)
	}
	for _, inner := range []string{`{}`, `[]`, `1`} {
		for _, d := range []int{maxNesting - 3, maxNesting - 2, maxNesting - 1, maxNesting} {
			more = append(more,
				`{"choices":[`+strings.Repeat("[", d)+inner+strings.Repeat("]", d)+`]}`,
				`{"choices":[{"message":`+strings.Repeat(`{"a":`, d)+inner+strings.Repeat("}", d)+`}]}`,
				`{"x":`+strings.Repeat(`[{"a":`, d/2)+inner+strings.Repeat("}]", d/2)+`,"choices":[1]}`)
		}
	}
	for _, s := range more {
		checkScanAnswer(t, []byte(s))
	}
	t.Logf("%d built answers, %d more", n, len(more))
}

// TestScanAnswerAllocs: the pass that replaced five walks on the
// per-request path allocates nothing for a completion whose keys have no
// escapes, nor do its answers after it.
func TestScanAnswerAllocs(t *testing.T) {
	for _, s := range scanAnswerCases[:2] {
		data := []byte(s)
		if n := testing.AllocsPerRun(100, func() {
			a, ok := scanAnswer(data)
			if !ok || a.answerError(data) != nil || !a.hasChoices(data) || a.ambiguous {
				t.Fatalf("scanAnswer(%s) = %+v, %v", s, a, ok)
			}
		}); n != 0 {
			t.Errorf("scanAnswer(%s) allocates %v times; want 0", s, n)
		}
	}
}

// TestNonStreamAnswerChecksAfterOnePass: the non-stream checks that
// scanAnswer's one pass feeds, as a provider's answer meets them: an
// answer that names a member paygate reads two ways, one without choices
// and one with an error beside its choices fail over to the next target
// (each had been a payment call the bot never sees, an empty answer, or a
// provider out of quota read as its answer); one whose choices only gjson
// finds (an escaped key), an empty error beside choices and a valid one
// after whitespace are the first target's answer. The pass is held to the
// functions it stands for elsewhere; this holds the router to its answers.
func TestNonStreamAnswerChecksAfterOnePass(t *testing.T) {
	const msg = `"message":{"role":"assistant","content":"from a"},"finish_reason":"stop"`
	tests := []struct{ name, body, want string }{
		{"plain", `{"id":"c","choices":[{"index":0,` + msg + `}]}`, "a"},
		{"after whitespace", " \r\n\t" + `{"id":"c","choices":[{"index":0,` + msg + `}]}` + "\n", "a"},
		{"choices key escaped", `{"id":"c","\u0063hoices":[{"index":0,` + msg + `}]}`, "a"},
		{"an empty error beside choices", `{"id":"c","error":{},"choices":[{"index":0,` + msg + `}]}`, "a"},
		{"a null error", `{"id":"c","error":null,"choices":[{"index":0,` + msg + `}]}`, "a"},
		{"two choices", `{"id":"c","choices":[{"index":0,` + msg + `},{"index":1,` + msg + `}]}`, "a"},
		{"tool_calls twice", `{"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[],` +
			`"tool_calls":[{"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`, "b"},
		{"a usage count twice", `{"id":"c","choices":[{"index":0,` + msg + `}],"usage":{"prompt_tokens":1,"completion_tokens":5,"completion_tokens":500}}`, "b"},
		{"Content in another case", `{"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":"x","Content":"y"},"finish_reason":"stop"}]}`, "b"},
		{"in the second choice", `{"id":"c","choices":[{"index":0,` + msg + `},{"index":1,` + msg + `,"index":2}]}`, "b"},
		{"no choices", `{"id":"c","choices":[]}`, "b"},
		{"choices not an array", `{"id":"c","choices":{"index":0}}`, "b"},
		{"Qianfan's error", `{"error_code":18,"error_msg":"Open api qps request limit reached"}`, "b"},
		{"an error beside choices", `{"error":{"message":"quota","code":"insufficient_quota"},"choices":[{"index":0,` + msg + `}]}`, "b"},
		{"a choice's error", `{"id":"c","choices":[{"index":0,"message":{"content":"a"},"error":{"code":502,"message":"upstream"}}]}`, "b"},
		{"a choice out of resources", `{"id":"c","choices":[{"index":0,"message":{"content":"a"},"finish_reason":"insufficient_system_resource"}]}`, "b"},
		{"not JSON after the object", `{"id":"c","choices":[{"index":0,` + msg + `}]}x`, "b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]func(c *fconn, n int){
				"a": func(c *fconn, _ int) { c.status(200, tc.body) },
			}, []string{"a", "b"}, nil)
			got := e.open(t.Context(), false)
			if got.openErr != nil {
				t.Fatal(got.openErr)
			}
			if got.provider != tc.want {
				t.Fatalf("answered by %q after %d attempts; want %q", got.provider, got.attempts, tc.want)
			}
			if tc.want == "a" && got.body != tc.body {
				t.Errorf("answer %q; want a's as it came, %q", got.body, tc.body)
			}
		})
	}
}

// TestResponseSpans: a non-stream chat completion's Response carries the
// spans its validating pass found, which read as the proxy's own walk
// reads the body (interceptors.ReadAnswer), a byte order mark cut off
// before it included; an answer the pass did not see (events answering a
// non-stream request, assembled into a body of their own) carries none,
// and the proxy walks it.
func TestResponseSpans(t *testing.T) {
	completion := `{"id":"c","created":7,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"from a",` +
		`"tool_calls":[{"id":"k","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}],` +
		`"usage":{"prompt_tokens":3,"completion_tokens":4,"prompt_tokens_details":{"cached_tokens":2}}}`
	tests := []struct {
		name string
		send func(c *fconn)
		ok   bool
	}{
		{"a completion", func(c *fconn) { c.status(200, completion) }, true},
		{"after a byte order mark", func(c *fconn) { c.status(200, "\ufeff"+completion) }, true},
		{"events", func(c *fconn) {
			c.sse()
			c.event(roleChunk())
			c.event(contentChunk("from a"))
			c.event(finishChunk())
			c.done()
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]func(c *fconn, n int){"a": always(tc.send)}, []string{"a"}, nil)
			got := e.open(t.Context(), false)
			if got.openErr != nil || got.provider != "a" {
				t.Fatalf("served by %q, err %v; want a", got.provider, got.openErr)
			}
			if got.spans.OK != tc.ok {
				t.Fatalf("spans OK = %v; want %v", got.spans.OK, tc.ok)
			}
			body := got.raw
			if got.spans.Of(body) != tc.ok {
				t.Errorf("spans of the Response's Body: %v; want %v", got.spans.Of(body), tc.ok)
			}
			if read, want := interceptors.ReadAnswerAt(body, &got.spans), interceptors.ReadAnswer(body); !reflect.DeepEqual(read, want) {
				t.Errorf("read from the spans as %+v; ReadAnswer %+v", read, want)
			}
		})
	}
}
