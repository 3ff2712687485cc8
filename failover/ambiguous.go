package failover

import (
	"strings"

	"github.com/tidwall/gjson"
)

// The members of a chat completion that paygate reads, level by level
// (the proxy's answer reader and tool-call parsing, the accounting's
// usage): at these, ambiguousMember allows neither a repeat nor another
// spelling. A call's "function", "custom" and "name" are not among them:
// the proxy refuses a call that names itself twice (its callName), as the
// stream capture does, and tells the model so, where a failover would
// only ask again a model that may well answer the same.
var (
	completionRead = []string{"choices", "usage"}
	choiceRead     = []string{"index", "message", "finish_reason"}
	messageRead    = []string{"content", "tool_calls", "reasoning_content", "reasoning", "reasoning_details"}
	callRead       = []string{"id", "type"}
	functionRead   = []string{"arguments", "input"}
	usageRead      = []string{"prompt_tokens", "completion_tokens", "total_tokens"}
)

// ambiguousMember names the first member, among those paygate reads of a
// chat completion (completionRead and below), that data names twice or
// spells in another case ("Tool_calls"); "" when there is none. Such an
// answer reads one way to paygate (gjson and its walkers take a repeated
// member's first copy, and only the exact name) and another to the bot
// (JSON.parse, Python's json and Go's encoding/json take the last, and
// encoding/json takes any case): paygate could run a payment call the
// bot's parser never sees, or hand the bot one it never held, and keep a
// conversation under call ids or text the bot does not have. It is a
// malformed answer, asked again, then of the next target. data is a valid
// JSON object. Once per non-stream answer: a gjson walk of the members at
// those levels, over data as it lies (no copy of the answer; what it
// returns is built, never a view of data).
func ambiguousMember(data []byte) string {
	// One walk per object: each level's walk also hands back the members
	// the next level reads (kids), where a Get of each would walk the
	// object again; on a plain answer the walks of the top object were
	// most of the check's cost.
	var top, choice, msg [5]gjson.Result
	if why := ambiguousIn(gjson.Parse(unsafeString(data)), completionRead, "", &top); why != "" {
		return why
	}
	if why := ambiguousIn(top[1], usageRead, "usage.", nil); why != "" {
		return why
	}
	why := ""
	top[0].ForEach(func(_, ch gjson.Result) bool {
		if why = ambiguousIn(ch, choiceRead, "choices[].", &choice); why != "" {
			return false
		}
		if why = ambiguousIn(choice[1], messageRead, "choices[].message.", &msg); why != "" {
			return false
		}
		msg[1].ForEach(func(_, c gjson.Result) bool {
			if why = ambiguousIn(c, callRead, "choices[].message.tool_calls[].", nil); why != "" {
				return false
			}
			for _, kind := range callKinds {
				if why = ambiguousIn(c.Get(kind.name), functionRead, kind.path, nil); why != "" {
					return false
				}
			}
			return true
		})
		return why == ""
	})
	return why
}

// callKinds are a tool call's members that hold what it calls, with the
// path ambiguousMember names their members under: constants, as a path
// built per call (longer than the compiler's stack buffer) allocated twice
// for every call of every answer.
var callKinds = [...]struct{ name, path string }{
	{"function", "choices[].message.tool_calls[].function."},
	{"custom", "choices[].message.tool_calls[].custom."},
}

// ambiguousIn names the first member of obj whose key is one of names but
// for case, or is one of them a second time, as path plus the key and
// which; "" when there is none, or obj is no object. kids, when not nil,
// gets the value of each of names met (kids[i] for names[i]; the zero
// Result, which reads as absent, for one obj lacks): a list is at most as
// long as kids.
func ambiguousIn(obj gjson.Result, names []string, path string, kids *[5]gjson.Result) string {
	if kids != nil {
		*kids = [5]gjson.Result{}
	}
	if !obj.IsObject() {
		return ""
	}
	var seen uint64 // bit i: names[i] met
	why := ""
	obj.ForEach(func(k, v gjson.Result) bool {
		for i, n := range names {
			if len(k.Str) != len(n) || !strings.EqualFold(k.Str, n) {
				continue
			}
			switch {
			case k.Str != n:
				why = path + k.Str + " (" + n + " spelled in another case)"
			case seen&(1<<i) != 0:
				why = path + n + " (named twice)"
			}
			if kids != nil {
				kids[i] = v
			}
			seen |= 1 << i
			return why == ""
		}
		return true
	})
	return why
}
