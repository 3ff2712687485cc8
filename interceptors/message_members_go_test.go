package interceptors

import (
	"encoding/json"
	"testing"

	"github.com/tidwall/gjson"
)

// goMembers is every member of a message, a content part, a tool call and
// its function or custom that paygate reads, as a Go-based provider's
// encoding/json decodes them into a struct: the last copy of a member, its
// key matched under Unicode's simple case folding. The levels' names fold
// to no other level's, so one struct serves them all.
type goMembers struct {
	Role       json.RawMessage `json:"role"`
	Content    json.RawMessage `json:"content"`
	ToolCallID json.RawMessage `json:"tool_call_id"`
	ToolCalls  json.RawMessage `json:"tool_calls"`
	Type       json.RawMessage `json:"type"`
	Text       json.RawMessage `json:"text"`
	ID         json.RawMessage `json:"id"`
	Function   json.RawMessage `json:"function"`
	Custom     json.RawMessage `json:"custom"`
	Name       json.RawMessage `json:"name"`
	Arguments  json.RawMessage `json:"arguments"`
	Input      json.RawMessage `json:"input"`
}

func (m *goMembers) get(name string) json.RawMessage {
	return map[string]json.RawMessage{"role": m.Role, "content": m.Content, "tool_call_id": m.ToolCallID, "tool_calls": m.ToolCalls,
		"type": m.Type, "text": m.Text, "id": m.ID, "function": m.Function, "custom": m.Custom,
		"name": m.Name, "arguments": m.Arguments, "input": m.Input}[name]
}

// FuzzReadChatMessagesReadAsGo: whatever messages ReadChat lets through,
// each member paygate reads of a message, a content part, a tool call and
// its function or custom is the same value to paygate's gjson (the first
// copy, the exact name), to Go's encoding/json decoding a struct (the last
// copy, any case, "ſ" for "s" and "K" for "k") and to a parser that keeps
// the last copy under its exact name (Python's json, JSON.parse; here a
// Go map). FuzzReadChat checks ReadChat against a reference written to
// the same rule; this one checks the rule against the parsers it is for.
func FuzzReadChatMessagesReadAsGo(f *testing.F) {
	for _, b := range []string{
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"u"}}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a","Text":"b"}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a","te\u0078t":"b"}]}]}`,
		`{"model":"m","messages":[{"role":"assistant","content":[{"TYPE":"thinking","type":"text","text":"a"}]}]}`,
		`{"model":"m","messages":[{"role":"assistant","tool_calls":[],"tool_call\u017f":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}]}`,
		`{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{}","argument\u017f":"{}"}}]}]}`,
		`{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"a","type":"custom","custom":{"name":"f","input":"x","\u017fnput":"y","na\u212ae":"g"}}]}]}`,
		`{"model":"m","messages":[{"role":"tool","tool_call_id":"a","content":"x","tool_call_id":"b"},{"role":"user","Role":"system","content":"y"}]}`,
	} {
		f.Add(b)
	}
	levels := map[string][]string{
		"message":  {"role", "content", "tool_call_id", "tool_calls"},
		"part":     {"type", "text"},
		"call":     {"id", "type", "function", "custom"},
		"function": {"name", "arguments"},
		"custom":   {"name", "input"},
	}
	f.Fuzz(func(t *testing.T, body string) {
		if _, err := ReadChat([]byte(body)); err != nil {
			return
		}
		// same compares the members of level that the object o, raw as
		// encoding/json holds it, names, and walks the levels below.
		var same func(level string, o gjson.Result, raw json.RawMessage)
		same = func(level string, o gjson.Result, raw json.RawMessage) {
			if !o.IsObject() {
				return
			}
			var st goMembers
			var last map[string]json.RawMessage
			if json.Unmarshal(raw, &st) != nil || json.Unmarshal(raw, &last) != nil {
				return // not an object
			}
			for _, name := range levels[level] {
				v := o.Get(name)
				if v.Raw != string(st.get(name)) || v.Raw != string(last[name]) {
					t.Fatalf("ReadChat took %s: %s's %q is %s to paygate, %s to encoding/json, %s to a last-copy parser",
						body, level, name, v.Raw, st.get(name), last[name])
				}
				below := map[string]string{"content": "part", "tool_calls": "call", "function": "function", "custom": "custom"}[name]
				if below == "" {
					continue
				}
				if v.IsArray() {
					var els []json.RawMessage
					if json.Unmarshal(last[name], &els) != nil {
						continue
					}
					for i, el := range v.Array() {
						same(below, el, els[i])
					}
				} else {
					same(below, v, last[name])
				}
			}
		}
		msgs := gjson.Get(body, "messages")
		var els []json.RawMessage
		if json.Unmarshal([]byte(msgs.Raw), &els) != nil {
			return
		}
		for i, m := range msgs.Array() {
			same("message", m, els[i])
		}
	})
}
