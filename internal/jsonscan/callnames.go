package jsonscan

import "strings"

// CallNames notes the members of one tool call named "function" or
// "custom", in any case, that are null and that are objects: the rule every
// reader of a call's name shares (the stream capture, failover's assembler
// of a streamed answer, the non-stream answer's and the history's readers).
// Relays that serialize every field of a call, unset ones as null, send
// "custom":null beside a function call's "function" (and "function":null
// beside a custom call's "custom"): such a member names nothing (Null),
// unless the call also has an object under a name parsers match to it: a
// call named twice (Clash).
type CallNames struct{ nulls, objects [2]bool }

// callKind is 0 for a key "function", 1 for "custom", in any case, and -1
// for any other.
func callKind(key string) int {
	switch {
	case strings.EqualFold(key, "function"):
		return 0
	case strings.EqualFold(key, "custom"):
		return 1
	}
	return -1
}

// Null reports a member named "function" or "custom" (in any case) whose
// raw value v is null, and notes it: it names nothing, and the reader
// skips it.
func (n *CallNames) Null(key, v string) bool {
	if v != "null" {
		return false
	}
	k := callKind(key)
	if k < 0 {
		return false
	}
	n.nulls[k] = true
	return true
}

// Object notes an object member named "function" or "custom", in any case;
// another key is no call name, and is not noted.
func (n *CallNames) Object(key string) {
	if k := callKind(key); k >= 0 {
		n.objects[k] = true
	}
}

// Clash reports a null beside an object of the same name (in any case, as
// Go's encoding/json matches it): a parser that keeps the last copy, or
// matches names ignoring case, reads null where paygate reads the object,
// or the other way round, so the call names itself twice.
func (n CallNames) Clash() bool {
	return n.nulls[0] && n.objects[0] || n.nulls[1] && n.objects[1]
}
