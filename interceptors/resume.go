package interceptors

import (
	"errors"
	"strconv"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/paygate/paygate/internal/jsonscan"
	"github.com/paygate/paygate/internal/jsonstr"
)

// ErrDiverged is Resume.Filter's error when a fresh answer does not begin
// with the text the client already received: splicing the two would hand the
// client an answer nobody wrote, so the stream must end with an error.
var ErrDiverged = errors.New("interceptors: the new answer diverges from what the client already received")

// Resume prepares the chunks of a stream that takes over a cut one (SPEC 5,
// recovery after the first byte), so that the client reads one answer:
//
//   - with skip (a fresh answer: the target's provider cannot continue a
//     prefill, or refused it), the answer's beginning must equal the text and
//     reasoning the client already received; chunk text inside that prefix is
//     dropped and a chunk straddling its end is cut to its suffix. A chunk
//     that departs from it (other text, a tool call or a finish while the
//     prefix is not yet matched) is ErrDiverged. Reasoning a provider sends
//     under two members at once (reasoning_content and reasoning, or
//     reasoning with OpenRouter's reasoning_details) is cut the same way in
//     each; when the second member's text differs, or reasoning_details has
//     a shape whose cut is not plain (see trimDetails), the chunk is
//     ErrDiverged rather than repeat reasoning to the client.
//   - a refusal the client received (WithRefusal) is matched the same way,
//     in delta.refusal: text of either kind beyond what was sent while the
//     other's sent prefix is not yet matched is ErrDiverged.
//   - with id set, every chunk's "id" becomes id (the client keeps the id it
//     first saw) and role deltas are removed (the client had its role).
//
// Chunks left with nothing for the client are dropped. Resume costs a JSON
// parse per chunk, paid only by recovered streams.
type Resume struct {
	id              string
	text, reasoning string
	refusal         string
	tpos, rpos      int
	fpos            int // into refusal
	skip            bool

	// The client's tool calls already (partly) received (see WithCalls).
	calls     []ToolCall
	isPayment func(string) bool
	// goesOn is the Capture's HeldNameGoesOn (WithHeldNames): nil, a
	// payment tool's whole name never grows.
	goesOn func(held, piece string) bool
	fresh  []*freshCall
	next   int        // the next of calls a fresh call must repeat
	cur    *freshCall // the fresh call repeating a sent one, while its arguments are matched
	base   int        // the client index of the fresh answer's first other call
	// flush is the first entry of a payment call another call ended
	// before its arguments (paymentAfterAll), for filterCalls to send
	// before the new call's entry.
	flush []byte
}

// freshCall is one tool call of the fresh answer, when the client already
// received tool calls.
type freshCall struct {
	upIdx  int
	hasIdx bool
	id     string
	name   string // the name its first entry gave it, with the pieces a held name grew by (another)
	args   bool   // an argument fragment of it came
	sent   int    // index into Resume.calls of the call it repeats; -1: a call the client has not seen
	out    int    // the index the client sees it under
	raw    []byte // its raw argument fragments while they are matched
	done   bool   // its arguments have passed the sent ones
	// rest is what of the sent call's name a fresh call repeating it has
	// not named yet: a provider that streams names in pieces names it
	// "get_", then "weather" (namePiece).
	rest string
	// first is the first entry of a call repeating a sent one whose name
	// starts with a payment tool's whole name (sentExtends), while nothing
	// else of its name came: arguments next make it that payment call,
	// which the client gets from this entry on (paymentAfterAll).
	first     []byte
	firstName string // the payment tool's name first gave
	custom    bool   // a custom tool's call: its name and text in "custom"
}

// entryName is a tool-call entry's name and kind: a custom tool's call
// names itself in "custom", a function call in "function". A null
// "custom" beside a function call's "function" (or a null "function"
// beside "custom"), which relays that serialize unset fields send, names
// nothing, as in parseEntry; taken for a custom call's, a fresh answer
// repeating the client's call so diverged from it. A null beside an
// object of the same name, in any case, names the call twice (parseEntry):
// no name.
func entryName(e gjson.Result) (name string, custom bool) {
	if NullBesideObject(e) {
		return "", false
	}
	if c := e.Get("custom"); c.IsObject() {
		return c.Get("name").String(), true
	}
	return e.Get("function.name").String(), false
}

// NullBesideObject reports a tool-call entry e with a null "function" or
// "custom" beside an object of the same name, in any case: a call named
// twice, as parseEntry reads it (jsonscan.CallNames), which no reader may
// take the object's name from.
func NullBesideObject(e gjson.Result) bool {
	var members jsonscan.CallNames
	e.ForEach(func(k, v gjson.Result) bool {
		if !members.Null(k.Str, v.Raw) && v.IsObject() {
			members.Object(k.Str)
		}
		return true
	})
	return members.Clash()
}

// NewResume starts filtering a stream that takes over one whose client
// already received text and reasoning. skip says the new stream is a fresh
// answer whose beginning repeats them; id, when not "", is the id the
// client's chunks must keep.
func NewResume(id, text, reasoning string, skip bool) *Resume {
	return &Resume{id: id, text: text, reasoning: reasoning, skip: skip}
}

// WithCalls adds the client's tool calls the cut stream already sent (in
// the client's index order, Index the client's index, Arguments decoded as
// far as they were received) to a fresh answer's filter (skip): after the
// text, the fresh answer must repeat each of them in order, with the same
// function name (whole, or in pieces before any argument: "get_", then
// "weather") and arguments that begin with the sent ones. Their entries
// reach the client under its index, without the fresh id, name and type
// (the client keeps the first ones), carrying only the arguments beyond what
// was sent. The fresh answer's other calls pass as new calls, numbered from
// the first index after the sent ones; calls isPayment names (held back
// from the client, it saw none of them) are not matched and are numbered
// the same way. A different name, different arguments, text after the sent
// text, or an end before every sent call is repeated is ErrDiverged.
func (r *Resume) WithCalls(calls []ToolCall, isPayment func(string) bool) *Resume {
	r.calls, r.isPayment = calls, isPayment
	for _, c := range calls {
		r.base = max(r.base, c.Index+1)
	}
	return r
}

// WithHeldNames gives a fresh answer's filter the Capture's judgment of
// a name held while it may grow (Capture.HeldNameGoesOn): a payment tool's
// whole name that a tool of the bot's extends (query_order before
// "_history") is continued by the next piece under its index or id, as
// the Capture joins them, not taken for another call, which the client
// would get under the next index.
func (r *Resume) WithHeldNames(goesOn func(held, piece string) bool) *Resume {
	r.goesOn = goesOn
	return r
}

// WithRefusal adds the refusal text (delta.refusal) the client already
// received to a fresh answer's filter (skip): the fresh answer must repeat
// it, as it repeats the text; a refusal cannot be prefilled, so a stream
// that sent one is recovered with a fresh answer.
func (r *Resume) WithRefusal(text string) *Resume {
	r.refusal = text
	return r
}

// Matching reports whether part of the sent prefix is still to be matched.
func (r *Resume) Matching() bool {
	if !r.skip {
		return false
	}
	return r.textPending() || r.next < len(r.calls) || (r.cur != nil && (!r.cur.done || r.cur.rest != ""))
}

// Active reports whether Filter still has work: matching the sent prefix,
// rewriting ids, or numbering tool calls for the client.
func (r *Resume) Active() bool {
	return r.Matching() || r.id != "" || len(r.calls) > 0
}

func (r *Resume) textPending() bool {
	return r.skip && (r.tpos < len(r.text) || r.rpos < len(r.reasoning) || r.fpos < len(r.refusal))
}

// Skipped returns how much of the sent text and reasoning the new stream has
// repeated so far (and Filter dropped).
func (r *Resume) Skipped() (text, reasoning string) {
	return r.text[:r.tpos], r.reasoning[:r.rpos]
}

// Filter returns the chunk to pass on, nil to drop it, or ErrDiverged.
// Data that is not a JSON object passes unchanged (the caller's own checks
// skip it).
func (r *Resume) Filter(data []byte) ([]byte, error) {
	if !r.Active() {
		return data, nil
	}
	s := unsafe.String(unsafe.SliceData(data), len(data))
	if !gjson.Valid(s) || !gjson.Get(s, "@this").IsObject() {
		return data, nil
	}
	out := data
	var err error
	set := func(path string, v string) {
		if err == nil {
			out, err = sjson.SetBytes(out, path, v)
		}
	}
	del := func(path string) {
		if err == nil {
			out, err = sjson.DeleteBytes(out, path)
		}
	}
	d := gjson.Get(s, "choices.0.delta")
	finish := gjson.Get(s, "choices.0.finish_reason")
	finished := finish.Exists() && finish.Type != gjson.Null && finish.String() != ""
	if r.Matching() {
		rkey, okey := "reasoning_content", "reasoning"
		rv := d.Get(rkey)
		if rv.Type != gjson.String || rv.String() == "" {
			rkey, okey = okey, rkey
			rv = d.Get(rkey)
		}
		if rv.Type == gjson.String && rv.String() != "" {
			full := rv.String()
			rest, ok := consume(&r.rpos, r.reasoning, full)
			if !ok {
				return nil, ErrDiverged
			}
			if rest != full {
				// The same reasoning under a second member (reasoning_content
				// and reasoning; OpenRouter's reasoning and reasoning_details)
				// is trimmed the same way, else the client reads it twice.
				other := d.Get(okey)
				switch {
				case other.Type != gjson.String || other.String() == "":
				case other.String() != full:
					return nil, ErrDiverged // two texts: which one the client has is unknown
				case rest == "":
					del("choices.0.delta." + okey)
				default:
					set("choices.0.delta."+okey, rest)
				}
				if det := d.Get("reasoning_details"); det.Exists() && det.Type != gjson.Null {
					arr, drop, ok := trimDetails(det, full, rest)
					switch {
					case !ok:
						return nil, ErrDiverged
					case drop:
						del("choices.0.delta.reasoning_details")
					case err == nil:
						out, err = sjson.SetRawBytes(out, "choices.0.delta.reasoning_details", arr)
					}
				}
				if rest == "" {
					del("choices.0.delta." + rkey)
				} else {
					set("choices.0.delta."+rkey, rest)
				}
			}
		}
		// The delta's content and refusal each repeat what the client got
		// of them, after the sent reasoning and before any more of the
		// other parts it got (another of them, its tool calls).
		trim := func(key string, pos *int, sent string, othersPending bool) error {
			v := d.Get(key)
			if v.Type != gjson.String || v.String() == "" {
				return nil
			}
			if r.rpos < len(r.reasoning) {
				return ErrDiverged // the answer began before the sent reasoning ended
			}
			rest, ok := consume(pos, sent, v.String())
			if !ok || (rest != "" && othersPending) {
				// Other text, or more of it where the client's answer
				// went on with another part.
				return ErrDiverged
			}
			if rest == "" {
				del("choices.0.delta." + key)
			} else if rest != v.String() {
				set("choices.0.delta."+key, rest)
			}
			return nil
		}
		if err := trim("content", &r.tpos, r.text, r.next < len(r.calls) || r.fpos < len(r.refusal)); err != nil {
			return nil, err
		}
		if err := trim("refusal", &r.fpos, r.refusal, r.tpos < len(r.text) || r.next < len(r.calls)); err != nil {
			return nil, err
		}
		if r.textPending() && (callsIn(d.Get("tool_calls")) || callsIn(d.Get("function_call")) || finished) {
			return nil, ErrDiverged // the answer ended or turned to tools before repeating the prefix
		}
	}
	if len(r.calls) > 0 {
		if tc := d.Get("tool_calls"); tc.IsArray() {
			arr, n, cerr := r.filterCalls(tc)
			if cerr != nil {
				return nil, cerr
			}
			if n == 0 {
				del("choices.0.delta.tool_calls")
			} else if err == nil {
				out, err = sjson.SetRawBytes(out, "choices.0.delta.tool_calls", arr)
			}
		}
		if r.Matching() && (callsIn(d.Get("function_call")) || finished) {
			return nil, ErrDiverged // the answer ended before repeating the client's calls
		}
	}
	if r.id != "" {
		if d.Get("role").Exists() {
			del("choices.0.delta.role")
		}
		if gjson.Get(s, "id").Exists() {
			set("id", r.id)
		}
	}
	if err != nil {
		return nil, err
	}
	if len(out) != len(data) && emptyChunk(out) {
		return nil, nil
	}
	return out, nil
}

// callsIn reports whether a delta's tool_calls or function_call (v) holds
// a call: a server that writes them out empty in every delta
// ("tool_calls": null, "function_call": null, "tool_calls": []) beside
// its text has not turned to tools. Taken for a call, every fresh answer
// from such a server diverged from the text the client had.
func callsIn(v gjson.Result) bool {
	if v.IsArray() {
		return len(v.Array()) > 0
	}
	return v.Exists() && v.Type != gjson.Null
}

// filterCalls rewrites a fresh chunk's tool_calls for the client (see
// WithCalls): the new array and how many entries it holds.
func (r *Resume) filterCalls(arr gjson.Result) ([]byte, int, error) {
	out := []byte{'['}
	n := 0
	var err error
	arr.ForEach(func(_, e gjson.Result) bool {
		if !e.IsObject() {
			return true
		}
		var fc *freshCall
		if fc, err = r.freshFor(e); err != nil {
			return false
		}
		if r.flush != nil {
			if n > 0 {
				out = append(out, ',')
			}
			out = append(out, r.flush...)
			n++
			r.flush = nil
		}
		if !fc.args {
			fc.args = argsIn(e, fc.custom)
		}
		var piece []byte
		if fc.sent >= 0 {
			if fc.rest != "" && argsIn(e, fc.custom) {
				if fc.first == nil {
					err = ErrDiverged // arguments before the sent call's whole name
					return false
				}
				if piece, err = r.paymentAfterAll(fc); err != nil {
					return false
				}
				if n > 0 {
					out = append(out, ',')
				}
				out = append(out, piece...)
				n++
				piece, err = sjson.SetBytes([]byte(e.Raw), "index", fc.out)
			} else {
				piece, err = r.continueCall(fc, e)
			}
			if err != nil {
				return false
			}
		} else if piece, err = sjson.SetBytes([]byte(e.Raw), "index", fc.out); err != nil {
			return false
		}
		if piece != nil {
			if n > 0 {
				out = append(out, ',')
			}
			out = append(out, piece...)
			n++
		}
		return true
	})
	if err != nil {
		return nil, 0, err
	}
	return append(out, ']'), n, nil
}

// freshFor finds or starts the fresh call an entry belongs to, as Capture's
// slotFor does: by index, by id without one, else the last call.
func (r *Resume) freshFor(e gjson.Result) (*freshCall, error) {
	idx, id := e.Get("index"), e.Get("id").String()
	name, custom := entryName(e)
	if fc := r.lookup(idx, id, name); fc != nil {
		return fc, nil
	}
	if r.cur != nil && r.cur.first != nil && r.cur.rest != "" && r.cur.name == r.cur.firstName {
		// A payment call without arguments before another call
		// (sentExtends): it goes to the client side as such.
		first, err := r.paymentAfterAll(r.cur)
		if err != nil {
			return nil, err
		}
		r.flush = first
	}
	if r.cur != nil && (!r.cur.done || r.cur.rest != "") {
		return nil, ErrDiverged // the call being repeated ended before its sent arguments, or its name
	}
	// The id and name are views of the event's bytes, which the next
	// events reuse: kept as they are, they read as whatever a later event
	// held there, and the call's next entries (by id alone, without an
	// index) were taken for another call.
	fc := &freshCall{upIdx: int(idx.Int()), hasIdx: idx.Type == gjson.Number, id: strings.Clone(id), name: strings.Clone(name), sent: -1, custom: custom}
	switch {
	case name != "" && r.isPayment != nil && r.isPayment(name) && !r.sentExtends(e, name, custom):
	case r.next < len(r.calls):
		want := r.calls[r.next]
		switch {
		case name == "" || custom != want.Custom:
			return nil, ErrDiverged // another tool, or one not named yet: nothing to match
		case name == want.Name:
		case len(name) < len(want.Name) && strings.HasPrefix(want.Name, name) && !argsIn(e, custom):
			// The first piece of the sent name (namePiece): the rest
			// must follow before any argument.
			fc.rest = want.Name[len(name):]
			if r.isPayment != nil && r.isPayment(name) {
				fc.first, fc.firstName = []byte(e.Raw), fc.name
			}
		default:
			return nil, ErrDiverged
		}
		fc.sent, fc.out = r.next, r.calls[r.next].Index
		r.next++
	}
	if fc.sent < 0 {
		fc.out = r.base
		r.base++
	}
	r.fresh = append(r.fresh, fc)
	if fc.sent >= 0 {
		r.cur = fc
		fc.done = r.calls[fc.sent].Arguments == ""
	}
	return fc, nil
}

func (r *Resume) lookup(idx gjson.Result, id, name string) *freshCall {
	switch {
	case idx.Type == gjson.Number:
		for i := len(r.fresh) - 1; i >= 0; i-- {
			fc := r.fresh[i]
			if !fc.hasIdx || fc.upIdx != int(idx.Int()) {
				continue
			}
			if id != "" && fc.id != "" && id != fc.id && name != "" {
				return nil // a new call under a reused index
			}
			if r.namePiece(fc, name) {
				return fc
			}
			if r.another(fc, name) {
				return nil // a new call under a reused index
			}
			r.grow(fc, name)
			return fc
		}
	case id != "":
		for i := len(r.fresh) - 1; i >= 0; i-- {
			if fc := r.fresh[i]; fc.id == id {
				if r.namePiece(fc, name) {
					return fc
				}
				if r.another(fc, name) {
					return nil // a new call under a reused id
				}
				r.grow(fc, name)
				return fc
			}
		}
	case name == "" && len(r.fresh) > 0:
		return r.fresh[len(r.fresh)-1]
	}
	return nil
}

// another reports whether an entry that names name under the index or id
// of fc starts another call, in a payment turn (isPayment set), as the
// Capture the entries go on to tells calls apart (slotFor): a provider
// that gives every call index 0 and no id, or one id to every call, names
// each call under the last one's. Only a whole name is told apart so: that
// of a call repeating one the client has, or of a payment call; another
// call's name may come in pieces (Capture.PaymentNames), which the
// Capture joins, and so is a piece of a payment tool's whole name that a
// tool of the bot's extends, before any argument (WithHeldNames). (On the
// plain path the client reads the provider's indexes as they are, and so
// does Resume.)
func (r *Resume) another(fc *freshCall, name string) bool {
	return r.isPayment != nil && name != "" && fc.name != "" && name != fc.name &&
		(fc.sent >= 0 || r.isPayment(fc.name) && !r.heldGoesOn(fc, name))
}

// sentExtends reports whether the entry e, naming a payment tool (name)
// before any argument, may be the first piece of the name of the sent
// call the fresh answer must repeat next: the bot's query_order_history,
// from a provider that streams it as "query_order", then "_history". The
// Capture holds such a name while a tool of the bot's extends it
// (WithHeldNames); taken for a payment call, the bot got the call it has
// a second time under a new index, and the answer then diverged, for the
// sent call was never repeated.
func (r *Resume) sentExtends(e gjson.Result, name string, custom bool) bool {
	if r.goesOn == nil || r.next >= len(r.calls) || argsIn(e, custom) {
		return false
	}
	want := r.calls[r.next]
	return want.Custom == custom && len(name) < len(want.Name) && strings.HasPrefix(want.Name, name) &&
		r.goesOn(name, want.Name[len(name):])
}

// paymentAfterAll makes fc, taken for the repetition of a sent call by
// the payment tool's name it began with (sentExtends), that payment
// call, as its arguments came before the rest of the sent name: numbered
// as the fresh answer's other calls, from its first entry (returned, for
// the client side's Capture), and the sent call is still to be repeated.
// A name grown past the payment tool's meanwhile is no payment call:
// ErrDiverged.
func (r *Resume) paymentAfterAll(fc *freshCall) ([]byte, error) {
	if r.isPayment == nil || fc.name != fc.firstName || !r.isPayment(fc.name) {
		return nil, ErrDiverged
	}
	r.next, r.cur = fc.sent, nil
	fc.sent, fc.rest, fc.done = -1, "", false
	fc.out = r.base
	r.base++
	first := fc.first
	fc.first = nil
	return sjson.SetBytes(first, "index", fc.out)
}

// namePiece takes name, given under the index or id of fc, a fresh call
// repeating a sent one whose name it has named only in part (rest), for
// the next piece of that name when the sent name goes on so; any other
// name there starts another call, which diverges (freshFor).
func (r *Resume) namePiece(fc *freshCall, name string) bool {
	if fc.rest == "" || name == "" || !strings.HasPrefix(fc.rest, name) {
		return false
	}
	fc.name += name
	fc.rest = fc.rest[len(name):]
	return true
}

// argsIn reports whether a tool-call entry carries an argument fragment.
func argsIn(e gjson.Result, custom bool) bool {
	a := e.Get("function.arguments")
	if custom {
		a = e.Get("custom.input")
	}
	return a.Exists() && a.Type != gjson.Null && a.Raw != `""`
}

// heldGoesOn reports whether name is the next piece of fc's held name
// (WithHeldNames).
func (r *Resume) heldGoesOn(fc *freshCall, name string) bool {
	return r.goesOn != nil && fc.sent < 0 && !fc.args && r.goesOn(fc.name, name)
}

// grow joins to fc's name the piece name when it continues a held payment
// tool's name (heldGoesOn), so that the next piece is judged against the
// name so far, as the Capture judges it.
func (r *Resume) grow(fc *freshCall, name string) {
	if r.isPayment != nil && name != "" && name != fc.name && fc.name != "" && r.isPayment(fc.name) && r.heldGoesOn(fc, name) {
		fc.name += name
	}
}

// continueCall matches an entry of a fresh call repeating a sent one: it
// returns the entry the client gets (its index, the arguments beyond the
// sent ones), nil when there is nothing beyond them yet.
func (r *Resume) continueCall(fc *freshCall, e gjson.Result) ([]byte, error) {
	var frag string
	argsPath := "function.arguments"
	if fc.custom {
		argsPath = "custom.input"
	}
	switch a := e.Get(argsPath); {
	case a.Type == gjson.String:
		frag = a.Raw[1 : len(a.Raw)-1]
	case a.IsObject() || a.IsArray():
		q := jsonstr.Append(nil, a.Raw)
		frag = string(q[1 : len(q)-1])
	}
	if !fc.done {
		fc.raw = append(fc.raw, frag...)
		dec, tail := decodeHead(fc.raw)
		sent := r.calls[fc.sent].Arguments
		if len(dec) < len(sent) {
			if sent[:len(dec)] != dec {
				return nil, ErrDiverged
			}
			return nil, nil
		}
		if dec[:len(sent)] != sent {
			return nil, ErrDiverged
		}
		fc.done, fc.raw = true, nil
		q := jsonstr.Append(nil, dec[len(sent):])
		frag = string(q[1:len(q)-1]) + tail
	}
	if frag == "" {
		return nil, nil
	}
	out := []byte(`{"index":`)
	out = strconv.AppendInt(out, int64(fc.out), 10)
	if fc.custom {
		out = append(out, `,"custom":{"input":"`...)
	} else {
		out = append(out, `,"function":{"arguments":"`...)
	}
	out = append(out, frag...)
	return append(out, `"}}`...), nil
}

// decodeHead decodes raw JSON string fragments but for a trailing escaped
// high surrogate, whose pair may come in the next fragment: it returns that
// escape undecoded as tail.
func decodeHead(raw []byte) (dec, tail string) {
	if n := len(raw); n >= 6 && raw[n-6] == '\\' && raw[n-5] == 'u' && highSurrogate(raw[n-4:]) {
		bs := 0
		for i := n - 6; i >= 0 && raw[i] == '\\'; i-- {
			bs++
		}
		if bs%2 == 1 {
			return decodeRaw(raw[:n-6]), string(raw[n-6:])
		}
	}
	return decodeRaw(raw), ""
}

func highSurrogate(h []byte) bool {
	v, err := strconv.ParseUint(string(h), 16, 16)
	return err == nil && v >= 0xD800 && v <= 0xDBFF
}

// trimDetails cuts a fresh chunk's reasoning_details to the part of its
// reasoning text full beyond what the client already has (rest), the way
// the chunk's reasoning is cut. Only the shape whose text is that reasoning
// text can be cut safely: one entry, "reasoning.text" (its text) or
// "reasoning.summary" (its summary), equal to full. It returns the array
// to send, or drop when nothing of it is left (rest "" and no signature or
// data to keep); ok is false for any other shape, which the caller treats
// as diverged: paygate cannot tell what of it the client already has, and
// sending it whole would repeat reasoning (never the unsafe choice of
// guessing).
func trimDetails(det gjson.Result, full, rest string) (arr []byte, drop, ok bool) {
	if !det.IsArray() {
		return nil, false, false
	}
	entries := det.Array()
	if len(entries) == 0 {
		return nil, true, true
	}
	if len(entries) != 1 || !entries[0].IsObject() {
		return nil, false, false
	}
	e := entries[0]
	var key string
	switch e.Get("type").String() {
	case "reasoning.text":
		key = "text"
	case "reasoning.summary":
		key = "summary"
	default:
		return nil, false, false
	}
	if v := e.Get(key); v.Type != gjson.String || v.String() != full {
		return nil, false, false
	}
	keep := func(k string) bool { v := e.Get(k); return v.Exists() && v.Type != gjson.Null && v.String() != "" }
	if rest == "" && !keep("signature") && !keep("data") {
		return nil, true, true
	}
	b, err := sjson.SetBytes([]byte(e.Raw), key, rest)
	if err != nil {
		return nil, false, false
	}
	arr = append(append([]byte{'['}, b...), ']')
	return arr, false, true
}

// emptyChunk reports a chunk with one choice whose delta carries nothing
// and no finish, and no usage: nothing for the client.
func emptyChunk(b []byte) bool {
	res := gjson.GetManyBytes(b, "choices.#", "choices.0.delta", "choices.0.finish_reason", "usage")
	if res[0].Int() != 1 || (res[2].Type != gjson.Null && res[2].String() != "") || (res[3].Exists() && res[3].Type != gjson.Null) {
		return false
	}
	empty := true
	res[1].ForEach(func(_, v gjson.Result) bool {
		if v.Type != gjson.Null && !(v.Type == gjson.String && v.String() == "") {
			empty = false
		}
		return empty
	})
	return empty
}

// consume matches got against sent[*pos:]: it advances *pos over the part of
// got inside the sent prefix and returns what lies beyond it, or false when
// got departs from the prefix.
func consume(pos *int, sent, got string) (string, bool) {
	rem := sent[*pos:]
	if len(got) <= len(rem) {
		if rem[:len(got)] != got {
			return "", false
		}
		*pos += len(got)
		return "", true
	}
	if got[:len(rem)] != rem {
		return "", false
	}
	*pos = len(sent)
	return got[len(rem):], true
}
