package failover

import (
	"testing"

	"github.com/tidwall/gjson"
)

// tokenBearingByGet is tokenBearing as it was before choiceBearing: one Get
// per name. tokenBearing is held to it.
func tokenBearingByGet(s string) bool {
	choices := gjson.Get(s, "choices")
	found := false
	choices.ForEach(func(_, c gjson.Result) bool {
		if fr := c.Get("finish_reason"); fr.Type == gjson.String && fr.Str != "" {
			found = true
			return false
		}
		if t := c.Get("text"); t.Type == gjson.String && t.Str != "" {
			found = true
			return false
		}
		d := c.Get("delta")
		for _, k := range [...]string{"content", "reasoning_content", "reasoning", "refusal"} {
			if v := d.Get(k); v.Type == gjson.String && v.Str != "" {
				found = true
				return false
			}
		}
		if v := d.Get("content"); v.IsArray() && len(v.Array()) > 0 {
			found = true
			return false
		}
		if tc := d.Get("tool_calls"); tc.IsArray() && len(tc.Array()) > 0 {
			found = true
			return false
		}
		if im := d.Get("images"); im.IsArray() && len(im.Array()) > 0 {
			found = true
			return false
		}
		if fc := d.Get("function_call"); fc.IsObject() {
			found = true
			return false
		}
		if au := d.Get("audio"); au.IsObject() {
			if r := au.Get("transcript"); r.Type == gjson.String && r.Str != "" {
				found = true
				return false
			}
			if r := au.Get("data"); r.Type == gjson.String && r.Str != "" {
				found = true
				return false
			}
		}
		return true
	})
	return found
}

// tokenBearingCases are events the one-pass reading must read as the
// reading by name did: each name first, repeated, escaped, of another type,
// in a choice or a delta that is not an object.
var tokenBearingCases = []string{
	`{"id":"chatcmpl-bench9f3c2a","object":"chat.completion.chunk","created":1767225600,"model":"bench","system_fingerprint":"fp_bench01","choices":[{"index":0,"delta":{"role":"assistant"},"logprobs":null,"finish_reason":null}]}`,
	`{"id":"chatcmpl-bench9f3c2a","object":"chat.completion.chunk","created":1767225600,"model":"bench","system_fingerprint":"fp_bench01","choices":[{"index":0,"delta":{"content":"We"},"logprobs":null,"finish_reason":null}]}`,
	`{"choices":[{"delta":{"content":""}}]}`,
	`{"choices":[{"delta":{"content":null}}]}`,
	`{"choices":[{"delta":{"content":"x"}}]}`,
	`{"choices":[{"delta":{"content":""},"finish_reason":"stop"}]}`,
	`{"choices":[{"finish_reason":"","delta":{}}]}`,
	`{"choices":[{"finish_reason":null,"finish_reason":"stop"}]}`,
	`{"choices":[{"finish_reason":"stop","finish_reason":null}]}`,
	`{"choices":[{"text":"x"}]}`,
	`{"choices":[{"text":""}]}`,
	`{"choices":[{"text":"","text":"x"}]}`,
	`{"choices":[{"text":1}]}`,
	`{"choices":[{"delta":{"content":""},"delta":{"content":"x"}}]}`,
	`{"choices":[{"delta":{"content":"x"},"delta":{}}]}`,
	`{"choices":[{"delta":{"content":"","content":"x"}}]}`,
	`{"choices":[{"delta":{"content":"x","content":""}}]}`,
	`{"choices":[{"delta":{"content":[],"content":[1]}}]}`,
	`{"choices":[{"delta":{"content":[{"type":"thinking","thinking":[{"type":"text","text":"hm"}]}]}}]}`,
	`{"choices":[{"delta":{"content":[]}}]}`,
	`{"choices":[{"delta":{"content":"","images":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}}]}`,
	`{"choices":[{"delta":{"images":[]}}]}`,
	`{"choices":[{"delta":{"images":null}}]}`,
	`{"choices":[{"delta":{"images":[],"images":[{}]}}]}`,
	`{"choices":[{"delta":{"content":{}}}]}`,
	`{"choices":[{"delta":{"reasoning_content":"hm"}}]}`,
	`{"choices":[{"delta":{"reasoning":"hm"}}]}`,
	`{"choices":[{"delta":{"reasoning":""}}]}`,
	`{"choices":[{"delta":{"refusal":"no"}}]}`,
	`{"choices":[{"delta":{"refusal":null}}]}`,
	`{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":""}}]}}]}`,
	`{"choices":[{"delta":{"tool_calls":[]}}]}`,
	`{"choices":[{"delta":{"tool_calls":{}}}]}`,
	`{"choices":[{"delta":{"tool_calls":[],"tool_calls":[1]}}]}`,
	`{"choices":[{"delta":{"function_call":{"name":"f"}}}]}`,
	`{"choices":[{"delta":{"function_call":[]}}]}`,
	`{"choices":[{"delta":{"function_call":null,"function_call":{}}}]}`,
	`{"choices":[{"index":0,"delta":{"content":null,"audio":{"id":"audio_1","transcript":"word "}}}]}`,
	`{"choices":[{"index":0,"delta":{"audio":{"id":"audio_1","data":"UklGRiQAAABXQVZF"}}}]}`,
	`{"choices":[{"index":0,"delta":{"audio":{"id":"audio_1","transcript":"","data":""}}}]}`,
	`{"choices":[{"index":0,"delta":{"audio":{"transcript":"","transcript":"x"}}}]}`,
	`{"choices":[{"index":0,"delta":{"audio":{},"audio":{"data":"x"}}}]}`,
	`{"choices":[{"index":0,"delta":{"content":null,"audio":null}}]}`,
	`{"choices":[{"delta":{}},{"delta":{"content":"x"}}]}`,
	`{"choices":[{"delta":{}},{"delta":{}}]}`,
	`{"choices":[{"d\u0065lta":{"c\u006fntent":"x"}}]}`,
	`{"choices":[{"delta":{"content\u0000":"x"}}]}`,
	`{"choices":[{"finish\u005freason":"stop"}]}`,
	`{"choices":[{"Delta":{"content":"x"}}]}`,
	`{"choices":[{"delta":{"Content":"x"}}]}`,
	`{"choices":[{"delta":"x"}]}`,
	`{"choices":[{"delta":["x"]}]}`,
	`{"choices":[{"delta":[{"content":"x"}]}]}`,
	`{"choices":[{"delta":null}]}`,
	`{"choices":["x"]}`,
	`{"choices":[["x"]]}`,
	`{"choices":[[{"delta":{"content":"x"}}]]}`,
	`{"choices":[null,{"text":"x"}]}`,
	`{"choices":{"0":{"delta":{"content":"x"}}}}`,
	`{"choices":{"delta":{"content":"x"}}}`,
	`{"choices":"x"}`,
	`{"choices":[]}`,
	`{"choices":null}`,
	`{"choices":[{"delta":{"content":"x"}}],"choices":[]}`,
	`{"choices":[],"choices":[{"delta":{"content":"x"}}]}`,
	`{"usage":{"prompt_tokens":1}}`,
	`{}`,
	`[]`,
}

func TestTokenBearingMatchesByGet(t *testing.T) {
	for _, s := range tokenBearingCases {
		if got, want := tokenBearing(s), tokenBearingByGet(s); got != want {
			t.Errorf("%s: got %v; reading by name %v", s, got, want)
		}
	}
}

func FuzzTokenBearing(f *testing.F) {
	for _, s := range tokenBearingCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !gjson.Valid(s) {
			return // tokenBearing is asked of events found valid only
		}
		if got, want := tokenBearing(s), tokenBearingByGet(s); got != want {
			t.Errorf("%q: got %v; reading by name %v", s, got, want)
		}
	})
}

// BenchmarkTokenBearing is the first-token wait's reading of the bench's
// role event and first token, one pass against one Get per name.
func BenchmarkTokenBearing(b *testing.B) {
	for _, ev := range []struct{ name, s string }{{"role", tokenBearingCases[0]}, {"content", tokenBearingCases[1]}} {
		for _, fn := range []struct {
			name string
			f    func(string) bool
		}{{"onepass", tokenBearing}, {"byname", tokenBearingByGet}} {
			b.Run(ev.name+"/"+fn.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					fn.f(ev.s)
				}
			})
		}
	}
}
