package interceptors

import (
	"errors"
	"strings"
	"testing"
)

func TestReadChat(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       Chat
		wantErr    string
	}{
		{name: "all fields", body: `{"model":"m","stream":true,"user":"u1","stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`,
			want: Chat{Model: "m", Stream: true, User: "u1", WantsUsage: true}},
		{name: "minimal", body: `{"messages":[],"model":"gpt-4o"}`, want: Chat{Model: "gpt-4o"}},
		{name: "escaped key and value", body: `{"mod\u0065l":"a\"b","messages":[]}`, want: Chat{Model: `a"b`}},
		{name: "first of a repeated member counts", body: `{"model":"first","model":"second","stream":false,"stream":true,"messages":[]}`,
			want: Chat{Model: "first"}},
		{name: "nested lookalikes are not the fields", body: `{"model":"m","messages":[{"model":"x","user":"y","stream":true}]}`, want: Chat{Model: "m"}},
		{name: "not JSON", body: `{"model":`, wantErr: "not valid JSON"},
		{name: "not an object", body: `["model"]`, wantErr: "must be a JSON object"},
		{name: "no model", body: `{"messages":[]}`, wantErr: "model parameter"},
		{name: "empty model", body: `{"model":"","messages":[]}`, wantErr: "model parameter"},
		{name: "model not a string", body: `{"model":4,"messages":[]}`, wantErr: "model parameter"},
		{name: "messages not an array", body: `{"model":"m","messages":{}}`, wantErr: "'messages' must be an array"},
		{name: "no messages", body: `{"model":"m"}`, wantErr: "'messages' must be an array"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			got, err := ReadChat(body)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v; want ErrBadRequest with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ReadChat = %+v, %v; want %+v", got, err, tc.want)
			}
			// The strings kept do not alias the body, which the caller may reuse.
			for i := range body {
				body[i] = 'x'
			}
			if got != tc.want {
				t.Fatalf("after the body changed: %+v; want %+v", got, tc.want)
			}
		})
	}
}
