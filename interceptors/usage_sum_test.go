package interceptors

import (
	"encoding/json"
	"testing"
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
		{"one round, as sent", Usage{10, 5, 15},
			[]string{`{ "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "cost": 0.0001, "prompt_tokens_details": {"cached_tokens": 4} }`},
			`{ "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "cost": 0.0001, "prompt_tokens_details": {"cached_tokens": 4} }`},
		{"no object: the counts", Usage{10, 5, 15}, nil,
			`{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}`},
		{"two rounds without details: a number one round sent is kept", Usage{30, 7, 37},
			[]string{`{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}`, `{"prompt_tokens":20,"completion_tokens":2,"total_tokens":22,"cost":0.5}`},
			`{"prompt_tokens":30,"completion_tokens":7,"total_tokens":37,"cost":0.5}`},
		{"details summed per key", Usage{30, 7, 37},
			[]string{
				`{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":4,"audio_tokens":null},"completion_tokens_details":null}`,
				`{"prompt_tokens":20,"completion_tokens":2,"total_tokens":22,"prompt_tokens_details":{"cached_tokens":8,"cache_write_tokens":1.5},"completion_tokens_details":{"reasoning_tokens":2}}`,
			},
			`{"prompt_tokens":30,"completion_tokens":7,"total_tokens":37,"prompt_tokens_details":{"cached_tokens":12,"audio_tokens":null,"cache_write_tokens":1.5},"completion_tokens_details":{"reasoning_tokens":2}}`},
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
	if r.Usage == nil || *r.Usage != (Usage{1000, 200, 1200}) {
		t.Errorf("Usage = %+v", r.Usage)
	}
}
