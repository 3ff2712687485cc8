package interceptors

import "testing"

// TestDropEmptyError: a chunk's top-level "error" that says nothing ({},
// "", []) is removed, with its comma, wherever it stands; an error that
// says something, an error member inside the choices, and data that is no
// JSON object are left as they are, the same slice.
func TestDropEmptyError(t *testing.T) {
	const ch = `"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]`
	tests := []struct{ in, want string }{
		{`{"id":"c","error":{},` + ch + `}`, `{"id":"c",` + ch + `}`},
		{`{"error": { } ,"id":"c",` + ch + `}`, `{"id":"c",` + ch + `}`},
		{`{"id":"c",` + ch + `,"error":""}`, `{"id":"c",` + ch + `}`},
		{`{"id":"c",` + ch + `,"error":[]}`, `{"id":"c",` + ch + `}`},
		// The include_usage chunk and Azure's first chunk: empty choices.
		{`{"id":"c","error":{},"choices":[],"usage":{"prompt_tokens":1}}`, `{"id":"c","choices":[],"usage":{"prompt_tokens":1}}`},
		{`{"id":"","error":{},"choices":[],"prompt_filter_results":[]}`, `{"id":"","choices":[],"prompt_filter_results":[]}`},
		{`{"id":"c","error":{"message":"boom"},` + ch + `}`, ""},
		{`{"id":"c","error":null,` + ch + `}`, ""},
		{`{"id":"c","choices":[{"index":0,"delta":{},"error":{}}]}`, ""},
		{`{"id":"c",` + ch + `}`, ""},
		{`{"error":{}`, ""},
		{`"error"`, ""},
	}
	for _, tc := range tests {
		in := []byte(tc.in)
		got := DropEmptyError(in)
		want := tc.want
		if want == "" {
			want = tc.in
			if &got[0] != &in[0] {
				t.Errorf("%s: a new slice for data left as it is", tc.in)
			}
		}
		if string(got) != want {
			t.Errorf("%s: got %s; want %s", tc.in, got, want)
		}
	}
}
