package interceptors

import (
	"errors"
	"strings"
)

// ErrAmbiguousChunk is returned by Capture.Process for a chunk that names a
// member paygate reads twice, or in another case (ambiguousChunk): the
// relay skips it, as it skips a malformed one.
var ErrAmbiguousChunk = errors.New("interceptors: chunk names a member twice or in another case")

// level is a level of a chat.completion.chunk that ambiguousChunk checks.
type level uint8

const (
	levelChunk level = iota
	levelChoice
	levelDelta
	levelCall
)

// levelRead are the members of each level that the capture reads; a tool
// call's function, custom and name are parseEntry's to check.
var levelRead = [...][]string{
	levelChunk:  {"choices", "usage", "error"},
	levelChoice: {"index", "delta", "finish_reason", "usage"},
	levelDelta:  {"role", "content", "tool_calls", "function_call", "reasoning_content", "reasoning", "refusal", "reasoning_details"},
	levelCall:   {"index", "id", "type"},
}

// ambiguousChunk reports whether the chunk s (a valid JSON object) names a
// member the capture reads (levelRead) twice in one object, or spells it in
// another case ("Tool_calls", a "Delta" beside the delta). The capture's
// walks take each copy of a repeated member, or the first, and only the
// exact name, where the bot's parser (JSON.parse, encoding/json) takes the
// last, and Go's any case: a payment call could reach the bot unheld, or
// one be held and run that the bot's reading of the chunk does not have,
// and the client calls paygate keeps for the bot's next request would not
// be the ones the bot got. Only chunks off the text fast path are walked
// (scanText refuses a second delta and a "delta" in another case), once,
// by position, without allocating.
func ambiguousChunk(s string) bool {
	return walkLevel(s, 0, levelChunk) < 0
}

// walkLevel walks the object at s[at], of level lv, and returns the index
// after it, or -1 when it (or an object below it that the capture reads)
// names a member of levelRead twice or in another case.
func walkLevel(s string, at int, lv level) int {
	names := levelRead[lv]
	var seen uint16 // bit j: names[j] met
	for i := at + 1; ; {
		m, ok := memberStart(s, i, true)
		if !ok {
			return m.end
		}
		k := keyName(m.key)
		name := ""
		for j, n := range names {
			if len(k) != len(n) || !strings.EqualFold(k, n) {
				continue
			}
			if k != n || seen&(1<<j) != 0 {
				return -1
			}
			seen |= 1 << j
			name = n
			break
		}
		switch {
		case lv == levelChunk && name == "choices" && s[m.at] == '[':
			i = walkElements(s, m.at, levelChoice)
		case lv == levelChoice && name == "delta" && s[m.at] == '{':
			i = walkLevel(s, m.at, levelDelta)
		case lv == levelDelta && name == "tool_calls" && s[m.at] == '[':
			i = walkElements(s, m.at, levelCall)
		default:
			i = skipValue(s, m.at)
		}
		if i < 0 {
			return -1
		}
	}
}

// walkElements walks the array at s[at] whose object elements are of level
// lv (walkLevel) and returns the index after it, or -1.
func walkElements(s string, at int, lv level) int {
	for i := at + 1; ; {
		m, ok := memberStart(s, i, false)
		if !ok {
			return m.end
		}
		if s[m.at] == '{' {
			i = walkLevel(s, m.at, lv)
		} else {
			i = skipValue(s, m.at)
		}
		if i < 0 {
			return -1
		}
	}
}
