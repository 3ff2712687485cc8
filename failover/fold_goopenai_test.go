package failover

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode"

	openai "github.com/sashabaranov/go-openai"
)

// TestPassedKeysNotReadByGoOpenAI holds completionLevel to go-openai's
// own decoding (encoding/json, which folds keys by Unicode's simple
// folding): every key that spells a member paygate reads in another way
// (each letter in upper case, ſ for s, the Kelvin sign for k, the dotted
// and dotless i, escaped or not, all letters at once) beside the member
// or alone, in an answer ambiguousMember and scanAnswer let pass, must
// not be read by go-openai as that member: the answer with the key
// renamed to one nobody reads decodes the same. A key the check misses
// would give a Go bot a call, text, finish or usage paygate never read.
// The calls' "function" and "custom" are left out: the proxy's callName
// refuses those, not this check.
func TestPassedKeysNotReadByGoOpenAI(t *testing.T) {
	const base = `{"id":"c0","object":"chat.completion","created":1,"model":"m0",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"A","reasoning_content":"R",` +
		`"tool_calls":[{"id":"call_a","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3,"prompt_tokens_details":{"cached_tokens":0}}}`
	members := []struct{ member, other string }{
		{`"choices":`, `[{"index":0,"message":{"role":"assistant","content":"B"},"finish_reason":"length"}]`},
		{`"usage":`, `{"prompt_tokens":900}`},
		{`"index":`, `5`},
		{`"message":`, `{"role":"assistant","content":"B"}`},
		{`"finish_reason":`, `"length"`},
		{`"content":`, `"B"`},
		{`"reasoning_content":`, `"S"`},
		{`"tool_calls":`, `[{"id":"call_b","type":"function","function":{"name":"g","arguments":"{}"}}]`},
		{`"id":"call_a"`, `"call_b"`},
		{`"type":`, `"x"`},
		{`"arguments":`, `"{\"x\":1}"`},
		{`"prompt_tokens":`, `900`},
		{`"completion_tokens":`, `900`},
		{`"total_tokens":`, `900`},
		{`"cached_tokens":`, `900`},
	}
	decode := func(doc string) openai.ChatCompletionResponse {
		t.Helper()
		var r openai.ChatCompletionResponse
		if err := json.Unmarshal([]byte(doc), &r); err != nil {
			t.Fatalf("go-openai cannot read %s: %v", doc, err)
		}
		return r
	}
	refused, passed := 0, 0
	for _, m := range members {
		at := strings.Index(base, m.member)
		if at < 0 {
			t.Fatalf("%s is not in the answer", m.member)
		}
		name := m.member[1 : strings.Index(m.member[1:], `"`)+1]
		end := at + len(m.member)
		if m.member[len(m.member)-1] != ':' { // "id":"call_a": the id's value
			end = at + len(name) + 3
		}
		valueEnd := end + len(skipJSONValue(base[end:]))
		for _, key := range otherSpellings(name) {
			for _, shape := range []struct{ name, member string }{
				{"beside", base[at:valueEnd] + `,"` + key + `":` + m.other},
				{"alone", `"` + key + `":` + m.other},
			} {
				doc := base[:at] + shape.member + base[valueEnd:]
				checkScanAnswer(t, []byte(doc))
				if ambiguousMember([]byte(doc)) != "" {
					refused++
					continue
				}
				passed++
				unread := base[:at] + strings.Replace(shape.member, `"`+key+`":`, `"x_unread":`, 1) + base[valueEnd:]
				if got, want := decode(doc), decode(unread); !reflect.DeepEqual(got, want) {
					t.Errorf("%s %q (%s) passes the check, and go-openai reads it as %s: %+v; want %+v", shape.name, key, name, name, got, want)
				}
			}
		}
	}
	if refused == 0 || passed == 0 {
		t.Errorf("%d answers refused, %d passed; want some of each", refused, passed)
	}
}

// otherSpellings are ways to spell name other than itself: each letter
// in upper case, each s as ſ, each k as the Kelvin sign, each i as the
// dotted capital and dotless small i, each of those escaped, and all of
// them at once.
func otherSpellings(name string) []string {
	var out []string
	all := []rune(name)
	for i, c := range name {
		var alts []string
		if unicode.IsLower(c) {
			alts = append(alts, string(unicode.ToUpper(c)))
			all[i] = unicode.ToUpper(c)
		}
		switch c {
		case 's':
			alts = append(alts, "ſ", `\u017f`, `\u017F`)
			all[i] = 'ſ'
		case 'k':
			alts = append(alts, "\u212a", `\u212a`)
			all[i] = '\u212a'
		case 'i':
			alts = append(alts, "\u0130", "\u0131", `\u0131`)
		}
		for _, a := range alts {
			out = append(out, name[:i]+a+name[i+1:])
		}
	}
	return append(out, string(all))
}

// skipJSONValue is the JSON value at the start of s, of the answer above.
func skipJSONValue(s string) string {
	var v json.RawMessage
	if err := json.NewDecoder(strings.NewReader(s)).Decode(&v); err != nil {
		panic(err)
	}
	return string(v)
}
