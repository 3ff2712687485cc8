package jsonscan

import "slices"

// Chunk is the level of a chat.completion.chunk whose members paygate
// reads of a streamed answer, level by level: the stream capture
// (interceptors) of a payment turn's chunks, and the assembler of the
// events a provider answers a non-stream request with (failover), which
// skip a chunk that names one of them twice or in another case, as
// Ambiguous finds. One level, so that the two skip the same chunks: an
// answer with a tool call that lost a chunk so is none either way (its
// call may have lost a piece of its arguments). A tool call's function,
// custom and name are the capture's parseEntry's to check. A usage
// (top-level, or in a choice as Moonshot sends it) is checked to its
// counts (UsageCounts): the capture, the ledger and a token cap read a
// count's first copy, and a round's one usage object reaches the bot byte
// for byte, where its parser reads the last. The capture reads a chunk whose
// only such member is a usage count all the same (ChunkButCounts).
var Chunk = chunkLevel(UsageCounts)

// ChunkButCounts is Chunk without a usage's counts: a chunk Ambiguous at
// Chunk but not at it names only a usage count twice, which the stream
// capture reads all the same (the first copy, as the ledger does) rather
// than skip the answer's last words and finish that often ride with it.
var ChunkButCounts = chunkLevel(nil)

// LegacyCall is the level of a legacy function_call, in a chunk's delta or
// a completion's message: its name says whether it is a payment call,
// held back and run, or the bot's, handed on, and its arguments are what
// a payment call runs with. Unlike a tool call's name (Field.Unchecked:
// the proxy refuses a call that names itself twice), neither is checked
// by its reader: paygate read the first copy and ran create_order
// {"quantity":1} where the bot's parser read a second copy's 12, or the
// name of the bot's own function.
var LegacyCall = &Level{Fields: []Field{{Name: "name"}, {Name: "arguments"}}}

func chunkLevel(usage *Level) *Level {
	// A call's function and custom are its reader's to check, and their
	// name (parseEntry refuses a call that names itself twice); their
	// arguments and input are read by no one else: the capture took a
	// repeated one's last copy, the events' assembler its first, and
	// either only the exact name, where Go's encoding/json takes any case.
	text := &Level{Fields: []Field{{Name: "arguments"}, {Name: "input"}}}
	call := &Level{Fields: []Field{{Name: "index"}, {Name: "id"}, {Name: "type"},
		{Name: "function", Below: text, Unchecked: true}, {Name: "custom", Below: text, Unchecked: true}}}
	delta := &Level{Fields: []Field{
		{Name: "role"}, {Name: "content"}, {Name: "tool_calls", Below: call, Elements: true}, {Name: "function_call", Below: LegacyCall},
		{Name: "reasoning_content"}, {Name: "reasoning"}, {Name: "refusal"}, {Name: "reasoning_details"},
	}}
	choice := &Level{Fields: []Field{{Name: "index"}, {Name: "delta", Below: delta}, {Name: "finish_reason"}, {Name: "usage", Below: usage}}}
	return Folded(&Level{Fields: []Field{{Name: "choices", Below: choice, Elements: true}, {Name: "usage", Below: usage}, {Name: "error"}}})
}

// Folded is a copy of lv, and of the levels below it, that folds keys as
// Go's encoding/json does (Level.Fold): go-openai read a chunk's
// "tool_callſ" (the long s) as its tool calls, which the capture, reading
// "tool_calls" only, let pass unheld, and a chat completion's so
// (failover's completionLevel).
func Folded(lv *Level) *Level {
	if lv == nil {
		return nil
	}
	out := &Level{Fold: true, Fields: slices.Clone(lv.Fields)}
	for i := range out.Fields {
		out.Fields[i].Below = Folded(out.Fields[i].Below)
		if n := len(out.Fields[i].Name); i == 0 || n < out.short {
			out.short = n
		}
	}
	return out
}
