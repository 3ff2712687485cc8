package proxy

import (
	"bytes"
	"testing"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/accounting"
	"github.com/paygate/paygate/interceptors"
)

// usageInByGJSON is usageIn as it was before its usageValued pre-check:
// the reference the pre-check must agree with (it only lets usageIn skip
// chunks in which gjson finds nothing to read).
func usageInByGJSON(data []byte) (u accounting.Usage, only, inChoice, ok bool) {
	if !bytes.Contains(data, usageKey) {
		return u, false, false, false
	}
	s := unsafe.String(unsafe.SliceData(data), len(data))
	res := gjson.GetMany(s, "choices.#", "usage")
	obj := res[1]
	if !obj.IsObject() {
		if obj.Exists() && bytes.Count(data, usageKey) < 2 {
			return u, false, false, false
		}
		if obj = gjson.Get(s, "choices.0.usage"); !obj.IsObject() {
			return u, false, false, false
		}
		inChoice = true
	}
	return ledgerUsage(interceptors.ReadUsage(obj)), res[0].Int() == 0, inChoice, true
}

// usageChunks are chunks as providers stream them: OpenAI's with
// include_usage ("usage":null in every chunk, the counts in a last chunk of
// their own), Moonshot's (the counts in the finish chunk's choice), Mistral's
// (in the finish chunk), and the near misses of a key: "usage" as a value, in
// text, escaped, spaced, nested deeper, null beside a count.
var usageChunks = []string{
	``, `{}`, `"usage"`, `{"usage":null}`, `{"usage" : null}`, "{\"usage\"\n:\tnull}", `{"usage":nullx}`,
	`{"usage":{"prompt_tokens":1}}`, `{"usage" :{"prompt_tokens":1}}`, `{"usage":{}}`, `{"usage":1}`, `{"usage":"x"}`,
	`{"usage":[]}`, `{"usage":nul}`, `{"usage":`, `{"usage"`, `{"usage":n`,
	`{"choices":[{"delta":{"content":"usage"}}]}`, `{"content":"\"usage\":{\"a\":1}"}`,
	`{"content":"unusual usages"}`, `{"u":"uuusage"}`, `"uusage"`, `""usage"`, `"usag"usage"`,
	`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}],"usage":null}`,
	`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`,
	`{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop","usage":{"prompt_tokens":8,"completion_tokens":4,"total_tokens":12}}]}`,
	`{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop","usage":{"prompt_tokens":8,"completion_tokens":4,"total_tokens":12}}],"usage":null}`,
	`{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop","usage":null}],"usage":null}`,
	`{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":8,"completion_tokens":4,"total_tokens":12}}`,
	`{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"{\"usage\":5}"}}]}}],"usage":null}`,
	`{"metadata":{"usage":{"prompt_tokens":9}},"choices":[]}`, `{"metadata":{"usage":null},"usage":null}`,
	`{"USAGE":1}`, `{"Usage":{"prompt_tokens":1}}`, `u`, `"u`, `"usage"u`, `x"usage"`, `"usage":`, `"usage": `,
}

// TestUsageInPreCheck: usageIn with its pre-check reads what gjson alone
// reads from every chunk, "usage":null in all its spellings skipped.
func TestUsageInPreCheck(t *testing.T) {
	for _, s := range usageChunks {
		checkUsageIn(t, []byte(s))
	}
}

// FuzzUsageIn holds usageIn to usageInByGJSON on any input.
func FuzzUsageIn(f *testing.F) {
	for _, s := range usageChunks {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkUsageIn(t, data) })
}

func checkUsageIn(t *testing.T, data []byte) {
	t.Helper()
	u, only, inChoice, ok := usageIn(data)
	wu, wonly, winChoice, wok := usageInByGJSON(data)
	if u != wu || only != wonly || inChoice != winChoice || ok != wok {
		t.Errorf("usageIn(%s) = %+v %v %v %v; gjson alone reads %+v %v %v %v", data, u, only, inChoice, ok, wu, wonly, winChoice, wok)
	}
}

// TestUsageValuedSkipsNullOnly: the pre-check itself, so that a check that
// let every chunk through (and cost a JSON scan each) fails here too; a
// string value "usage" goes through to gjson, as any doubt does.
func TestUsageValuedSkipsNullOnly(t *testing.T) {
	for s, want := range map[string]bool{
		`{"choices":[{"delta":{"content":"Hi"}}],"usage":null}`: false,
		`{"usage" : null}`:                                         false,
		`{"content":"usage"}`:                                      true,
		`{"content":"the \"usage\":{} key"}`:                       false,
		`{"choices":[{"delta":{"content":"tok"}}]}`:                false,
		`{"choices":[],"usage":{"prompt_tokens":3}}`:               true,
		`{"choices":[{"usage":{"prompt_tokens":3}}],"usage":null}`: true,
		`{"usage":0}`: true,
	} {
		if got := usageValued([]byte(s)); got != want {
			t.Errorf("usageValued(%s) = %v, want %v", s, got, want)
		}
	}
}
