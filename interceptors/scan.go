package interceptors

import (
	"bytes"
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/jsonscan"
)

// textChunk is what scanText learns about a text chunk: the raw (still
// escaped) content and reasoning of its one delta, whether it names a role,
// and where the delta object is.
type textChunk struct {
	content, reasoning string
	reasonKey          string // the member reasoning came from (a constant)
	role               bool
	roleAt, roleEnd    int    // the role member, when role
	refusal            string // the raw refusal text
	other              bool   // another member with text (a refusal, say)
	delta, deltaEnd    int
}

// scanText recognises the common chunk, text and nothing else, with byte
// searches only, so that it costs about what reading and writing the event
// does: one pass over the chunk's '{' finds the delta object and refuses a
// usage or error object and a second delta (n > 1); a small parser reads
// the flat delta object and refuses tool calls and nested values; a search
// for `_reason"` refuses a finish, one for `"error"` an error of any kind
// but null (hasError). Anything it refuses takes the slow path,
// which understands every chunk; so scanText may refuse too much but never
// accepts a chunk that needs a change. Keys spelled with escapes of ASCII
// letters ("tool\u005fcalls") are refused too, since the searches look for
// plain keys, and so is a "paygate" member (an upstream's forgery, which the
// slow path removes).
func scanText(s string) (tc textChunk, ok bool) {
	d := -1
	for off := 0; ; {
		i := strings.IndexByte(s[off:], '{')
		if i < 0 {
			break
		}
		p := off + i
		off = p + 1
		switch k := keyBefore(s, p); k {
		case "delta":
			if d >= 0 {
				return tc, false
			}
			d = p
		case "usage":
			return tc, false
		default:
			if len(k) == len("delta") && strings.EqualFold(k, "delta") {
				// A "Delta" beside the delta: Go's encoding/json reads it
				// as the delta (ambiguousChunk).
				return tc, false
			}
		}
	}
	if d < 0 {
		return tc, false
	}
	tc.delta = d
	if tc.deltaEnd = parseDelta(s, d, &tc); tc.deltaEnd < 0 {
		return tc, false
	}
	if hasNonNull(s, keyReason, false) || hasError(s) || hasEscapedLetter(s) || hasPaygateWord(s) || otherChoice(s) || !choiceDelta(s, d) {
		return tc, false
	}
	// Its searches look for keys as chunks spell them: a "Choices",
	// "FINISH_REASON" or "uſage" beside them, which Go's encoding/json
	// reads as the member, is found by a walk of its keys (the chunks
	// scanTextAfter takes after it repeat its keys byte for byte).
	if jsonscan.Ambiguous(s, 0, textLevel, nil) {
		return tc, false
	}
	return tc, true
}

// textLevel is jsonscan.Chunk with the top-level id and created, which a
// later round's text chunks go out stamped in (stampAt, the first copy):
// a chunk that names one twice takes the slow path, which stamps the
// last, the copy a bot's parser reads (Go's encoding/json, JSON.parse).
var textLevel = jsonscan.Folded(&jsonscan.Level{Fields: append(slices.Clone(jsonscan.Chunk.Fields),
	jsonscan.Field{Name: "id"}, jsonscan.Field{Name: "created"})})

// choiceDelta reports whether the object at s[d] is the "delta" of the
// first of the top-level choices, as the slow path reads a delta: one at
// the top level, beside empty choices, or inside another member is none,
// and its text is not the round's. It descends without walking the values
// that hold the delta (the choices, the choice); scanTextAfter's chunks
// repeat the bytes before the delta of one it accepted, so only scanText
// asks.
func choiceDelta(s string, d int) bool {
	for i := 1; ; {
		m, ok := jsonscan.MemberStart(s, i, true)
		if !ok || m.At > d {
			return false
		}
		if m.Key == "choices" && s[m.At] == '[' {
			ch, ok := jsonscan.MemberStart(s, m.At+1, false)
			if !ok || s[ch.At] != '{' {
				return false
			}
			for j := ch.At + 1; ; {
				f, ok := jsonscan.MemberStart(s, j, true)
				if !ok || f.At > d {
					return false
				}
				if f.At == d {
					return f.Key == "delta"
				}
				if j = jsonscan.SkipValue(s, f.At); j < 0 || j > d {
					return false
				}
			}
		}
		if i = jsonscan.SkipValue(s, m.At); i < 0 || i > d {
			return false
		}
	}
}

// otherChoice reports an "index" member whose value is not a plain 0: the
// chunk may be of a choice other than the first (a provider that sends a
// second one, asked for or not), whose text is not the round's; the slow
// path reads the choice's index. A chunk whose prefix or template a chunk
// accepted here gave says no more, so scanTextAfter looks only where its
// template does not fit (cleanAfter). Inside a JSON string a quote is
// escaped, so the key's bytes are found only as a key or as a whole
// string value, which no colon follows.
func otherChoice(s string) bool {
	const key = `"index"`
	for off := 0; ; {
		i := strings.Index(s[off:], key)
		if i < 0 {
			return false
		}
		off += i + len(key)
		j := jsonscan.SkipSpace(s, off)
		if j >= len(s) || s[j] != ':' {
			continue
		}
		j = jsonscan.SkipSpace(s, j+1)
		if j+1 >= len(s) || s[j] != '0' {
			return true
		}
		switch s[j+1] {
		case ',', '}', ' ', '\t', '\r', '\n':
		default:
			return true
		}
	}
}

// scanTextAfter is scanText for a chunk whose first n bytes equal those
// before the delta of a chunk scanText accepted in this round (providers
// repeat id, created, model and the rest byte for byte): that prefix holds
// nothing to refuse, so only the delta and what follows it are read. What
// follows is accepted at once when it fits tail, the template learnt from
// the same chunk; otherwise it is searched.
func scanTextAfter(s string, n int, tail *template) (tc textChunk, ok bool) {
	d := jsonscan.SkipSpace(s, n)
	if d >= len(s) || s[d] != '{' {
		return tc, false
	}
	tc.delta = d
	if tc.deltaEnd = parseDelta(s, d, &tc); tc.deltaEnd < 0 {
		return tc, false
	}
	if tail != nil && tail.match(s[tc.deltaEnd:]) {
		return tc, true
	}
	return tc, cleanAfter(s, tc.deltaEnd) && !jsonscan.Ambiguous(s, 0, textLevel, nil)
}

// template is the shape of what follows the delta in a chunk scanText
// accepted: its bytes, except that the contents of string values are holes
// (OpenAI's "obfuscation" differs in every chunk, and Gemini's id and model
// come after the delta). Keys, numbers, null and structure must be the same
// byte for byte, and a string's contents cannot change a JSON document's
// structure, so a chunk that fits holds nothing the learnt one did not.
type template struct {
	lits  []byte // the bytes around the holes
	holes []int  // offsets in lits where a string's contents go
}

// learn makes t the template of rest, which scanText accepted. The values of
// finish_reason-like keys and of "error" stay literal.
func (t *template) learn(rest string) {
	t.lits, t.holes = t.lits[:0], t.holes[:0]
	prev, key := 0, ""
	for i := 0; i < len(rest); i++ {
		if rest[i] != '"' {
			continue
		}
		e := jsonscan.StringEnd(rest, i+1)
		if e < 0 {
			break
		}
		j := jsonscan.SkipSpace(rest, e+1)
		if j < len(rest) && rest[j] == ':' {
			key = rest[i+1 : e]
		} else if e > i+1 && key != "error" && !strings.HasSuffix(key, "_reason") {
			t.lits = append(t.lits, rest[prev:i+1]...)
			t.holes = append(t.holes, len(t.lits))
			prev = e
		}
		i = e
	}
	t.lits = append(t.lits, rest[prev:]...)
}

// match reports whether rest fits the template.
func (t *template) match(rest string) bool { return t.fit(rest, false) }

// matchValid is match for a chunk that must be valid JSON where it fits the
// template: the strings in its holes are checked as gjson.Valid checks them.
func (t *template) matchValid(rest string) bool { return t.fit(rest, true) }

func (t *template) fit(rest string, valid bool) bool {
	lits := unsafeString(t.lits)
	pos, prev := 0, 0
	for _, h := range t.holes {
		seg := lits[prev:h]
		if !strings.HasPrefix(rest[pos:], seg) {
			return false
		}
		var e int
		if valid {
			e = validStringEnd(rest, pos+len(seg))
		} else {
			e = jsonscan.StringEnd(rest, pos+len(seg))
		}
		if e < 0 {
			return false
		}
		pos, prev = e, h
	}
	return rest[pos:] == lits[prev:]
}

// cleanAfter reports that s[from:] holds no usage or second delta object,
// no error but null (hasError), no finish, no escaped key, no "paygate" member and no choice
// index but 0 (otherChoice), in searches
// that skip through the bytes at memchr speed.
func cleanAfter(s string, from int) bool {
	rest := s[from:]
	for off := 0; ; {
		i := strings.IndexByte(rest[off:], '{')
		if i < 0 {
			break
		}
		p := off + i
		off = p + 1
		switch k := keyBefore(s, from+p); k {
		case "delta", "usage":
			return false
		default:
			if len(k) == len("delta") && strings.EqualFold(k, "delta") {
				return false // see scanText
			}
		}
	}
	return !hasNonNull(rest, keyReason, false) && !hasError(rest) && !hasEscapedLetter(rest) && !hasPaygateWord(rest) && !otherChoice(rest)
}

// keyBefore returns the key of the object member whose value starts at p,
// or "" when s[p] is not a member's value.
func keyBefore(s string, p int) string {
	j := p - 1
	for j >= 0 && jsonscan.IsSpace(s[j]) {
		j--
	}
	if j < 0 || s[j] != ':' {
		return ""
	}
	j--
	for j >= 0 && jsonscan.IsSpace(s[j]) {
		j--
	}
	if j < 1 || s[j] != '"' || s[j-1] == '\\' {
		return ""
	}
	k := strings.LastIndexByte(s[:j], '"')
	if k < 0 {
		return ""
	}
	return s[k+1 : j]
}

// parseDelta reads the delta object at s[d] when it is flat (string and null
// members only, and an empty reasoning_details array; no tool call) and
// returns the index after it, or -1.
func parseDelta(s string, d int, tc *textChunk) int {
	gotReason := false
	seen := 0
	i := d + 1
	for first := true; ; first = false {
		i = jsonscan.SkipSpace(s, i)
		if i < len(s) && s[i] == '}' {
			return i + 1
		}
		if !first { // strictly JSON: one comma between members
			if i >= len(s) || s[i] != ',' {
				return -1
			}
			i = jsonscan.SkipSpace(s, i+1)
		}
		if i >= len(s) || s[i] != '"' {
			return -1
		}
		// Keys are short: one loop finds the end and refuses escapes.
		ke := i + 1
		for ke < len(s) && s[ke] != '"' && s[ke] != '\\' {
			ke++
		}
		if ke >= len(s) || s[ke] != '"' {
			return -1
		}
		keyAt, key := i, s[i+1:ke]
		// A member named twice or in another case the slow path refuses
		// (ambiguousChunk): read here, a repeated role's first copy, or a
		// "Role" (Go's encoding/json reads it as the role), reached the
		// bot beside the one that went out.
		f := deltaField(key)
		if f < 0 || seen&f != 0 {
			return -1
		}
		seen |= f
		i = jsonscan.SkipSpace(s, ke+1)
		if i >= len(s) || s[i] != ':' {
			return -1
		}
		i = jsonscan.SkipSpace(s, i+1)
		if i >= len(s) {
			return -1
		}
		switch s[i] {
		case 'n':
			if !strings.HasPrefix(s[i:], "null") {
				return -1
			}
			i += 4
			continue
		case '"':
		case '[':
			// OpenRouter's "reasoning_details":[] beside the text of
			// every delta: an empty array adds no detail (the slow
			// path's Details.Add) and makes nothing meaningful.
			if key != "reasoning_details" {
				return -1
			}
			if i = jsonscan.SkipSpace(s, i+1); i >= len(s) || s[i] != ']' {
				return -1
			}
			i++
			continue
		default: // objects, arrays, numbers: the slow path knows them
			return -1
		}
		e := jsonscan.StringEnd(s, i+1)
		if e < 0 {
			return -1
		}
		raw := s[i+1 : e]
		i = e + 1
		switch key {
		case "content":
			tc.content = raw
		case "reasoning_content":
			if !gotReason {
				gotReason = raw != "" // an empty one leaves the other to count
				tc.reasoning, tc.reasonKey = raw, KeyReasoningContent
			}
		case "reasoning":
			if !gotReason {
				gotReason = raw != "" // an empty one leaves the other to count
				tc.reasoning, tc.reasonKey = raw, KeyReasoning
			}
		case "role":
			if raw != "" {
				tc.role = true
				tc.roleAt, tc.roleEnd = keyAt, e+1
			}
		case "tool_calls", "function_call":
			return -1
		case "refusal":
			tc.refusal = raw
			tc.other = tc.other || raw != ""
		default:
			tc.other = tc.other || raw != ""
		}
	}
}

// deltaFields are the members of a delta ambiguousChunk checks
// (jsonscan.Chunk).
var deltaFields = [...]string{"role", "content", "tool_calls", "function_call", "reasoning_content", "reasoning", "refusal", "reasoning_details"}

// deltaField is the bit of the delta member named key: 0 for a member
// ambiguousChunk does not check, -1 for one of them spelled in another case.
// The names as chunks spell them are a switch on constants, compared in
// place: the loop compared each with memequal, a call per member of every
// delta. The bits are deltaFields' indexes (TestDeltaField).
func deltaField(key string) int {
	switch key {
	case "role":
		return 1 << 0
	case "content":
		return 1 << 1
	case "tool_calls":
		return 1 << 2
	case "function_call":
		return 1 << 3
	case "reasoning_content":
		return 1 << 4
	case "reasoning":
		return 1 << 5
	case "refusal":
		return 1 << 6
	case "reasoning_details":
		return 1 << 7
	}
	// A key longer than a name folds to it only by a rune of two or more
	// bytes (ſ, the Kelvin sign), as Go's encoding/json folds keys too.
	wide := false
	for i := 0; i < len(key); i++ {
		if key[i] >= utf8.RuneSelf {
			wide = true
			break
		}
	}
	for _, f := range deltaFields {
		if (len(key) == len(f) || wide && len(key) > len(f)) && strings.EqualFold(key, f) {
			return -1
		}
	}
	return 0
}

// stringValue is the text of a raw JSON string value; "" for other values.
func stringValue(v string) string {
	if len(v) < 2 || v[0] != '"' {
		return ""
	}
	raw := v[1 : len(v)-1]
	if strings.IndexByte(raw, '\\') < 0 {
		return raw
	}
	return gjson.Parse(v).Str
}

func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// hasEscapedLetter reports a \u escape of an ASCII letter, digit or '_'
// (\u0040 to \u007f). Encoders only escape control characters, quotes,
// HTML characters and non-ASCII; a key spelled with such escapes
// ("tool\u005fcalls") would slip past the byte searches, so such a chunk
// takes the slow path, whose parser decodes keys.
func hasEscapedLetter(s string) bool {
	for {
		i := strings.IndexByte(s, '\\')
		if i < 0 || i+4 >= len(s) {
			return false
		}
		if s[i+1] == 'u' && s[i+2] == '0' && s[i+3] == '0' && s[i+4] >= '4' && s[i+4] <= '7' {
			return true
		}
		s = s[i+2:] // past the escaped character, so "\\" is one escape
	}
}

// hasError reports an "error" member whose value is not null, as the slow
// path reads a chunk's error: an object, and a string, number, true or
// array too (some servers send "error":"…"). A chunk with one is the
// round's error, held from the bot; the text path passed one that was not
// an object on as text. It may answer yes where there is none (a nested
// "error", or a key such as "x\"error"), which
// only sends the chunk to the slow path; it never answers no where there is
// one, as a top-level key's bytes are "error" unless escaped (refused by
// hasEscapedLetter), and a repeated key makes it search on.
func hasError(s string) bool {
	const key = `"error"`
	for {
		i := strings.Index(s, key)
		if i < 0 {
			return false
		}
		s = s[i+len(key):]
		j := jsonscan.SkipSpace(s, 0)
		if j >= len(s) || s[j] != ':' {
			continue
		}
		if j = jsonscan.SkipSpace(s, j+1); j < len(s) && s[j] != 'n' {
			return true
		}
	}
}

// hasNonNull reports whether s has a member whose key ends with key (key
// includes the closing quote) and whose value is not null and not "". With
// exact, the key must be whole (preceded by its opening quote). A key cannot
// occur inside a JSON string value: its quotes would be escaped there. The
// search hops on the key's first byte, which is rare in chunks ('_').
func hasNonNull(s, key string, exact bool) bool {
	for {
		i := strings.IndexByte(s, key[0])
		if i < 0 {
			return false
		}
		if !strings.HasPrefix(s[i:], key) || exact && (i == 0 || s[i-1] != '"') {
			s = s[i+1:]
			continue
		}
		s = s[i+len(key):]
		j := 0
		for j < len(s) && (jsonscan.IsSpace(s[j]) || s[j] == ':') {
			j++
		}
		if j < len(s) && s[j] != 'n' && (s[j] != '"' || j+1 >= len(s) || s[j+1] != '"') {
			return true
		}
	}
}

// learnPrefix keeps the bytes before the delta of a chunk scanText
// accepted and the template of what follows it, and where the id is when it
// is before the delta.
func (c *Capture) learnPrefix(data []byte, s string, delta, deltaEnd int) {
	c.prefix = append(c.prefix[:0], data[:delta]...)
	c.tail.learn(s[deltaEnd:])
	c.prefixID, c.prefixCreated = [2]int{-1, -1}, [2]int{-1, -1}
	if st, en := topID(s, 0); st >= 0 && en <= delta {
		c.prefixID = [2]int{st, en}
	}
	if st, en := topCreated(s, 0); st >= 0 && en <= delta {
		c.prefixCreated = [2]int{st, en}
	}
}

// rewriteID returns data with its top-level id replaced by the turn's id,
// or given it as its first member when it has none, and its "created" by
// the turn's when StartRound gave one. Each is where the learnt prefix has
// it, or else after the delta (which ends at deltaEnd), where Gemini, Qwen
// and Azure put them. Two copies at most, no edit list: the text chunks of
// a later round all come this way.
func (c *Capture) rewriteID(data []byte, s string, deltaEnd int) []byte {
	idAt, idEnd, crAt, crEnd := c.stampAt(data, s, deltaEnd)
	out, pos := c.output(len(data)+len(`{"id":,`)+len(c.turnIDq)+len(c.createdq)), 0
	if idAt < 0 { // no id: the turn's goes first
		out = append(out, '{')
		out = append(out, `"id":`...)
		out = append(out, c.turnIDq...)
		out, pos = append(out, ','), 1
	}
	if crAt >= 0 && idAt > crAt {
		out = append(append(out, data[pos:crAt]...), c.createdq...)
		pos, crAt = crEnd, -1
	}
	if idAt >= 0 {
		out = append(append(out, data[pos:idAt]...), c.turnIDq...)
		pos = idEnd
	}
	if crAt >= 0 {
		out = append(append(out, data[pos:crAt]...), c.createdq...)
		pos = crEnd
	}
	return c.kept(append(out, data[pos:]...))
}

// stampAt finds, in a text chunk whose delta ends at deltaEnd, the byte
// ranges of its top-level id and, when the turn's created replaces it, its
// created (-1 for one it lacks): where the learnt prefix has them, or else
// after the delta. A created that overlaps the id (a malformed chunk's) is
// left alone.
func (c *Capture) stampAt(data []byte, s string, deltaEnd int) (idAt, idEnd, crAt, crEnd int) {
	known := bytes.HasPrefix(data, c.prefix)
	idAt, idEnd = c.prefixID[0], c.prefixID[1]
	if idAt < 0 || !known {
		idAt, idEnd = topID(s, deltaEnd)
	}
	crAt, crEnd = -1, -1
	if len(c.createdq) > 0 {
		if crAt, crEnd = c.prefixCreated[0], c.prefixCreated[1]; crAt < 0 || !known {
			crAt, crEnd = topCreated(s, deltaEnd)
		}
		if crAt >= 0 && idAt >= 0 && crAt < idEnd && idAt < crEnd {
			crAt = -1
		}
	}
	return idAt, idEnd, crAt, crEnd
}

// dropRole returns a text chunk without its role member, every other byte
// as sent (a delta left empty, {}, included), but for the turn's id and
// created where the round's chunks go out under them (stampID, as
// rewriteID stamps them).
func (c *Capture) dropRole(data []byte, s string, tc *textChunk) []byte {
	c.edits = c.edits[:0]
	c.scratch = c.scratch[:0]
	if c.stampID {
		idAt, idEnd, crAt, crEnd := c.stampAt(data, s, tc.deltaEnd)
		if idAt >= 0 {
			c.replace(idAt, idEnd, c.turnIDq)
		} else {
			c.insertID()
		}
		if crAt >= 0 {
			c.replace(crAt, crEnd, c.createdq)
		}
	}
	c.deleteMember(data, tc.roleAt, tc.roleEnd)
	return c.apply(data)
}

// topID returns the byte range of the top-level "id" value (quotes
// included; a null or other non-string id too, which the turn's id
// replaces), or -1. Most providers put it first; others after the choices,
// where from, the end of choice 0's delta, has topAfter walk to it.
func topID(s string, from int) (int, int) {
	const prefix = `{"id":"`
	if strings.HasPrefix(s, prefix) {
		// Its end found as a string's end: an id with an escaped quote
		// was cut at that quote.
		if e := jsonscan.StringEnd(s, len(prefix)); e >= 0 {
			return len(prefix) - 1, e + 1
		}
	}
	if from > 0 {
		if m, ok := topAfter(s, from, "id"); ok {
			return m.At, m.End
		}
	}
	r := gjson.Get(s, "id")
	if !r.Exists() {
		return -1, -1
	}
	return r.Index, r.Index + len(r.Raw)
}

// topCreated returns the byte range of the top-level "created" number, or
// -1: after from, the end of choice 0's delta, when from is not 0.
func topCreated(s string, from int) (int, int) {
	at, end := -1, -1
	if from > 0 {
		if m, ok := topAfter(s, from, "created"); ok {
			at, end = m.At, m.End
		}
	} else if r := gjson.Get(s, "created"); r.Exists() {
		at, end = r.Index, r.Index+len(r.Raw)
	}
	if at < 0 || strings.IndexByte("0123456789-", s[at]) < 0 {
		return -1, -1
	}
	return at, end
}

// topAfter finds the top-level member key after choice 0's delta, which
// ends at deltaEnd, by walking what follows it: the rest of the choice, of
// the choices and of the top level. A search for the key took a member of
// that name nested there (a provider's "x_meta":{"id":…}, a choice's
// logprobs) for the top-level one, and the turn's id or created went
// there.
func topAfter(s string, deltaEnd int, key string) (jsonscan.Member, bool) {
	i := deltaEnd
	for level, object := range [...]bool{true, false, true} { // choice, choices, top
		for {
			m, ok := jsonscan.NextMember(s, i, object)
			if !ok {
				if m.End < 0 {
					return m, false
				}
				i = m.End
				break
			}
			if level == 2 && m.Key == key {
				return m, true
			}
			i = m.End
		}
	}
	return jsonscan.Member{}, false
}
