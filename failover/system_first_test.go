package failover

import (
	"testing"

	"github.com/tidwall/gjson"
)

// TestMoveSystemFirst: the inserted system message leaves its place and
// joins the leading message; every other byte of the body stays as it came,
// spacing included, whatever the leading message's shape.
func TestMoveSystemFirst(t *testing.T) {
	const st = `{"role":"system","content":"S <1>"}`
	tests := []struct {
		name    string
		body    string
		index   int
		want    string
		wantErr bool
	}{
		{
			name:  "string content, before the last user message",
			body:  `{"messages": [ {"role": "system", "content": "Be brief."}, {"role": "user", "content": "a"}, ` + st + `,{"role": "user", "content": "b"} ], "x": 1}`,
			index: 2,
			want:  `{"messages": [ {"role": "system", "content": "Be brief.\n\nS \u003c1\u003e"}, {"role": "user", "content": "a"}, {"role": "user", "content": "b"} ], "x": 1}`,
		},
		{
			name:  "no leading system message",
			body:  `{"messages":[{"role":"user","content":"a"},` + st + `,{"role":"user","content":"b"}]}`,
			index: 1,
			want:  `{"messages":[{"role":"system","content":"S \u003c1\u003e"},{"role":"user","content":"a"},{"role":"user","content":"b"}]}`,
		},
		{
			name:  "parts",
			body:  `{"messages":[{"role":"system","content":[ {"type":"text","text":"P"} ]},` + st + `,{"role":"user","content":"b"}]}`,
			index: 1,
			want:  `{"messages":[{"role":"system","content":[ {"type":"text","text":"P"} ,{"type":"text","text":"\n\nS \u003c1\u003e"}]},{"role":"user","content":"b"}]}`,
		},
		{
			name:  "empty parts",
			body:  `{"messages":[{"role":"system","content":[]},` + st + `,{"role":"user","content":"b"}]}`,
			index: 1,
			want:  `{"messages":[{"role":"system","content":[{"type":"text","text":"\n\nS \u003c1\u003e"}]},{"role":"user","content":"b"}]}`,
		},
		{
			name:  "developer, null content",
			body:  `{"messages":[{"role":"developer","content":null},` + st + `,{"role":"user","content":"b"}]}`,
			index: 1,
			want:  `{"messages":[{"role":"developer","content":"S \u003c1\u003e"},{"role":"user","content":"b"}]}`,
		},
		{
			name:  "no content member",
			body:  `{"messages":[{"role":"system","name":"n"},` + st + `,{"role":"user","content":"b"}]}`,
			index: 1,
			want:  `{"messages":[{"content":"S \u003c1\u003e","role":"system","name":"n"},{"role":"user","content":"b"}]}`,
		},
		{
			name:  "appended last (no user message)",
			body:  `{"messages":[{"role":"system","content":"s"}, {"role":"assistant","content":"x"}` + "," + st + `]}`,
			index: 2,
			want:  `{"messages":[{"role":"system","content":"s\n\nS \u003c1\u003e"}, {"role":"assistant","content":"x"}]}`,
		},
		{
			name:  "already first",
			body:  `{"messages":[` + st + `,{"role":"user","content":"b"}]}`,
			index: 0,
			want:  `{"messages":[` + st + `,{"role":"user","content":"b"}]}`,
		},
		{name: "another message at the index", body: `{"messages":[{"role":"user","content":"a"},{"role":"system","content":"other"}]}`, index: 1, wantErr: true},
		{name: "index past the end", body: `{"messages":[{"role":"user","content":"a"}]}`, index: 3, wantErr: true},
		{name: "no messages", body: `{"model":"m"}`, index: 0, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			out, err := moveSystemFirst(body, &SystemMessage{Index: tc.index, Text: "S <1>"})
			if string(body) != tc.body {
				t.Errorf("body modified: %s", body)
			}
			if tc.wantErr {
				if err == nil {
					t.Errorf("got %s; want an error", out)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.want {
				t.Errorf("\n got %s\nwant %s", out, tc.want)
			}
			if !gjson.ValidBytes(out) {
				t.Errorf("not JSON: %s", out)
			}
		})
	}
}
