package interceptors

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/jsonscan"
)

// TestUserInTextRewritten: the end user's OpenID where no identity member
// names it (a message's name, a system prompt, a content part, a tool's
// arguments and result, an embedding's input, any key) reaches the
// provider as the user's hash under hash, the same one "user" gets, as
// DroppedUser under drop, and as sent under keep (SPEC 2.2). Every other
// byte of the body stays as the bot sent it; a string with escapes that
// holds the user is written back whole.
func TestUserInTextRewritten(t *testing.T) {
	const (
		key = "text-key"
		o   = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" // 28 bytes, as WeChat's
	)
	ho := hashOf(key, "bot", o)
	tests := []struct {
		name, mode, endUser, in, want string
	}{
		{name: "name, system prompt, content part, tool arguments and result", mode: "hash", endUser: o,
			in: `{"model":"m","user":"` + o + `","messages":[{"role":"system","content":"You serve ` + o + `."},` +
				`{"role":"user","name":"` + o + `","content":[{"type":"text","text":"I am ` + o + ` and ` + o + `"}]},` +
				`{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"openid\":\"` + o + `\"}"}}]},` +
				`{"role":"tool","tool_call_id":"c1","content":"{\"openid\":\"` + o + `\",\"tier\":\"free\"}"}]}`,
			want: `{"model":"m","user":"` + ho + `","messages":[{"role":"system","content":"You serve ` + ho + `."},` +
				`{"role":"user","name":"` + ho + `","content":[{"type":"text","text":"I am ` + ho + ` and ` + ho + `"}]},` +
				`{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"openid\":\"` + ho + `\"}"}}]},` +
				`{"role":"tool","tool_call_id":"c1","content":"{\"openid\":\"` + ho + `\",\"tier\":\"free\"}"}]}`},
		{name: "the header's user, no identity member", mode: "hash", endUser: o,
			in:   `{"model":"m","messages":[{"role":"user","name":"` + o + `","content":"hi"}]}`,
			want: `{"model":"m","messages":[{"role":"user","name":"` + ho + `","content":"hi"}]}`},
		{name: "inside a longer token", mode: "hash", endUser: o,
			in:   `{"model":"m","messages":[{"role":"user","content":"conv-` + o + `-1"}]}`,
			want: `{"model":"m","messages":[{"role":"user","content":"conv-` + ho + `-1"}]}`},
		{name: "as a key", mode: "hash", endUser: o,
			in:   `{"model":"m","messages":[],"extra":{"` + o + `":1}}`,
			want: `{"model":"m","messages":[],"extra":{"` + ho + `":1}}`},
		{name: "spelled with escapes: the string written back whole", mode: "hash", endUser: o,
			in:   `{"model":"m","messages":[{"role":"user","content":"id \u006fUpF8uMuAJO_M2pxb1Q9zNjWeS6o\n\u003cok\u003e"}]}`,
			want: `{"model":"m","messages":[{"role":"user","content":"id ` + ho + `\n<ok>"}]}`},
		{name: "its digits and dash escaped", mode: "hash", endUser: o,
			in:   `{"model":"m","messages":[],"input":"oUpF\u0038uMuAJO\u005fM2pxb1Q\u0039zNjWeS6o"}`,
			want: `{"model":"m","messages":[],"input":"` + ho + `"}`},
		{name: "after an escaped backslash", mode: "hash", endUser: o,
			in:   `{"model":"m","messages":[],"input":"C:\\` + o + `"}`,
			want: `{"model":"m","messages":[],"input":"C:\\` + ho + `"}`},
		{name: "escapes of other characters: untouched", mode: "hash", endUser: o,
			in:   `{"model":"m","messages":[],"input":"a\n\"b\"\u003c\u4e2d ` + o[:20] + `"}`,
			want: `{"model":"m","messages":[],"input":"a\n\"b\"\u003c\u4e2d ` + o[:20] + `"}`},
		{name: "drop: a placeholder in the text", mode: "drop", endUser: o,
			in:   `{"model":"m","user":"` + o + `","messages":[{"role":"user","name":"` + o + `","content":"I am \u006fUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}]}`,
			want: `{"model":"m","messages":[{"role":"user","name":"` + DroppedUser + `","content":"I am ` + DroppedUser + `"}]}`},
		{name: "keep: as sent", mode: "keep", endUser: o,
			in:   `{"model":"m","messages":[{"role":"user","name":"` + o + `","content":"I am ` + o + `"}]}`,
			want: `{"model":"m","messages":[{"role":"user","name":"` + o + `","content":"I am ` + o + `"}]}`},
		// A short end user id is a count or a price in text as often as
		// the user: only the identity members name it.
		{name: "a short end user: text untouched", mode: "hash", endUser: "7",
			in:   `{"model":"m","user":"7","messages":[{"role":"user","name":"7","content":"7 items, 7"}]}`,
			want: `{"model":"m","user":"` + hashOf(key, "bot", "7") + `","messages":[{"role":"user","name":"7","content":"7 items, 7"}]}`},
		// An id of digits inside a number: a string there would change
		// its type, and it is left.
		{name: "a long numeric id inside a number stays a number", mode: "hash", endUser: "12345678901234567",
			in:   `{"model":"m","messages":[],"seed":123456789012345678,"input":"u 12345678901234567"}`,
			want: `{"model":"m","messages":[],"seed":123456789012345678,"input":"u ` + hashOf(key, "bot", "12345678901234567") + `"}`},
		{name: "no end user: untouched", mode: "hash", endUser: "",
			in:   `{"model":"m","messages":[{"role":"user","name":"` + o + `","content":"hi"}]}`,
			want: `{"model":"m","messages":[{"role":"user","name":"` + o + `","content":"hi"}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := Upstream{Client: "bot", EndUser: tc.endUser, Privacy: NewPrivacy(tc.mode, []byte(key))}
			in := []byte(tc.in)
			if !gjson.ValidBytes(in) || !gjson.Valid(tc.want) {
				t.Fatalf("the case's JSON is not valid")
			}
			c, err := ReadChat(in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := RewriteChat(in, c, u)
			if err != nil || string(got) != tc.want {
				t.Errorf("RewriteChat:\ngot  %s, %v\nwant %s", got, err, tc.want)
			}
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

// TestUserTextWithoutUserAllocs: nearly every body holds no end user in
// its text; telling so (one search, one pass over its escapes) allocates
// nothing and returns the very bytes.
func TestUserTextWithoutUserAllocs(t *testing.T) {
	body := []byte(`{"model":"m","user":"u_0123","messages":[{"role":"system","content":"Be brief.\nUse \"quotes\" and \u003cb\u003e."},{"role":"user","content":"hello \u4e2d\u6587"}]}`)
	u := Upstream{Client: "bot", EndUser: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", Privacy: NewPrivacy("hash", []byte("k"))}
	var got []byte
	if n := testing.AllocsPerRun(100, func() { got = textWithoutUser(body, u, "") }); n != 0 {
		t.Errorf("%v allocations; want none", n)
	}
	if &got[0] != &body[0] {
		t.Errorf("a copy of a body holding no end user")
	}
}

// BenchmarkTextWithoutUser: the text search on the load benchmark's
// request body (its "user" already hashed), which holds no end user: the
// cost every request of a known user pays.
func BenchmarkTextWithoutUser(b *testing.B) {
	body := []byte(`{"model":"gpt-test","messages":[` +
		`{"role":"system","content":"You are the shop assistant of a WeChat mini-program. Answer briefly."},` +
		`{"role":"user","content":"What plans do you offer, and how much is the premium one?"}],` +
		`"temperature":0.7,"max_tokens":256,"user":"u_0123456789abcdef0123456789abcdef"}`)
	u := Upstream{Client: "bot", EndUser: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", Privacy: NewPrivacy("hash", []byte("k"))}
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		textWithoutUser(body, u, "")
	}
}

// TestContainsUser: the search anchored on the id's rarest byte finds what
// strings.Contains finds, wherever that byte is and however often the
// text has it.
func TestContainsUser(t *testing.T) {
	const o = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
	for _, s := range []string{
		"", "o", o, o[:27], o[1:], "x" + o, o + "x", "UUUU" + o[:20] + "U" + o + "U",
		"oUpF8uMuAJO_M2pxb1Q9zNjWeS6", "the premium one, UpF8 and " + o[:27] + "!",
	} {
		for _, user := range []string{o, "abcdefghijklmnopq", "0123456789012345", "ABCDEFGHIJKLMNOPQRS"} {
			if got, want := containsUser(s, user), strings.Contains(s, user); got != want {
				t.Errorf("containsUser(%q, %q) = %v; want %v", s, user, got, want)
			}
		}
	}
}

// FuzzTextWithoutUser: whatever valid JSON body, the rewrite is valid JSON
// and no string of it, decoded, holds the end user (an OpenID, which no
// number or literal can hold).
func FuzzTextWithoutUser(f *testing.F) {
	const o = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
	for _, s := range []string{
		`{"a":"` + o + `"}`, `{"` + o + `":[1,"x` + o + `y"]}`, `["\u006fUpF8uMuAJO_M2pxb1Q9zNjWeS6o"]`,
		`{"a":"\\` + o + `\n"}`, `"` + o + o + `"`, `{"a":"oUpF8uMuAJO\u005fM2pxb1Q9zNjWeS6o\ud83d\ude00"}`,
		`{"a":"` + o + `", "b" : ["the \u0041PI at \/v1 is up\n, said the bot", 1e2, "` + o[:27] + `"]}`,
	} {
		f.Add(s)
	}
	u := Upstream{Client: "bot", EndUser: o, Privacy: NewPrivacy("hash", []byte("k"))}
	f.Fuzz(func(t *testing.T, in string) {
		var v any
		if json.Unmarshal([]byte(in), &v) != nil || !gjson.Valid(in) {
			return
		}
		out := textWithoutUser([]byte(in), u, "")
		var w any
		if err := json.Unmarshal(out, &w); err != nil {
			t.Fatalf("%s became %s: %v", in, out, err)
		}
		var b strings.Builder
		e := json.NewEncoder(&b)
		e.SetEscapeHTML(false)
		_ = e.Encode(w)
		if strings.Contains(b.String(), o) {
			t.Fatalf("%s became %s, which holds the user", in, out)
		}
		// Lossless: every byte outside the strings, and every string not
		// holding the user once decoded, reaches the provider as sent.
		ins, outs := rawStrings(in), rawStrings(string(out))
		if len(ins) != len(outs) {
			t.Fatalf("%s became %s: %d strings, not %d", in, out, len(outs), len(ins))
		}
		for i := range ins {
			if ins[i].between != outs[i].between {
				t.Fatalf("%s became %s: %q outside its strings became %q", in, out, ins[i].between, outs[i].between)
			}
			if !HoldsUser(stringValue(ins[i].str), o) && ins[i].str != outs[i].str {
				t.Fatalf("%s became %s: %s, which holds no user, became %s", in, out, ins[i].str, outs[i].str)
			}
		}
	})
}

// rawSegment is a JSON string as written, quotes included, with the bytes
// before it since the previous string (the last has str "").
type rawSegment struct{ between, str string }

// rawStrings cuts the valid JSON s into its strings and the bytes between.
func rawStrings(s string) []rawSegment {
	var segs []rawSegment
	last := 0
	for i := 0; ; {
		q := strings.IndexByte(s[i:], '"')
		if q < 0 {
			break
		}
		q += i
		end := jsonscan.StringEnd(s, q+1)
		segs = append(segs, rawSegment{s[last:q], s[q : end+1]})
		i, last = end+1, end+1
	}
	return append(segs, rawSegment{between: s[last:]})
}
