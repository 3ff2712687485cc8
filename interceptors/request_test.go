package interceptors

import "testing"

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
