package interceptors

import (
	"testing"

	"github.com/tidwall/gjson"
)

// TestRewriteChat: the user is replaced where it stands (or dropped), a
// "user" deeper in the body is left alone, and the result never aliases the
// client's body.
func TestRewriteChat(t *testing.T) {
	hash := NewPrivacy("hash", []byte("k"))
	hashed, _ := hash.Forward("bot", "o\"1")
	tests := []struct {
		name, in, want string
		u              Upstream
		c              Chat
	}{
		{name: "hashed in place", in: `{"user":"o\"1", "messages":[{"role":"user","content":"x","user":"keep"}]}`,
			u:    Upstream{Client: "bot", EndUser: `o"1`, Privacy: hash},
			want: `{"user":"` + hashed + `", "messages":[{"role":"user","content":"x","user":"keep"}]}`},
		{name: "kept, quoted", in: `{"model":"m","user":null}`,
			u:    Upstream{Client: "bot", EndUser: `a"b`, Privacy: NewPrivacy("keep", nil)},
			want: `{"model":"m","user":"a\"b"}`},
		{name: "dropped", in: `{"model":"m","user":"u"}`,
			u:    Upstream{Client: "bot", EndUser: "u", Privacy: NewPrivacy("drop", nil)},
			want: `{"model":"m"}`},
		{name: "usage asked for a stream", in: `{"model":"m","stream":true}`,
			u: Upstream{ForceUsage: true}, c: Chat{Stream: true},
			want: `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`},
		{name: "usage asked for a stream whose options lack it", in: `{"model":"m","stream":true,"stream_options":{"x":1}}`,
			u: Upstream{ForceUsage: true}, c: Chat{Stream: true},
			want: `{"model":"m","stream":true,"stream_options":{"x":1,"include_usage":true}}`},
		{name: "usage asked for a stream, white space kept", in: "{\"model\":\"m\",\"stream\":true }\n",
			u: Upstream{ForceUsage: true}, c: Chat{Stream: true},
			want: "{\"model\":\"m\",\"stream\":true ,\"stream_options\":{\"include_usage\":true}}\n"},
		{name: "nothing to change", in: `{"model":"m"}`, want: `{"model":"m"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			out, err := RewriteChat(in, tc.c, tc.u)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.want {
				t.Errorf("got  %s\nwant %s", out, tc.want)
			}
			if &out[0] == &in[0] {
				t.Errorf("the result shares memory with the body")
			}
		})
	}
}

// FuzzRewriteChatUsesWhatReadChatFound: RewriteChat of the body ReadChat
// read uses the positions of "user" and the other identity members
// (identity.go) ReadChat recorded; the result must be what
// a fresh lookup gives, for every body ReadChat accepts. A Chat read from
// another body must not lend its position.
func FuzzRewriteChatUsesWhatReadChatFound(f *testing.F) {
	for _, b := range []string{
		`{"model":"m","messages":[],"user":"u1"}`,
		`{"model":"m","messages":[{"user":"inner"}],"user":"b"}`,
		`{"user":"a","model":"m","messages":[{"user":"inner"}],"user":"b"}`, // refused: user repeats
		`{"model":"m","messages":[], "us\u0065r" : "esc"}`,
		`{"model":"m","messages":[],"user":null,"stream":true}`,
		`{"model":"m","messages":[]}`,
		` {"model":"m","messages":[],"user":{"nested":"x"}} `,
		`{"model":"m","safety_identifier":"someone","messages":[],"prompt_cache_key":"k","metadata":{"a":"someone","b":"x"},"user":"u"}`,
		`{"safety_identifier":7,"prompt_cache_key":null,"model":"m","messages":[],"metadata":{"a":"some\u006fne"}}`,
	} {
		f.Add(b, "keep")
		f.Add(b, "hash")
		f.Add(b, "drop")
	}
	f.Fuzz(func(t *testing.T, body, mode string) {
		if mode != "keep" && mode != "hash" && mode != "drop" {
			return
		}
		b := []byte(body)
		c, err := ReadChat(b)
		if err != nil {
			return
		}
		u := Upstream{Client: "bot", EndUser: "someone", Privacy: NewPrivacy(mode, []byte("k")), ForceUsage: true}
		fresh := c
		fresh.read = chatRead{}
		want, werr := RewriteChat(b, fresh, u)
		got, gerr := RewriteChat(b, c, u)
		if string(got) != string(want) || (gerr == nil) != (werr == nil) {
			t.Fatalf("RewriteChat(%q) with ReadChat's position = %q, %v; a fresh lookup gives %q, %v", body, got, gerr, want, werr)
		}
		if gerr == nil && !gjson.ValidBytes(got) {
			t.Fatalf("RewriteChat(%q) = %q: not JSON", body, got)
		}
		if gerr == nil && c.Stream && !c.WantsUsage &&
			(!gjson.ValidBytes(got) || !gjson.GetBytes(got, "stream_options.include_usage").Bool()) {
			t.Fatalf("RewriteChat(%q) = %q: not JSON asking for usage", body, got)
		}
		// The same Chat for a copy of the body: the position is not used.
		other := append([]byte(nil), b...)
		if got, _ := RewriteChat(other, c, u); string(got) != string(want) {
			t.Fatalf("RewriteChat of a copy = %q; want %q", got, want)
		}
	})
}
