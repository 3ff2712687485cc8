package interceptors

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/jsonscan"
)

// A tool round streams one event per piece of a call's arguments, each a
// chunk like the last but for the piece: a bot with tools of its own (a
// weather lookup, a search) gets hundreds of them a turn, and the slow
// path's walks (gjson.Valid, ambiguousChunk, slow) cost several times a
// text event each. The call path below takes those pieces with byte scans,
// as scanTextAfter takes text. What it accepts, and what it does with it,
// is what the slow path would do; everything else goes to the slow path:
//
//   - The envelope (the bytes before the delta and the shape of those after
//     it) is learnt from a chunk the slow path has just read, checked
//     whole: valid, clear (ambiguousChunk), one choice, every member named
//     once, no finish, usage, error or "paygate" member, no escaped key
//     (learnCallEnvelope). A later chunk that starts with the same bytes
//     and whose rest fits the template, with the strings in its holes
//     valid, reads as that one did but for its delta and the holes'
//     contents, which the slow path does not read.
//   - The delta is parsed strictly, and validated as gjson.Valid would
//     (scanCallDelta): one tool_calls entry of a plain index and a
//     function with its arguments, its id, type and name at most repeated
//     as they were, beside a role and null or empty text members, every
//     member once and spelled exactly.
//   - The call continues a call of the round under that index whose name,
//     id and kind the delta cannot change (continueCall).

// callDelta is what scanCallDelta learns about a delta, by position in the
// chunk.
type callDelta struct {
	end             int // the index after the delta object
	roleAt, roleEnd int // the role member, key to value end; roleAt -1 when it has none (or null)
	// The tool_calls member: its key, its value (the array) and its one
	// entry.
	tcKeyAt, tcAt, tcEnd int
	enStart, enEnd       int
	idx, idxAt, idxTo    int    // the entry's index and its value
	id, name, args       string // raw contents; id and name without escapes, "" when absent
	hasID                bool   // the entry has an id member, "" or not
}

// Members of a delta and of a tool call scanCallDelta accepts, each once.
const (
	dToolCalls = 1 << iota
	dRole
	dContent
	dRefusal
	dReasoningContent
	dReasoning

	cIndex
	cID
	cType
	cFunction
	cArguments
	cName
)

// scanCallDelta reads the delta object at s[d] when it continues one tool
// call (see the comment at the top) and reports whether it does. s need
// not be valid JSON: what it accepts, from s[d] to td.end, is.
func scanCallDelta(s string, d int, td *callDelta) bool {
	td.roleAt = -1
	seen := 0
	i := d + 1
	for first := true; ; first = false {
		i = jsonscan.SkipSpace(s, i)
		if i < len(s) && s[i] == '}' {
			td.end = i + 1
			return seen&dToolCalls != 0
		}
		if !first {
			if i >= len(s) || s[i] != ',' {
				return false
			}
			i = jsonscan.SkipSpace(s, i+1)
		}
		keyAt := i
		key, at := plainKey(s, i)
		if at < 0 {
			return false
		}
		var bit int
		switch key {
		case "tool_calls":
			bit = dToolCalls
			td.tcKeyAt, td.tcAt = keyAt, at
			if i = scanCallArray(s, at, td); i < 0 {
				return false
			}
			td.tcEnd = i
		case "role":
			bit = dRole
			if strings.HasPrefix(s[at:], `"assistant"`) {
				i = at + len(`"assistant"`)
				td.roleAt, td.roleEnd = keyAt, i
			} else if i = literal(s, at, "null"); i < 0 {
				return false
			}
		case "content":
			// Empty text is no text: the slow path appends nothing and
			// sends nothing for it.
			bit = dContent
			if i = literal(s, at, `""`); i < 0 {
				i = literal(s, at, "null")
			}
		case "refusal":
			bit, i = dRefusal, literal(s, at, "null")
		case "reasoning_content":
			bit, i = dReasoningContent, literal(s, at, "null")
		case "reasoning":
			bit, i = dReasoning, literal(s, at, "null")
		default:
			return false
		}
		if i < 0 || seen&bit != 0 {
			return false
		}
		seen |= bit
	}
}

// scanCallArray reads a tool_calls array of one entry at s[at] and returns
// the index after it, or -1.
func scanCallArray(s string, at int, td *callDelta) int {
	if at >= len(s) || s[at] != '[' {
		return -1
	}
	i := jsonscan.SkipSpace(s, at+1)
	if i >= len(s) || s[i] != '{' {
		return -1
	}
	td.enStart = i
	seen := 0
	i++
	for first := true; ; first = false {
		i = jsonscan.SkipSpace(s, i)
		if i < len(s) && s[i] == '}' {
			if seen&(cIndex|cFunction) != cIndex|cFunction {
				return -1
			}
			td.enEnd = i + 1
			i = jsonscan.SkipSpace(s, i+1)
			if i >= len(s) || s[i] != ']' {
				return -1
			}
			return i + 1
		}
		if !first {
			if i >= len(s) || s[i] != ',' {
				return -1
			}
			i = jsonscan.SkipSpace(s, i+1)
		}
		key, v := plainKey(s, i)
		if v < 0 {
			return -1
		}
		var bit int
		switch key {
		case "index":
			// What strconv.Atoi reads as the slow path's parseEntry
			// does, and JSON allows: no sign, fraction or leading zero.
			bit = cIndex
			i = v
			for i < len(s) && i-v < 9 && s[i] >= '0' && s[i] <= '9' {
				i++
			}
			if i == v || s[v] == '0' && i > v+1 || i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' || s[i] == 'e' || s[i] == 'E') {
				return -1
			}
			td.idx, _ = strconv.Atoi(s[v:i])
			td.idxAt, td.idxTo = v, i
		case "id":
			bit, td.hasID = cID, true
			if td.id, i = plainString(s, v); i < 0 {
				return -1
			}
		case "type":
			bit, i = cType, literal(s, v, `"function"`)
		case "function":
			bit = cFunction
			i = scanFunction(s, v, td)
		default:
			return -1
		}
		if i < 0 || seen&bit != 0 {
			return -1
		}
		seen |= bit
	}
}

// scanFunction reads an entry's function object, its arguments and at most
// a name, at s[at] and returns the index after it, or -1.
func scanFunction(s string, at int, td *callDelta) int {
	if at >= len(s) || s[at] != '{' {
		return -1
	}
	seen := 0
	i := at + 1
	for first := true; ; first = false {
		i = jsonscan.SkipSpace(s, i)
		if i < len(s) && s[i] == '}' {
			if seen&cArguments == 0 {
				return -1
			}
			return i + 1
		}
		if !first {
			if i >= len(s) || s[i] != ',' {
				return -1
			}
			i = jsonscan.SkipSpace(s, i+1)
		}
		key, v := plainKey(s, i)
		if v < 0 {
			return -1
		}
		var bit int
		switch key {
		case "arguments":
			bit = cArguments
			if v >= len(s) || s[v] != '"' {
				return -1
			}
			if i = validStringEnd(s, v+1); i < 0 {
				return -1
			}
			td.args = s[v+1 : i]
			i++
		case "name":
			bit = cName
			if td.name, i = plainString(s, v); i < 0 {
				return -1
			}
		default:
			return -1
		}
		if seen&bit != 0 {
			return -1
		}
		seen |= bit
	}
}

// plainKey reads the key at s[i], spelled without escapes, and the colon
// after it, and returns the key and where its value starts (-1 for none).
func plainKey(s string, i int) (string, int) {
	key, e := plainString(s, i)
	if e < 0 {
		return "", -1
	}
	e = jsonscan.SkipSpace(s, e)
	if e >= len(s) || s[e] != ':' {
		return "", -1
	}
	return key, jsonscan.SkipSpace(s, e+1)
}

// plainString reads the string at s[i] when it has no escape and no
// control character, and returns its contents and the index after it, or
// -1.
func plainString(s string, i int) (string, int) {
	if i >= len(s) || s[i] != '"' {
		return "", -1
	}
	for e := i + 1; e < len(s); e++ {
		switch c := s[e]; {
		case c == '"':
			return s[i+1 : e], e + 1
		case c == '\\' || c < ' ':
			return "", -1
		}
	}
	return "", -1
}

// literal returns the index after lit at s[i], or -1.
func literal(s string, i int, lit string) int {
	if !strings.HasPrefix(s[i:], lit) {
		return -1
	}
	return i + len(lit)
}

// validStringEnd returns the index of the quote that closes the JSON string
// whose contents start at s[from], or -1 when the string is not valid as
// gjson.Valid checks it: a control character, an unknown escape or a \u
// without four hex digits, or no closing quote.
func validStringEnd(s string, from int) int {
	for i := from; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return i
		case c < ' ':
			return -1
		case c == '\\':
			if i++; i >= len(s) {
				return -1
			}
			switch s[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(s) || !isHex4(s[i+1:i+5]) {
					return -1
				}
				i += 4
			default:
				return -1
			}
		}
	}
	return -1
}

func isHex4(h string) bool {
	for i := 0; i < 4; i++ {
		c := h[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// callEnvelope is the envelope of the round's argument deltas
// (learnCallEnvelope); empty prefix when none is known.
type callEnvelope struct {
	prefix []byte   // the bytes before the delta
	tail   template // what follows the delta
	choice int      // the choice index the slow path gives the delta
	// id and created are the byte ranges of the top-level id (any value)
	// and created (a number) within prefix, {-1, -1} when the chunk has
	// none, and {-2, -2} when they come after the delta: topID and
	// topCreated find them there (learnCallEnvelope checked that they do).
	id, created [2]int
	learnt      int // envelopes learnt this round
}

// maxEnvelopes bounds the envelopes a round learns: a provider whose every
// tool chunk differs in a number after the delta (a sequence number) would
// have each one walked twice, for no chunk taken on the call path.
const maxEnvelopes = 8

// learnCallEnvelope keeps the envelope of a chunk the slow path has just
// read (valid JSON, clear of ambiguity) when its one delta continues a
// tool call in the shape scanCallDelta reads, for the round's later
// argument deltas to take the call path.
func (c *Capture) learnCallEnvelope(data []byte, s string) {
	st, env := &c.st, &c.calls
	if c.slowCalls || env.learnt >= maxEnvelopes || len(st.deltas) != 1 || st.choices != 1 || st.finish != "" || st.hasError || st.paygate || st.choiceUsage[1] != 0 {
		return
	}
	d := st.deltas[0][0]
	var td callDelta
	if !scanCallDelta(s, d, &td) || td.end != st.deltas[0][1] {
		return
	}
	if len(env.prefix) == d && bytes.HasPrefix(data, env.prefix) && env.tail.match(s[td.end:]) {
		return // the envelope known (a call's first delta, say)
	}
	if hasNonNull(s, keyReason, false) || hasEscapedLetter(s) || hasPaygateWord(s) {
		return
	}
	id, created := [2]int{-1, -1}, [2]int{-1, -1}
	choiceAt, choiceEnd := -1, -1
	if !uniqueMembers(s, 0, func(key string, m jsonscan.Member) bool {
		v := s[m.At:m.End]
		switch key {
		case "id":
			id = [2]int{m.At, m.End}
		case "created":
			if v[0] == '-' || v[0] >= '0' && v[0] <= '9' {
				created = [2]int{m.At, m.End}
			}
		case "usage", "error":
			return v == "null"
		case "choices":
			if v[0] != '[' {
				return false
			}
			ch, ok := jsonscan.NextMember(s, m.At+1, false)
			if !ok || s[ch.At] != '{' {
				return false
			}
			if _, more := jsonscan.NextMember(s, ch.End, false); more {
				return false
			}
			choiceAt, choiceEnd = ch.At, ch.End
		}
		return true
	}) || choiceAt < 0 {
		return
	}
	if !uniqueMembers(s, choiceAt, func(key string, m jsonscan.Member) bool {
		switch key {
		case "delta":
			return m.At == d
		case "usage":
			return s[m.At:m.End] == "null"
		}
		return true
	}) {
		return
	}
	// The choice's index as the slow path reads it (choice).
	choice := 0
	if r := gjson.Get(s[choiceAt:choiceEnd], "index"); r.Type == gjson.Number {
		choice = int(r.Int())
	}
	if id[0] > d {
		if s[id[0]] != '"' {
			return
		}
		if a, b := topID(s, td.end); a != id[0] || b != id[1] {
			return
		}
		id = [2]int{-2, -2}
	}
	if created[0] > d {
		if a, b := topCreated(s, td.end); a != created[0] || b != created[1] {
			return
		}
		created = [2]int{-2, -2}
	}
	env.prefix = append(env.prefix[:0], data[:d]...)
	env.tail.learn(s[td.end:])
	env.choice, env.id, env.created = choice, id, created
	env.learnt++
}

// uniqueMembers calls f with each member of the object at s[at] (valid
// JSON) and its key, and reports false when f does, or when a key is
// spelled with an escape or comes twice.
func uniqueMembers(s string, at int, f func(key string, m jsonscan.Member) bool) bool {
	var keys [32]string
	n := 0
	for i := at + 1; ; {
		m, ok := jsonscan.NextMember(s, i, true)
		if !ok {
			return m.End >= 0
		}
		i = m.End
		if strings.IndexByte(m.Key, '\\') >= 0 || n == len(keys) {
			return false
		}
		for _, k := range keys[:n] {
			if k == m.Key {
				return false
			}
		}
		keys[n] = m.Key
		n++
		if !f(m.Key, m) {
			return false
		}
	}
}

// callPath takes a chunk that starts with the envelope's prefix on the call
// path, and reports false, having changed nothing, when it must take the
// slow path. What it returns is what slow would.
func (c *Capture) callPath(data []byte, s string) ([]byte, bool) {
	env := &c.calls
	d := jsonscan.SkipSpace(s, len(env.prefix))
	if d >= len(s) || s[d] != '{' || len(c.slots) > MaxCalls {
		return nil, false
	}
	var td callDelta
	if !scanCallDelta(s, d, &td) || !env.tail.matchValid(s[td.end:]) {
		return nil, false
	}
	if td.roleAt >= 0 && env.choice != 0 {
		return nil, false // another choice's role: see delta
	}
	sl := c.continueCall(&td)
	if sl == nil {
		return nil, false
	}
	// Where the turn's id and created go, should the chunk go out with
	// them (learnCallEnvelope checked that topID and topCreated find them).
	idAt, idEnd, crAt, crEnd := env.id[0], env.id[1], env.created[0], env.created[1]
	if idAt == -2 && (c.stampID || !c.idSettled) {
		if idAt, idEnd = topID(s, td.end); idAt < 0 {
			return nil, false
		}
	}
	if crAt == -2 && len(c.createdq) > 0 {
		if crAt, crEnd = topCreated(s, td.end); crAt < 0 {
			return nil, false
		}
	}
	c.callGoesOn()
	c.edits = c.edits[:0]
	c.scratch = c.scratch[:0]
	role := false
	if td.roleAt >= 0 && td.roleAt < td.tcKeyAt {
		role = c.takeRole(data, &td)
	}
	n := len(sl.args)
	sl.args = append(sl.args, td.args...)
	c.argBytes += len(sl.args) - n
	send := false
	if sl.kind != kindClient {
		// Held back, as toolCalls holds it.
		sl.held = sl.held || sl.kind == kindUnknown
		c.deleteMember(data, td.tcKeyAt, td.tcEnd)
	} else {
		send = true
		if td.idx != sl.clientIdx {
			rs := len(c.scratch)
			c.scratch = append(c.scratch, '[')
			c.scratch = append(c.scratch, data[td.enStart:td.idxAt]...)
			c.scratch = strconv.AppendInt(c.scratch, int64(sl.clientIdx), 10)
			c.scratch = append(c.scratch, data[td.idxTo:td.enEnd]...)
			c.scratch = append(c.scratch, ']')
			c.edits = append(c.edits, edit{td.tcAt, td.tcEnd, rs, len(c.scratch)})
		}
	}
	if td.roleAt > td.tcKeyAt {
		role = c.takeRole(data, &td)
	}
	if !role && !send {
		return nil, true
	}
	if !c.idSettled {
		c.idSettled = true
		c.stampID = c.id == "" && c.turnID != ""
	}
	if c.stampID {
		if idAt >= 0 {
			c.replace(idAt, idEnd, c.turnIDq)
		} else {
			c.insertID()
		}
	}
	if len(c.createdq) > 0 && crAt >= 0 {
		c.replace(crAt, crEnd, c.createdq)
	}
	if role {
		c.role, c.roleSent = true, true
	}
	if len(c.edits) == 0 {
		return data, true
	}
	return c.apply(data), true
}

// takeRole does with the delta's role what the slow path's delta does: it
// is removed once the turn's went out; otherwise it goes out, and the
// chunk with it. It reports the latter.
func (c *Capture) takeRole(data []byte, td *callDelta) bool {
	if c.roleSent {
		c.deleteMember(data, td.roleAt, td.roleEnd)
		return false
	}
	return true
}

// continueCall returns the call the delta continues, the one the slow
// path's slotFor would give it, when absorbing the delta there changes
// nothing but its arguments: nil when the delta would start a call, or
// name or give an id to one, or the call is one whose deltas the slow path
// treats otherwise (a custom tool's, one named twice, one to replay, one
// whose name may not be whole yet, one whose id paygate made and the delta
// has an id member, "" included, which toolCalls takes out).
func (c *Capture) continueCall(td *callDelta) *slot {
	for i := len(c.slots) - 1; i >= 0; i-- {
		sl := &c.slots[i]
		if sl.choice != c.calls.choice || !sl.hasIdx || sl.upIdx != td.idx {
			continue
		}
		if sl.twice || sl.custom || sl.replay || sl.pending || sl.madeID && td.hasID || td.id != "" && td.id != sl.id || td.name != "" && td.name != sl.name {
			return nil
		}
		return sl
	}
	return nil
}

// knownEnvelope reports whether data starts with the envelope's prefix.
func (c *Capture) knownEnvelope(data []byte) bool {
	return len(c.calls.prefix) > 0 && !c.slowCalls && bytes.HasPrefix(data, c.calls.prefix)
}
