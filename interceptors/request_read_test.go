package interceptors

import (
	"errors"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func TestReadChat(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       Chat
		wantErr    string
	}{
		{name: "all fields", body: `{"model":"m","stream":true,"user":"u1","stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`,
			want: Chat{Model: "m", Stream: true, User: "u1", WantsUsage: true}},
		{name: "client tools", body: `{"model":"m","messages":[],"tools":[]}`, want: Chat{Model: "m", HasTools: true}},
		{name: "null tools count as a member", body: `{"model":"m","messages":[],"tools":null}`, want: Chat{Model: "m", HasTools: true}},
		{name: "stream as gjson reads it", body: `{"model":"m","messages":[],"stream":"true","user":7}`, want: Chat{Model: "m", Stream: true}},
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
			got.read = chatRead{} // where user was found: TestRewriteChatUsesWhatReadChatFound
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

// chatByPath is ReadChat written with gjson: what each field means, for
// the differential fuzz test.
func chatByPath(body []byte) (Chat, bool) {
	if !gjson.ValidBytes(body) {
		return Chat{}, false
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return Chat{}, false
	}
	var f [len(chatMembers)]gjson.Result
	members(root, chatMembers[:], f[:])
	if f[chatModel].Type != gjson.String || f[chatModel].Str == "" || !f[chatMessages].IsArray() {
		return Chat{}, false
	}
	return Chat{
		Model:      f[chatModel].Str,
		Stream:     f[chatStream].Bool(),
		User:       f[chatUser].Str,
		WantsUsage: f[chatStreamOptions].Get("include_usage").Bool(),
		HasTools:   f[chatTools].Exists(),
	}, true
}

// FuzzReadChat checks ReadChat's walk against gjson's reading of the same
// body, and that no body makes it panic.
func FuzzReadChat(f *testing.F) {
	for _, b := range []string{
		`{"model":"m","stream":true,"user":"u1","stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`,
		`{"mod\u0065l":"a\"b","messages":[],"tools":[{"type":"function"}]}`,
		`{"model":"first","model":"second","stream":1,"stream":false,"messages":[]}`,
		`{"model":"m","messages":[{"model":"x","user":"y","stream":true}],"stream_options":null}`,
		` {"model":"m","messages":[],"stream":"true","user":7} `,
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body string) {
		got, err := ReadChat([]byte(body))
		got.read = chatRead{}
		want, ok := chatByPath([]byte(body))
		if (err == nil) != ok || got != want {
			t.Fatalf("ReadChat(%q) = %+v, %v; gjson reads %+v, ok %v", body, got, err, want, ok)
		}
	})
}

// members sets out[i] to the first top-level member of obj named names[i]
// (the zero Result when there is none) in one pass over obj. A path lookup
// per name scans obj from its start each time, and a chat body is mostly
// the messages each of them would skip again. Where a member repeats, the
// first counts, as in a path lookup. The results share obj's memory.
func members(obj gjson.Result, names []string, out []gjson.Result) {
	obj.ForEach(func(k, v gjson.Result) bool {
		for i, n := range names {
			if k.Str == n && out[i].Raw == "" {
				out[i] = v
			}
		}
		return true
	})
}
