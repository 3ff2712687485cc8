package interceptors

import (
	"encoding/json"
	"testing"

	"github.com/tidwall/gjson"
)

// TestAppendUsage: one round's usage object goes to the bot byte for byte;
// several are summed, top-level numbers and token details member by member,
// without a key no round sent.
func TestAppendUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		sum  Usage
		objs []string
		want string
	}{
		{"one round, as sent", Usage{10, 5, 15, 0},
			[]string{`{ "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "cost": 0.0001, "prompt_tokens_details": {"cached_tokens": 4} }`},
			`{ "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "cost": 0.0001, "prompt_tokens_details": {"cached_tokens": 4} }`},
		{"no object: the counts", Usage{10, 5, 15, 0}, nil,
			`{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}`},
		{"two rounds without details: a number one round sent is kept", Usage{30, 7, 37, 0},
			[]string{`{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}`, `{"prompt_tokens":20,"completion_tokens":2,"total_tokens":22,"cost":0.5}`},
			`{"prompt_tokens":30,"completion_tokens":7,"total_tokens":37,"cost":0.5}`},
		{"details summed per key", Usage{30, 7, 37, 0},
			[]string{
				`{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":4,"audio_tokens":null},"completion_tokens_details":null}`,
				`{"prompt_tokens":20,"completion_tokens":2,"total_tokens":22,"prompt_tokens_details":{"cached_tokens":8,"cache_write_tokens":1.5},"completion_tokens_details":{"reasoning_tokens":2}}`,
			},
			`{"prompt_tokens":30,"completion_tokens":7,"total_tokens":37,"prompt_tokens_details":{"cached_tokens":12,"audio_tokens":null,"cache_write_tokens":1.5},"completion_tokens_details":{"reasoning_tokens":2}}`},
		// Past float64's range a sum stops at its largest value of its
		// sign, and +Inf and -Inf together are 0: printed, +Inf, -Inf or
		// NaN is no JSON.
		{"a sum past the range stops at its largest", Usage{2, 0, 2, 0},
			[]string{`{"prompt_tokens":1,"cost":1e308}`, `{"prompt_tokens":1,"cost":1e308}`},
			`{"prompt_tokens":2,"completion_tokens":0,"total_tokens":2,"cost":1.7976931348623157e+308}`},
		{"a negative sum past the range stops at its least", Usage{2, 0, 2, 0},
			[]string{`{"prompt_tokens":1,"cost":-1e308}`, `{"prompt_tokens":1,"cost":-1e308}`},
			`{"prompt_tokens":2,"completion_tokens":0,"total_tokens":2,"cost":-1.7976931348623157e+308}`},
		// An integer sum past int64's range stops at its end, not wrapped
		// around to a negative count nor printed past what an SDK's int
		// reads; an integer sent past it is summed as a number.
		{"an integer sum past int64 stops at its greatest", Usage{2, 0, 2, 0},
			[]string{`{"prompt_tokens":1,"cost":9223372036854775807}`, `{"prompt_tokens":1,"cost":9223372036854775807}`},
			`{"prompt_tokens":2,"completion_tokens":0,"total_tokens":2,"cost":9223372036854775807}`},
		{"an integer sum past int64 stops at its least", Usage{2, 0, 2, 0},
			[]string{`{"prompt_tokens":1,"cost":-9223372036854775807}`, `{"prompt_tokens":1,"cost":-9}`},
			`{"prompt_tokens":2,"completion_tokens":0,"total_tokens":2,"cost":-9223372036854775808}`},
		{"an integer past int64 is summed as a number", Usage{2, 0, 2, 0},
			[]string{`{"prompt_tokens":1,"cost":99999999999999999999}`, `{"prompt_tokens":1,"cost":-1}`},
			`{"prompt_tokens":2,"completion_tokens":0,"total_tokens":2,"cost":100000000000000000000}`},
		// At int64's very ends the sum is still an integer, printed to
		// its last digit: summed as a float64 it rounded to another.
		{"an integer sum at int64's greatest stays exact", Usage{2, 0, 2, 0},
			[]string{`{"prompt_tokens":1,"cost":9223372036854775806}`, `{"prompt_tokens":1,"cost":1}`},
			`{"prompt_tokens":2,"completion_tokens":0,"total_tokens":2,"cost":9223372036854775807}`},
		// Reaching int64's least is no overflow: a round after it still
		// counts to its last digit (summed as a float64, -9223372036854775808).
		{"an integer sum at int64's least stays exact", Usage{3, 0, 3, 0},
			[]string{`{"prompt_tokens":1,"cost":-9223372036854774308}`, `{"prompt_tokens":1,"cost":-1500}`, `{"prompt_tokens":1,"cost":1}`},
			`{"prompt_tokens":3,"completion_tokens":0,"total_tokens":3,"cost":-9223372036854775807}`},
		{"a negative integer is summed as an integer", Usage{2, 0, 2, 0},
			[]string{`{"prompt_tokens":1,"cost":9007199254740993}`, `{"prompt_tokens":1,"cost":-1}`},
			`{"prompt_tokens":2,"completion_tokens":0,"total_tokens":2,"cost":9007199254740992}`},
		{"both infinities are 0", Usage{2, 0, 2, 0},
			[]string{`{"prompt_tokens":1,"cost":1e400}`, `{"prompt_tokens":1,"cost":-1e400}`},
			`{"prompt_tokens":2,"completion_tokens":0,"total_tokens":2,"cost":0}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var objs [][]byte
			for _, o := range tc.objs {
				objs = append(objs, []byte(o))
			}
			got := string(AppendUsage([]byte("x"), &tc.sum, objs))
			if got != "x"+tc.want {
				t.Errorf("AppendUsage:\n got %s\nwant x%s", got, tc.want)
			}
			if !json.Valid([]byte(got[1:])) {
				t.Errorf("not JSON: %s", got[1:])
			}
		})
	}
}

// TestCaptureKeepsUsageObject: the round's result carries the usage object
// as the provider sent it, details included, from the usage-only chunk.
func TestCaptureKeepsUsageObject(t *testing.T) {
	const u = `{"prompt_tokens":1000,"completion_tokens":200,"total_tokens":1200,"prompt_tokens_details":{"cached_tokens":768},"completion_tokens_details":{"reasoning_tokens":128}}`
	c := NewCapture(func(string) bool { return false })
	c.StartRound(0, "", 0)
	for _, ch := range []string{
		`{"id":"c1","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]}`,
		`{"id":"c1","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
		`{"id":"c1","model":"m","choices":[],"usage":` + u + `}`,
	} {
		if _, err := c.Process([]byte(ch)); err != nil {
			t.Fatal(err)
		}
	}
	r := c.EndRound()
	if string(r.UsageJSON) != u {
		t.Errorf("UsageJSON = %s; want %s", r.UsageJSON, u)
	}
	if r.Usage == nil || *r.Usage != (Usage{1000, 200, 1200, 768}) {
		t.Errorf("Usage = %+v", r.Usage)
	}
}

// TestCaptureChoiceLevelUsage: Moonshot (Kimi) streams its usage in
// choices[0].usage of the finish chunk. With no top-level usage in the
// round, it is the round's usage; the member leaves the chunks (the one
// sent now and the finish chunk kept), as a top-level one does, so the bot
// sees no per-round figure inside a choice. A top-level usage, in the same
// chunk or a later one, is the round's all the same.
func TestCaptureChoiceLevelUsage(t *testing.T) {
	const cu = `{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}`
	const top = `{"prompt_tokens":11,"completion_tokens":6,"total_tokens":17}`
	for _, tc := range []struct {
		name   string
		chunks []string
		want   string
	}{
		{"the finish chunk's choice", []string{
			`{"id":"c1","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]}`,
			`{"id":"c1","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop","usage":` + cu + `}]}`,
		}, cu},
		{"text in the finish chunk, usage first in the choice", []string{
			`{"id":"c1","model":"m","choices":[{"index":0,"usage":` + cu + `, "delta":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}`,
		}, cu},
		{"a top-level usage after it wins", []string{
			`{"id":"c1","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":"stop","usage":` + cu + `}]}`,
			`{"id":"c1","model":"m","choices":[],"usage":` + top + `}`,
		}, top},
		{"a top-level usage beside it wins", []string{
			`{"id":"c1","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":"stop","usage":` + cu + `}],"usage":` + top + `}`,
		}, top},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCapture(func(string) bool { return false })
			c.StartRound(0, "", 0)
			for _, ch := range tc.chunks {
				out, err := c.Process([]byte(ch))
				if err != nil {
					t.Fatal(err)
				}
				if out != nil && (!json.Valid(out) || gjson.GetBytes(out, "choices.0.usage").Exists()) {
					t.Errorf("sent %s; want valid JSON without the choice's usage", out)
				}
			}
			r := c.EndRound()
			if string(r.UsageJSON) != tc.want {
				t.Errorf("UsageJSON = %s; want %s", r.UsageJSON, tc.want)
			}
			if r.FinishChunk == nil || !json.Valid(r.FinishChunk) || gjson.GetBytes(r.FinishChunk, "choices.0.usage").Exists() {
				t.Errorf("finish chunk %s; want valid JSON without the choice's usage", r.FinishChunk)
			}
			if r.Content != "hi" {
				t.Errorf("content %q", r.Content)
			}
		})
	}
}

// TestCachedTokensRead: the prompt tokens a provider served from its prompt
// cache, which it bills at a fraction of the input price, are read wherever
// the provider names them, from a streamed round's usage (top-level or in
// the finish chunk's choice) and a non-stream answer's alike: OpenAI,
// OpenRouter, Qwen (DashScope), xAI and Gemini's compatible API in
// prompt_tokens_details.cached_tokens; DeepSeek in prompt_cache_hit_tokens;
// Moonshot (Kimi) in cached_tokens. They were not read, and accounting
// priced them as full-price prompt tokens.
func TestCachedTokensRead(t *testing.T) {
	const counts = `"prompt_tokens":10000,"completion_tokens":5,"total_tokens":10005`
	for _, tc := range []struct {
		name, usage string
		want        int64
	}{
		{"openai", `{` + counts + `,"prompt_tokens_details":{"audio_tokens":0,"cached_tokens":9000},"completion_tokens_details":{"reasoning_tokens":0}}`, 9000},
		{"deepseek", `{` + counts + `,"prompt_cache_hit_tokens":9000,"prompt_cache_miss_tokens":1000}`, 9000},
		{"deepseek with the details too", `{` + counts + `,"prompt_tokens_details":{"cached_tokens":9000},"prompt_cache_hit_tokens":9000,"prompt_cache_miss_tokens":1000}`, 9000},
		{"moonshot", `{` + counts + `,"cached_tokens":9000}`, 9000},
		{"moonshot with empty details", `{` + counts + `,"prompt_tokens_details":{"cached_tokens":0},"cached_tokens":9000}`, 9000},
		{"details null", `{` + counts + `,"prompt_tokens_details":null}`, 0},
		{"nothing cached", `{` + counts + `}`, 0},
		{"the first key counts", `{` + counts + `,"prompt_tokens_details":{"cached_tokens":9000,"cached_tokens":1},"prompt_tokens_details":{"cached_tokens":2}}`, 9000},
	} {
		want := Usage{10000, 5, 10005, tc.want}
		t.Run(tc.name+", stream", func(t *testing.T) {
			c := NewCapture(func(string) bool { return false })
			c.StartRound(0, "", 0)
			for _, ch := range []string{
				`{"id":"c1","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}`,
				`{"id":"c1","model":"m","choices":[],"usage":` + tc.usage + `}`,
			} {
				if _, err := c.Process([]byte(ch)); err != nil {
					t.Fatal(err)
				}
			}
			if r := c.EndRound(); r.Usage == nil || *r.Usage != want {
				t.Errorf("Usage = %+v; want %+v", r.Usage, want)
			}
		})
		t.Run(tc.name+", stream, in the choice", func(t *testing.T) {
			c := NewCapture(func(string) bool { return false })
			c.StartRound(0, "", 0)
			ch := `{"id":"c1","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":"stop","usage":` + tc.usage + `}]}`
			if _, err := c.Process([]byte(ch)); err != nil {
				t.Fatal(err)
			}
			if r := c.EndRound(); r.Usage == nil || *r.Usage != want {
				t.Errorf("Usage = %+v; want %+v", r.Usage, want)
			}
		})
		t.Run(tc.name+", non-stream", func(t *testing.T) {
			body := `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":` + tc.usage + `}`
			if a := ReadAnswer([]byte(body)); !a.HasUsage || a.Usage != want {
				t.Errorf("Usage = %+v; want %+v", a.Usage, want)
			}
			if a := answerByPath(body); a.Usage != want {
				t.Errorf("path lookups: Usage = %+v; want %+v", a.Usage, want)
			}
		})
	}
}
