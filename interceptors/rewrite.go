package interceptors

import (
	"slices"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/jsonscan"
	"github.com/paygate/paygate/internal/jsonstr"
)

// slow handles every chunk that is not plain text with one walk over its
// JSON, recording edits and applying them once.
func (c *Capture) slow(data []byte, s string) []byte {
	c.slowSeen++
	c.edits = c.edits[:0]
	c.scratch = c.scratch[:0]
	st := &c.st
	*st = chunkState{idStart: -1, created: [2]int{-1, -1}, text: [2]int{-1, -1}, parts: [2]int{-1, -1}, reason: [2]int{-1, -1}, refusal: [2]int{-1, -1},
		deltas: st.deltas[:0], logprobs: st.logprobs[:0], otherRoles: st.otherRoles[:0]}
	gjson.Parse(s).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "id":
			if v.Type == gjson.String && c.id == "" && v.Str != "" {
				c.id = strings.Clone(v.Str)
			}
			st.idStart, st.idEnd = v.Index, v.Index+len(v.Raw)
		case "created":
			if v.Type == gjson.Number {
				if c.created == 0 {
					c.created = v.Int()
				}
				st.created = [2]int{v.Index, v.Index + len(v.Raw)}
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
		case "system_fingerprint":
			if v.Type == gjson.String {
				c.fingerprint = append(c.fingerprint[:0], v.Raw...)
			}
		default:
			st.paygate = st.paygate || isPaygateKey(k.Str)
		}
		return true
	})
	if st.paygate {
		// An upstream's own "paygate" member never reaches the bot: see
		// DropPaygate.
		c.drops = paygateSpans(s, 0, c.drops[:0])
		for _, d := range c.drops {
			c.edits = append(c.edits, edit{d[0], d[1], 0, 0})
		}
	}
	if u := st.choiceUsage; u[1] != 0 {
		c.deleteMember(data, u[0], u[1])
	}
	keep := st.finish != "" || st.hasError
	send := st.choices > 0 && !st.hasError && st.meaningful
	if !c.idSettled && (keep || send) {
		// The first chunk the client gets (now or as the finish chunk)
		// decides: a round that names itself keeps its id, one that does
		// not goes out under the turn's (see StartRound).
		c.idSettled = true
		c.stampID = c.id == "" && c.turnID != ""
	}
	if keep {
		c.hasFinish = true
		c.finish = internFinish(st.finish, st.hasError)
		c.keepFinishChunk(data, send)
	}
	if !send {
		return nil
	}
	if c.stampID {
		if st.idStart >= 0 {
			c.replace(st.idStart, st.idEnd, c.turnIDq)
		} else {
			c.insertID()
		}
	}
	if len(c.createdq) > 0 && st.created[0] >= 0 {
		c.replace(st.created[0], st.created[1], c.createdq)
	}
	if st.text[0] >= 0 {
		if c.breakPending && st.text[1] > st.text[0] {
			c.textStarts(s[st.text[0]:st.text[1]])
		}
		c.content = append(c.content, data[st.text[0]:st.text[1]]...)
	}
	if st.parts[0] >= 0 {
		if c.breakPending {
			// A round whose text comes as parts (a Mistral reasoning
			// model's) starts a paragraph as one of strings does: the
			// non-stream answer puts the break before its text parts,
			// and the bot read "…下单。Your order…" run together.
			if raw, ok := firstPartText(s[st.parts[0]:st.parts[1]]); ok {
				c.textStarts(raw)
			}
		}
		c.parts.add(c.content, s[st.parts[0]:st.parts[1]])
	}
	if st.reason[0] >= 0 {
		c.reasoning = append(c.reasoning, data[st.reason[0]:st.reason[1]]...)
		if st.reason[1] > st.reason[0] {
			c.reasonKey = st.reasonKey
		}
	}
	if st.refusal[0] >= 0 {
		c.refusal = append(c.refusal, data[st.refusal[0]:st.refusal[1]]...)
	}
	c.opaque = c.opaque || st.opaque
	if st.role {
		c.role, c.roleSent = true, true
	}
	for _, ch := range st.otherRoles {
		if !slices.Contains(c.otherRoles, ch) {
			c.otherRoles = append(c.otherRoles, ch)
		}
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
		case "logprobs":
			if v.Type != gjson.Null {
				st.logprobs = append(st.logprobs, [2]int{v.Index, v.Index + len(v.Raw)})
			}
		case "finish_reason":
			switch {
			case v.Type != gjson.String || v.Str == "":
			case idx != 0:
				// Another choice's finish (a provider that sent a second
				// choice, asked for or not) is not the round's, which the
				// turn ends with: it goes out as it came, as the choice's
				// text did. Kept, it stood in for choice 0's, which the
				// bot then never got.
				st.meaningful = true
			default:
				st.finish = v.Str
				c.replace(v.Index, v.Index+len(v.Raw), nullBytes)
			}
		case "native_finish_reason":
			if v.Type == gjson.String && v.Str != "" && idx == 0 {
				c.replace(v.Index, v.Index+len(v.Raw), nullBytes)
			}
		case "usage":
			// Moonshot (Kimi) streams its usage here, in the finish
			// chunk's choice, and none at the top level. Read as the
			// round's unless a top-level one comes (EndRound), and removed
			// from the chunk as that one is: the bot gets the turn's sum.
			if v.IsObject() && idx == 0 && st.choiceUsage[1] == 0 {
				st.choiceUsage = [2]int{k.Index, v.Index + len(v.Raw)}
				c.hasChoiceUsage = true
				c.choiceUsageRaw = append(c.choiceUsageRaw[:0], v.Raw...) // a copy: v points into the chunk
				c.choiceUsage = ReadUsage(v)
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
		m, ok := jsonscan.NextMember(s, i, true)
		if !ok {
			return
		}
		i = m.End
		v := s[m.At:m.End]
		switch k := jsonscan.KeyName(m.Key); k {
		case "role":
			if v[0] == '"' && len(v) > 2 {
				switch {
				case choice != 0 && slices.Contains(c.otherRoles, choice):
					// That choice's role went out already.
					c.deleteMember(data, m.KeyAt, m.End)
				case choice != 0:
					// Another choice's role is that choice's, not the
					// turn's: choice 0 still needs its own.
					st.meaningful = true
					st.otherRoles = append(st.otherRoles, choice)
				case c.roleSent:
					// The turn's role went out already, in this round
					// or an earlier one (StartRound).
					c.deleteMember(data, m.KeyAt, m.End)
				default:
					st.meaningful, st.role = true, true
				}
			}
		case "content":
			if v[0] == '"' {
				if choice == 0 {
					st.text = [2]int{m.At + 1, m.End - 1}
				}
				if len(v) > 2 {
					st.meaningful = true
				}
			} else if notEmpty(v) {
				// Content parts: Mistral's reasoning models stream their
				// thinking as "content":[{"type":"thinking",…}]. Not text
				// the turn keeps, but the bot must see it; no fresh answer
				// can be matched against it (SentRecord.Opaque). They go
				// back on a tool round's assistant message
				// (RoundResult.ContentParts).
				st.meaningful, st.opaque = true, true
				if v[0] == '[' && choice == 0 {
					st.parts = [2]int{m.At, m.End}
				}
			}
		case "refusal":
			if v[0] == '"' && choice == 0 {
				st.refusal = [2]int{m.At + 1, m.End - 1}
			}
			if notEmpty(v) {
				st.meaningful = true
			}
		case "audio", "images":
			// images: an image model's picture (a data URL): a fresh
			// answer draws another one, so it is opaque as audio is.
			if notEmpty(v) {
				st.meaningful, st.opaque = true, true
			}
			if k == "images" && v[0] == '[' && choice == 0 {
				// Numbered after the earlier rounds' pictures, as
				// reasoning_details blocks are: a stream helper joins
				// the entries of one index.
				c.imageNext = max(c.imageNext, c.renumber(m.At, v, c.imageBase))
			}
		case "reasoning_content":
			// An empty one ("" beside the reasoning a server names
			// reasoning) leaves the other to count, as ReadAnswer does.
			if v[0] == '"' && !gotReason {
				gotReason = len(v) > 2
				c.reason(m, choice, KeyReasoningContent)
			}
		case "reasoning":
			if v[0] == '"' && !gotReason {
				gotReason = len(v) > 2
				c.reason(m, choice, KeyReasoning)
			}
		case "tool_calls":
			if v[0] == '[' {
				c.toolCalls(data, s, m, choice)
			}
		case "function_call":
			if v[0] == '{' && (choice == 0 && c.legacyCall(v, m.At) || choice != 0 && c.strayLegacyCall(choice, v, m.At)) {
				c.deleteMember(data, m.KeyAt, m.End)
				break
			}
			if notEmpty(v) {
				st.meaningful = true
				c.legacyOut = c.legacyOut || choice == 0 && v[0] == '{' // choice 0's, as ClientCalls
			}
		case "annotations":
			if choice == 0 && v[0] == '[' && notEmpty(v) {
				// Citations placed in this round's text, which the
				// client reads after the earlier rounds'
				// (ShiftAnnotations): held for the turn's end
				// (RoundResult.Annotations), to go out in one delta;
				// moved there, once it is known whether the break went
				// before this round's text (EndRound).
				lo, hi := jsonscan.SkipSpace(v, 1), len(v)-1
				for hi > lo && jsonscan.IsSpace(v[hi-1]) {
					hi--
				}
				if len(c.ann) > 0 {
					c.ann = append(c.ann, ',')
				}
				c.ann = append(c.ann, v[lo:hi]...)
				c.deleteMember(data, m.KeyAt, m.End)
				break
			}
			if notEmpty(v) {
				st.meaningful = true
			}
		case "reasoning_details":
			if v[0] == '[' && choice == 0 {
				c.details.Add(v) // as the provider numbered them
				rs := len(c.scratch)
				var next int
				if c.scratch, next = appendIndexes(c.scratch, v, c.detailBase); len(c.scratch) > rs {
					c.edits = append(c.edits, edit{m.At, m.End, rs, len(c.scratch)})
				}
				c.detailNext = max(c.detailNext, next)
			}
			if notEmpty(v) {
				st.meaningful = true
			}
		default:
			if notEmpty(v) {
				st.meaningful = true
			}
		}
	}
}

// legacyCall reads the legacy function_call v (an object) of a choice 0
// delta, the one call a server that answers tools in the legacy shape
// makes (functionary's did), and reports whether it is held back: its
// first name names a payment tool, so it is that payment call, whose
// deltas never reach the bot (RoundResult.PaymentCalls, with no id). A
// call of the bot's own goes out as it came. Walked by position, as a
// delta is: its arguments are kept as they came, escapes and all, and
// gjson would unescape them, an allocation per chunk.
//
// A name that is the start of a payment tool's (PaymentNames), its
// arguments not started, is held while it may grow, as a tool call's is:
// a later piece ("create_", then "order") is added to it, and a delta with
// arguments or the same name again makes it whole. Read from its first
// piece, create_order went to the bot as a call of its own. A call of the
// bot's own so held goes out on the delta that makes its name whole, named
// whole there (the function_call at data[at:], v, replaced).
func (c *Capture) legacyCall(v string, at int) bool {
	// A piece of the call after an event skipped after the finish: the
	// round is lost, as for a tool call's (SkippedAfterFinish).
	c.callGoesOn()
	var name, args string // raw values, the first copy (ambiguousChunk allows no other)
	for i := 1; ; {
		m, ok := jsonscan.NextMember(v, i, true)
		if !ok {
			break
		}
		i = m.End
		switch jsonscan.KeyName(m.Key) {
		case "name":
			if name == "" {
				name = v[m.At:m.End]
			}
		case "arguments":
			if args == "" {
				args = v[m.At:m.End]
			}
		}
	}
	if n := stringValue(name); !c.legacy.named && (n != "" || c.legacy.pending) {
		whole := args != "" && args != `""`
		switch {
		case !c.legacy.pending:
			c.legacy.name = strings.Clone(n)
		case n == c.legacy.name:
			whole = true
		case n != "":
			c.legacy.name += n
		}
		if !whole && c.mayGrow(c.legacy.name) {
			c.legacy.pending = true
			return true
		}
		held := c.legacy.pending
		c.legacy.named, c.legacy.pending, c.legacy.pay = true, false, c.isPayment(c.legacy.name)
		if !c.legacy.pay && held {
			// The bot's own call, nothing of it out yet: its whole
			// name, with this delta's arguments.
			c.wholeLegacy(at, v, c.legacy.name, args)
			return false
		}
	}
	if !c.legacy.pay {
		return false
	}
	n := len(c.legacy.args)
	switch {
	case args == "":
	case args[0] == '"':
		c.legacy.args = append(c.legacy.args, args[1:len(args)-1]...) // escapes kept, as a slot's
	case args[0] == '{' || args[0] == '[':
		// Sent as a JSON value, not a string, as a tool call's may be
		// (parseEntry's argsJSON): its text, escaped as a slot's. Taken
		// as strings only, create_order ran with none where the same
		// answer not streamed made the order.
		c.legacy.args = appendEscaped(c.legacy.args, args)
	}
	c.argBytes += len(c.legacy.args) - n // held, as a slot's (Held)
	return true
}

// wholeLegacy records the edit that replaces the legacy function_call v, at
// data[at], with one of the bot's own named whole, name, with v's arguments
// args (raw, "" for none): nothing of the call went out while its name was
// held (legacyCall, strayLegacyCall).
func (c *Capture) wholeLegacy(at int, v, name, args string) {
	rs := len(c.scratch)
	c.scratch = append(c.scratch, `{"name":`...)
	c.scratch = jsonstr.Append(c.scratch, name)
	if args != "" {
		c.scratch = append(c.scratch, `,"arguments":`...)
		c.scratch = append(c.scratch, args...)
	}
	c.scratch = append(c.scratch, '}')
	c.edits = append(c.edits, edit{at, at + len(v), rs, len(c.scratch)})
}

// appendEscaped appends v escaped as the contents of a JSON string, without
// its quotes, in place: an object a provider sent as a call's arguments,
// escaped into a buffer of its own, allocated one (and its growth) per
// chunk.
func appendEscaped(out []byte, v string) []byte {
	n := len(out)
	out = jsonstr.Append(out, v)
	return append(out[:n], out[n+1:len(out)-1]...)
}

// strayLegacy is the legacy function_call of a choice other than choice 0
// (strayLegacyCall).
type strayLegacy struct {
	choice  int
	name    string
	pay     bool // it names a payment tool
	pending bool // its name so far may grow: nothing of it went out
}

// strayLegacyCall reads the legacy function_call v (an object, at data[at])
// of a delta of choice, not choice 0, and reports whether it is held back:
// its name names a payment tool, so it is a payment call of a choice the
// turn did not ask for, dropped as one in the tools shape is
// (RoundResult.StrayCalls); handed on, the bot got a call of a function it
// never defined. A call of the bot's own goes out as it came. A name that
// may grow (mayGrow), its arguments not started, is held as choice 0's is
// (legacyCall): read from its first piece, "create_" was taken for the
// bot's own and "order" went out after it, a call of create_order to the
// bot's SDK. Rare (a provider that sends a second choice in the legacy
// shape), so read with gjson.
func (c *Capture) strayLegacyCall(choice int, v string, at int) bool {
	var l *strayLegacy
	for i := range c.strayLegacy {
		if c.strayLegacy[i].choice == choice {
			l = &c.strayLegacy[i]
			break
		}
	}
	if l != nil && !l.pending {
		return l.pay
	}
	var name string
	if n := gjson.Get(v, "name"); n.Type == gjson.String {
		name = n.Str
	}
	args := gjson.Get(v, "arguments").Raw
	whole := args != "" && args != `""`
	switch {
	case l == nil:
		if name == "" {
			return false
		}
		c.strayLegacy = append(c.strayLegacy, strayLegacy{choice: choice, name: strings.Clone(name)})
		l = &c.strayLegacy[len(c.strayLegacy)-1]
	case name == l.name:
		whole = true
	case name != "":
		l.name += name
	}
	if !whole && c.mayGrow(l.name) {
		l.pending = true
		return true
	}
	held := l.pending
	l.pending, l.pay = false, c.isPayment(l.name)
	if !l.pay && held {
		c.wholeLegacy(at, v, l.name, args)
		return false
	}
	return l.pay
}

// renumber records the edits that move the "index" of each entry of the
// array v, at data[at], by by, and returns the index after the highest
// entry's once moved (0 for none). Only the numbers are replaced: an entry
// may hold an image model's picture, tens of MiB that copied into scratch
// would stay in it to the turn's end, and cost a copy per chunk.
func (c *Capture) renumber(at int, v string, by int) int {
	next := 0
	gjson.Parse(v).ForEach(func(_, el gjson.Result) bool {
		ix := el.Get("index")
		if !el.IsObject() || ix.Type != gjson.Number {
			return true
		}
		n := int(ix.Int()) + by
		next = max(next, n+1)
		if by != 0 {
			rs := len(c.scratch)
			c.scratch = strconv.AppendInt(c.scratch, int64(n), 10)
			c.edits = append(c.edits, edit{at + ix.Index, at + ix.Index + len(ix.Raw), rs, len(c.scratch)})
		}
		return true
	})
	return next
}

// reason takes a delta's reasoning text, the string value of m, which the
// provider named key (a constant: no allocation per chunk).
func (c *Capture) reason(m jsonscan.Member, choice int, key string) {
	st := &c.st
	if choice == 0 {
		st.reason = [2]int{m.At + 1, m.End - 1}
		st.reasonKey = key
	}
	if m.End-m.At > 2 {
		st.meaningful = true
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
	// idKeyAt, idEnd: the "id" member (its key's quote, its value's end),
	// idKeyAt -1 if absent.
	idKeyAt, idEnd int
	id, name       string
	// twice: the entry names its call twice (see parseEntry); name is
	// then "".
	twice    bool
	args     string // raw JSON string fragment
	argsJSON bool   // args is a raw JSON value, not a string
	// custom: the entry's name and text came in "custom" (a custom
	// tool's call), not in "function"; function: it has a "function".
	custom, function bool
	extra            []jsonscan.Member
}

// names reports an entry that names its call, once or twice.
func (en *entry) names() bool { return en.name != "" || en.twice }

// parseEntry reads a tool-call entry; extra is reused for its members other
// than index, id, type and function. An entry with a repeated "function"
// member, or a repeated "name" in its function, names its call twice, also
// where a copy is spelled in another case: parsers keep different copies
// (most the last, gjson the first, Go's encoding/json any case), so the bot
// could read a payment call where paygate read the bot's own, or the other
// way round. Such a call is refused as a payment call without a name, as
// parseAnswer refuses it in a non-stream answer and checkToolNames refuses
// a client tool named twice.
func parseEntry(s string, start, end int, extra []jsonscan.Member) entry {
	en := entry{start: start, end: end, idxAt: -1, idKeyAt: -1, extra: extra[:0]}
	functions, names := 0, 0
	var members jsonscan.CallNames
	for i := start + 1; ; {
		m, ok := jsonscan.NextMember(s, i, true)
		if !ok {
			if functions > 1 || names > 1 || members.Clash() {
				en.twice, en.name = true, ""
			}
			return en
		}
		i = m.End
		v := s[m.At:m.End]
		k := jsonscan.KeyName(m.Key)
		if members.Null(k, v) {
			continue
		}
		switch k {
		case "index":
			en.idxAt, en.idxTo = m.At, m.End
			if n, err := strconv.Atoi(v); err == nil {
				en.idx, en.hasIdx = n, true
			}
		case "id":
			en.id = stringValue(v)
			en.idKeyAt, en.idEnd = m.KeyAt, m.End
		case "type":
		case "function", "custom":
			// A custom tool's call (OpenAI's freeform tools) names itself
			// in "custom", its text in "input": the bot's call like a
			// function's; a call with both names itself twice.
			functions++
			if v[0] != '{' {
				continue
			}
			members.Object(k)
			argsKey := "arguments"
			if k == "custom" {
				argsKey, en.custom = "input", true
			} else {
				en.function = true
			}
			for j := m.At + 1; ; {
				f, ok := jsonscan.NextMember(s, j, true)
				if !ok {
					break
				}
				j = f.End
				fv := s[f.At:f.End]
				switch fk := jsonscan.KeyName(f.Key); fk {
				case "name":
					names++
					en.name = stringValue(fv)
				case argsKey:
					switch fv[0] {
					case '"':
						en.args = fv[1 : len(fv)-1]
					case '{', '[':
						en.args, en.argsJSON = fv, true
					}
				default:
					if strings.EqualFold(fk, "name") {
						names++
					}
				}
			}
		default:
			if strings.EqualFold(k, "function") || strings.EqualFold(k, "custom") {
				functions++
				if v[0] == '{' {
					members.Object(k)
				}
			}
			if v[0] != 'n' {
				en.extra = append(en.extra, m)
			}
		}
	}
}

// toolCalls absorbs a delta's tool_calls (the member tc) and rewrites the
// array for the client: payment entries (and entries of calls not named
// yet) removed, the client's entries renumbered.
func (c *Capture) toolCalls(data []byte, s string, tc jsonscan.Member, choice int) {
	changed := false
	kept := 0
	start := len(c.scratch)
	c.scratch = append(c.scratch, '[')
	for i := tc.At + 1; ; {
		e, ok := jsonscan.NextMember(s, i, false)
		if !ok || len(c.slots) > MaxCalls { // past MaxCalls the relay ends the round
			break
		}
		i = e.End
		if s[e.At] != '{' { // not a tool call; nothing a client could use
			changed = true
			continue
		}
		en := parseEntry(s, e.At, e.End, c.extra)
		c.extra = en.extra
		c.ended = -1
		sl := c.slotFor(choice, &en)
		if c.ended >= 0 {
			// A call held while its name might grow, ended by this one:
			// its name is whole, and the bot's own call goes out, with
			// everything held of it, before this one.
			old := &c.slots[c.ended]
			c.classify(old, true)
			if old.kind == kindClient && old.replay {
				old.replay = false
				if kept > 0 {
					c.scratch = append(c.scratch, ',')
				}
				kept++
				changed = true
				c.scratch = appendSynthetic(c.scratch, old)
			}
		}
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
		// The entry as sent: but for a call whose id paygate made, or an
		// id other than the call's first (a relay that makes one per
		// chunk), its "id": the bot's SDK would join it to or put it in
		// place of the one the call is kept under, and answer the call
		// by an id whose round's payment exchange was never restored.
		src, from, to, idxAt, idxTo := data, en.start, en.end, en.idxAt, en.idxTo
		if (sl.madeID || en.id != "" && en.id != sl.id) && en.idKeyAt >= 0 && !sl.replay {
			changed = true
			i, j := memberSpan(data[:en.end], en.idKeyAt, en.idEnd)
			src = append(append(make([]byte, 0, en.end-en.start), data[en.start:i]...), data[j:en.end]...)
			from, to = 0, len(src)
			if idxAt >= 0 {
				idxAt, idxTo = idxAt-en.start, idxTo-en.start
				if idxAt >= j-en.start {
					idxAt, idxTo = idxAt-(j-i), idxTo-(j-i)
				}
			}
		}
		switch {
		case sl.replay:
			sl.replay = false
			changed = true
			c.scratch = appendSynthetic(c.scratch, sl)
		case en.hasIdx && en.idx == sl.clientIdx:
			c.scratch = append(c.scratch, src[from:to]...)
		case idxAt >= 0:
			changed = true
			c.scratch = append(c.scratch, src[from:idxAt]...)
			c.scratch = strconv.AppendInt(c.scratch, int64(sl.clientIdx), 10)
			c.scratch = append(c.scratch, src[idxTo:to]...)
		default:
			changed = true
			c.scratch = append(c.scratch, `{"index":`...)
			c.scratch = strconv.AppendInt(c.scratch, int64(sl.clientIdx), 10)
			rest := trimSpace(src[from+1 : to])
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
		c.deleteMember(data, tc.KeyAt, tc.End)
		return
	}
	c.scratch = append(c.scratch, ']')
	c.edits = append(c.edits, edit{tc.At, tc.End, start, len(c.scratch)})
}

// appendSynthetic renders a client call whose first deltas were held back
// (its name came late) with everything received so far, as the kind of
// call it is: the bot's SDK reads a custom tool's call only from "custom",
// and its later deltas carry their text there.
func appendSynthetic(out []byte, sl *slot) []byte {
	out = append(out, `{"index":`...)
	out = strconv.AppendInt(out, int64(sl.clientIdx), 10)
	if sl.id != "" {
		out = append(out, `,"id":`...)
		out = jsonstr.Append(out, sl.id)
	}
	if sl.custom {
		out = append(out, `,"type":"custom","custom":{"name":`...)
		out = jsonstr.Append(out, sl.name)
		out = append(out, `,"input":"`...)
	} else {
		out = append(out, `,"type":"function","function":{"name":`...)
		out = jsonstr.Append(out, sl.name)
		out = append(out, `,"arguments":"`...)
	}
	out = append(out, sl.args...)
	return append(out, `"}}`...)
}

// slotFor finds the call an entry belongs to: by index; by id where the
// provider sends no index (Gemini); an entry with neither index nor id
// starts a new call when it names one and otherwise continues the last call
// (Gemini can split arguments or send the thought signature on its own).
// Under one index, a different id with a name, or a different name, is a
// new call: some providers send index 0 for every call, some of them with no
// id, and merging there would stream a payment call's arguments to the bot
// as part of its own call. A name that is the next piece of the call's
// (continuesName: before its arguments, never a payment tool's name) is
// the same call. Under one id without an index, a different name
// is a new call for the same reason (providers that repeat an id across
// calls), and an entry continues the latest call of its id. The same name
// again is the same call: Qwen repeats it in every delta. An entry that
// names its call twice names none that has a name, so it never continues a
// call of the bot's; a call named twice keeps whatever continues it.
func (c *Capture) slotFor(choice int, en *entry) *slot {
	if en.hasIdx {
		for i := len(c.slots) - 1; i >= 0; i-- {
			sl := &c.slots[i]
			if sl.choice != choice || !sl.hasIdx || sl.upIdx != en.idx {
				continue
			}
			// A made id (GiveCallIDs) is none that came: an id given
			// late names the call it came without.
			if en.names() && (en.id != "" && sl.id != "" && !sl.madeID && en.id != sl.id ||
				sl.name != "" && en.name != sl.name && !c.continuesName(sl, en)) {
				c.nameEnded(i)
				break
			}
			return sl
		}
		return c.newSlot(choice, en.idx, true)
	}
	if en.id != "" {
		for i := len(c.slots) - 1; i >= 0; i-- {
			sl := &c.slots[i]
			if sl.choice != choice || sl.id != en.id {
				continue
			}
			if en.names() && sl.name != "" && en.name != sl.name && !c.continuesName(sl, en) {
				c.nameEnded(i)
				break
			}
			return sl
		}
		return c.newSlot(choice, len(c.slots), false)
	}
	if !en.names() {
		for i := len(c.slots) - 1; i >= 0; i-- {
			if sl := &c.slots[i]; sl.choice == choice {
				return sl
			}
		}
	}
	return c.newSlot(choice, len(c.slots), false)
}

// continuesName reports whether the entry's name is the next piece of the
// call's, under its index or id (slotFor), of the same kind: a call whose
// name may not be whole yet (slot.pending), or a call of the bot's own
// whose arguments have not started. A provider that streams names in
// pieces ("get_" then "weather") sends them before the arguments; the bot
// got the first piece as it came and gets the next under the same index,
// which its SDK joins to it as it would talking to the provider. A payment
// tool's whole name is another call's (a provider that gives every call
// index 0 and no id): taken for a piece, the payment call went to the bot
// under a name of both, with its arguments, and never ran; it is never
// streamed to the bot as a piece of the bot's. Only a held name may grow
// into a payment tool's. A piece that may start a payment tool's name and
// leaves the name no start of one ("create_" after the bot's "get_time"
// from such a provider, or "query_" after a held "query", then "order")
// is a call of its own, held while its name might grow. A name of the
// bot's whose later piece starts like a payment tool's is then two calls,
// as every name in pieces was before. A payment call's name goes on, before
// its arguments, only with the rest of a harmony wrapping (wrapsOn).
func (c *Capture) continuesName(sl *slot, en *entry) bool {
	if en.name == "" || en.custom != sl.custom {
		return false
	}
	if sl.kind == kindPayment && !sl.pending {
		return len(sl.args) == 0 && c.wrapsOn(sl.name, en.name)
	}
	if sl.pending && c.wrapsOn(sl.name, en.name) {
		return true
	}
	if c.isPayment(en.name) {
		return false
	}
	if !sl.pending && (sl.kind != kindClient || len(sl.args) > 0 || c.wholeBotName(sl.name)) {
		return false
	}
	if joined := sl.name + en.name; c.isPayment(joined) || c.startsPayment(joined) {
		return sl.pending
	}
	return !c.startsPayment(en.name)
}

// nameEnded notes that another call starts under the index or id of the
// call c.slots[i]: a name of it still held while it might grow (pending)
// is whole, and toolCalls hands the call on before the new one.
func (c *Capture) nameEnded(i int) {
	if sl := &c.slots[i]; sl.pending && sl.kind == kindUnknown {
		c.ended = i
	}
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
	c.callGoesOn()
	if sl.id == "" && en.id != "" {
		sl.id = strings.Clone(en.id)
	}
	if en.twice && !sl.twice {
		// slotFor gives such an entry only a call without a name, which
		// nothing of was shown: refused, and no later name changes that.
		sl.twice, sl.kind = true, kindPayment
	}
	if sl.kind == kindPayment && sl.name != "" && (en.custom && !sl.custom || en.function && sl.custom) {
		// A payment call of two kinds (named in "function", its text in
		// "custom", or the other way round) is refused as one named
		// twice, as the non-stream parser refuses both members in one
		// entry: it must not run as a function call with a custom text.
		sl.twice, sl.name = true, ""
	}
	named, whole := false, false
	switch {
	case en.name == "" || sl.twice:
	case sl.name == "":
		// The kind goes with the name: the call is what the entry that
		// named it says, and a replay or the round's result renders it so.
		sl.name, sl.custom = strings.Clone(en.name), en.custom
		named = true
	case sl.pending && en.name != sl.name:
		// The next piece of a name streamed in pieces (PaymentNames).
		sl.name += en.name
		named = true
	case sl.pending:
		// The name again, whole (Qwen repeats it in every delta).
		named, whole = true, true
	case sl.kind == kindClient && en.name != sl.name:
		// The next piece of the name of a call of the bot's, which went
		// out with the entry (continuesName).
		sl.name += en.name
	case sl.kind == kindPayment && en.name != sl.name:
		// The rest of a payment tool's harmony wrapping (wrapsOn), added
		// for the next piece to be judged against the name so far: after
		// "create_order" and "<|channel|>", "commentary" goes on too.
		sl.name += en.name
	}
	n := len(sl.args)
	if en.argsJSON {
		sl.args = appendEscaped(sl.args, en.args)
	} else {
		sl.args = append(sl.args, en.args...)
	}
	c.argBytes += len(sl.args) - n
	if named || sl.pending && len(sl.args) > 0 {
		c.classify(sl, whole)
	}
	for _, m := range en.extra {
		key, val := jsonscan.KeyName(m.Key), s[m.At:m.End]
		if i := slices.Index(sl.extraKeys, key); i >= 0 {
			sl.extraVals[i] = append(sl.extraVals[i][:0], val...)
			continue
		}
		sl.extraKeys = append(sl.extraKeys, strings.Clone(key))
		sl.extraVals = append(sl.extraVals, []byte(val))
	}
}

// classify makes a call whose name came (or grew) a payment call or the
// bot's own, or leaves it held while its name may still grow: it is the
// start of a payment tool's name (PaymentNames), or a payment tool's name
// that a tool of the bot's extends (BotNames), not said to be whole, and
// no argument came.
func (c *Capture) classify(sl *slot, whole bool) {
	switch {
	case !whole && len(sl.args) == 0 && c.mayGrow(sl.name):
		sl.pending = true
	case c.isPayment(sl.name):
		sl.kind, sl.pending = kindPayment, false
	default:
		sl.pending = false
		sl.kind = kindClient
		if sl.id == "" && c.giveIDs {
			// The bot answers its call by id, and a mixed round's payment
			// exchange is kept under it for that answer (SPEC 3.7): a call
			// that came without one gets one, on its first delta (replayed
			// whole, so an empty "id" member is not sent beside it).
			sl.id, sl.madeID = MadeCallID(), true
			sl.replay = true
		}
		if sl.choice == 0 {
			sl.clientIdx = c.nextClient
			c.nextClient++
		} else {
			// Another choice's call (RoundResult.ClientCalls) keeps the
			// index it came with: the turn numbers choice 0's, the one
			// it continues, from 0 without gaps.
			sl.clientIdx = sl.upIdx
		}
		sl.replay = sl.replay || sl.held
	}
}

func (c *Capture) readUsage(v gjson.Result) {
	c.hasUsage = true
	c.usageRaw = append(c.usageRaw[:0], v.Raw...) // a copy: v points into the chunk
	c.usage = ReadUsage(v)
}

// ReadUsage reads the counts of a chat completion's usage object, the
// cached prompt tokens wherever the provider names them (cachedCounts), in
// one pass over its members (a path lookup per count scans the object again
// for each: Gemini sends a usage with every chunk). A value that is no
// object has none.
func ReadUsage(v gjson.Result) Usage {
	var u Usage
	var seen uint8
	var cached cachedCounts
	v.ForEach(func(k, m gjson.Result) bool {
		bit := usageField(k.Str)
		if bit == 0 || seen&bit != 0 {
			return true
		}
		seen |= bit
		switch bit {
		case usagePrompt:
			u.PromptTokens = m.Int()
		case usageCompletion:
			u.CompletionTokens = m.Int()
		case usageTotal:
			u.TotalTokens = m.Int()
		case usageDetails:
			cached.details = m.Get("cached_tokens").Int()
		case usageCacheHit:
			cached.hit = m.Int()
		case usageCachedTop:
			cached.top = m.Int()
		}
		return true
	})
	u.CachedTokens = cached.count()
	u.fillTotal()
	return u
}

// replace records an edit replacing data[start:end] by repl.
func (c *Capture) replace(start, end int, repl []byte) {
	rs := len(c.scratch)
	c.scratch = append(c.scratch, repl...)
	c.edits = append(c.edits, edit{start, end, rs, len(c.scratch)})
}

// insertID records the addition of the turn's id as the chunk's first
// member, for a chunk that has no id (the slow path and Process have checked
// that it is an object with members).
func (c *Capture) insertID() {
	rs := len(c.scratch)
	c.scratch = append(c.scratch, `"id":`...)
	c.scratch = append(c.scratch, c.turnIDq...)
	c.scratch = append(c.scratch, ',')
	c.edits = append(c.edits, edit{1, 1, rs, len(c.scratch)})
}

// idMember is the member insertID adds, for the finish chunk kept aside.
func idMember(idq []byte) []byte {
	b := append([]byte(`"id":`), idq...)
	return append(b, ',')
}

// deleteMember records the removal of an object member (key at keyAt, value
// ending at end) with one adjacent comma. Two members removed side by side
// at the end of an object (a later round's repeated role and a held payment
// call's tool_calls, in a delta that also has text) would each take the
// comma between them, and apply drops an edit that overlaps another: the
// payment call, or a second role, went out. The removal before this one
// that took that comma is widened to a run from the comma before it, its
// own included, to this member's end.
func (c *Capture) deleteMember(data []byte, keyAt, end int) {
	i, j := memberSpan(data, keyAt, end)
	for k := 0; k < len(c.edits); k++ {
		if e := c.edits[k]; e.rs == e.re && e.start < i && i < e.end {
			i = spanStart(data, e.start)
			c.edits = slices.Delete(c.edits, k, k+1)
			k = -1 // the widened run may meet a removal before it
		}
	}
	c.edits = append(c.edits, edit{i, j, 0, 0})
}

// memberSpan is what deleting the member from keyAt to end takes out of
// data: the member with the comma after it, or, for a last member, the
// comma before it.
func memberSpan(data []byte, keyAt, end int) (int, int) {
	j := end
	for j < len(data) && jsonscan.IsSpace(data[j]) {
		j++
	}
	if j < len(data) && data[j] == ',' {
		j++
		for j < len(data) && jsonscan.IsSpace(data[j]) {
			j++
		}
		return keyAt, j
	}
	return spanStart(data, keyAt), end
}

// spanStart is where removing the member whose key is at keyAt, with the
// comma before it, starts: before that comma and the white space around
// it, or before the white space in front of the key when it is the
// object's first member.
func spanStart(data []byte, keyAt int) int {
	i := keyAt
	for i > 0 && jsonscan.IsSpace(data[i-1]) {
		i--
	}
	if i > 0 && data[i-1] == ',' {
		i--
		for i > 0 && jsonscan.IsSpace(data[i-1]) {
			i--
		}
	}
	return i
}

// apply builds the returned chunk from data and the recorded edits. An
// insertion sorts before a removal that starts where it does: the turn's
// id, added at a chunk's first byte (insertID), and an upstream "paygate"
// member that is the chunk's first, removed from there, are not an
// overlap, and the id was dropped as one.
func (c *Capture) apply(data []byte) []byte {
	slices.SortFunc(c.edits, func(a, b edit) int {
		if a.start != b.start {
			return a.start - b.start
		}
		return (a.end - a.start) - (b.end - b.start)
	})
	out := c.output(len(data) + len(c.scratch))
	pos := 0
	for _, e := range c.edits {
		if e.start < pos { // none overlap (insertions sort first); be safe
			continue
		}
		out = append(out, data[pos:e.start]...)
		out = append(out, c.scratch[e.rs:e.re]...)
		pos = e.end
	}
	return c.kept(append(out, data[pos:]...))
}

// keepOut bounds the buffer a rewritten chunk is built in that is kept
// for the next chunk (Capture.out). A chunk that may take more (an image
// model's picture, a data URL of tens of MiB in one chunk) is built in a
// buffer of its own, let go with the chunk: grown in the kept one, the
// picture was held once more to the turn's end.
const keepOut = 64 << 10

// output is the buffer to build a rewritten chunk of at most n bytes in:
// the kept one, emptied, or for more than keepOut a new one of n.
func (c *Capture) output(n int) []byte {
	if n > keepOut {
		return make([]byte, 0, n)
	}
	return c.out[:0]
}

// kept returns the built chunk out, and keeps its buffer for the next
// chunk when it is within keepOut.
func (c *Capture) kept(out []byte) []byte {
	if cap(out) <= keepOut {
		c.out = out
	}
	return out
}

// keepFinishChunk keeps the finish chunk with its deltas emptied and, after
// round 0 (or in a round 0 without ids), the turn's id and created. When
// the chunk also goes out now (sent: the text or calls its deltas carried,
// with finish_reason null), that copy carries its logprobs, and the kept one
// carries none: vLLM and TGI put the last token in the finish chunk, and an
// SDK that appends every chunk's logprobs counted that token twice.
func (c *Capture) keepFinishChunk(data []byte, sent bool) {
	st := &c.st
	type cut struct {
		start, end int
		repl       []byte
	}
	cuts := make([]cut, 0, len(st.deltas)+len(st.logprobs)+2)
	switch {
	case !c.stampID:
	case st.idStart >= 0:
		cuts = append(cuts, cut{st.idStart, st.idEnd, c.turnIDq})
	default:
		cuts = append(cuts, cut{1, 1, idMember(c.turnIDq)})
	}
	if len(c.createdq) > 0 && st.created[0] >= 0 {
		cuts = append(cuts, cut{st.created[0], st.created[1], c.createdq})
	}
	for _, d := range st.deltas {
		cuts = append(cuts, cut{d[0], d[1], []byte("{}")})
	}
	if sent {
		for _, l := range st.logprobs {
			cuts = append(cuts, cut{l[0], l[1], nullBytes})
		}
	}
	if st.paygate {
		for _, d := range c.drops {
			cuts = append(cuts, cut{d[0], d[1], nil})
		}
	}
	if u := st.choiceUsage; u[1] != 0 {
		i, j := memberSpan(data, u[0], u[1])
		cuts = append(cuts, cut{i, j, nil})
	}
	slices.SortFunc(cuts, func(a, b cut) int { // insertions first, as in apply
		if a.start != b.start {
			return a.start - b.start
		}
		return (a.end - a.start) - (b.end - b.start)
	})
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
