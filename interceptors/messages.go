package interceptors

import (
	"strconv"

	"github.com/paygate/paygate/internal/jsonstr"
)

// AssistantToolMessage renders the assistant message of a tool round, to be
// appended to the conversation before the tool results:
//
//	{"role":"assistant","content":…,"tool_calls":[{"id","type":"function","function":{"name","arguments"}, …Extra}]}
//
// Empty content is sent as null (some providers reject an empty text part
// next to tool calls). Each call's Extra members (Gemini's
// extra_content.google.thought_signature, say) go back on the call exactly as
// the provider sent them, because some providers refuse the next round
// without them. Empty arguments are sent as "{}": the provider parses them.
func AssistantToolMessage(content string, calls []ToolCall) []byte {
	out := make([]byte, 0, 64+len(content)+128*len(calls))
	out = append(out, `{"role":"assistant","content":`...)
	if content == "" {
		out = append(out, "null"...)
	} else {
		out = jsonstr.Append(out, content)
	}
	out = append(out, `,"tool_calls":[`...)
	for i, c := range calls {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"id":`...)
		out = jsonstr.Append(out, c.ID)
		out = append(out, `,"type":"function","function":{"name":`...)
		out = jsonstr.Append(out, c.Name)
		out = append(out, `,"arguments":`...)
		args := c.Arguments
		if args == "" {
			args = "{}"
		}
		out = jsonstr.Append(out, args)
		out = append(out, '}')
		if inner := objectInner(c.Extra); len(inner) > 0 {
			out = append(out, ',')
			out = append(out, inner...)
		}
		out = append(out, '}')
	}
	return append(out, "]}"...)
}

// ToolResultMessage renders a tool result message; the result JSON travels as
// the message's string content, as the Chat Completions API wants it.
func ToolResultMessage(callID string, result []byte) []byte {
	out := make([]byte, 0, 48+len(callID)+len(result)*5/4)
	out = append(out, `{"role":"tool","tool_call_id":`...)
	out = jsonstr.Append(out, callID)
	out = append(out, `,"content":`...)
	out = jsonstr.Append(out, string(result))
	return append(out, '}')
}

// FinalChunk renders the chunk that ends a turn on the client's stream: an
// empty delta with the turn's finish_reason, plus the top-level "paygate"
// extension (SPEC 2.3) when paygate is non-nil and the summed "usage" when
// usage is non-nil. Clients that read choices[0] of every chunk keep working.
func FinalChunk(turnID string, model string, created int64, finish string, paygate []byte, usage *Usage) []byte {
	out := make([]byte, 0, 192+len(paygate))
	out = append(out, `{"id":`...)
	out = jsonstr.Append(out, turnID)
	out = append(out, `,"object":"chat.completion.chunk","created":`...)
	out = strconv.AppendInt(out, created, 10)
	out = append(out, `,"model":`...)
	out = jsonstr.Append(out, model)
	out = append(out, `,"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":`...)
	if finish == "" {
		out = append(out, "null"...)
	} else {
		out = jsonstr.Append(out, finish)
	}
	out = append(out, "}]"...)
	if paygate != nil {
		out = append(out, `,"paygate":`...)
		out = append(out, paygate...)
	}
	if usage != nil {
		out = append(out, `,"usage":`...)
		out = usage.AppendJSON(out)
	}
	return append(out, '}')
}

// AppendJSON appends the usage as an OpenAI usage object.
func (u *Usage) AppendJSON(out []byte) []byte {
	out = append(out, `{"prompt_tokens":`...)
	out = strconv.AppendInt(out, u.PromptTokens, 10)
	out = append(out, `,"completion_tokens":`...)
	out = strconv.AppendInt(out, u.CompletionTokens, 10)
	out = append(out, `,"total_tokens":`...)
	out = strconv.AppendInt(out, u.TotalTokens, 10)
	return append(out, '}')
}

// objectInner returns the members of a raw JSON object without its braces,
// or nil when o is not a non-empty object.
func objectInner(o []byte) []byte {
	o = trimSpace(o)
	if len(o) < 2 || o[0] != '{' || o[len(o)-1] != '}' {
		return nil
	}
	return trimSpace(o[1 : len(o)-1])
}
