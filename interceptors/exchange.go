package interceptors

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// Exchange is what paygate added to a turn that ended with the client's own
// tool calls (SPEC 3.7): the messages of the turn's earlier payment rounds
// (Before: each round's assistant message and tool results, in order), the
// last round's assistant message as the provider produced it (payment and
// client calls together) and the tool results of its payment calls. The
// client only ever saw its own calls; when its next request comes back
// carrying them, the exchange is put back in place so the provider sees its
// own turn again.
//
// Calls are the client's own calls as it received them: an exchange goes
// back only into an assistant message that carries exactly these, since a
// call id alone does not name a turn (Kimi K2 numbers its ids
// "functions.<name>:<n>", so two conversations, or two turns of one, give
// the same id to different calls).
type Exchange struct {
	Before    []json.RawMessage `json:"before,omitempty"`
	Assistant json.RawMessage   `json:"assistant"`
	Results   []json.RawMessage `json:"results"`
	Calls     []ExchangeCall    `json:"calls,omitempty"`
	// Tools are the payment tools' names when the exchange was kept
	// (Renamed). Omitted by versions before it: those exchanges come back
	// under the names they were kept with.
	Tools *ExchangeTools `json:"tools,omitempty"`
}

// ExchangeTools are the payment tools' names (config's payments.tools).
type ExchangeTools struct {
	CreateOrder   string `json:"create_order"`
	QueryOrder    string `json:"query_order"`
	RequestRefund string `json:"request_refund"`
}

// Renamed is the exchange with its payment calls named as to names the
// tools: an operator who renamed the payment tools (payments.tools) and
// restarted, or rolled one replica of several, gets back the exchanges
// kept under the old names. Restored under those, the model read calls
// of tools it is not offered, and the turn's budget and clarification
// (read by the names in force) missed them: a create_order kept under
// its old name spent nothing of max_payment_calls, and the follow-up's
// order was a second one for the user's one message. The bot's own
// calls keep their names. ex itself when nothing changes.
func (ex *Exchange) Renamed(to ExchangeTools) *Exchange {
	if ex == nil || ex.Tools == nil || *ex.Tools == to {
		return ex
	}
	names := map[string]string{}
	for _, p := range [...][2]string{{ex.Tools.CreateOrder, to.CreateOrder}, {ex.Tools.QueryOrder, to.QueryOrder},
		{ex.Tools.RequestRefund, to.RequestRefund}} {
		if p[0] != "" && p[1] != "" {
			names[p[0]] = p[1]
		}
	}
	rename := func(m json.RawMessage, bot bool) json.RawMessage {
		m = slices.Clone(m) // the exchange read stays as it was
		i := -1
		gjson.GetBytes(m, "tool_calls").ForEach(func(_, c gjson.Result) bool {
			i++
			if bot && ex.isBotCall(c) {
				return true
			}
			for _, kind := range [...]string{"function", "custom"} {
				n := c.Get(kind + ".name")
				if n.Type != gjson.String || names[n.Str] == "" || names[n.Str] == n.Str {
					continue
				}
				if b, err := sjson.SetBytes(m, "tool_calls."+strconv.Itoa(i)+"."+kind+".name", names[n.Str]); err == nil {
					m = b
				}
			}
			return true
		})
		return m
	}
	out := *ex
	out.Before = make([]json.RawMessage, len(ex.Before))
	for i, m := range ex.Before {
		out.Before[i] = rename(m, false)
	}
	out.Assistant = rename(ex.Assistant, true)
	t := to
	out.Tools = &t
	return &out
}

// ExchangeCall is one of the client's own tool calls of a kept exchange.
type ExchangeCall struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
	// Custom: a call to a custom tool (ToolCall.Custom), Arguments its
	// input. Omitted for a function call, as exchanges were kept before
	// calls had a kind: those read as function calls.
	Custom bool `json:"custom,omitempty"`
}

// RestoreExchanges is RestoreExchangesAt with the exchanges known by call
// id alone, every one found as an exact match.
func RestoreExchanges(body []byte, lookup func(callID string) *Exchange) ([]byte, int, error) {
	return RestoreExchangesAt(body, func(at ExchangeAt) (*Exchange, []*Exchange) { return lookup(at.CallID), nil })
}

// ExchangeAt names the place of an assistant message of the bot's request
// that may take a kept exchange: its first tool call's id, its calls'
// fingerprint (CallsFingerprint) and the fingerprint of the message before
// it (MessageFingerprint; "" for the first message). A call id alone does
// not name a turn: a provider that numbers its ids per answer (vLLM, some
// DashScope and Gemini-compatible endpoints) gives the bot's call of every
// turn the same id, and the same call (a get_cart {} every turn) the same
// calls too; the message before it tells the turns apart.
type ExchangeAt struct {
	CallID, Calls, Prev string
}

// AnsweredAt is the place (ExchangeAt) of the assistant message whose tool
// calls a chat request answers: the request ends with tool results, at
// least one of them for a call of that message, after it. false for a
// request that ends otherwise (a user's message, an assistant's, a tool
// result after anything but such a message).
func AnsweredAt(body []byte) (ExchangeAt, bool) {
	var last, prev, asst gjson.Result
	answered := false
	gjson.GetBytes(body, "messages").ForEach(func(_, m gjson.Result) bool {
		before := last
		last = m
		switch role := m.Get("role").Str; {
		case role == "tool" && asst.Exists():
			if id := m.Get("tool_call_id").Str; id != "" && !answered {
				asst.Get("tool_calls").ForEach(func(_, c gjson.Result) bool {
					answered = c.Get("id").Str == id
					return !answered
				})
			}
		case role == "assistant" && m.Get("tool_calls.0.id").Str != "":
			asst, prev, answered = m, before, false
		default:
			asst, answered = gjson.Result{}, false
		}
		return true
	})
	if !asst.Exists() || !answered {
		return ExchangeAt{}, false
	}
	var got []ExchangeCall
	asst.Get("tool_calls").ForEach(func(_, c gjson.Result) bool { got = append(got, readCall(c)); return true })
	at := ExchangeAt{CallID: got[0].ID, Calls: CallsFingerprint(got)}
	if prev.Exists() {
		at.Prev = MessageFingerprint(prev)
	}
	return at, true
}

// RestoreExchangesAt replaces every assistant message with tool calls for
// whose place lookup knows an exchange, and whose tool calls are exactly
// the exchange's client calls, with the kept exchange: the earlier rounds'
// messages, the full assistant message, then the payment tool results
// among the bot's tool messages that follow it, in the order of the
// calls (appendRestored).
// lookup returns the exchange kept for that very place (exact), else the
// ones found by looser keys, best first (loose: by its calls or its id
// only, for a bot that rewrote the message before, or an exchange kept
// before exchanges had places). An exchange goes where it matches
// exactly; a message without one takes its first loose exchange no
// message matches exactly. An exchange that two messages would take, both
// exactly or both loosely, is restored into neither: which turn it
// belongs to is unknown, and putting a payment into the wrong place
// misleads the model more than leaving it out. Everything else stays byte
// for byte (the bot's tool messages too, moved, the spacing between them
// dropped), and the same request is restored to the same bytes every time
// (prompt caches).
func RestoreExchangesAt(body []byte, lookup func(at ExchangeAt) (exact *Exchange, loose []*Exchange)) ([]byte, int, error) {
	msgs := gjson.GetBytes(body, "messages")
	if !msgs.IsArray() {
		return body, 0, nil
	}
	type splice struct {
		start, end int
		exact      *Exchange
		loose      []*Exchange
		ex         *Exchange // the one chosen
		// tools are the tool messages right after the assistant message
		// (the bot's results), end past the last of them: the restored
		// results go among them in the order of the calls.
		tools []string
	}
	var splices []splice
	// open is the splice whose assistant message the messages read since
	// are tool messages right after, -1 for none.
	open := -1
	// One pass over the array: reading message i as "messages.<i>" walks
	// the body from its start each time, quadratic in a long conversation.
	var err error
	var last gjson.Result // the message before m
	i := -1
	msgs.ForEach(func(_, m gjson.Result) bool {
		i++
		before := last
		last = m
		role := m.Get("role").Str
		if role == "tool" && open >= 0 {
			if !located(body, m) {
				err = fmt.Errorf("locating message %d", i)
				return false
			}
			splices[open].tools = append(splices[open].tools, m.Raw)
			splices[open].end = m.Index + len(m.Raw)
			return true
		}
		open = -1
		if role != "assistant" {
			return true
		}
		id := m.Get("tool_calls.0.id").Str
		if id == "" {
			return true
		}
		calls := m.Get("tool_calls")
		var got []ExchangeCall
		calls.ForEach(func(_, c gjson.Result) bool { got = append(got, readCall(c)); return true })
		at := ExchangeAt{CallID: id, Calls: CallsFingerprint(got)}
		if before.Exists() {
			at.Prev = MessageFingerprint(before)
		}
		exact, loose := lookup(at)
		if exact != nil && !sameCalls(calls, exact.clientCalls()) {
			exact = nil
		}
		loose = slices.DeleteFunc(slices.Clone(loose), func(ex *Exchange) bool { return ex == nil || !sameCalls(calls, ex.clientCalls()) })
		if exact == nil && len(loose) == 0 {
			return true
		}
		if !located(body, m) {
			err = fmt.Errorf("locating message %d", i)
			return false
		}
		splices = append(splices, splice{start: m.Index, end: m.Index + len(m.Raw), exact: exact, loose: loose})
		open = len(splices) - 1
		return true
	})
	if err != nil {
		return nil, 0, err
	}
	// An exchange is named by its messages (identity): equal for one
	// exchange, read once per lookup. Counted before any is deleted:
	// DeleteFunc moves the kept ones down while it runs, so counting
	// inside it miscounts.
	exactUses, looseUses := map[string]int{}, map[string]int{}
	for _, s := range splices {
		if s.exact != nil {
			exactUses[s.exact.identity()]++
		}
	}
	for k := range splices {
		s := &splices[k]
		if s.exact != nil {
			s.ex = s.exact
			continue
		}
		for _, ex := range s.loose {
			if exactUses[ex.identity()] == 0 {
				s.ex = ex
				looseUses[ex.identity()]++
				break
			}
		}
	}
	splices = slices.DeleteFunc(splices, func(s splice) bool {
		if s.ex == nil {
			return true
		}
		if s.exact != nil {
			return exactUses[s.ex.identity()] > 1
		}
		return looseUses[s.ex.identity()] > 1
	})
	if len(splices) == 0 {
		return body, 0, nil
	}
	ids := newCallIDs(body)
	for _, s := range splices {
		s.ex.payment(func(id string) { ids.taken[id] = true })
	}
	out := make([]byte, 0, len(body)+256*len(splices))
	prev := 0
	for _, s := range splices {
		out = append(out, body[prev:s.start]...)
		out = s.ex.appendRestored(out, ids, s.tools)
		prev = s.end
	}
	out = append(out, body[prev:]...)
	if !gjson.ValidBytes(out) {
		return nil, 0, fmt.Errorf("restored body is not valid JSON")
	}
	return out, len(splices), nil
}

// located reports whether m, a message of body, sits in body at m.Index.
func located(body []byte, m gjson.Result) bool {
	return m.Index > 0 && m.Index+len(m.Raw) <= len(body) && string(body[m.Index:m.Index+len(m.Raw)]) == m.Raw
}

// identity names the exchange by all its messages: its earlier rounds',
// its assistant message and its results. The assistant message alone
// does not: two turns that bought the same thing, their provider
// numbering its ids per answer, have assistant messages alike to the byte
// and their own orders in their results, two exchanges each kept for its
// own place.
func (ex *Exchange) identity() string {
	parts := make([]string, 0, len(ex.Before)+1+len(ex.Results))
	for _, m := range ex.Before {
		parts = append(parts, string(m))
	}
	parts = append(parts, string(ex.Assistant))
	for _, m := range ex.Results {
		parts = append(parts, string(m))
	}
	return fingerprint(parts...)
}

// callIDs are the tool-call ids a restored body names: the bot's
// (outside, the ids its messages name: its calls and its results) and all
// taken, for new ones.
type callIDs struct {
	outside, taken map[string]bool
	n              int
}

// newCallIDs reads the ids the messages of body, the bot's request, name.
func newCallIDs(body []byte) *callIDs {
	c := &callIDs{outside: map[string]bool{}, taken: map[string]bool{}}
	gjson.GetBytes(body, "messages").ForEach(func(_, m gjson.Result) bool {
		m.Get("tool_calls.#.id").ForEach(func(_, id gjson.Result) bool {
			c.outside[id.Str] = true
			return true
		})
		if id := m.Get("tool_call_id"); id.Exists() {
			c.outside[id.Str] = true
		}
		return true
	})
	for id := range c.outside {
		c.taken[id] = true
	}
	return c
}

// fresh is a new id, "call_pg_r<n>" suffixed until it is taken by none.
func (c *callIDs) fresh() string {
	base := "call_pg_r" + strconv.Itoa(c.n)
	c.n++
	id := base
	for k := 2; c.taken[id]; k++ {
		id = base + "_" + strconv.Itoa(k)
	}
	c.taken[id] = true
	return id
}

// payment calls f with each id of the exchange's payment side: its
// earlier rounds' calls and results, the calls of its assistant message
// that are not the bot's (isBotCall), and its results.
func (ex *Exchange) payment(f func(id string)) {
	for _, m := range ex.Before {
		gjson.GetBytes(m, "tool_calls.#.id").ForEach(func(_, id gjson.Result) bool { f(id.Str); return true })
		if id := gjson.GetBytes(m, "tool_call_id"); id.Exists() {
			f(id.Str)
		}
	}
	gjson.GetBytes(ex.Assistant, "tool_calls").ForEach(func(_, c gjson.Result) bool {
		if !ex.isBotCall(c) {
			f(c.Get("id").Str)
		}
		return true
	})
	for _, r := range ex.Results {
		f(gjson.GetBytes(r, "tool_call_id").Str)
	}
}

// isBotCall reports whether c, a call of the exchange's assistant message,
// is one of the bot's own: one of its client calls by id and name.
func (ex *Exchange) isBotCall(c gjson.Result) bool {
	g := readCall(c)
	return slices.ContainsFunc(ex.clientCalls(), func(w ExchangeCall) bool { return w.ID == g.ID && w.Name == g.Name })
}

// appendRestored appends the exchange's messages, comma-separated, to dst:
// its earlier rounds' messages, its assistant message, then its results
// and tools (the bot's tool messages that followed the assistant message,
// byte for byte) in the order of the assistant message's calls, those
// that answer none of them after, in their order: providers that pair
// results with calls by position (Gemini's OpenAI-compatible layer,
// DeepSeek) refuse, or mispair, results out of the calls' order. A
// payment call whose id the bot's request, or an exchange restored before
// this one, also names (ids.outside) gets a new one there and in its
// result: a provider that numbers ids per answer gave the bot's call of a
// later round, or of a later turn, the id of a kept payment call, or two
// turns' payment calls one id ("call_0" twice), and the request named it
// twice, which strict providers refuse (400) on every retry of the bot's.
// The bot's calls keep their ids, which it holds. Restored alike every
// time, so the provider's prompt cache still matches.
func (ex *Exchange) appendRestored(dst []byte, ids *callIDs, tools []string) []byte {
	renamed := map[string]string{}
	ex.payment(func(id string) {
		if ids.outside[id] && renamed[id] == "" {
			renamed[id] = ids.fresh()
		}
	})
	rename := func(m []byte, bot bool) []byte {
		if len(renamed) == 0 {
			return m
		}
		if id := gjson.GetBytes(m, "tool_call_id"); renamed[id.Str] != "" {
			if b, err := sjson.SetBytes(m, "tool_call_id", renamed[id.Str]); err == nil {
				m = b
			}
		}
		gjson.GetBytes(m, "tool_calls").ForEach(func(k, c gjson.Result) bool {
			if to := renamed[c.Get("id").Str]; to != "" && !(bot && ex.isBotCall(c)) {
				if b, err := sjson.SetBytes(m, "tool_calls."+k.String()+".id", to); err == nil {
					m = b
				}
			}
			return true
		})
		return m
	}
	for _, b := range ex.Before {
		dst = append(dst, rename(b, false)...)
		dst = append(dst, ',')
	}
	dst = append(dst, rename(ex.Assistant, true)...)
	usedResult, usedTool := make([]bool, len(ex.Results)), make([]bool, len(tools))
	// Each message's tool_call_id is read once, into the queue of the
	// messages of that id, in their order: a call takes the first of its
	// id not taken. (Read again for every call, pairing was calls × bytes
	// of the bot's tool messages.)
	queues := func(msgs []string) map[string][]int {
		q := make(map[string][]int, len(msgs))
		for k, m := range msgs {
			id := gjson.Get(m, "tool_call_id").Str
			q[id] = append(q[id], k)
		}
		return q
	}
	take := func(msgs []string, q map[string][]int, used []bool, id string) (string, bool) {
		ks := q[id]
		if len(ks) == 0 {
			return "", false
		}
		q[id] = ks[1:]
		used[ks[0]] = true
		return msgs[ks[0]], true
	}
	results := make([]string, len(ex.Results))
	for k, r := range ex.Results {
		results[k] = string(r)
	}
	toolQ, resultQ := queues(tools), queues(results)
	gjson.GetBytes(ex.Assistant, "tool_calls").ForEach(func(_, c gjson.Result) bool {
		id := c.Get("id").Str
		if ex.isBotCall(c) {
			if m, ok := take(tools, toolQ, usedTool, id); ok {
				dst = append(dst, ',')
				dst = append(dst, m...)
			}
		} else if m, ok := take(results, resultQ, usedResult, id); ok {
			dst = append(dst, ',')
			dst = append(dst, rename([]byte(m), false)...)
		}
		return true
	})
	for k, r := range ex.Results {
		if !usedResult[k] {
			dst = append(dst, ',')
			dst = append(dst, rename(r, false)...)
		}
	}
	for k, m := range tools {
		if !usedTool[k] {
			dst = append(dst, ',')
			dst = append(dst, m...)
		}
	}
	// The ids restored here are the request's now: a later exchange's
	// payment call of the same id is renamed.
	ex.payment(func(id string) {
		if to := renamed[id]; to != "" {
			id = to
		}
		ids.outside[id] = true
	})
	return dst
}

// clientCalls are the exchange's client calls: Calls, or, for an exchange
// kept without them, the calls of its assistant message that no result of
// its answers (the payment calls have theirs in Results).
func (ex *Exchange) clientCalls() []ExchangeCall {
	if ex.Calls != nil {
		return ex.Calls
	}
	answered := map[string]bool{}
	for _, r := range ex.Results {
		answered[gjson.GetBytes(r, "tool_call_id").Str] = true
	}
	var out []ExchangeCall
	gjson.GetBytes(ex.Assistant, "tool_calls").ForEach(func(_, c gjson.Result) bool {
		if id := c.Get("id").Str; !answered[id] {
			out = append(out, readCall(c))
		}
		return true
	})
	return out
}

// readCall reads a tool call of a message: a custom tool's call (a
// "custom" object and no "function", or a null one) names itself and
// carries its input in "custom", any other call in "function". A null
// "function" names nothing, as the capture reads it (parseEntry): a bot
// whose JSON library writes unset fields as null echoes its custom call
// with "function":null, read as a nameless function call it matched no
// kept exchange, and the follow-up went upstream without the turn's
// payment calls. A null beside an object of the same name, in any case,
// names the call twice (NullBesideObject): no name.
func readCall(c gjson.Result) ExchangeCall {
	id := c.Get("id").Str
	if NullBesideObject(c) {
		return ExchangeCall{ID: id}
	}
	if fn := c.Get("function"); fn.Type == gjson.Null {
		if cu := c.Get("custom"); cu.IsObject() {
			return ExchangeCall{ID: id, Name: cu.Get("name").Str, Arguments: arguments(cu.Get("input")), Custom: true}
		}
	}
	return ExchangeCall{ID: id, Name: c.Get("function.name").Str, Arguments: arguments(c.Get("function.arguments"))}
}

// sameCalls reports whether the tool calls of a bot's assistant message are
// the kept calls, in any order: the same ids, kinds, names and arguments. A
// custom call's input is text, compared as such; function arguments are
// compared as JSON values (sameArguments).
func sameCalls(got gjson.Result, want []ExchangeCall) bool {
	calls := got.Array()
	if len(want) == 0 || len(calls) != len(want) {
		return false
	}
	used := make([]bool, len(want))
next:
	for _, c := range calls {
		g := readCall(c)
		for i, w := range want {
			if used[i] || w.ID != g.ID || w.Custom != g.Custom || w.Name != g.Name {
				continue
			}
			if w.Custom && w.Arguments == g.Arguments || !w.Custom && sameArguments(w.Arguments, g.Arguments) {
				used[i] = true
				continue next
			}
		}
		return false
	}
	return true
}

// arguments is a tool call's arguments: a string's content, or the raw
// value of an object or array (some providers send one, and a bot may
// send it back so).
func arguments(v gjson.Result) string {
	if v.IsObject() || v.IsArray() {
		return v.Raw
	}
	return v.Str
}

// sameArguments compares two calls' arguments as JSON values when both are
// JSON (a bot may re-encode them: spacing, escapes, key order), else as
// text. Empty arguments are "{}", as AssistantToolMessage sends them.
func sameArguments(a, b string) bool {
	if a == "" {
		a = "{}"
	}
	if b == "" {
		b = "{}"
	}
	if a == b {
		return true
	}
	var va, vb any
	if json.Unmarshal([]byte(a), &va) != nil || json.Unmarshal([]byte(b), &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// CallsFingerprint names a message's tool calls whatever their order and
// however the bot encoded their arguments (sameCalls): a hash of each
// call's id, kind, name and arguments (JSON arguments as their value).
func CallsFingerprint(calls []ExchangeCall) string {
	parts := make([]string, 0, len(calls))
	for _, c := range calls {
		args := c.Arguments
		if !c.Custom {
			if args == "" {
				args = "{}"
			}
			var v any
			if json.Unmarshal([]byte(args), &v) == nil {
				if b, err := json.Marshal(v); err == nil {
					args = string(b)
				}
			}
		}
		parts = append(parts, c.ID+"\x00"+c.Name+"\x00"+strconv.FormatBool(c.Custom)+"\x00"+args)
	}
	slices.Sort(parts)
	return fingerprint(parts...)
}

// MessageFingerprint names a message by its role, the call its result
// answers and its text (a string's, or its text parts' joined: the same
// text either way), as a bot that re-encodes its history keeps them.
func MessageFingerprint(m gjson.Result) string {
	text := m.Get("content")
	s := text.Str
	if text.IsArray() {
		s = ""
		text.ForEach(func(_, p gjson.Result) bool { s += p.Get("text").Str; return true })
	}
	return fingerprint(m.Get("role").Str, m.Get("tool_call_id").Str, s)
}

// LastMessageFingerprint is the MessageFingerprint of the last message of a
// chat request body, "" when it has none: the message before the
// assistant message the bot's next request appends.
func LastMessageFingerprint(body []byte) string {
	n := gjson.GetBytes(body, "messages.#").Int()
	if n == 0 {
		return ""
	}
	return MessageFingerprint(gjson.GetBytes(body, "messages."+strconv.FormatInt(n-1, 10)))
}

func fingerprint(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(strconv.Itoa(len(p))))
		h.Write([]byte{':'})
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
