package failover

import "github.com/paygate/paygate/internal/jsonscan"

// completionLevel is the members of a chat completion that paygate reads,
// level by level (the proxy's answer reader and tool-call parsing, the
// accounting's usage): at these, ambiguousMember allows neither a repeat
// nor another spelling, folded as Go's encoding/json folds keys
// (jsonscan.Folded, as the stream's chunks are): go-openai read a
// message's "tool_callſ" (the long s) as its tool calls, and a Go bot got
// a create_order paygate never held. A call's "function" and "custom" are walked but
// not checked, nor their "name": the proxy refuses a call that names
// itself twice (its callName), as the stream capture does, and tells the
// model so, where a failover would only ask again a model that may well
// answer the same.
var completionLevel = func() *jsonscan.Level {
	function := &jsonscan.Level{Fields: []jsonscan.Field{{Name: "arguments"}, {Name: "input"}}}
	call := &jsonscan.Level{Fields: []jsonscan.Field{
		{Name: "id"}, {Name: "type"},
		{Name: "function", Below: function, Unchecked: true},
		{Name: "custom", Below: function, Unchecked: true},
	}}
	message := &jsonscan.Level{Fields: []jsonscan.Field{
		{Name: "content"}, {Name: "tool_calls", Below: call, Elements: true},
		{Name: "function_call", Below: jsonscan.LegacyCall},
		{Name: "reasoning_content"}, {Name: "reasoning"}, {Name: "reasoning_details"},
	}}
	choice := &jsonscan.Level{Fields: []jsonscan.Field{{Name: "index"}, {Name: "message", Below: message}, {Name: "finish_reason"}}}
	return jsonscan.Folded(&jsonscan.Level{Fields: []jsonscan.Field{{Name: "choices", Below: choice, Elements: true}, {Name: "usage", Below: jsonscan.UsageCounts}}})
}()

// ambiguousMember names the first member, among those paygate reads of a
// chat completion (completionLevel), that data names twice or spells in
// another case ("Tool_calls"); "" when there is none. Such an answer reads
// one way to paygate (its walkers and gjson take a repeated member's first
// copy, and only the exact name) and another to the bot (JSON.parse,
// Python's json and Go's encoding/json take the last, and encoding/json
// takes any case): paygate could run a payment call the bot's parser never
// sees, or hand the bot one it never held, and keep a conversation under
// call ids or text the bot does not have. It is a malformed answer, asked
// again, then of the next target. data is a valid JSON object. A JSON
// answer's one pass (scanAnswer) makes the same check, and this walk runs
// after it only to name what it found; a completion read from events is
// walked here: one walk by position (jsonscan.Ambiguous, the stream
// capture's walker) over data as it lies, allocating nothing unless it
// finds one; what it returns is built, never a view of data.
func ambiguousMember(data []byte) string {
	s := unsafeString(data)
	var d jsonscan.Dup
	if !jsonscan.Ambiguous(s, jsonscan.SkipSpace(s, 0), completionLevel, &d) {
		return ""
	}
	return d.String()
}
