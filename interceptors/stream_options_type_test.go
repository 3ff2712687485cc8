package interceptors

import (
	"testing"
)

// TestStreamOptionsNotAnObject: a "stream_options" that is neither an
// object nor null is refused as OpenAI refuses it (invalid_type, param
// "stream_options"), where RewriteChat, which sets include_usage in it for
// a stream, either put an object in place of the client's value (a string,
// a number: sent to the provider as a valid request the bot never made) or
// answered sjson's "cannot set array element for non-numeric key" with no
// param (an array).
func TestStreamOptionsNotAnObject(t *testing.T) {
	for _, tc := range []struct{ value, got string }{
		{`"x"`, "a string"},
		{`5`, "an integer"},
		{`1.5`, "a decimal"},
		{`true`, "a boolean"},
		{`[]`, "an array"},
		{`[{"include_usage":false}]`, "an array"},
	} {
		t.Run(tc.value, func(t *testing.T) {
			body := []byte(`{"model":"m","messages":[],"stream":true,"stream_options":` + tc.value + `}`)
			c, err := ReadChat(body)
			if err == nil {
				out, rerr := RewriteChat(body, c, Upstream{Client: "bot", ForceUsage: true, Privacy: NewPrivacy("hash", []byte("k"))})
				t.Fatalf("ReadChat accepted it; RewriteChat sent %s (error %v)", out, rerr)
			}
			want := "Invalid type for 'stream_options': expected an object, but got " + tc.got + " instead."
			if err.Error() != ErrBadRequest.Error()+": "+want || ParamOf(err) != "stream_options" || CodeOf(err) != "invalid_type" {
				t.Fatalf("error %q, param %q, code %q; want %q, stream_options, invalid_type", err, ParamOf(err), CodeOf(err), want)
			}
		})
	}
	for _, v := range []string{`null`, `{}`, ` { "include_usage" : false } `} {
		if _, err := ReadChat([]byte(`{"model":"m","messages":[],"stream":true,"stream_options":` + v + `}`)); err != nil {
			t.Errorf("stream_options %s: %v", v, err)
		}
	}
}
