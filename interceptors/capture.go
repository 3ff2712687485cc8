package interceptors

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"
)

// ErrMalformedChunk is returned by Capture.Process for event data that is not
// a JSON object. SPEC 5 says a single malformed event is skipped and logged.
var ErrMalformedChunk = errors.New("interceptors: chunk is not a JSON object")

// ToolCall is one complete tool call of a round.
type ToolCall struct {
	// Index is the upstream index for payment calls and the client-side
	// index (0..n-1 over the turn) for the client's own calls.
	Index               int
	ID, Name, Arguments string
	// Extra holds the call's members other than index, id, type and
	// function (Gemini's extra_content with its thought_signature) as a raw
	// JSON object, nil when there are none. They must go back with the
	// assistant message; AssistantToolMessage puts them there.
	Extra []byte
}

// Usage is a round's token usage as the provider reported it.
type Usage struct {
	PromptTokens, CompletionTokens, TotalTokens int64
}

// SentRecord is what the client has received in a round (SPEC 3 step 5):
// the text and the client's own tool calls, as they went out.
type SentRecord struct {
	// Role: a chunk with a role delta was returned (round 0 only).
	Role bool
	// Text and Reasoning: the content and reasoning text returned.
	Text, Reasoning string
	// Calls: the client's tool calls returned, with their client indexes
	// (the same slice as RoundResult.ClientCalls).
	Calls []ToolCall
}

// RoundResult is what one upstream round produced, for the turn loop to
// decide whether the turn continues.
type RoundResult struct {
	// ID and Model are the upstream chunk id and model of this round.
	ID, Model string
	// Content is the round's assistant text; Reasoning its reasoning text
	// (reasoning_content or reasoning deltas).
	Content, Reasoning string
	// PaymentCalls are complete, ordered by upstream index. A call whose
	// name never arrived was never shown to the client and is reported here
	// with an empty Name, for the loop to refuse.
	PaymentCalls []ToolCall
	// ClientCalls are the client's own calls, with their client-side index.
	ClientCalls []ToolCall
	// FinishReason is what the provider said ("stop", "tool_calls", …), ""
	// if no finish_reason came. A round with calls is a tool round whatever
	// it says: see ToolRound.
	FinishReason string
	// FinishChunk is the held finish chunk made ready to forward if the turn
	// ends with this round: its delta emptied (what it carried was returned
	// by Process or was a payment call), its id rewritten after round 0, its
	// finish_reason and usage as the provider sent them. Nil if none came.
	FinishChunk []byte
	// Usage comes from the usage chunk or the finish chunk; nil if none.
	Usage *Usage
	// Error is the raw "error" object a provider sent inside the stream
	// (OpenRouter's mid-stream error), nil if none. Its chunk is not
	// returned to the client.
	Error []byte
	// Sent is what the client has received this round.
	Sent SentRecord
}

// ToolRound reports whether the round carried tool calls; providers that end
// a tool round with "stop" (Gemini) make finish_reason unreliable.
func (r *RoundResult) ToolRound() bool {
	return len(r.PaymentCalls) > 0 || len(r.ClientCalls) > 0
}

// Capture watches the chunks of one turn's upstream rounds: it passes text
// and the client's own tool-call deltas through as they arrive, holds back
// and reassembles payment tool calls, and holds the finish chunk until the
// turn loop decides whether the turn goes on. It is not safe for concurrent
// use; one Capture serves one turn.
type Capture struct {
	isPayment  func(string) bool
	nextClient int // client tool-call indexes handed out this turn

	round   int
	turnIDq []byte // turnID as a JSON string

	// Per round.
	id, model   string
	content     []byte // raw JSON string fragments, escapes kept
	reasoning   []byte
	role        bool
	slots       []slot
	finish      string
	finishChunk []byte
	hasFinish   bool
	usage       Usage
	hasUsage    bool
	errRaw      []byte

	// The bytes before the delta of this round's text chunks (see
	// scanTextAfter) and where the id is in them.
	prefix   []byte
	tail     template
	prefixID [2]int
	slowSeen int // chunks of this round that took the slow path

	// Per chunk scratch, reused.
	out     []byte
	scratch []byte
	edits   []edit
	extra   []member
	st      chunkState
}

// slot accumulates one tool call across its deltas.
type slot struct {
	choice    int
	upIdx     int
	hasIdx    bool
	order     int
	id, name  string
	args      []byte // raw JSON string fragments, escapes kept
	extraKeys []string
	extraVals [][]byte
	kind      callKind
	clientIdx int
	held      bool // deltas were held back before the name was known
	replay    bool // emit a synthetic entry with everything so far
}

type callKind uint8

const (
	kindUnknown callKind = iota
	kindPayment
	kindClient
)

// edit replaces data[start:end] by scratch[rs:re].
type edit struct{ start, end, rs, re int }

type chunkState struct {
	choices    int
	meaningful bool
	role       bool
	finish     string
	hasError   bool
	idStart    int
	idEnd      int
	text       [2]int // raw content of choice 0, in data
	reason     [2]int
	deltas     [][2]int
}

// NewCapture starts a turn, ready for round 0. isPayment tells the payment
// tools' names from the client's own.
func NewCapture(isPayment func(name string) bool) *Capture {
	c := &Capture{isPayment: isPayment}
	c.StartRound(0, "")
	return c
}

// StartRound resets the per-round state. Round 0 is the first upstream
// round; for round > 0 every chunk's "id" is rewritten to turnID and the
// role delta is removed, so the client sees one id and one role delta per
// turn. Client tool-call indexes keep counting across rounds.
func (c *Capture) StartRound(round int, turnID string) {
	c.round = round
	c.turnIDq = appendJSONString(c.turnIDq[:0], turnID)
	c.id, c.model = "", ""
	c.content = c.content[:0]
	c.reasoning = c.reasoning[:0]
	c.role = false
	for i := range c.slots {
		c.slots[i] = slot{args: c.slots[i].args[:0]}
	}
	c.slots = c.slots[:0]
	c.finish = ""
	c.finishChunk = c.finishChunk[:0]
	c.hasFinish = false
	c.usage = Usage{}
	c.hasUsage = false
	c.errRaw = nil
	c.prefix = c.prefix[:0]
	c.tail.learn("")
	c.slowSeen = 0
}

// keyReason ends both finish_reason and OpenRouter's native_finish_reason.
const keyReason = "_reason\""

// Process takes one upstream chunk (the data of one SSE event) and returns
// the bytes to send to the client now, or nil to send nothing. The returned
// slice is valid until the next call.
//
//   - Text, reasoning and the client's own tool-call deltas pass through as
//     they arrive, unchanged where nothing needs changing.
//   - Payment tool-call deltas are held back and accumulated by index (by id
//     where the provider sends no index); a chunk mixing both is rewritten
//     without the payment entries. The client's own calls are renumbered
//     0..n-1 over the turn, without gaps.
//   - The chunk carrying a non-null finish_reason is not returned: it is
//     kept for EndRound. Text or client calls in that same chunk are
//     returned with finish_reason (and usage) set to null.
//   - A usage-only chunk (empty choices and a usage) is not returned; its
//     usage is kept for EndRound.
//   - Azure's first chunk (empty choices, prompt_filter_results, empty id
//     and model) is not returned: it has nothing for the client, and the
//     client gets a plain OpenAI stream. Any chunk with empty choices is
//     dropped the same way.
//   - A chunk with a top-level "error" (OpenRouter's mid-stream error) is
//     not returned; the error is kept for EndRound.
//
// A text chunk (one delta with text, no tool call, no finish_reason, no
// usage) is recognised with a few byte searches (scanText) and returned as
// is in round 0; everything else gets one full walk with gjson.
func (c *Capture) Process(data []byte) ([]byte, error) {
	if len(data) == 0 || data[0] != '{' {
		data = trimSpace(data)
		if len(data) == 0 || data[0] != '{' {
			return nil, ErrMalformedChunk
		}
	}
	s := unsafe.String(unsafe.SliceData(data), len(data))
	if c.id != "" || c.slowSeen > 2 { // the first chunks name the round's id and model
		var tc textChunk
		ok, known := false, len(c.prefix) > 0 && bytes.HasPrefix(data, c.prefix)
		if known {
			tc, ok = scanTextAfter(s, len(c.prefix), c.round > 0, &c.tail)
		} else if tc, ok = scanText(s, c.round > 0); ok {
			c.learnPrefix(data, s, tc.delta, tc.deltaEnd)
		}
		if ok {
			c.content = append(c.content, tc.content...)
			c.reasoning = append(c.reasoning, tc.reasoning...)
			c.role = c.role || tc.role
			if c.round == 0 {
				return data, nil
			}
			return c.rewriteID(data, s, tc.deltaEnd), nil
		}
	}
	// What is rewritten must first be understood: the slow path checks the
	// whole chunk (failover already skips malformed events; this keeps the
	// Capture safe on its own).
	if !gjson.Valid(s) {
		return nil, ErrMalformedChunk
	}
	return c.slow(data, s), nil
}

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
		for j < len(s) && (isSpace(s[j]) || s[j] == ':') {
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
	c.prefixID = [2]int{-1, -1}
	if st, en := topID(s, 0); st >= 0 && en <= delta {
		c.prefixID = [2]int{st, en}
	}
}

// rewriteID returns data with its top-level id replaced by the turn's id.
// The id is where the learnt prefix has it, or else after the delta (which
// ends at deltaEnd), where Gemini and Azure put it.
func (c *Capture) rewriteID(data []byte, s string, deltaEnd int) []byte {
	start, end := -1, -1
	if c.prefixID[0] >= 0 && bytes.HasPrefix(data, c.prefix) {
		start, end = c.prefixID[0], c.prefixID[1]
	} else {
		start, end = topID(s, deltaEnd)
	}
	if start < 0 {
		return data
	}
	c.out = append(c.out[:0], data[:start]...)
	c.out = append(c.out, c.turnIDq...)
	c.out = append(c.out, data[end:]...)
	return c.out
}

// topID returns the byte range of the top-level "id" value (quotes
// included), or -1. Most providers put it first; others after the choices,
// so a plain `"id":"` after the delta (from) is the top-level one: nothing
// after a delta but the rest of its choice and the top level can hold it.
func topID(s string, from int) (int, int) {
	const prefix = `{"id":"`
	if strings.HasPrefix(s, prefix) {
		if e := strings.IndexByte(s[len(prefix):], '"'); e >= 0 {
			return len(prefix) - 1, len(prefix) + e + 1
		}
	}
	if from > 0 {
		if i := strings.Index(s[from:], `"id":"`); i >= 0 {
			v := from + i + 5
			if e := stringEnd(s, v+1); e >= 0 {
				return v, e + 1
			}
		}
	}
	r := gjson.Get(s, "id")
	if r.Type != gjson.String {
		return -1, -1
	}
	return r.Index, r.Index + len(r.Raw)
}

// slow handles every chunk that is not plain text with one walk over its
// JSON, recording edits and applying them once.
func (c *Capture) slow(data []byte, s string) []byte {
	c.slowSeen++
	c.edits = c.edits[:0]
	c.scratch = c.scratch[:0]
	st := &c.st
	*st = chunkState{idStart: -1, text: [2]int{-1, -1}, reason: [2]int{-1, -1}, deltas: st.deltas[:0]}
	gjson.Parse(s).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "id":
			if v.Type == gjson.String {
				if c.id == "" && v.Str != "" {
					c.id = strings.Clone(v.Str)
				}
				st.idStart, st.idEnd = v.Index, v.Index+len(v.Raw)
				if c.round > 0 {
					c.replace(v.Index, v.Index+len(v.Raw), c.turnIDq)
				}
			}
		case "model":
			if v.Type == gjson.String && c.model == "" && v.Str != "" {
				c.model = strings.Clone(v.Str)
			}
		case "choices":
			v.ForEach(func(_, ch gjson.Result) bool {
				st.choices++
				c.choice(data, s, ch)
				return true
			})
		case "usage":
			if v.IsObject() {
				c.readUsage(v)
				c.replace(v.Index, v.Index+len(v.Raw), nullBytes)
			}
		case "error":
			if v.Type != gjson.Null {
				st.hasError = true
				c.errRaw = append(c.errRaw[:0], v.Raw...)
			}
		}
		return true
	})
	if st.finish != "" || st.hasError {
		c.hasFinish = true
		c.finish = internFinish(st.finish, st.hasError)
		c.keepFinishChunk(data)
	}
	if st.choices == 0 || st.hasError || !st.meaningful {
		return nil
	}
	if st.text[0] >= 0 {
		c.content = append(c.content, data[st.text[0]:st.text[1]]...)
	}
	if st.reason[0] >= 0 {
		c.reasoning = append(c.reasoning, data[st.reason[0]:st.reason[1]]...)
	}
	if st.role {
		c.role = true
	}
	if len(c.edits) == 0 {
		return data
	}
	return c.apply(data)
}

var nullBytes = []byte("null")

func (c *Capture) choice(data []byte, s string, ch gjson.Result) {
	st := &c.st
	idx := st.choices - 1
	if r := ch.Get("index"); r.Type == gjson.Number {
		idx = int(r.Int())
	}
	ch.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "delta":
			if v.IsObject() {
				st.deltas = append(st.deltas, [2]int{v.Index, v.Index + len(v.Raw)})
				c.delta(data, s, v.Index, idx)
			}
		case "finish_reason":
			if v.Type == gjson.String && v.Str != "" {
				st.finish = v.Str
				c.replace(v.Index, v.Index+len(v.Raw), nullBytes)
			}
		case "native_finish_reason":
			if v.Type == gjson.String && v.Str != "" {
				c.replace(v.Index, v.Index+len(v.Raw), nullBytes)
			}
		}
		return true
	})
}

// delta reads the delta object at s[at], which slow has checked is valid
// JSON, walking it by position (gjson would unescape every string value, an
// allocation per chunk on the tool-call path).
func (c *Capture) delta(data []byte, s string, at, choice int) {
	st := &c.st
	gotReason := false
	for i := at + 1; ; {
		m, ok := nextMember(s, i, true)
		if !ok {
			return
		}
		i = m.end
		v := s[m.at:m.end]
		switch keyName(m.key) {
		case "role":
			if v[0] == '"' && len(v) > 2 {
				if c.round > 0 {
					c.deleteMember(data, m.keyAt, m.end)
				} else {
					st.meaningful, st.role = true, true
				}
			}
		case "content":
			if v[0] == '"' {
				if choice == 0 {
					st.text = [2]int{m.at + 1, m.end - 1}
				}
				if len(v) > 2 {
					st.meaningful = true
				}
			}
		case "reasoning_content", "reasoning":
			if v[0] == '"' && !gotReason {
				gotReason = true
				if choice == 0 {
					st.reason = [2]int{m.at + 1, m.end - 1}
				}
				if len(v) > 2 {
					st.meaningful = true
				}
			}
		case "tool_calls":
			if v[0] == '[' {
				c.toolCalls(data, s, m, choice)
			}
		default:
			if notEmpty(v) {
				st.meaningful = true
			}
		}
	}
}

// notEmpty: a raw value the client should see (not null, "", [] or {}).
func notEmpty(v string) bool {
	switch v[0] {
	case 'n':
		return false
	case '"':
		return len(v) > 2
	case '{', '[':
		return strings.TrimSpace(v[1:len(v)-1]) != ""
	}
	return true
}

// entry is one element of a delta's tool_calls, by position in the chunk.
type entry struct {
	start, end   int // the element
	idx          int
	hasIdx       bool
	idxAt, idxTo int // the "index" value, -1 if absent
	id, name     string
	args         string // raw JSON string fragment
	argsJSON     bool   // args is a raw JSON value, not a string
	extra        []member
}

// parseEntry reads a tool-call entry; extra is reused for its members other
// than index, id, type and function.
func parseEntry(s string, start, end int, extra []member) entry {
	en := entry{start: start, end: end, idxAt: -1, extra: extra[:0]}
	for i := start + 1; ; {
		m, ok := nextMember(s, i, true)
		if !ok {
			return en
		}
		i = m.end
		v := s[m.at:m.end]
		switch keyName(m.key) {
		case "index":
			en.idxAt, en.idxTo = m.at, m.end
			if n, err := strconv.Atoi(v); err == nil {
				en.idx, en.hasIdx = n, true
			}
		case "id":
			en.id = stringValue(v)
		case "type":
		case "function":
			if v[0] != '{' {
				continue
			}
			for j := m.at + 1; ; {
				f, ok := nextMember(s, j, true)
				if !ok {
					break
				}
				j = f.end
				fv := s[f.at:f.end]
				switch keyName(f.key) {
				case "name":
					en.name = stringValue(fv)
				case "arguments":
					switch fv[0] {
					case '"':
						en.args = fv[1 : len(fv)-1]
					case '{', '[':
						en.args, en.argsJSON = fv, true
					}
				}
			}
		default:
			if v[0] != 'n' {
				en.extra = append(en.extra, m)
			}
		}
	}
}

// toolCalls absorbs a delta's tool_calls (the member tc) and rewrites the
// array for the client: payment entries (and entries of calls not named
// yet) removed, the client's entries renumbered.
func (c *Capture) toolCalls(data []byte, s string, tc member, choice int) {
	changed := false
	kept := 0
	start := len(c.scratch)
	c.scratch = append(c.scratch, '[')
	for i := tc.at + 1; ; {
		e, ok := nextMember(s, i, false)
		if !ok {
			break
		}
		i = e.end
		if s[e.at] != '{' { // not a tool call; nothing a client could use
			changed = true
			continue
		}
		en := parseEntry(s, e.at, e.end, c.extra)
		c.extra = en.extra
		sl := c.slotFor(choice, &en)
		c.absorb(s, sl, &en)
		if sl.kind != kindClient {
			sl.held = sl.held || sl.kind == kindUnknown
			changed = true
			continue
		}
		if kept > 0 {
			c.scratch = append(c.scratch, ',')
		}
		kept++
		switch {
		case sl.replay:
			sl.replay = false
			changed = true
			c.scratch = appendSynthetic(c.scratch, sl)
		case en.hasIdx && en.idx == sl.clientIdx:
			c.scratch = append(c.scratch, data[en.start:en.end]...)
		case en.idxAt >= 0:
			changed = true
			c.scratch = append(c.scratch, data[en.start:en.idxAt]...)
			c.scratch = strconv.AppendInt(c.scratch, int64(sl.clientIdx), 10)
			c.scratch = append(c.scratch, data[en.idxTo:en.end]...)
		default:
			changed = true
			c.scratch = append(c.scratch, `{"index":`...)
			c.scratch = strconv.AppendInt(c.scratch, int64(sl.clientIdx), 10)
			rest := trimSpace(data[en.start+1 : en.end])
			if len(rest) > 1 {
				c.scratch = append(c.scratch, ',')
			}
			c.scratch = append(c.scratch, rest...)
		}
	}
	if kept > 0 {
		c.st.meaningful = true
	}
	if !changed {
		c.scratch = c.scratch[:start]
		return
	}
	if kept == 0 {
		c.scratch = c.scratch[:start]
		c.deleteMember(data, tc.keyAt, tc.end)
		return
	}
	c.scratch = append(c.scratch, ']')
	c.edits = append(c.edits, edit{tc.at, tc.end, start, len(c.scratch)})
}

// appendSynthetic renders a client call whose first deltas were held back
// (its name came late) with everything received so far.
func appendSynthetic(out []byte, sl *slot) []byte {
	out = append(out, `{"index":`...)
	out = strconv.AppendInt(out, int64(sl.clientIdx), 10)
	if sl.id != "" {
		out = append(out, `,"id":`...)
		out = appendJSONString(out, sl.id)
	}
	out = append(out, `,"type":"function","function":{"name":`...)
	out = appendJSONString(out, sl.name)
	out = append(out, `,"arguments":"`...)
	out = append(out, sl.args...)
	return append(out, `"}}`...)
}

// slotFor finds the call an entry belongs to: by index; by id where the
// provider sends no index (Gemini); an entry with neither index nor id
// starts a new call when it names one and otherwise continues the last call
// (Gemini can split arguments or send the thought signature on its own).
// Under one index, a different id with a name is a new call: some providers
// send index 0 for every call.
func (c *Capture) slotFor(choice int, en *entry) *slot {
	if en.hasIdx {
		for i := len(c.slots) - 1; i >= 0; i-- {
			sl := &c.slots[i]
			if sl.choice != choice || !sl.hasIdx || sl.upIdx != en.idx {
				continue
			}
			if en.id != "" && sl.id != "" && en.id != sl.id && en.name != "" {
				break
			}
			return sl
		}
		return c.newSlot(choice, en.idx, true)
	}
	if en.id != "" {
		for i := range c.slots {
			if sl := &c.slots[i]; sl.choice == choice && sl.id == en.id {
				return sl
			}
		}
		return c.newSlot(choice, len(c.slots), false)
	}
	if en.name == "" {
		for i := len(c.slots) - 1; i >= 0; i-- {
			if sl := &c.slots[i]; sl.choice == choice {
				return sl
			}
		}
	}
	return c.newSlot(choice, len(c.slots), false)
}

func (c *Capture) newSlot(choice, upIdx int, hasIdx bool) *slot {
	n := len(c.slots)
	if n < cap(c.slots) {
		c.slots = c.slots[:n+1]
		args := c.slots[n].args[:0]
		c.slots[n] = slot{args: args}
	} else {
		c.slots = append(c.slots, slot{})
	}
	sl := &c.slots[n]
	sl.choice, sl.upIdx, sl.hasIdx, sl.order = choice, upIdx, hasIdx, n
	return sl
}

// absorb adds an entry's fragments to its call. An id or name is taken from
// the first delta that has one: providers that repeat them (Qwen) send
// empty strings later, which must not overwrite them.
func (c *Capture) absorb(s string, sl *slot, en *entry) {
	if sl.id == "" && en.id != "" {
		sl.id = strings.Clone(en.id)
	}
	if sl.name == "" && en.name != "" {
		sl.name = strings.Clone(en.name)
		if c.isPayment(sl.name) {
			sl.kind = kindPayment
		} else {
			sl.kind = kindClient
			sl.clientIdx = c.nextClient
			c.nextClient++
			sl.replay = sl.held
		}
	}
	if en.argsJSON {
		q := appendJSONString(nil, en.args)
		sl.args = append(sl.args, q[1:len(q)-1]...)
	} else {
		sl.args = append(sl.args, en.args...)
	}
	for _, m := range en.extra {
		key, val := keyName(m.key), s[m.at:m.end]
		if i := slices.Index(sl.extraKeys, key); i >= 0 {
			sl.extraVals[i] = append(sl.extraVals[i][:0], val...)
			continue
		}
		sl.extraKeys = append(sl.extraKeys, strings.Clone(key))
		sl.extraVals = append(sl.extraVals, []byte(val))
	}
}

func (c *Capture) readUsage(v gjson.Result) {
	c.hasUsage = true
	c.usage = Usage{
		PromptTokens:     v.Get("prompt_tokens").Int(),
		CompletionTokens: v.Get("completion_tokens").Int(),
		TotalTokens:      v.Get("total_tokens").Int(),
	}
	if c.usage.TotalTokens == 0 {
		c.usage.TotalTokens = c.usage.PromptTokens + c.usage.CompletionTokens
	}
}

// replace records an edit replacing data[start:end] by repl.
func (c *Capture) replace(start, end int, repl []byte) {
	rs := len(c.scratch)
	c.scratch = append(c.scratch, repl...)
	c.edits = append(c.edits, edit{start, end, rs, len(c.scratch)})
}

// deleteMember records the removal of an object member (key at keyAt, value
// ending at end) with one adjacent comma.
func (c *Capture) deleteMember(data []byte, keyAt, end int) {
	j := end
	for j < len(data) && isSpace(data[j]) {
		j++
	}
	if j < len(data) && data[j] == ',' {
		j++
		for j < len(data) && isSpace(data[j]) {
			j++
		}
		c.edits = append(c.edits, edit{keyAt, j, 0, 0})
		return
	}
	i := keyAt
	for i > 0 && isSpace(data[i-1]) {
		i--
	}
	if i > 0 && data[i-1] == ',' {
		i--
		for i > 0 && isSpace(data[i-1]) {
			i--
		}
	}
	c.edits = append(c.edits, edit{i, end, 0, 0})
}

// apply builds the returned chunk from data and the recorded edits.
func (c *Capture) apply(data []byte) []byte {
	slices.SortFunc(c.edits, func(a, b edit) int { return a.start - b.start })
	c.out = c.out[:0]
	pos := 0
	for _, e := range c.edits {
		if e.start < pos { // overlapping edits cannot happen; be safe
			continue
		}
		c.out = append(c.out, data[pos:e.start]...)
		c.out = append(c.out, c.scratch[e.rs:e.re]...)
		pos = e.end
	}
	c.out = append(c.out, data[pos:]...)
	return c.out
}

// keepFinishChunk keeps the finish chunk with its deltas emptied and, after
// round 0, the turn's id.
func (c *Capture) keepFinishChunk(data []byte) {
	st := &c.st
	type cut struct {
		start, end int
		repl       []byte
	}
	cuts := make([]cut, 0, len(st.deltas)+1)
	if c.round > 0 && st.idStart >= 0 {
		cuts = append(cuts, cut{st.idStart, st.idEnd, c.turnIDq})
	}
	for _, d := range st.deltas {
		cuts = append(cuts, cut{d[0], d[1], []byte("{}")})
	}
	slices.SortFunc(cuts, func(a, b cut) int { return a.start - b.start })
	out := c.finishChunk[:0]
	pos := 0
	for _, k := range cuts {
		out = append(out, data[pos:k.start]...)
		out = append(out, k.repl...)
		pos = k.end
	}
	c.finishChunk = append(out, data[pos:]...)
}

func internFinish(f string, isErr bool) string {
	switch f {
	case "":
		if isErr {
			return "error"
		}
		return ""
	case "stop":
		return "stop"
	case "tool_calls":
		return "tool_calls"
	case "length":
		return "length"
	case "content_filter":
		return "content_filter"
	case "error":
		return "error"
	case "function_call":
		return "function_call"
	}
	return strings.Clone(f)
}

// EndRound returns what the round produced. The Capture is ready for the
// next StartRound; the result shares no memory with it.
func (c *Capture) EndRound() RoundResult {
	r := RoundResult{
		ID:           c.id,
		Model:        c.model,
		Content:      decodeRaw(c.content),
		Reasoning:    decodeRaw(c.reasoning),
		FinishReason: c.finish,
	}
	order := make([]*slot, len(c.slots))
	for i := range c.slots {
		order[i] = &c.slots[i]
	}
	slices.SortStableFunc(order, func(a, b *slot) int {
		if a.choice != b.choice {
			return a.choice - b.choice
		}
		if a.upIdx != b.upIdx {
			return a.upIdx - b.upIdx
		}
		return a.order - b.order
	})
	for _, sl := range order {
		tc := ToolCall{Index: sl.upIdx, ID: sl.id, Name: sl.name, Arguments: decodeRaw(sl.args), Extra: extraObject(sl)}
		if sl.kind == kindClient {
			tc.Index = sl.clientIdx
			r.ClientCalls = append(r.ClientCalls, tc)
		} else {
			r.PaymentCalls = append(r.PaymentCalls, tc)
		}
	}
	slices.SortStableFunc(r.ClientCalls, func(a, b ToolCall) int { return a.Index - b.Index })
	if c.hasFinish && len(c.finishChunk) > 0 {
		r.FinishChunk = append([]byte(nil), c.finishChunk...)
	}
	if c.hasUsage {
		u := c.usage
		r.Usage = &u
	}
	if c.errRaw != nil {
		r.Error = append([]byte(nil), c.errRaw...)
	}
	r.Sent = SentRecord{Role: c.role, Text: r.Content, Reasoning: r.Reasoning, Calls: r.ClientCalls}
	return r
}

func extraObject(sl *slot) []byte {
	if len(sl.extraKeys) == 0 {
		return nil
	}
	out := []byte{'{'}
	for i, k := range sl.extraKeys {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendJSONString(out, k)
		out = append(out, ':')
		out = append(out, sl.extraVals[i]...)
	}
	return append(out, '}')
}

// decodeRaw decodes concatenated raw JSON string fragments. Decoding the
// concatenation rather than each fragment keeps a UTF-16 surrogate pair
// split across two deltas whole.
func decodeRaw(raw []byte) string {
	if len(raw) == 0 {
		return ""
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw)
	}
	q := make([]byte, 0, len(raw)+2)
	q = append(q, '"')
	q = append(q, raw...)
	q = append(q, '"')
	return gjson.ParseBytes(q).String()
}
