package jsonscan

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/jsonstr"
)

// validBefore is what Valid stands for: a body's validation in two passes,
// the nesting measured first so that gjson's recursion never goes deep.
func validBefore(s string, maxDepth int) bool {
	return !jsonstr.NestedOver(s, maxDepth) && gjson.Valid(s)
}

// validCases are edge cases of JSON validity: every kind of value, each
// broken at its edges, strings with stops at every offset of an 8-byte
// word, and nesting at and past the limit.
var validCases = []string{
	"", " ", "\t\n\r ", "{}", "[]", " {} ", "{} x", "{}{}", "{", "}", "[", "]", "{]", "[}",
	`{"a":1}`, `{"a":1,}`, `{,"a":1}`, `{"a" : 1 , "b" : [ 1 , 2 ] }`, `{"a"}`, `{"a":}`, `{"a" 1}`, `{a:1}`, `{'a':1}`,
	`{"a":1 "b":2}`, `[1,]`, `[,1]`, `[1 2]`, `[1,,2]`, `[ ]`, `[ 1 ]`, "[\n1\n]",
	`"x"`, `"`, `"\"`, `"\\"`, `"\/"`, `"\b\f\n\r\t"`, `"\a"`, `"\x41"`, `"\u00e9"`, `"\u00E9"`, `"\u00g9"`, `"\u00"`, `"\u"`,
	"\"a\x00b\"", "\"a\x1fb\"", "\"a\x7fb\"", "\"\xff\xfe\"", "\"\xc3\xa9\"", "\"\xe2\x80\xa8\"",
	`0`, `-0`, `00`, `01`, `-`, `-a`, `1.`, `1.5`, `.5`, `1e5`, `1E+5`, `1e-5`, `1e`, `1e+`, `-1.5e10`, `1.5.5`, `+1`, `0x10`, `1_0`,
	`true`, `false`, `null`, `tru`, `nul`, `fals`, `True`, `nulll`, `null x`, `[true,false,null]`, `{"a":nul}`,
	"\ufeff{}", "{\"a\":\"\xef\xbb\xbf\"}",
	`{"model":"gpt","messages":[{"role":"user","content":"hi"}],"user":"o\"x"}`,
	` { "a" : { "b" : [ 1 , { "c" : 2 } ] } , "\u0061" : "x" , "a\"b" : null , "" : true } `,
	`{"a":1,"b":2,"c":3,"d":4}`, `[{"a":1}]`, `{"a":{"b":1},"c":[{"d":2}]}x`,
	// A space is a string's own byte, one below it is not; a colon is not
	// any byte before a value; a \u takes four hex digits, not three.
	`"a b"`, `{"a b":" c ","d":["e f"]}`, "\"a\x1f b\"", `{"a";1}`, `{"a"-1}`, `{"b":{"a";1}}`, `[{"a"x1}]`,
	`"\u123"`, `{"\u123":1}`, `["\u123\"]`,
}

func init() {
	// A quote, a backslash escape and a control byte at each offset of
	// the words the string walk reads.
	for n := range 20 {
		p := strings.Repeat("a", n)
		validCases = append(validCases, `"`+p+`"`, `"`+p, `"`+p+`\"`, `"`+p+`\n"`, `"`+p+`\u12`, `"`+p+"\x01\"",
			`["`+p+`\\","b"]`, `"`+p+`\`, `{"`+p+`":"`+p+`\u0041`+p+`"}`)
	}
	// More members than a caller's array on the stack holds (ReadChat's
	// 32): those past it are found as the first are, a repeated one too.
	var many strings.Builder
	many.WriteString("{")
	for i := range 70 {
		fmt.Fprintf(&many, `"k%d":[%d],`, i%40, i)
	}
	validCases = append(validCases, many.String()+`"user":"a","user":"b"}`)
}

// checkValid holds Valid and ValidMembers to validBefore, and the members
// ValidMembers finds in a valid object to NextMember's: all of them when
// they fit in its buffer (two members, or a hundred), those that fit, and
// all false, when they do not, and its buffer never grown.
func checkValid(t *testing.T, s string, d int) {
	t.Helper()
	want := validBefore(s, d)
	if got := Valid(s, d); got != want {
		t.Errorf("Valid(%q, %d) = %v, want %v", s, d, got, want)
	}
	var next []Member
	if i := SkipSpace(s, 0); want && s[i] == '{' {
		for i++; ; {
			m, ok := NextMember(s, i, true)
			if !ok {
				break
			}
			next, i = append(next, m), m.End
		}
	}
	var small [2]Member
	var large [100]Member
	for _, buf := range [][]Member{small[:0], large[:0]} {
		ms, all, ok := ValidMembers(s, d, buf, nil)
		if ok != want {
			t.Errorf("ValidMembers(%q, %d) = %v, want %v", s, d, ok, want)
		}
		if !ok {
			continue
		}
		fit := min(len(next), cap(buf))
		if !slices.Equal(ms, next[:fit]) || all != (fit == len(next)) || cap(ms) != cap(buf) {
			t.Errorf("ValidMembers(%q, %d) into %d found %+v, all %v; NextMember %+v", s, d, cap(buf), ms, all, next)
		}
	}
}

func TestValidMatches(t *testing.T) {
	for _, s := range validCases {
		for _, d := range []int{0, 1, 2, 1000} {
			checkValid(t, s, d)
		}
	}
}

// TestValidDepth holds Valid to the nesting limit at its edge, with each
// kind of bracket, and past it by far: a body of brackets must be refused
// without recursing through it.
func TestValidDepth(t *testing.T) {
	const limit = 1000
	for _, c := range []struct {
		depth int
		open  string
		close string
	}{
		{limit, "[", "]"}, {limit + 1, "[", "]"}, {limit, `{"a":`, "}"}, {limit + 1, `{"a":`, "}"},
		{limit - 1, "[", "]"}, {1 << 20, "[", "]"},
	} {
		s := strings.Repeat(c.open, c.depth) + "1" + strings.Repeat(c.close, c.depth)
		want := c.depth <= limit
		if c.depth <= 2*limit {
			want = validBefore(s, limit)
		}
		if got := Valid(s, limit); got != want || want != (c.depth <= limit) {
			t.Errorf("Valid(%d × %q, %d) = %v, want %v", c.depth, c.open, limit, got, want)
		}
		if Valid(strings.Repeat(c.open, c.depth), limit) {
			t.Errorf("Valid of %d unclosed %q is true", c.depth, c.open)
		}
	}
}

func FuzzValid(f *testing.F) {
	for _, s := range validCases {
		f.Add(s, uint8(3))
	}
	f.Fuzz(func(t *testing.T, s string, d uint8) {
		checkValid(t, s, int(d))
	})
}

func BenchmarkValid(b *testing.B) {
	const body = `{"model":"gpt-test","messages":[` +
		`{"role":"system","content":"You are the shop assistant of a WeChat mini-program. Answer briefly."},` +
		`{"role":"user","content":"What plans do you offer, and how much is the premium one?"}],` +
		`"temperature":0.7,"max_tokens":256,"user":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}`
	b.Run("Valid", func(b *testing.B) {
		for b.Loop() {
			Valid(body, 1000)
		}
	})
	b.Run("NestedOver+gjson", func(b *testing.B) {
		for b.Loop() {
			validBefore(body, 1000)
		}
	})
}

// checkFields are the members checkCheck has ValidMembers check: the
// answer-like levels of testLevel (an unchecked field among them) and a
// chat request's messages, whose levels Fold as ReadChat's do.
var checkFields = func() []*Field {
	fn := &Level{Fold: true, Fields: []Field{{Name: "name"}, {Name: "arguments"}}}
	call := &Level{Fold: true, Fields: []Field{{Name: "id"}, {Name: "type"}, {Name: "function", Below: fn}}}
	part := &Level{Fold: true, Fields: []Field{{Name: "type"}, {Name: "text"}}}
	msg := &Level{Fold: true, Fields: []Field{{Name: "role"}, {Name: "content", Below: part, Elements: true},
		{Name: "tool_calls", Below: call, Elements: true}, {Name: "function_call", Below: fn}}}
	return []*Field{&testLevel.Fields[0], &testLevel.Fields[1], {Name: "messages", Below: msg, Elements: true}, {Name: "a"}}
}()

// checkCheck holds ValidMembers with a Check to ValidMembers without one
// and to AmbiguousValue of the first member of the Check's name as
// NextMember finds it: the walk that checks on validating is the two
// walks it stands for, in one.
func checkCheck(t *testing.T, s string, d int) {
	t.Helper()
	var plain, checked [4]Member
	wantMs, wantAll, wantOK := ValidMembers(s, d, plain[:0], nil)
	for _, f := range checkFields {
		c := Check{Field: f}
		ms, all, ok := ValidMembers(s, d, checked[:0], &c)
		if ok != wantOK || !slices.Equal(ms, wantMs) || all != wantAll {
			t.Fatalf("ValidMembers(%q, %d) checking %s = %+v, %v, %v; without %+v, %v, %v", s, d, f.Name, ms, all, ok, wantMs, wantAll, wantOK)
		}
		if !ok {
			continue
		}
		at := 0
		if i := SkipSpace(s, 0); s[i] == '{' && d >= 1 {
			for i++; ; {
				m, ok := NextMember(s, i, true)
				if !ok {
					break
				}
				if m.Key == f.Name {
					at = m.At
					break
				}
				i = m.End
			}
		}
		if c.At != at {
			t.Fatalf("ValidMembers(%q, %d) checked %s at %d; NextMember finds it at %d", s, d, f.Name, c.At, at)
		}
		if at != 0 && c.Ambiguous != AmbiguousValue(s, at, f, nil) {
			t.Fatalf("ValidMembers(%q, %d) checking %s: Ambiguous %v; AmbiguousValue %v", s, d, f.Name, c.Ambiguous, !c.Ambiguous)
		}
	}
}

// checkCases are texts whose checked members name their levels' members
// twice, in another case (escaped, folded by Unicode), or neither.
var checkCases = []string{
	`{"choices":[{"message":{"content":"a","tool_calls":[{"id":"c","function":{"name":"f","arguments":"{}"}}]}}],"usage":{"prompt_tokens":1}}`,
	`{"id":"x","id":"y","choices":[]}`, `{"choices":[{"content":1,"content":2,"message":{"prompt_tokens":1,"prompt_tokens":2}}]}`,
	`{"choices":[{"message":{"tool_calls":[{"function":{},"function":{}}]}}]}`,
	`{"choices":[{"message":{"tool_calls":[{"Function":{"arguments":1,"arguments":2}}]}}]}`,
	`{"choices":{"message":{},"message":{}}}`, `{"usage":[{"prompt_tokens":1,"prompt_tokens":2}]}`,
	`{"choices":[{"message":{"tool_calls":[],"tool\u005fcalls":[]}}]}`, `{"choices":[{"message":{"\u0043ontent":1}}]}`,
	`{"usage":{"prompt_tokens":1,"prompt_tokens":2}}`, `{"choices":[{"message":{}},{"message":{"content":"a","content":"b"}}]}`,
	`{"choices":[{"message":{"content":1,"content":2}}],"choices":[]}`, `{"choices":[],"choices":[{"message":{"content":1,"content":2}}]}`,
	`{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","Role":"system"}]}`,
	`{"messages":[{"role":"user","content":[{"type":"text","text":"a","text":"b"}]}]}`,
	`{"messages":[{"role":"user","content":[{"type":"text","teXt":"b"}]}]}`,
	"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"te\u017ft\":\"b\"}]}]}",
	`{"messages":[{"tool_calls":[{"id":"a","function":{"name":"f","name":"g"}}]}]}`,
	`{"messages":[1,"x",null,[{"role":1,"role":2}],{"role":"user"}],"messages":[{"role":1,"role":2}]}`,
	`{"mess\u0061ges":[{"role":1,"role":2}],"messages":[]}`, `{"messages":{"role":1,"role":2}}`,
	`{"messages":[{"role":"a","content":"b","role":"c"}],"x":[1,2`, `{"messages":[{"role":"a","role":"c"}],"x"}`,
	`{"messages":[{"function_call":{"name":"a","NAME":"b"}}]}`, `{"a":{"a":1,"a":2},"a":3}`,
	`{"messages":[{"content":[[{"type":1,"type":2}]]}]}`, `{"messages":[[{"role":1,"role":2}]]}`,
}

func TestValidMembersCheck(t *testing.T) {
	for _, s := range slices.Concat(validCases, checkCases, hostileCheckCases) {
		for _, d := range []int{0, 1, 2, 3, 999, 1000} {
			checkCheck(t, s, d)
		}
	}
	s := checkCases[0]
	if n := testing.AllocsPerRun(100, func() {
		var top [4]Member
		c := Check{Field: checkFields[0]}
		ValidMembers(s, 1000, top[:0], &c)
	}); n != 0 {
		t.Errorf("ValidMembers with a Check allocates %v times per text; want 0", n)
	}
}

// hostileCheckCases are bodies a bot may send to break the one walk:
// nesting at and past the limit inside the messages, more members than
// the top array holds, the messages twice or escaped and plain, a huge
// key, invalid UTF-8 and a BOM.
var hostileCheckCases = func() []string {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	var many strings.Builder
	for i := range 40 {
		many.WriteString(`"k` + strings.Repeat("x", i) + `":1,`)
	}
	huge := strings.Repeat("r", 1<<16)
	return []string{
		`{"messages":[{"content":` + deep(997) + `,"role":1,"role":2}]}`,
		`{"messages":[{"content":` + deep(998) + `,"role":1,"role":2}]}`,
		`{"messages":[{"content":[{"type":` + deep(996) + `,"type":2}]}]}`,
		`{` + many.String() + `"messages":[{"role":1,"role":2}]}`,
		`{` + many.String() + `"mess\u0061ges":[{"role":1,"role":2}],"messages":[]}`,
		`{"messages":[{"role":1}],"messages":[{"role":1,"role":2}]}`,
		`{"messages":[{"role":1,"role":2}],"mess\u0061ges":[{"role":1}]}`,
		`{"messages":[{"` + huge + `":1,"role":1,"ROLE":2}]}`,
		`{"messages":[{"role":"` + huge + `","Role":2}]}`,
		"{\"messages\":[{\"r\xffle\":1,\"role\":2,\"rol\xc5\":3,\"role\":4}]}",
		"{\"messages\":[{\"\xe2\x84\xaaole\":1,\"rol\xc5\xbf\":2}]}",
		"\xef\xbb\xbf{\"messages\":[{\"role\":1,\"role\":2}]}",
		`{"messages":[{"tool_calls":[{"function":{"name":1}},{"function":{"NAME":1}}]}]}`,
		`{"messages":[{"role":1},{"role":1},{"role":1,"content":[{"text":1},{"text":1,"TEXT":2}]}]}`,
	}
}()

func FuzzValidMembersCheck(f *testing.F) {
	for _, s := range slices.Concat(validCases, checkCases, hostileCheckCases) {
		f.Add(s, uint8(4))
		f.Add(s, uint8(255))
	}
	f.Fuzz(func(t *testing.T, s string, d uint8) {
		checkCheck(t, s, int(d))
	})
}

// goMaxDepth is encoding/json's nesting limit: it refuses a text that
// opens more arrays and objects at once (its scanner's maxNestingDepth).
const goMaxDepth = 10000

// goMember is a top-level member as encoding/json reads it: its key
// decoded and its value's bytes as written.
type goMember struct {
	key string
	raw string
}

// goMembers reads the top-level members of s, an object, as encoding/json's
// Decoder hands them one by one: every copy of a repeated key, in order.
func goMembers(s string) ([]goMember, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("reading the object's opening: %w", err)
	}
	var ms []goMember
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("reading a key: %w", err)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("reading the value of %q: %w", k, err)
		}
		ms = append(ms, goMember{k.(string), string(raw)})
	}
	return ms, nil
}

// goKey is KeyName(raw) as encoding/json decodes a key: each byte of
// invalid UTF-8 the text holds unescaped is U+FFFD there, where KeyName,
// as gjson, keeps it (no name paygate reads has one, so both miss it).
func goKey(raw string) string {
	k := KeyName(raw)
	if utf8.ValidString(k) {
		return k
	}
	var b strings.Builder
	for i := 0; i < len(k); {
		r, n := utf8.DecodeRuneInString(k[i:])
		b.WriteRune(r)
		i += n
	}
	return b.String()
}

// checkAsGo holds Valid to encoding/json's json.Valid, the parser of a
// Go-based provider or bot, and the members ValidMembers finds in a valid
// object, their keys decoded by KeyName, to those encoding/json reads
// there: what paygate accepts is what they accept, and a member it reads
// is the one they read, repeats and escaped keys included.
func checkAsGo(t *testing.T, s string) {
	t.Helper()
	want := json.Valid([]byte(s))
	if got := Valid(s, goMaxDepth); got != want {
		t.Fatalf("Valid(%q, %d) = %v; encoding/json's json.Valid says %v", s, goMaxDepth, got, want)
	}
	var buf [64]Member
	ms, all, ok := ValidMembers(s, goMaxDepth, buf[:0], nil)
	if ok != want {
		t.Fatalf("ValidMembers(%q, %d) = %v; encoding/json's json.Valid says %v", s, goMaxDepth, ok, want)
	}
	if !ok || s[SkipSpace(s, 0)] != '{' || !all {
		return
	}
	gms, err := goMembers(s)
	if err != nil {
		t.Fatalf("encoding/json refuses the members of %q, which it calls valid: %v", s, err)
	}
	if len(ms) != len(gms) {
		t.Fatalf("ValidMembers(%q) found %d members; encoding/json %d: %+v", s, len(ms), len(gms), gms)
	}
	for j, m := range ms {
		if k := goKey(m.Key); k != gms[j].key || s[m.At:m.End] != gms[j].raw {
			t.Fatalf("ValidMembers(%q) member %d is %q: %s; encoding/json reads %q: %s", s, j, k, s[m.At:m.End], gms[j].key, gms[j].raw)
		}
	}
}

// asGoCases are texts where JSON parsers are known to part: numbers at
// the grammar's edges, escapes and surrogates, control and invalid
// bytes, white space JSON does not allow, a BOM, trailing bytes, keys
// spelled with escapes, repeated and folded, and nesting at encoding/json's
// own limit.
var asGoCases = []string{
	`-0`, `-0.0e-0`, `1e400`, `-1e-400`, `1E+`, `01`, `-01`, `1.e1`, `.1`, `0x1`, `Infinity`, `NaN`, `-`, `1e01`,
	`"\ud800"`, `"\udc00\ud800"`, `"\ud83d\ude00"`, `"\u0000"`, `"\U0041"`, `"\'"`, "\"\xff\"", "\"\xed\xa0\x80\"", "\"\x7f\"",
	"\v1", "\f1", "\u00a01", "1\x00", "\ufeff{}", "{}\n", "{} ", "{}\x00", "[1]]", `{"a":1}}`,
	`{"\u0069d":1,"id":2}`, `{"id":1,"ID":2,"\u0049\u0044":3}`, `{"a\u0000b":1}`, "{\"k\xffy\":1,\"\\ud800\":2}",
	`{"a":{"b":[1,{"c":"}"}]},"d":"\\\"","e":[]}`, `{"":0,"":1}`,
	strings.Repeat("[", goMaxDepth) + strings.Repeat("]", goMaxDepth),
	strings.Repeat("[", goMaxDepth+1) + strings.Repeat("]", goMaxDepth+1),
	`{"a":` + strings.Repeat(`{"a":`, goMaxDepth-1) + "1" + strings.Repeat("}", goMaxDepth),
}

func TestValidAsGo(t *testing.T) {
	for _, s := range slices.Concat(validCases, checkCases, asGoCases) {
		checkAsGo(t, s)
	}
}

// FuzzValidAsGo is TestValidAsGo on any text: the validator and the member
// walk against encoding/json, where FuzzValid holds them to gjson.
func FuzzValidAsGo(f *testing.F) {
	for _, s := range slices.Concat(validCases, checkCases, asGoCases) {
		f.Add(s)
	}
	f.Fuzz(checkAsGo)
}
