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

// FuzzStringEnd checks StringEnd, which reads short strings byte by byte
// and searches long ones, against the plain definition, around the switch
// between the two especially.
func FuzzStringEnd(f *testing.F) {
	long := strings.Repeat("a", shortString-1)
	for _, s := range []string{`abc"`, `a\"b"`, `\\"`, `\`, long + `\"x"`, long + `\\"`, long + `a\`, long + long + `"`, long + `\` + long + `"`} {
		f.Add(s, 0)
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
