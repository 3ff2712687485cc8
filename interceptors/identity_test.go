package interceptors

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/tidwall/gjson"
)

// hashOf is the keyed user hash computed apart from the code under test:
// "u_" and the first 16 bytes of HMAC-SHA256(key, client NUL value), hex.
func hashOf(key, client, value string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(client + "\x00" + value))
	return "u_" + hex.EncodeToString(m.Sum(nil)[:16])
}

// TestIdentityMembersRewritten: OpenAI deprecated "user" for
// "safety_identifier" and "prompt_cache_key", which current SDKs send, and
// bots tag requests with the OpenID in "metadata": wherever the bot put
// the end user's OpenID, privacy.forward_user decides what the provider
// gets (SPEC 2.2), on chat completions and other /v1 paths alike. Under
// hash the identifiers become the keyed hash of their value, so the OpenID
// becomes exactly what "user" gets and any other value a stable pseudonym
// (the provider's abuse tracking and prompt caching keep working); a
// metadata value that is the end user gets the user's hash. Under drop
// they are removed; under keep they go as sent. Every other byte of the
// body, spacing included, stays as the bot sent it.
func TestIdentityMembersRewritten(t *testing.T) {
	const (
		key = "identity-key"
		o   = "oWx-openid-42"
	)
	h := func(v string) string { return hashOf(key, "bot", v) }
	ho := h(o)
	tests := []struct {
		name, mode, endUser, in, want string
	}{
		{name: "every place the OpenID is, hashed alike", mode: "hash", endUser: o,
			in:   `{"model":"m", "messages":[], "user":"` + o + `","safety_identifier" : "` + o + `","prompt_cache_key":"` + o + `","metadata":{"openid":"` + o + `","shop":"s1"}}`,
			want: `{"model":"m", "messages":[], "user":"` + ho + `","safety_identifier" : "` + ho + `","prompt_cache_key":"` + ho + `","metadata":{"openid":"` + ho + `","shop":"s1"}}`},
		{name: "identifiers hashed by their own value", mode: "hash", endUser: o,
			in:   `{"model":"m","messages":[],"user":"` + o + `","safety_identifier":"tenant-7","prompt_cache_key":"faq-v2"}`,
			want: `{"model":"m","messages":[],"user":"` + ho + `","safety_identifier":"` + h("tenant-7") + `","prompt_cache_key":"` + h("faq-v2") + `"}`},
		{name: "the header's user, no user member", mode: "hash", endUser: o,
			in:   `{"model":"m","messages":[],"safety_identifier":"` + o + `","metadata":{"u":"` + o + `"}}`,
			want: `{"model":"m","messages":[],"safety_identifier":"` + ho + `","metadata":{"u":"` + ho + `"}}`},
		{name: "no end user: identifiers still hashed, metadata left", mode: "hash", endUser: "",
			in:   `{"model":"m","messages":[],"prompt_cache_key":"` + o + `","metadata":{"u":"` + o + `"}}`,
			want: `{"model":"m","messages":[],"prompt_cache_key":"` + ho + `","metadata":{"u":"` + o + `"}}`},
		{name: "the OpenID spelled with escapes", mode: "hash", endUser: o,
			in:   `{"model":"m","messages":[],"safety_identifier":"oWx\u002dopenid-42","metadata":{"u":"\u006fWx-openid-42"}}`,
			want: `{"model":"m","messages":[],"safety_identifier":"` + ho + `","metadata":{"u":"` + ho + `"}}`},
		{name: "metadata values that do not name the end user stay", mode: "hash", endUser: o,
			in:   `{"model":"m","messages":[],"metadata":{"a":"oWx-x","c":7,"d":{"nested":"v"},"e":null}}`,
			want: `{"model":"m","messages":[],"metadata":{"a":"oWx-x","c":7,"d":{"nested":"v"},"e":null}}`},
		// A bot's tag that holds the OpenID inside ("wx:<openid>", a
		// conversation id built from it) gives it to the provider as
		// surely as one that is the OpenID.
		{name: "the OpenID inside a metadata value: hashed in place", mode: "hash", endUser: o,
			in:   `{"model":"m","messages":[],"metadata":{"a":"` + o + `-x","b":"wx:` + o + `","s":"s1"}}`,
			want: `{"model":"m","messages":[],"metadata":{"a":"` + ho + `-x","b":"wx:` + ho + `","s":"s1"}}`},
		{name: "the OpenID inside a metadata value, escaped: hashed in place", mode: "hash", endUser: o,
			in:   `{"model":"m","messages":[],"metadata":{"b":"wx:\u006fWx-openid-42"}}`,
			want: `{"model":"m","messages":[],"metadata":{"b":"wx:` + ho + `"}}`},
		{name: "the OpenID inside a metadata value that is not a string: not sent", mode: "hash", endUser: o,
			in:   `{"model":"m","messages":[],"metadata":{"d":{"nested":"` + o + `"},"s":"s1","l":["\u006fWx-openid-42"]}}`,
			want: `{"model":"m","messages":[],"metadata":{"s":"s1"}}`},
		{name: "drop: the OpenID inside metadata values, removed", mode: "drop", endUser: o,
			in:   `{"model":"m","messages":[],"metadata":{"a":"` + o + `-x","s":"s1","d":{"nested":"` + o + `"}}}`,
			want: `{"model":"m","messages":[],"metadata":{"s":"s1"}}`},
		// A bot's tag keyed by the OpenID ({"wx:<openid>": "1"}) gives it
		// away in the key as surely as in the value.
		{name: "the OpenID inside a metadata key: hashed in place", mode: "hash", endUser: o,
			in:   `{"model":"m","messages":[],"metadata":{"wx:` + o + `":"1","s":"s1","k\u003a` + o + `":"` + o + `"}}`,
			want: `{"model":"m","messages":[],"metadata":{"wx:` + ho + `":"1","s":"s1","k:` + ho + `":"` + ho + `"}}`},
		{name: "drop: the OpenID inside a metadata key, removed", mode: "drop", endUser: o,
			in:   `{"model":"m","messages":[],"metadata":{"s":"s1","wx:` + o + `":"1"}}`,
			want: `{"model":"m","messages":[],"metadata":{"s":"s1"}}`},
		// metadata that is not an object is the bot's to send as it is,
		// unless it names the end user: a provider that takes it (or
		// echoes it in its 400) would read the OpenID, which a form's
		// "metadata" field gives up hashed (passthroughForm).
		{name: "metadata that is not an object and names nobody stays", mode: "hash", endUser: o,
			in: `{"model":"m","messages":[],"metadata":"s1","x":1}`, want: `{"model":"m","messages":[],"metadata":"s1","x":1}`},
		{name: "metadata that is a string naming the end user: hashed in place", mode: "hash", endUser: o,
			in:   `{"model":"m","messages":[],"metadata":"wx:\u006fWx-openid-42"}`,
			want: `{"model":"m","messages":[],"metadata":"wx:` + ho + `"}`},
		{name: "metadata that is an array naming the end user: not sent", mode: "hash", endUser: o,
			in: `{"model":"m","metadata":["` + o + `"],"messages":[]}`, want: `{"model":"m","messages":[]}`},
		{name: "drop: metadata that is a string naming the end user, removed", mode: "drop", endUser: o,
			in: `{"model":"m","messages":[],"metadata":"` + o + `"}`, want: `{"model":"m","messages":[]}`},
		{name: "null and empty identifiers stay", mode: "hash", endUser: o,
			in: `{"model":"m","messages":[],"safety_identifier":null,"prompt_cache_key":""}`, want: `{"model":"m","messages":[],"safety_identifier":null,"prompt_cache_key":""}`},
		{name: "an identifier that is not a string is not sent", mode: "hash", endUser: o,
			in: `{"model":"m","safety_identifier":{"id":"` + o + `"},"messages":[]}`, want: `{"model":"m","messages":[]}`},
		{name: "drop: every identifier removed, the rest kept", mode: "drop", endUser: o,
			in:   `{"user":"` + o + `", "safety_identifier":"` + o + `", "model":"m","messages":[],"prompt_cache_key":"k","metadata":{"openid":"` + o + `","shop":"s1","also":"` + o + `"}}`,
			want: `{"model":"m","messages":[],"metadata":{"shop":"s1"}}`},
		{name: "drop: identifiers last", mode: "drop", endUser: o,
			in: `{"model":"m","messages":[],"safety_identifier":"x","prompt_cache_key":"k"}`, want: `{"model":"m","messages":[]}`},
		{name: "drop: metadata naming only the user becomes empty", mode: "drop", endUser: o,
			in: `{"model":"m","messages":[],"metadata":{"openid":"` + o + `"}}`, want: `{"model":"m","messages":[],"metadata":{}}`},
		{name: "keep: as sent", mode: "keep", endUser: o,
			in:   `{"model":"m","messages":[],"safety_identifier":"` + o + `","prompt_cache_key":"k","metadata":{"openid":"` + o + `"}}`,
			want: `{"model":"m","messages":[],"safety_identifier":"` + o + `","prompt_cache_key":"k","metadata":{"openid":"` + o + `"}}`},
		// An end user is not always an OpenID: a bot that numbers its
		// users sends "user":"7". Inside a value, a short id names the
		// user only as a token of its own ("wx:7", "conv-7-1"): a date,
		// an order number or a count holding the digit is the bot's own.
		{name: "a short end user inside a value only as a token of its own", mode: "hash", endUser: "7",
			in:   `{"model":"m","messages":[],"metadata":{"day":"2024-07-17","order":"A7B","n":17,"conv":"wx:7","c":"conv-7-1","u":"7"}}`,
			want: `{"model":"m","messages":[],"metadata":{"day":"2024-07-17","order":"A7B","n":17,"conv":"wx:` + h("7") + `","c":"conv-` + h("7") + `-1","u":"` + h("7") + `"}}`},
		{name: "drop: a short end user inside a value only as a token of its own", mode: "drop", endUser: "7",
			in:   `{"model":"m","messages":[],"metadata":{"day":"2024-07-17","conv":"wx:7"}}`,
			want: `{"model":"m","messages":[],"metadata":{"day":"2024-07-17"}}`},
		{name: "nothing naming anyone: untouched", mode: "hash", endUser: o,
			in: `{"model":"m","messages":[],"metadata":{"k":"v"}}`, want: `{"model":"m","messages":[],"metadata":{"k":"v"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := Upstream{Client: "bot", EndUser: tc.endUser, Privacy: NewPrivacy(tc.mode, []byte(key))}
			in := []byte(tc.in)
			c, err := ReadChat(in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := RewriteChat(in, c, u)
			if err != nil || string(got) != tc.want {
				t.Errorf("RewriteChat:\ngot  %s, %v\nwant %s", got, err, tc.want)
			}
			// The same body on another /v1 path (embeddings, responses).
			p, err := ReadPassthrough(in)
			if err != nil {
				t.Fatal(err)
			}
			if got := RewritePassthrough(in, p, u); string(got) != tc.want {
				t.Errorf("RewritePassthrough:\ngot  %s\nwant %s", got, tc.want)
			}
			if string(in) != tc.in {
				t.Errorf("the client's body changed: %s", in)
			}
		})
	}
}

// TestRewritePassthroughWithoutChange: a passthrough body that names no
// end user is forwarded as the very bytes the bot sent, not a copy.
func TestRewritePassthroughWithoutChange(t *testing.T) {
	for _, body := range []string{`{"model":"e","input":"hi"}`, `["not","an","object"]`, `"text"`} {
		in := []byte(body)
		p, err := ReadPassthrough(in)
		if err != nil {
			t.Fatal(err)
		}
		got := RewritePassthrough(in, p, Upstream{Client: "bot", EndUser: "o1", Privacy: NewPrivacy("hash", []byte("k"))})
		if &got[0] != &in[0] || string(got) != body {
			t.Errorf("RewritePassthrough(%s) = %s, a copy", body, got)
		}
	}
}

// TestPrivacyIdentifier: an identifier's value under each mode; under hash
// the end user's OpenID gets what Forward sends as "user".
func TestPrivacyIdentifier(t *testing.T) {
	for _, tc := range []struct {
		mode, value, want string
		send              bool
	}{
		{"hash", "oUser", hashOf("k", "bot", "oUser"), true},
		{"hash", "", "", true},
		{"drop", "oUser", "", false},
		{"keep", "oUser", "oUser", true},
	} {
		p := NewPrivacy(tc.mode, []byte("k"))
		got, send := p.Identifier("bot", tc.value)
		if got != tc.want || send != tc.send {
			t.Errorf("%s %q: Identifier = %q, %v; want %q, %v", tc.mode, tc.value, got, send, tc.want, tc.send)
		}
		if fwd, ok := p.Forward("bot", tc.value); tc.value != "" && (fwd != got || ok != send) {
			t.Errorf("%s: Identifier %q, %v differs from Forward %q, %v", tc.mode, got, send, fwd, ok)
		}
	}
}

// TestRewriteChatIdentifiersAllocs: the request side runs on every request.
// A body naming the end user in "user", "safety_identifier",
// "prompt_cache_key" and "metadata", as current SDKs send it, costs no
// allocation beyond one naming it in "user" alone: the hash is computed
// once and every change lands in the one copy. (Skipped under the race
// detector, whose sync.Pool drops the pooled hash states at random.)
func TestRewriteChatIdentifiersAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	const o = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
	userOnly := []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"user":"` + o + `"}`)
	everywhere := []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"user":"` + o +
		`","safety_identifier":"` + o + `","prompt_cache_key":"` + o + `","metadata":{"openid":"` + o + `"}}`)
	priv := NewPrivacy("hash", []byte("k"))
	allocs := func(body []byte) float64 {
		return testing.AllocsPerRun(200, func() {
			c, err := ReadChat(body)
			if err != nil {
				t.Fatal(err)
			}
			out, err := RewriteChat(body, c, Upstream{Client: "bot", EndUser: c.User, Privacy: priv})
			if err != nil || bytes.Contains(out, []byte(o)) {
				t.Fatalf("RewriteChat = %s, %v", out, err)
			}
		})
	}
	base, all := allocs(userOnly), allocs(everywhere)
	if all > base {
		t.Errorf("a body naming the user in four places allocates %v times; in user alone %v", all, base)
	}
	if base > 3 {
		t.Errorf("ReadChat and RewriteChat allocate %v times; want 3 (model and user, the hash, the copy)", base)
	}
}

// FuzzIdentityNeverForwarded: whatever the body, once rewritten under hash
// or drop, no identifier member and no metadata string carries the end
// user, and the result is JSON.
func FuzzIdentityNeverForwarded(f *testing.F) {
	for _, b := range []string{
		`{"model":"m","messages":[],"user":"o1","safety_identifier":"o1","prompt_cache_key":"o1","metadata":{"a":"o1"}}`,
		`{"safety_identifier":"o1","model":"m","prompt_cache_key":"o\u0031","messages":[],"metadata":{"a":"o1","b":"o1","c":"x"}}`,
		`{"model":"m","messages":[],"metadata":{"a":"o1"},"user":null,"safety_identifier":["o1"]}`,
		` {"prompt_cache_key":"o1"} `,
	} {
		f.Add(b, "hash")
		f.Add(b, "drop")
	}
	f.Fuzz(func(t *testing.T, body, mode string) {
		if mode != "hash" && mode != "drop" {
			return
		}
		u := Upstream{Client: "bot", EndUser: "o1", Privacy: NewPrivacy(mode, []byte("k"))}
		check := func(what string, out []byte) {
			if !gjson.ValidBytes(out) {
				t.Fatalf("%s(%q) = %q: not JSON", what, body, out)
			}
			for _, path := range []string{"user", "safety_identifier", "prompt_cache_key"} {
				if v := gjson.GetBytes(out, path); v.Type == gjson.String && v.Str == "o1" {
					t.Fatalf("%s(%q) = %q: %s is the end user", what, body, out, path)
				}
			}
			gjson.GetBytes(out, "metadata").ForEach(func(k, v gjson.Result) bool {
				if v.Type == gjson.String && HoldsUser(v.Str, "o1") || HoldsUser(k.Str, "o1") {
					t.Fatalf("%s(%q) = %q: metadata %s is the end user", what, body, out, k.Str)
				}
				return true
			})
		}
		if c, err := ReadChat([]byte(body)); err == nil {
			out, err := RewriteChat([]byte(body), c, u)
			if err != nil {
				t.Fatal(err)
			}
			check("RewriteChat", out)
		}
		if p, err := ReadPassthrough([]byte(body)); err == nil && gjson.Parse(body).IsObject() {
			check("RewritePassthrough", RewritePassthrough([]byte(body), p, u))
		}
	})
}
