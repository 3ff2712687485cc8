package failover

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"

	"github.com/paygate/paygate/interceptors"
	"github.com/paygate/paygate/internal/jsonscan"
)

// scanAnswerCases are chat completions and near-completions that reach
// the non-stream answer checks: answers with calls, usage and reasoning;
// members of completionLevel repeated or in another case at each level,
// escaped, unchecked, or where they are not read; choices in each shape
// gjson's lookup reads; error answers of each kind; and every event case,
// for the validator's refusals.
var scanAnswerCases = append([]string{
	`{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there, how may I help?","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}},"system_fingerprint":null}`,
	`{"id":"x","choices":[{"index":0,"message":{"content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"a\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":1}}`,
	`{"id":"x","id":"y","choices":[{"message":{"content":"a"}}]}`,
	`{"choices":[{"message":{"tool_calls":[{"id":"c","function":{"name":"a","name":"b"}}]}}]}`,
	`{"choices":[{"message":{"tool_calls":[{"function":{},"function":{"arguments":1,"arguments":2}}]}}]}`,
	`{"choices":[{"message":{"tool_calls":[{"Function":{"arguments":1,"arguments":2}}]}}]}`,
	`{"choices":[{"message":{"tool_calls":[{"custom":{"input":1,"input":2}}]}}]}`,
	`{"choices":[{"message":{"content":"a"}}],"choices":[]}`,
	`{"choices":[],"choices":[{"message":{}}]}`,
	`{"choices":[{"message":{"content":"a"}}],"Usage":{}}`,
	`{"choices":[{"message":{"content":"a"}}],"usage":{"completion_tokens":1,"completion_tokens":9}}`,
	`{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens":9,"prompt_tokens_details":{"cached_tokens":0,"cached_tokens":8}}}`,
	`{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens_details":{},"prompt_tokens_details":{"cached_tokens":8}}}`,
	`{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_cache_hit_tokens":0,"prompt_cache_hit_tokens":8}}`,
	`{"choices":[{"message":{"content":"a"}}],"usage":{"cached_tokens":0,"Cached_tokens":8}}`,
	`{"choices":[{"message":{"content":"a"},"message":{"content":"b"}}]}`,
	`{"choices":[{"message":{"tool_calls":[],"tool_calls":[{"id":"a"}]}}]}`,
	`{"choices":[{"message":{"content":"a","Tool_calls":[]}}]}`,
	`{"choices":[{"message":{"content":"a","tool_callſ":[]}}]}`,
	`{"choices":[{"message":{"content":"a"},"finiſh_reason":"stop"}],"uſage":{}}`,
	`{"choiceſ":[1],"choices":[1]}`,
	`{"choices":[1],"usage":{"prompt_to\u212aens":1}}`,
	`{"choices":[{"message":{"tool_calls":[{"function":{"argumentſ":1}}]}}]}`,
	`{"choices":[{"message":{"content":"a","tool_callss":[],"reaſoning_contents":1}}],"usages":{}}`,
	`{"choices":[{"message":{"tool_calls":[{"id":"a","id":"b"}]}}]}`,
	`{"choices":[{"message":{"tool_calls":[{"id":"a","ID":"b"}]}}]}`,
	`{"choices":[{"message":{"reasoning_content":"r","reasoning":"s","reasoning_details":[],"Reasoning":1}}]}`,
	`{"choices":[{"index":0,"index":1,"finish_reason":"stop","finish_reason":"length"}]}`,
	`{"choices":[{"message":{"tool_calls":[],"tool\u005fcalls":[]}}]}`,
	`{"choices":[{"message":{"\u0043ontent":1}}]}`,
	`{"choices":[{"message":{}},{"message":{"content":"a","content":"b"}}]}`,
	`{"choices":[{"message":{"content":1,"content":2}}],"choices":[]}`,
	`{"choices":{"message":{},"message":{}}}`,
	`{"usage":[{"prompt_tokens":1,"prompt_tokens":2}],"choices":[1]}`,
	`{"choices":[{"content":1,"content":2,"message":{"prompt_tokens":1,"prompt_tokens":2}}]}`,
	`{"choices":[{"message":{"content":"\"content\":1,\"content\":2"}}]}`,
	`{"choices":[[{"message":{},"message":{}}]]}`,
	`{"choices":["a",{"message":{"content":1,"content":2}}]}`,
	`{"a":{"choices":[1]},"b":[{"choices":[],"choices":[]}]}`,
	`{"choices":[ ]}`, `{"choices": [ 1 ]}`, `{"choices":[null]}`, `{"choices":[]}`, `{}`, ` { } `,
	`{"choices":{"#":3}}`, `{"choices":{"#":0}}`, `{"choices":"x","choices":[1]}`, `{"choices":null,"choices":[1]}`,
	`{"choices":1}`, `{"Choices":[1]}`, `{"ch\u006fices":[1]}`, `{"ch\u006fices":[],"choices":[1]}`, `{"x\\":1,"choices":[1]}`,
	`{"choices\u0000":[1]}`, `{"choices":[1],"ch\u006fices":[]}`,
	`{"error":{"message":"boom","type":"server_error","code":500}}`,
	`{"error":{"message":"quota","code":"insufficient_quota"},"choices":[{"message":{}}]}`,
	`{"error":{},"id":"x","choices":[{"message":{"content":"a"}}]}`,
	`{"error":"","choices":[{"message":{"content":"a"}}]}`,
	`{"object":"error","message":"m","type":"BadRequestError","code":400}`,
	`{"choices":[{"message":{"content":"a"},"finish_reason":"error","native_finish_reason":"x"}]}`,
	`{"choices":[{"message":{"content":"a"},"error":{"code":429,"message":"rate"}}]}`,
	`{"choices":[{"message":{"content":"a"},"finish_reason":"insufficient_system_resource"}]}`,
	`{"choices":[{"message":{"content":"insufficient_system_resource"}}]}`,
	`{"error_code":18,"error_msg":"Open api qps request limit reached"}`,
	// What the proxy reads of an answer (ReadAnswer; the spans the pass
	// hands it): the first top-level id, model and created, exactly
	// named, in every value; choices[0].message's members in each shape.
	`{"id":"a","ID":"b","\u0069d":"c","id":"d","model":1,"model":"m","created":"12","created":3,"choices":[{"message":{"content":"x"}}]}`,
	`{"\u0069d":"c\u00e9\"","id":"d","mod\u0065l":"m","created":-4,"choices":[{"message":{"content":"\u00e9"}}]}`,
	`{"created":1.5e3,"choices":[{"message":{"content":[{"type":"thinking","thinking":"t"},{"type":"text","text":"a"}]}}]}`,
	`{"created":12345678901234567890,"choices":[{"message":{"content":[ ]}}]}`, `{"created":null,"choices":[{"message":{"content":[1]}}]}`,
	`{"choices":[{"message":{"reasoning":"r","reasoning_content":"rc","reasoning_details":[{"type":"x"}]}}]}`,
	`{"choices":[{"message":{"reasoning":"r","reasoning_details":{"type":"x"},"content":null,"tool_calls":null}}]}`,
	`{"choices":[{"message":{"reasoning_content":null,"reasoning":"r"}}]}`,
	`{"choices":[{"message":{"function_call":{"name":"create_order","arguments":"{}"},"tool_calls":{"a":1}}}]}`,
	`{"choices":[{"message":{"function_call":"f","tool_calls":[ ]}},{"message":{"content":"b","tool_calls":[{"id":"x"}]}}]}`,
	`{"choices":[1,{"message":{"content":"b","reasoning":"r"}}],"usage":{"prompt_tokens":"3","total_tokens":0}}`,
	`{"choices":[{"message":"m"},{"message":{"content":"b"}}],"usage":[1]}`, `{"choices":[{"Message":{"content":"b"}}]}`,
	`{"choices":[{"index":0,"message":{"content":"a"}},{"index":1,"message":{"content":"b"}},3],"usage":{"prompt_tokens":5,"completion_tokens":2,"prompt_cache_hit_tokens":4,"cached_tokens":1}}`,
	`{"usage":{"prompt_tokens":5,"prompt_tokens_details":{"cached_tokens":3}},"choices":{"message":{"content":"a"}}}`,
	`{"usage":"u","choices":"c","id":["i"],"model":{"m":1}}`,
	`{"choices":[1],"usage":{"prompt_tokens_details":1,"cached_tokens":2,"completion_tokens_details":{"cached_tokens":9},"x":{"total_tokens":7}}}`,
	`{"choices":[1],"usage":{"total_tokens":9,"prompt_tokens_details":{"cached_tokens":0},"prompt_cache_hit_tokens":4,"prompt_tokens":1e2}}`,
	`{"choices":[1],"usage":{"prompt_cache_hit_tokens":0,"cached_tokens":3}}`, `{"usage":{"cached_tokens":0,"prompt_cache_hit_tokens":3},"choices":[1]}`,
	`{"choices":[1,{"message":{"cached_tokens":7,"content":"b"}}],"usage":{"x":{"cached_tokens":8}},"cached_tokens":9}`,
	`{"choices":[1],"usage":{"prompt_tokens_details":{"cached_tokens":5},"prompt_cache_hit_tokens":4,"cached_tokens":3,"completion_tokens":-2}}`,
	// Hostile shapes for the spans: members repeated in a later choice,
	// keys escaped, usage and message nested where they are not read,
	// numbers past int64, choices and message of every other kind, space
	// everywhere.
	`{"choices":[{"message":{"content":"a"}},{"message":{"content":"b","content":"c"},"message":{}}],"usage":{"prompt_tokens":1}}`,
	`{"choices":[{"message":{"content":"a"}},{"index":1,"index":2,"finish_reason":"x","message":{"tool_calls":[{"id":"p","id":"q"}]}}]}`,
	`{"us\u0061ge":{"pr\u006fmpt_tokens":5,"c\u0061ched_tokens":2},"m\u006fdel":"m","cre\u0061ted":4,"ch\u006fices":[{"m\u0065ssage":{"c\u006fntent":"a","tool_c\u0061lls":[{"id":"k"}],"re\u0061soning":"r"}}]}`,
	`{"choices":[{"message":{"content":[{"type":"text","text":"a","usage":{"prompt_tokens":99},"message":{"content":"evil"},"tool_calls":[{"id":"x"}],"reasoning":"no"}]}}],"usage":{"prompt_tokens":1,"x":{"usage":{"prompt_tokens":7}}}}`,
	`{"choices":[{"message":{"content":"a","x":{"content":"b","reasoning_content":"c"}},"usage":{"prompt_tokens":9}}],"id":{"id":"in"},"message":{"content":"top"}}`,
	`{"created":99999999999999999999999,"choices":[1],"usage":{"prompt_tokens":1e400,"completion_tokens":-0,"total_tokens":123456789012345678,"cached_tokens":1234567890123456789,"prompt_cache_hit_tokens":0.0000001}}`,
	`{"created":-9223372036854775809,"choices":[1],"usage":{"prompt_tokens":1E+2,"completion_tokens":"99999999999999999999","total_tokens":true}}`,
	`{"choices":{"0":{"message":{"content":"a"}}}}`, `{"choices":"a"}`, `{"choices":null,"id":"i"}`, `{"choices":true}`,
	`{"choices":[{"message":null},{"message":{"content":"b"}}]}`, `{"choices":[null,{"message":{"content":"b"}}]}`,
	`{"choices":[[{"message":{"content":"a"}}]]}`, `{"choices":[{},{"message":{"content":"b"}}]}`,
	`{"choices":[1],"choices":[{"message":{"content":"b"}}]}`, `{"choices":[{"message":{"content":"a"}}],"Choices":[]}`,
	" \r\n\t{ \"id\" : \"x\" , \"choices\" : [ { \"message\" : { \"content\" : \"a\" , \"tool_calls\" : [ ] } } , 2 ] , \"usage\" : { \"prompt_tokens\" : 3 , \"prompt_tokens_details\" : { \"cached_tokens\" : 1 } } } \n",
	`{"id":null,"id":"x","model":"\ud83d\ude00\ud800","created":"7","choices":[{"message":{"content":"a\"b\\c\u0000","reasoning":1,"reasoning_content":"x"}}]}`,
	`{"choices":[{"message":{"reasoning":"r","reasoning_content":null,"reasoning_details":null,"function_call":null,"content":{}}}]}`,
	`{"":1,"choices":[{"message":{"":"a","content":""}}],"usage":{"usage":{"prompt_tokens":5},"prompt_tokens_details":[{"cached_tokens":3}],"cached_tokens":2}}`,
	`{"choices":[{"message":{"tool_callſ":[{"id":"x"}],"content":"a"}}]}`, `{"choices":[{"message":{"content":"a"}}],"uſage":{}}`,
	// Each member of a message the proxy reads only in a later choice,
	// whose first has none: read from choices[0] alone.
	`{"choices":[{"message":{}},{"message":{"content":"b","tool_calls":[{"id":"k"}],"function_call":{"name":"f"},"reasoning_content":"rc","reasoning":"r","reasoning_details":[{"type":"x"}]}}]}`,
	`{"choices":[{"message":{"content":"a"}},{"message":{"reasoning_details":[{"type":"x"}]}},{"message":{"reasoning":"r"}}]}`,
	`{"usage":{"prompt_tokens":2},"usage":{"prompt_tokens":3},"choices":[1]}`, `{"usage":{"prompt_tokens":2,"prompt_tokens":3},"choices":[1]}`,
	`{"a":1}`, `[{"choices":[1]}]`, `"x"`, `{"choices":[1]}x`, `{"choices":[1]`, "\ufeff{}",
}, scanEventCases...)

// checkScanAnswer holds scanAnswer to what it replaces on the non-stream
// path: isJSONObject, and on a valid object errorObject (its
// bytes.Contains through the marks), hasChoices and ambiguousMember; and
// the spans it hands the proxy to the proxy's own walk: on every answer
// the checks let pass (not ambiguous), interceptors.ReadAnswerAt reads
// from them what interceptors.ReadAnswer reads.
func checkScanAnswer(t *testing.T, data []byte) {
	t.Helper()
	a, ok := scanAnswer(data)
	if want := isJSONObject(data); ok != want {
		t.Fatalf("scanAnswer(%q) valid = %v, isJSONObject %v", data, ok, want)
	}
	if !ok {
		return
	}
	if got, want := a.marks&markErrorTail != 0, bytes.Contains(data, keyErrorTail); got != want {
		t.Errorf("scanAnswer(%q) error tail = %v, want %v", data, got, want)
	}
	if got, want := a.marks&markErrorEscape != 0, jsonscan.ErrorKey.Escapes(data); got != want {
		t.Errorf("scanAnswer(%q) error escape = %v, want %v", data, got, want)
	}
	if got, want := a.marks&markResourceFinish != 0, bytes.Contains(data, keyResourceFinish); got != want {
		t.Errorf("scanAnswer(%q) resource finish = %v, want %v", data, got, want)
	}
	if got, want := a.hasChoices(data), hasChoices(data); got != want {
		t.Errorf("scanAnswer(%q) choices = %v (%d), hasChoices %v", data, got, a.choices, want)
	}
	if got, want := a.ambiguous, ambiguousMember(data) != ""; got != want {
		t.Errorf("scanAnswer(%q) ambiguous = %v, ambiguousMember %q", data, got, ambiguousMember(data))
	}
	got, want := a.answerError(data), errorObject(data)
	if (got == nil) != (want == nil) || got != nil && fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", *want) {
		t.Errorf("scanAnswer(%q) answerError = %+v, errorObject %+v", data, got, want)
	}
	if a.spans.OK != !a.ambiguous {
		t.Errorf("scanAnswer(%q) spans OK = %v, ambiguous %v", data, a.spans.OK, a.ambiguous)
	}
	if a.spans.OK {
		if !a.spans.Of(data) {
			t.Errorf("scanAnswer(%q) spans OK but not of it", data)
		}
		// Nothing read may share the body's memory: the turn patches it.
		// A copy is read by the spans sealed to it.
		body, sp := bytes.Clone(data), a.spans
		sp.Seal(body)
		got := interceptors.ReadAnswerAt(body, &sp)
		for i := range body {
			body[i] = '#'
		}
		if want := interceptors.ReadAnswer(data); !reflect.DeepEqual(got, want) {
			t.Errorf("scanAnswer(%q) spans %+v read as\n%+v\nReadAnswer\n%+v", data, a.spans, got, want)
		}
	}
}

func TestScanAnswerMatches(t *testing.T) {
	for _, s := range scanAnswerCases {
		checkScanAnswer(t, []byte(s))
	}
}

// TestScanAnswerAsksRarely: the common answer's choices are known from the
// pass, without gjson's lookup after it.
func TestScanAnswerAsksRarely(t *testing.T) {
	for _, s := range scanAnswerCases[:2] {
		if a, ok := scanAnswer([]byte(s)); !ok || a.choices != choicesSome {
			t.Errorf("scanAnswer(%s) = %+v, %v; want its choices known", s, a, ok)
		}
	}
}

// TestScanAnswerMutations checks every case with each byte cut, and each
// replaced by each byte that JSON's grammar or a checked key turns on, so
// that each refusal, each mark's edge and each key's spelling is met
// without a fuzzer.
func TestScanAnswerMutations(t *testing.T) {
	const turns = "{}[]\":,\\ \t\nu0-.eE+tfnrCcIU_\x01\xff"
	for _, s := range scanAnswerCases {
		if len(s) > 400 {
			continue
		}
		b := []byte(s)
		for i := range b {
			checkScanAnswer(t, append(append([]byte(nil), b[:i]...), b[i+1:]...))
			checkScanAnswer(t, b[:i])
			for j := 0; j < len(turns); j++ {
				m := append([]byte(nil), b...)
				m[i] = turns[j]
				checkScanAnswer(t, m)
			}
		}
	}
}

func FuzzScanAnswer(f *testing.F) {
	for _, s := range scanAnswerCases {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkScanAnswer(t, data) })
}

// BenchmarkAnswerChecks is the non-stream checks of a chat completion: one
// scanAnswer pass, against the walks it replaced.
func BenchmarkAnswerChecks(b *testing.B) {
	data := []byte(scanAnswerCases[0])
	b.Run("scanAnswer", func(b *testing.B) {
		for b.Loop() {
			a, ok := scanAnswer(data)
			if !ok || a.answerError(data) != nil || !a.hasChoices(data) || a.ambiguous {
				b.Fatal()
			}
		}
	})
	b.Run("separate", func(b *testing.B) {
		for b.Loop() {
			if errorObject(data) != nil || !isJSONObject(data) || !hasChoices(data) || ambiguousMember(data) != "" {
				b.Fatal()
			}
		}
	})
}

// TestSpansReadOnlyTheirBody: ReadAnswerAt reads where the spans say only
// in the body the pass found them in; a body cut, or another in its
// place after the pass (Response.Body changed by a caller), is walked.
// Read by the spans, a shorter body panicked the turn and another of the
// same length was read where its members are not.
func TestSpansReadOnlyTheirBody(t *testing.T) {
	data := []byte(scanAnswerCases[0])
	a, ok := scanAnswer(data)
	if !ok || !a.spans.OK {
		t.Fatalf("scanAnswer(%s) = %v, spans OK %v; want both", data, ok, a.spans.OK)
	}
	other := `{"id":"other","choices":[{"message":{"content":"b"}}],"usage":{"prompt_tokens":1}}`
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"cut", data[:len(data)/2]},
		{"another answer", []byte(other)},
		{"another answer of its length", []byte(fmt.Sprintf("%-*s", len(data), other))},
		{"a copy", bytes.Clone(data)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("ReadAnswerAt panicked: %v", p)
				}
			}()
			if got, want := interceptors.ReadAnswerAt(tc.body, &a.spans), interceptors.ReadAnswer(tc.body); !reflect.DeepEqual(got, want) {
				t.Errorf("read from the spans as %+v; ReadAnswer %+v", got, want)
			}
		})
	}
}
