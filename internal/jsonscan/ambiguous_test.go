package jsonscan

import (
	"strings"
	"testing"
)

// testLevel is a completion-like schema: choices hold a message whose
// tool_calls hold calls, whose function is unchecked but walked.
var testLevel = func() *Level {
	fn := &Level{Fields: []Field{{Name: "arguments"}}}
	call := &Level{Fields: []Field{{Name: "id"}, {Name: "function", Below: fn, Unchecked: true}}}
	msg := &Level{Fields: []Field{{Name: "content"}, {Name: "tool_calls", Below: call, Elements: true}}}
	choice := &Level{Fields: []Field{{Name: "message", Below: msg}}}
	usage := &Level{Fields: []Field{{Name: "prompt_tokens"}}}
	return &Level{Fields: []Field{{Name: "choices", Below: choice, Elements: true}, {Name: "usage", Below: usage}}}
}()

// TestAmbiguous: a member of a level named twice in one object, or in
// another case (its key decoded first), is found with its path; members
// not of the level, the same names at other levels, an unchecked member
// repeated, and values of the kind a field does not descend into are not.
func TestAmbiguous(t *testing.T) {
	const call = `{"id":"c","function":{"name":"f","arguments":"{}"}}`
	tests := []struct{ name, text, want string }{
		{"plain", `{"id":"x","choices":[{"message":{"content":"a","tool_calls":[` + call + `]}}],"usage":{"prompt_tokens":1}}`, ""},
		{"an unread member twice", `{"id":"x","id":"y","choices":[]}`, ""},
		{"a level's name at another level", `{"choices":[{"content":1,"content":2,"message":{"prompt_tokens":1,"prompt_tokens":2}}]}`, ""},
		{"an unchecked member twice", `{"choices":[{"message":{"tool_calls":[{"function":{},"function":{}}]}}]}`, ""},
		{"an unchecked member in another case", `{"choices":[{"message":{"tool_calls":[{"Function":{"arguments":1,"arguments":2}}]}}]}`, ""},
		{"an object where elements are read", `{"choices":{"message":{},"message":{}}}`, ""},
		{"an array where an object is read", `{"usage":[{"prompt_tokens":1,"prompt_tokens":2}]}`, ""},
		{"a string that looks like members", `{"choices":[{"message":{"content":"\"content\":1,\"content\":2"}}]}`, ""},
		{"no object", `[{"choices":[],"choices":[]}]`, ""},
		{"choices twice", `{"choices":[],"choices":[]}`, "choices (named twice)"},
		{"Usage", `{"choices":[],"Usage":{}}`, "Usage (usage spelled in another case)"},
		{"escaped, twice", `{"choices":[{"message":{"tool_calls":[],"tool\u005fcalls":[]}}]}`, "choices[].message.tool_calls (named twice)"},
		{"escaped, another case", `{"choices":[{"message":{"\u0043ontent":1}}]}`, "choices[].message.Content (content spelled in another case)"},
		{"in an object", `{"usage":{"prompt_tokens":1,"prompt_tokens":2}}`, "usage.prompt_tokens (named twice)"},
		{"in the second element", `{"choices":[{"message":{}},{"message":{"content":"a","content":"b"}}]}`, "choices[].message.content (named twice)"},
		{"in a call", `{"choices":[{"message":{"tool_calls":[` + call + `,{"id":"a","ID":"b"}]}}]}`, "choices[].message.tool_calls[].ID (id spelled in another case)"},
		{"below an unchecked member", `{"choices":[{"message":{"tool_calls":[{"function":{"arguments":"{}","arguments":"{}"}}]}}]}`,
			"choices[].message.tool_calls[].function.arguments (named twice)"},
		{"the first found", `{"choices":[{"message":{"content":1,"content":2}}],"choices":[]}`, "choices[].message.content (named twice)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d Dup
			got := ""
			if Ambiguous(tc.text, 0, testLevel, &d) {
				got = d.String()
			}
			if got != tc.want {
				t.Errorf("Ambiguous(%s) = %q; want %q", tc.text, got, tc.want)
			}
			if Ambiguous(tc.text, 0, testLevel, nil) != (tc.want != "") {
				t.Errorf("Ambiguous(%s) without a Dup = %v; want %v", tc.text, !(tc.want != ""), tc.want != "")
			}
		})
	}
	plain := tests[0].text
	if n := testing.AllocsPerRun(100, func() {
		var d Dup
		Ambiguous(plain, 0, testLevel, &d)
	}); n != 0 {
		t.Errorf("Ambiguous allocates %v times per text; want 0", n)
	}
}

// TestAmbiguousParamAndFold: a Dup's Param names the member with each
// array's element by its index, as OpenAI's errors do; a level that Folds
// takes a key that is a field's name under Unicode's simple folding (the
// long s, the Kelvin sign), as Go's encoding/json does, for another case
// of it, where one that does not (the answers' levels) reads such a key
// as another member.
func TestAmbiguousParamAndFold(t *testing.T) {
	part := &Level{Fold: true, Fields: []Field{{Name: "text"}, {Name: "kind"}}}
	msg := &Level{Fold: true, Fields: []Field{{Name: "content", Below: part, Elements: true}, {Name: "tools"}}}
	folding := &Level{Fields: []Field{{Name: "messages", Below: msg, Elements: true, Unchecked: true}}}
	plainMsg := &Level{Fields: []Field{{Name: "content", Below: part, Elements: true}, {Name: "tools"}}}
	plain := &Level{Fields: []Field{{Name: "messages", Below: plainMsg, Elements: true, Unchecked: true}}}
	tests := []struct {
		name, text          string
		lv                  *Level
		param, path, string string
	}{
		{"in the third element", `{"messages":[{},{"content":"a"},{"content":"b","content":"c"}]}`, folding,
			"messages[2].content", "messages[].", "messages[].content (named twice)"},
		{"in a part", `{"messages":[{"content":[{"text":"a"}]},{"content":[1,{"text":"a"},{"text":"a","Text":"b"}]}]}`, folding,
			"messages[1].content[2].Text", "messages[].content[].", "messages[].content[].Text (text spelled in another case)"},
		{"a long s", `{"messages":[{"tools":1,"tool\u017f":2}]}`, folding, "messages[0].toolſ", "messages[].", "messages[].toolſ (tools spelled in another case)"},
		{"a Kelvin sign", `{"messages":[{"content":[{"kind":1,"\u212aind":2}]}]}`, folding, "messages[0].content[0].\u212aind", "messages[].content[].", ""},
		{"a long s, not folded", `{"messages":[{"tools":1,"tool\u017f":2}]}`, plain, "", "", ""},
		{"a long s for another letter", `{"messages":[{"tools":1,"\u017fools":2}]}`, folding, "", "", ""},
		{"a wide key shorter than a name", `{"messages":[{"tool":1,"toé":2}]}`, folding, "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d Dup
			found := Ambiguous(tc.text, 0, tc.lv, &d)
			if found != (tc.param != "") {
				t.Fatalf("Ambiguous(%s) = %v (%s); want %v", tc.text, found, d.String(), tc.param != "")
			}
			if !found {
				return
			}
			if d.Param() != tc.param || d.Path() != tc.path || tc.string != "" && d.String() != tc.string {
				t.Errorf("Ambiguous(%s): Param %q, Path %q, String %q; want %q, %q, %q", tc.text, d.Param(), d.Path(), d.String(), tc.param, tc.path, tc.string)
			}
		})
	}
	// AmbiguousValue walks a member's value alone, its path from the
	// field: the object's other members are not looked at.
	field := &folding.Fields[0]
	for _, tc := range []struct{ text, param string }{
		{`[{},{"content":[{"text":"a","text":"b"}]}]`, "messages[1].content[0].text"},
		{`[{"tools":1,"Tools":2}]`, "messages[0].Tools"},
		{`[{"content":"a"},1,"x",[{"tools":1,"tools":2}]]`, ""},
		{`{"content":1,"content":2}`, ""},
	} {
		var d Dup
		if got := AmbiguousValue(tc.text, 0, field, &d); got != (tc.param != "") || got && d.Param() != tc.param {
			t.Errorf("AmbiguousValue(%s) = %v, %q; want %q", tc.text, got, d.Param(), tc.param)
		}
	}
	text := `{"messages":[{"content":[{"text":"a","kind":"b"}],"tools":[],"tool_choice":"auto"}]}`
	if n := testing.AllocsPerRun(100, func() {
		var d Dup
		Ambiguous(text, 0, folding, &d)
	}); n != 0 {
		t.Errorf("Ambiguous of a Fold level allocates %v times per text; want 0", n)
	}
}

// FuzzStringEnd checks StringEnd, which reads a string's first
// shortString bytes eight at a time and searches the rest, against the
// plain definition, around the switch between the two especially.
func FuzzStringEnd(f *testing.F) {
	long := strings.Repeat("a", shortString-1)
	for _, s := range []string{`abc"`, `a\"b"`, `\\"`, `\`, long + `\"x"`, long + `\\"`, long + `a\`, long + long + `"`, long + `\` + long + `"`} {
		f.Add(s, 0)
	}
	// A string of eight bytes or more is read a word at a time: a quote
	// or an escape in each word of the first shortString bytes, at its
	// first and last byte, and bytes that are '"' or '\\' with the high
	// bit set (which the word test must not take for either).
	for _, at := range []int{0, 7, 8, 15, 16, shortString - 1, shortString, shortString + 1} {
		a := strings.Repeat("\xa2\xdc", shortString)
		f.Add(a[:at]+`"`+a, 0)
		f.Add(a[:at]+`\"x"`+a, 0)
		f.Add("x"+a[:at]+`"`+a, 1)
	}
	f.Fuzz(func(t *testing.T, s string, from int) {
		if from < 0 || from > len(s) {
			return
		}
		want := -1
		for i := from; i < len(s); i++ {
			if s[i] == '\\' {
				i++
			} else if s[i] == '"' {
				want = i
				break
			}
		}
		if got := StringEnd(s, from); got != want {
			t.Fatalf("StringEnd(%q, %d) = %d, want %d", s, from, got, want)
		}
	})
}

// TestASCII: ascii, which Member asks of a Fold level's longer keys and
// reads eight bytes at a time, finds a byte past ASCII at each position
// of a key of each length around the words, in the first word, the
// second and the tail, of each value from 0x80 to 0xff, among letters
// and among NULs (which a word test of "> 0x80" would miss).
func TestASCII(t *testing.T) {
	for n := 0; n <= 17; n++ {
		if k := strings.Repeat("\x7f", n); !ascii(k) {
			t.Errorf("ascii(%q) = false; want true", k)
		}
		for at := 0; at < n; at++ {
			for _, fill := range []string{"a", "\x00"} {
				for _, c := range []byte{0x80, 0xbf, 0xc5, 0xff} {
					k := []byte(strings.Repeat(fill, n))
					k[at] = c
					if ascii(string(k)) {
						t.Errorf("ascii(%q) = true; want false (0x%x at %d of %d)", k, c, at, n)
					}
				}
			}
		}
	}
}
