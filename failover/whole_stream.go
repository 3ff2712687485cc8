package failover

import (
	"bytes"
	"strconv"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// completionEvents renders a whole chat completion, the answer of a
// provider that ignored "stream": true, as the event stream it would have
// sent: for each choice, a chunk whose delta is the choice's message (its
// tool calls numbered by "index", as stream deltas are) with its logprobs,
// then a chunk with its finish_reason; a chunk of the usage alone (choices
// empty, as include_usage sends it, which the proxy withholds from a client
// that did not ask); then [DONE]. Every other member of the completion (id,
// created, model, system_fingerprint…) is in each chunk, its object
// "chat.completion.chunk". It reports false for what is no whole chat
// completion (another path, no choices, a choice without a message or a
// finish_reason): such a body is malformed as the stream's answer, and a
// choice without its finish would end the stream as a cut one.
//
// A line break in the completion (an indented one, a Python server's
// json.dumps(indent=2)) is whitespace between its tokens, valid JSON
// holding none in a string: each is sent as a space, as an event's data
// line can hold none. Kept, the first chunk's data was the completion's
// first line, malformed, and the answer failed over, asked again and of
// the next target, each billed.
func completionEvents(path string, data []byte) ([]byte, bool) {
	if !isChatPath(path) || !isJSONObject(data) {
		return nil, false
	}
	if bytes.ContainsAny(data, "\r\n") {
		data = bytes.Clone(data)
		for i, c := range data {
			if c == '\r' || c == '\n' {
				data[i] = ' '
			}
		}
	}
	doc := gjson.ParseBytes(data)
	choices := doc.Get("choices")
	if !choices.IsArray() || len(choices.Array()) == 0 {
		return nil, false
	}
	base, err := sjson.DeleteBytes(bytes.Clone(data), "choices")
	if err == nil {
		base, err = sjson.DeleteBytes(base, "usage")
	}
	if err == nil {
		base, err = sjson.SetBytes(base, "object", "chat.completion.chunk")
	}
	if err != nil {
		return nil, false
	}
	var out []byte
	event := func(choices []byte, usage string) bool {
		c, err := sjson.SetRawBytes(bytes.Clone(base), "choices", choices)
		if err == nil && usage != "" {
			c, err = sjson.SetRawBytes(c, "usage", []byte(usage))
		}
		if err != nil {
			return false
		}
		out = append(append(append(out, "data: "...), c...), "\n\n"...)
		return true
	}
	ok, n := true, -1
	choices.ForEach(func(_, ch gjson.Result) bool {
		n++
		msg, fr := ch.Get("message"), ch.Get("finish_reason")
		if !msg.IsObject() || fr.Type != gjson.String || fr.Str == "" {
			ok = false
			return false
		}
		index := ch.Get("index").Raw
		if index == "" {
			index = strconv.Itoa(n)
		}
		delta := []byte(msg.Raw)
		var err error
		for j := range len(msg.Get("tool_calls").Array()) {
			if delta, err = sjson.SetBytes(delta, "tool_calls."+strconv.Itoa(j)+".index", j); err != nil {
				ok = false
				return false
			}
		}
		shown := []byte(`[{"index":` + index + `,"delta":`)
		shown = append(shown, delta...)
		if lp := ch.Get("logprobs"); lp.Exists() {
			shown = append(append(shown, `,"logprobs":`...), lp.Raw...)
		}
		shown = append(shown, `,"finish_reason":null}]`...)
		ok = event(shown, "") && event([]byte(`[{"index":`+index+`,"delta":{},"finish_reason":`+fr.Raw+`}]`), "")
		return ok
	})
	if !ok {
		return nil, false
	}
	if u := doc.Get("usage"); u.IsObject() && !event([]byte(`[]`), u.Raw) {
		return nil, false
	}
	return append(out, "data: [DONE]\n\n"...), true
}
