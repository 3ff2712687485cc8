package failover

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/paygate/paygate/internal/jsonscan"
	"github.com/paygate/paygate/internal/jsonstr"
	"github.com/paygate/paygate/internal/reasoning"
	"github.com/paygate/paygate/sse"
	"github.com/tidwall/gjson"
)

// eventsBody reports whether data, a non-stream chat answer's whole body,
// opens as an event stream does ("data:", "event:", "id:", "retry:", a
// comment) rather than as a JSON object: the answer of a provider that
// ignored "stream": false. Only the first bytes are looked at, so a JSON
// answer pays nothing for it; its Content-Type is not asked, since a body
// labelled text/event-stream that is a JSON object is a chat completion
// all the same, and was always taken as one.
func eventsBody(data []byte) bool {
	i := skipSpace(data, 0)
	if bytes.HasPrefix(data[i:], utf8BOM) {
		i = skipSpace(data, i+len(utf8BOM))
	}
	if i >= len(data) || data[i] == '{' {
		return false
	}
	rest := data[i:]
	for _, field := range eventFields {
		if bytes.HasPrefix(rest, field) {
			return true
		}
	}
	return false
}

var eventFields = [][]byte{[]byte("data:"), []byte(":"), []byte("event:"), []byte("id:"), []byte("retry:")}

// streamedCompletion is the whole chat completion a non-stream request was
// answered with as chat.completion.chunk events (data, the body read
// whole, cut by readErr if not nil), assembled as the provider would have
// sent it as JSON (completionBuilder), at most limit bytes of it; or the
// failure that makes it no answer, as if a JSON body had said so: an error
// event (the error it stands for, as before the first byte of a stream),
// [DONE] or the body's end before every choice shown had its finish_reason
// (a cut answer: a tool call in it may be cut), no choice at all, three
// malformed events, or one before the finish of an answer with a tool call
// (a piece of its arguments may be lost), or a chunk that names a member
// the stream capture reads twice or in another case (jsonscan.Chunk),
// skipped as the capture skips it (but for one whose only such member is a
// usage count, read as the capture reads it: jsonscan.ChunkButCounts,
// usageCounts). A body cut (readErr) after every choice's finish is
// whole, as a stream cut so is. choices is the request's n when above 1:
// a body that ends without [DONE] must have shown each of them.
func (r *Router) streamedCompletion(a *Response, data []byte, readErr error, limit int64, choices int, goesOn NameJudge) ([]byte, *failure) {
	var b completionBuilder
	body, f := r.assembleCompletion(&b, a, data, readErr, limit, choices, goesOn)
	if n := b.twoWays[0]; n > 1 {
		r.log.WarnContext(&a.ctx, "upstream chunks naming a member two ways skipped", "provider", a.Provider, "target", a.Model, "chunks", n)
	}
	if n := b.twoWays[1]; n > 1 {
		r.log.WarnContext(&a.ctx, "upstream chunks naming a usage count two ways read with their first copies", "provider", a.Provider,
			"target", a.Model, "chunks", n)
	}
	if f != nil && f.usage == nil {
		// Refused, the answer was billed all the same: the last usage its
		// events gave counts (Attempt.Usage), as a whole completion's
		// refused as malformed does (billedUsage). Left out, an answer
		// without a finish_reason (a relay that sends none before its
		// usage chunk and [DONE]), or a usage chunk alone, was asked again
		// and only the second answer was counted.
		f.usage = b.billedUsage()
	}
	return body, f
}

// assembleCompletion is streamedCompletion's reading, into b.
func (r *Router) assembleCompletion(bp *completionBuilder, a *Response, data []byte, readErr error, limit int64, choices int, goesOn NameJudge) ([]byte, *failure) {
	rd := sse.NewReader(bytes.NewReader(data))
	defer rd.Release()
	*bp = completionBuilder{limit: limit, goesOn: goesOn}
	b := bp
	done := false
	lost := 0 // malformed or ambiguous events skipped before the answer's finish
	// gap: such an event was skipped after it; a tool call's piece after
	// that (a relay that sends finish_reason on every chunk of a call,
	// LiteLLM's Gemini) may be missing the one before it, and counts as
	// lost (gapPieces: the pieces there were at the skip).
	gap, gapPieces := false, 0
	var dup jsonscan.Dup
	from := 0 // where in data the last long event found there ended (bodyText)
read:
	for !done {
		ev, err := rd.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return nil, &failure{cause: CauseMalformed, status: http.StatusBadGateway, httpStatus: a.StatusCode,
					err: fmt.Errorf("event stream answering a non-stream request: %w", err)}
			}
			if i := objectLine(data, false); i >= 0 && len(b.choices) == 0 && a.malformed == 0 {
				// An error object written without "data:" after
				// keep-alives (bareError): the provider's reason.
				if f := r.eventWait(bareErrorIn(data[i:]), data[i:]); f != nil {
					f.httpStatus = a.StatusCode
					return nil, f
				}
				if rest := bytes.TrimSpace(data[i:]); wholeAnswer("/chat/completions", rest) {
					// A whole chat completion after keep-alive comments
					// (": PROCESSING"): the answer, as it would be after
					// keep-alive whitespace.
					return rest, nil
				} else if isJSONObject(rest) {
					// A JSON object without choices after them: no
					// chat completion, malformed as it is sent as JSON,
					// and billed as it is (billedUsage). Taken for
					// events cut before their finish, its usage was
					// left out of the spend.
					return nil, &failure{cause: CauseMalformed, status: http.StatusBadGateway, httpStatus: a.StatusCode, usage: billedUsage(rest),
						err: fmt.Errorf("%d answer of %d bytes after keep-alive comments is no chat completion (no choices)", a.StatusCode, len(rest))}
				}
			}
			if b.finished() && len(b.choices) >= choices {
				break read
			}
			if readErr != nil {
				return nil, a.failFromErr(readErr, true) // cut, as a JSON body cut is
			}
			return nil, &failure{cause: CauseConnectionLost, status: http.StatusBadGateway, httpStatus: a.StatusCode,
				err: fmt.Errorf("event stream answering a non-stream request ended before its finish_reason: %w", ErrConnectionLost)}
		}
		if ev.IsDone() {
			if !b.finished() {
				return nil, &failure{cause: CauseConnectionLost, status: http.StatusBadGateway, httpStatus: a.StatusCode,
					err: fmt.Errorf("event stream answering a non-stream request: %w", errDoneBeforeFinish)}
			}
			done = true
			continue
		}
		m, bad := a.scanMalformed(ev)
		if bad {
			if !b.finished() && mayHoldChunk(ev.Data) {
				lost++
			} else if mayHoldChunk(ev.Data) && !gap {
				gap, gapPieces = true, b.callPieces
			}
			if a.malformed >= maxMalformed {
				if b.finished() && len(b.choices) >= choices {
					break read // after the answer's finish, as in a stream (Response.skipMalformed)
				}
				return nil, &failure{cause: CauseMalformed, status: http.StatusBadGateway, httpStatus: a.StatusCode,
					err: fmt.Errorf("%d malformed events in an event stream answering a non-stream request", a.malformed)}
			}
			continue
		}
		if f := r.eventWait(eventErrorMarked(ev, m), ev.Data); f != nil {
			if b.finished() && len(b.choices) >= choices {
				// The answer had finished: an error after it (a relay's
				// hiccup) takes nothing from it, as in a stream
				// (Response.Next). Failed over, the answer was asked for,
				// and billed, again.
				r.log.WarnContext(&a.ctx, "upstream error event after the answer's finish ignored", "provider", a.Provider, "target", a.Model,
					"status", f.status, "code", f.errCode, "message", r.loggedReason(f))
				break read
			}
			f.httpStatus = a.StatusCode
			return nil, f
		}
		counts := false // a usage count named twice or in another case
		if s := unsafeString(ev.Data); jsonscan.Ambiguous(s, jsonscan.SkipSpace(s, 0), jsonscan.Chunk, &dup) {
			if jsonscan.Ambiguous(s, jsonscan.SkipSpace(s, 0), jsonscan.ChunkButCounts, nil) {
				// A member read twice or in another case: skipped, as
				// the stream capture skips such a chunk (its one
				// level), and lost as a malformed event is. Read with
				// gjson's first copy, the piece of a call's arguments a
				// second "choices" carried was dropped and the rest of
				// the call ran.
				if b.twoWays[0]++; b.twoWays[0] == 1 {
					r.log.WarnContext(&a.ctx, "upstream chunk naming a member two ways skipped", "provider", a.Provider, "target", a.Model,
						"member", dup.String())
				}
				if !b.finished() {
					lost++
				} else if !gap {
					gap, gapPieces = true, b.callPieces
				}
				continue
			}
			// Only a usage count: read, as the capture reads such a
			// chunk (its text, call pieces and finish often ride with
			// the usage), the usage as its counts' first copies
			// (usageCounts). Skipped, the finish it carried went with
			// it: an answer with a tool call was asked again, billed
			// twice, and a text answer lost its last piece.
			if b.twoWays[1]++; b.twoWays[1] == 1 {
				r.log.WarnContext(&a.ctx, "upstream chunk naming a usage count two ways read with its first copy", "provider", a.Provider,
					"target", a.Model, "member", dup.String())
			}
			counts = true
		}
		if err := b.add(bodyText(data, &from, ev.Data), counts); err != nil {
			return nil, &failure{cause: CauseResponseTooLarge, status: http.StatusBadGateway, httpStatus: a.StatusCode, err: err}
		}
	}
	if gap && b.callPieces > gapPieces {
		lost++
	}
	if lost > 0 && (b.hasCalls() || b.saysCalls()) {
		// A skipped event may have held a piece of a tool call's
		// arguments, and what is left can still be valid arguments the
		// model did not make ({"sku":"a"} without its lost
		// `,"quantity":2`): no answer, as events cut before their finish
		// are none, so that no payment call runs on them.
		return nil, &failure{cause: CauseMalformed, status: http.StatusBadGateway, httpStatus: a.StatusCode,
			err: fmt.Errorf("event stream answering a non-stream request: %d events skipped unread in an answer with tool calls", lost)}
	}
	body, err := b.build()
	if err != nil {
		f := &failure{cause: CauseMalformed, status: http.StatusBadGateway, httpStatus: a.StatusCode, err: err}
		if errors.Is(err, errBodyTooLarge) {
			f.cause = CauseResponseTooLarge
		}
		return nil, f
	}
	return body, nil
}

// bodyText is an event's data as a string the builder may keep: a copy, or
// for a long event (an image model's picture, tens of MiB in one line) the
// same bytes in data, the body the events were read from, which outlives
// the builder and is not written to; from is where the last one found
// ended, the next searched after it. A copy of such an event held the
// picture once more while the answer was assembled. Only an event of one
// line (no "\n" in its data) is looked for: it is in data as it is, found
// at its place or before, so that the searches take time in the body's
// length, not in its square.
func bodyText(data []byte, from *int, ev []byte) string {
	if len(ev) > longEvent && bytes.IndexByte(ev, '\n') < 0 {
		if i := bytes.Index(data[*from:], ev); i >= 0 {
			i += *from
			*from = i + len(ev)
			return unsafeString(data[i:*from])
		}
	}
	return string(ev)
}

// longEvent is the least an event's data takes to be found in the body
// rather than copied (bodyText).
const longEvent = 64 << 10

// completionBuilder assembles chat.completion.chunk events into the chat
// completion they stream: the first id, created, model, system_fingerprint
// and service_tier given; each choice by its index, its role, its content,
// refusal, reasoning and reasoning_content concatenated, its tool calls
// merged by index (id, type and name from the fragment that gives them
// first, arguments concatenated), a legacy function_call likewise, its
// images and annotations each delta's entries after the last's, its audio
// (builtAudio), its finish_reason and its logprobs' content and refusal tokens
// concatenated; the last usage given. size counts the bytes taken in, and
// for each choice and tool call the least its JSON takes, at most limit.
// Choices and calls are found by map, not by search: a body of a provider
// (or a relay) that shows a new choice or call index in every few bytes
// took time in the square of their count, hours for the 32 MiB a body may
// have, and memory many times the body's, a request's goroutine held.
type completionBuilder struct {
	id, model, fingerprint, tier, created string // raw JSON values
	usage                                 string
	// choiceUsage is usage streamed inside a choice (Moonshot's Kimi puts
	// it in its finish chunk's choices[0].usage), taken when no top-level
	// usage comes, as the stream capture reads it.
	choiceUsage string
	choices     []*builtChoice
	byIndex     map[int64]*builtChoice
	open        int // choices without their finish_reason yet
	limit, size int64
	// goesOn is Request.Names: whether a name is the next piece of a
	// call's (nameGoesOn); nil, any other name before its arguments.
	goesOn NameJudge
	// callPieces counts the tool call (and function_call) fragments
	// added: streamedCompletion asks whether one came after an event
	// skipped after the finish.
	callPieces int
	// twoWays counts the chunks naming a member two ways, [0] skipped and
	// [1] read with a usage count's first copy: the first of each is
	// logged as it comes, and their count once the answer is read
	// (streamedCompletion), where a line per chunk wrote 1,000 lines
	// (249 KB) for one answer of 1,000 such chunks.
	twoWays [2]int
}

// At most the least JSON a choice and a tool call of the completion take:
// {"index":0,"message":{"role":"assistant","content":null},"finish_reason":null}
// and {"id":"","type":"custom","custom":{"name":"","input":""}}.
const minChoiceBytes, minCallBytes = 78, 48

type builtChoice struct {
	index                                   int64
	role                                    string
	content, refusal, reasoning, reasonings fragText
	has                                     [4]bool // content, refusal, reasoning, reasoning_content given
	calls                                   []*builtCall
	byIdx                                   map[int64]*builtCall  // the latest call with that index
	byID                                    map[string]*builtCall // the latest call with that id
	function                                *builtCall
	finish                                  string // raw JSON; "" none yet
	lpContent, lpRefusal                    []json.RawMessage
	lpHas                                   [2]bool
	details                                 reasoning.Details // reasoning_details blocks, merged
	parts                                   []builtPart       // the content's parts, when it came as parts
	partsFrom                               int               // how much of content the parts hold as text
	// lists are the entries of each delta's "images" (an image model's
	// pictures: OpenRouter's message.images) and "annotations" (a search
	// model's url_citation: OpenAI's message.annotations), raw, in the
	// order they came; listHas says one was given, if empty.
	lists   [2][]string
	listHas [2]bool
	audio   *builtAudio // the deltas' "audio", merged; nil when none came
}

// builtAudio is an audio model's spoken answer (gpt-4o-audio-preview's
// message.audio) merged from its deltas: the id of the first that gives
// one, the base64 data and the transcript concatenated, the expiry (raw
// JSON) of the last that gives one, which OpenAI sends last, alone.
type builtAudio struct {
	id               string
	data, transcript fragText
	expires          string
}

// addAudio merges a delta's "audio" object.
func (c *builtChoice) addAudio(v gjson.Result) {
	if c.audio == nil {
		c.audio = &builtAudio{}
	}
	a := c.audio
	if id := v.Get("id"); id.Type == gjson.String && a.id == "" {
		a.id = id.Str
	}
	if d := v.Get("data"); d.Type == gjson.String {
		a.data.add(d)
	}
	if t := v.Get("transcript"); t.Type == gjson.String {
		a.transcript.add(t)
	}
	if e := v.Get("expires_at"); e.Type == gjson.Number {
		a.expires = e.Raw
	}
}

// builtPart is a merged content part: a "text" or "thinking" part's text,
// or any other part raw.
type builtPart struct {
	typ  string // "text", "thinking", or "" for a part kept raw
	text strings.Builder
	raw  string
}

// addParts merges a delta's content given as parts (a JSON array), as the
// stream capture does (interceptors' partsMerger): Mistral's reasoning
// models stream their thinking as [{"type":"thinking","thinking":
// [{"type":"text","text":…}]}] and their words as text parts, a piece per
// delta, and a JSON answer carries the message's content as those parts.
// A part continuing the last part of its type extends it; text that came
// as strings takes its place among them as text. Taken as strings only, the
// answer's content was null: its text lost to the bot, its thinking to the
// next round.
func (c *builtChoice) addParts(v gjson.Result) {
	c.partsText()
	v.ForEach(func(_, el gjson.Result) bool {
		switch el.Get("type").Str {
		case "text":
			if t := el.Get("text"); t.Type == gjson.String {
				c.extendPart("text", t.Str)
				return true
			}
		case "thinking":
			if th := el.Get("thinking"); th.IsArray() {
				var sb strings.Builder
				th.ForEach(func(_, in gjson.Result) bool {
					if t := in.Get("text"); t.Type == gjson.String {
						sb.WriteString(t.Str)
					}
					return true
				})
				c.extendPart("thinking", sb.String())
				return true
			}
		}
		c.parts = append(c.parts, builtPart{raw: el.Raw})
		return true
	})
}

// partsText adds the text that came as strings since the parts last took
// it, as text.
func (c *builtChoice) partsText() {
	if s := c.content.String(); len(s) > c.partsFrom {
		c.extendPart("text", s[c.partsFrom:])
		c.partsFrom = len(s)
	}
}

func (c *builtChoice) extendPart(typ, text string) {
	if n := len(c.parts); n > 0 && c.parts[n-1].typ == typ {
		c.parts[n-1].text.WriteString(text)
		return
	}
	c.parts = append(c.parts, builtPart{typ: typ})
	c.parts[len(c.parts)-1].text.WriteString(text)
}

// partsJSON renders the content's parts, its text to its end included.
func (c *builtChoice) partsJSON() json.RawMessage {
	c.partsText()
	out := []byte{'['}
	for i := range c.parts {
		p := &c.parts[i]
		if i > 0 {
			out = append(out, ',')
		}
		switch p.typ {
		case "text":
			out = jsonstr.Append(append(out, `{"type":"text","text":`...), p.text.String())
			out = append(out, '}')
		case "thinking":
			out = jsonstr.Append(append(out, `{"type":"thinking","thinking":[{"type":"text","text":`...), p.text.String())
			out = append(out, "}]}"...)
		default:
			out = append(out, p.raw...)
		}
	}
	return append(out, ']')
}

type builtCall struct {
	seq            int // its position in the choice's calls as they came
	index          int64
	hasIdx         bool
	id, typ, name  string
	args           fragText
	hasID, hasName bool
	custom         bool // named in "custom" (a custom tool's call), its text in "input"
	// twice: a fragment named the call twice, or gave a named call's
	// text as the other kind (readCallPart, addCall): it is rendered
	// without a name, which the turn refuses, as the stream capture
	// refuses such a call.
	twice bool
	// extraKeys and extraVals are the call's other members (raw JSON
	// key and value; a later fragment's value replaces an earlier one's).
	extraKeys []string
	extraVals []string
	extraAt   map[string]int // an extra member's position by its raw key
}

func (b *completionBuilder) take(n int) error {
	b.size += int64(n)
	if b.size > b.limit {
		return fmt.Errorf("%w: an event stream answering a non-stream request assembles to over %d bytes", errBodyTooLarge, b.limit)
	}
	return nil
}

func firstRaw(dst *string, v gjson.Result) {
	if *dst == "" && v.Exists() && v.Type != gjson.Null {
		*dst = v.Raw
	}
}

// add takes in the chunk data, which the builder keeps substrings of.
// counts: the chunk names a usage count twice or in another case (and
// nothing else the capture reads so): a usage object that does is taken as
// its counts (usageCounts).
func (b *completionBuilder) add(data string, counts bool) error {
	ev := gjson.Parse(data)
	firstRaw(&b.id, ev.Get("id"))
	firstRaw(&b.created, ev.Get("created"))
	if m := ev.Get("model"); m.Type == gjson.String && m.Str != "" {
		firstRaw(&b.model, m)
	}
	firstRaw(&b.fingerprint, ev.Get("system_fingerprint"))
	firstRaw(&b.tier, ev.Get("service_tier"))
	for _, u := range [...]struct {
		v   gjson.Result
		dst *string
	}{{ev.Get("usage"), &b.usage}, {ev.Get("choices.0.usage"), &b.choiceUsage}} {
		if !u.v.IsObject() {
			continue
		}
		raw := u.v.Raw
		if counts && jsonscan.Ambiguous(raw, 0, jsonscan.UsageCounts, nil) {
			raw = usageCounts(u.v, jsonscan.UsageCounts)
		}
		if err := b.take(len(raw) - len(*u.dst)); err != nil {
			return err
		}
		*u.dst = raw
	}
	var err error
	ev.Get("choices").ForEach(func(_, ch gjson.Result) bool {
		err = b.addChoice(ch)
		return err == nil
	})
	return err
}

// usageCounts is the usage object u, one that names a count twice or in
// another case, as its counts (lv, jsonscan.UsageCounts): each in its
// first exactly named copy, in the order they came, the prompt tokens'
// details with their cached tokens alone, and nothing else; as the stream
// capture reads such a chunk and hands the bot its usage (the counts
// paygate read, written by paygate). The ledger reads the completion's
// usage as the capture reads the provider's (the first copy of each
// count, the exact name only), and the bot's parser, which takes the last
// copy and Go's any case, reads the same, each named once. Sent as it came,
// the ledger priced the first copy and the bot read the last.
func usageCounts(u gjson.Result, lv *jsonscan.Level) string {
	out := []byte{'{'}
	var seen uint64
	u.ForEach(func(k, v gjson.Result) bool {
		j := slices.IndexFunc(lv.Fields, func(f jsonscan.Field) bool { return f.Name == k.Str })
		if j < 0 || seen&(1<<j) != 0 {
			return true
		}
		seen |= 1 << j
		val := v.Raw
		if f := &lv.Fields[j]; f.Below != nil {
			if !v.IsObject() {
				return true
			}
			if val = usageCounts(v, f.Below); val == "{}" {
				return true
			}
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(jsonstr.Append(out, k.Str), ':')
		out = append(out, val...)
		return true
	})
	return string(append(out, '}'))
}

func (b *completionBuilder) choice(index int64) (*builtChoice, error) {
	if c := b.byIndex[index]; c != nil {
		return c, nil
	}
	if err := b.take(minChoiceBytes); err != nil {
		return nil, err
	}
	c := &builtChoice{index: index}
	if b.byIndex == nil {
		b.byIndex = make(map[int64]*builtChoice)
	}
	b.byIndex[index] = c
	b.choices = append(b.choices, c)
	b.open++
	return c, nil
}

func (b *completionBuilder) addChoice(ch gjson.Result) error {
	if !ch.IsObject() {
		return nil
	}
	c, err := b.choice(ch.Get("index").Int())
	if err != nil {
		return err
	}
	d := ch.Get("delta")
	if !d.IsObject() {
		d = ch.Get("message") // a server that sends whole messages as chunks
	}
	if r := d.Get("role"); r.Type == gjson.String && c.role == "" {
		c.role = r.Str
	}
	if v := d.Get("content"); v.IsArray() {
		if err := b.take(len(v.Raw)); err != nil {
			return err
		}
		c.addParts(v)
	}
	for i, key := range listKeys {
		v := d.Get(key)
		if !v.IsArray() {
			continue
		}
		if err := b.take(len(v.Raw)); err != nil {
			return err
		}
		c.listHas[i] = true
		v.ForEach(func(_, el gjson.Result) bool {
			c.lists[i] = append(c.lists[i], el.Raw)
			return true
		})
	}
	if v := d.Get("audio"); v.IsObject() {
		if err := b.take(len(v.Raw)); err != nil {
			return err
		}
		c.addAudio(v)
	}
	if v := d.Get("reasoning_details"); v.IsArray() {
		if err := b.take(len(v.Raw)); err != nil {
			return err
		}
		c.details.Add(v.Raw)
	}
	for i, key := range [...]string{"content", "refusal", "reasoning", "reasoning_content"} {
		v := d.Get(key)
		if v.Type != gjson.String {
			continue
		}
		if err := b.take(len(v.Str)); err != nil {
			return err
		}
		c.has[i] = true
		[...]*fragText{&c.content, &c.refusal, &c.reasoning, &c.reasonings}[i].add(v)
	}
	d.Get("tool_calls").ForEach(func(_, tc gjson.Result) bool {
		n := len(c.calls)
		call := c.callFor(tc, b.goesOn)
		if len(c.calls) > n {
			if err = b.take(minCallBytes); err != nil {
				return false
			}
		}
		err = b.addCall(call, tc, true)
		c.noteID(call)
		return err == nil
	})
	if err != nil {
		return err
	}
	if fc := d.Get("function_call"); fc.IsObject() {
		if c.function == nil {
			c.function = &builtCall{}
		}
		if err := b.addCall(c.function, fc, false); err != nil {
			return err
		}
	}
	if fr := ch.Get("finish_reason"); fr.Type == gjson.String && fr.Str != "" {
		if c.finish == "" {
			b.open--
		}
		c.finish = fr.Raw
	}
	if lp := ch.Get("logprobs"); lp.Exists() {
		for i, key := range [...]string{"content", "refusal"} {
			v := lp.Get(key)
			if !v.IsArray() {
				continue
			}
			c.lpHas[i] = true
			for _, tok := range v.Array() {
				if err := b.take(len(tok.Raw)); err != nil {
					return err
				}
				if i == 0 {
					c.lpContent = append(c.lpContent, json.RawMessage(tok.Raw))
				} else {
					c.lpRefusal = append(c.lpRefusal, json.RawMessage(tok.Raw))
				}
			}
		}
	}
	return nil
}

// listKeys name a delta's arrays whose entries the message collects
// (builtChoice.lists).
var listKeys = [...]string{"images", "annotations"}

// listSplices are the choices' collected entries (builtChoice.lists),
// each list written as one JSON array into the encoded completion where
// encoding/json wrote its marker (add), compacted as encoding/json compacts
// a json.RawMessage. Given to encoding/json as one, an image model's
// picture was copied four times (joined, bracketed, compacted, written
// out) and kept in its pool of buffers for a couple of collections.
type listSplices struct {
	nonce string // unguessable, so that no value a provider sent is a marker
	lists [][]string
	size  int // the entries' bytes, with their commas and brackets
}

// add is the marker to encode for a list of entries; nil when none was
// given.
func (l *listSplices) add(has bool, entries []string) json.RawMessage {
	if !has {
		return nil
	}
	if l.nonce == "" {
		l.nonce = rand.Text()
	}
	l.size += len(entries) + 1
	for _, e := range entries {
		l.size += len(e)
	}
	l.lists = append(l.lists, entries)
	return l.marker(len(l.lists) - 1)
}

func (l *listSplices) marker(i int) json.RawMessage {
	return json.RawMessage(`"` + l.nonce + "-" + strconv.Itoa(i) + `"`)
}

// splice is out, the encoded completion, with each list in its marker's
// place, in one allocation.
func (l *listSplices) splice(out []byte) ([]byte, error) {
	if len(l.lists) == 0 {
		return out, nil
	}
	dst := bytes.NewBuffer(make([]byte, 0, len(out)+l.size))
	for i, entries := range l.lists {
		m := l.marker(i)
		at := bytes.Index(out, m)
		if at < 0 {
			return nil, errors.New("a list's place not found") // never: encoding/json writes a marker as it is
		}
		dst.Write(out[:at])
		dst.WriteByte('[')
		for j, e := range entries {
			if j > 0 {
				dst.WriteByte(',')
			}
			if err := json.Compact(dst, unsafe.Slice(unsafe.StringData(e), len(e))); err != nil {
				return nil, err
			}
		}
		dst.WriteByte(']')
		out = out[at+len(m):]
	}
	dst.Write(out)
	return dst.Bytes(), nil
}

// callFor is the call a tool call's fragment belongs to, found as the
// stream's capture finds it (interceptors' slotFor), so that a call is
// the same one whichever way the provider sent it: by its index, unless
// the fragment names another call there (another id, or another name
// that is no next piece of the call's: a new call under a reused index);
// without an index, by its id; without either, the last call, unless it
// names a new one. Merged by position in its chunk alone, two whole calls
// a provider sent without indexes, each in its own chunk, became one with
// both arguments run together.
func (c *builtChoice) callFor(tc gjson.Result, goesOn NameJudge) *builtCall {
	p := readCallPart(tc)
	id, name := p.id, p.name
	names := name != "" || p.twice
	fresh := func(hasIdx bool) *builtCall {
		call := &builtCall{seq: len(c.calls), index: p.index, hasIdx: hasIdx}
		c.calls = append(c.calls, call)
		if hasIdx {
			if c.byIdx == nil {
				c.byIdx = make(map[int64]*builtCall)
			}
			c.byIdx[call.index] = call
		}
		return call
	}
	switch {
	case p.hasIndex:
		x := c.byIdx[p.index]
		if x == nil || names && (id != "" && x.id != "" && id != x.id || x.name != "" && name != x.name && !x.nameGoesOn(p, goesOn)) {
			return fresh(true)
		}
		return x
	case id != "":
		x := c.byID[id]
		if x == nil || names && x.name != "" && name != x.name && !x.nameGoesOn(p, goesOn) {
			return fresh(false)
		}
		return x
	case !names && len(c.calls) > 0:
		return c.calls[len(c.calls)-1]
	}
	return fresh(false)
}

// nameGoesOn reports whether the fragment p, which names a call other
// than call's name, gives the next piece of call's name: a provider that
// streams a name in pieces ("create_", then "order") sends them under
// the call's index (or id) before its arguments, and the stream capture
// (interceptors' continuesName) and the OpenAI SDKs' accumulators join
// them. Taken for a call of its own, each piece was one: create_order
// became "create_" and "order", and the payment call never ran; the
// bot's get_weather came to it as "get_" and "weather". Once arguments
// came, another name under the index is another call, as in the capture.
// goesOn (Request.Names) tells, as the capture does by the tool
// names failover does not know, a piece from another call's whole name (a
// provider that gives every call index 0 and no id: the bot's get_time
// without arguments, then create_order), which joined to it never ran.
func (call *builtCall) nameGoesOn(p callPart, goesOn NameJudge) bool {
	return p.name != "" && !call.twice && p.custom == call.custom && call.args.Len() == 0 && call.args.high == "" &&
		(goesOn == nil || goesOn.NameGoesOn(call.name, p.name))
}

// noteID keeps call as the latest with its id, for callFor.
func (c *builtChoice) noteID(call *builtCall) {
	if call.id == "" {
		return
	}
	if x := c.byID[call.id]; x == nil || x.seq < call.seq {
		if c.byID == nil {
			c.byID = make(map[string]*builtCall)
		}
		c.byID[call.id] = call
	}
}

// callPart is what a tool call's fragment says of the call's name and
// text, read as the stream capture reads an entry (interceptors'
// parseEntry) and a JSON answer's parser a call (proxy's callName).
type callPart struct {
	fn       gjson.Result // "function" or "custom", an object; absent if neither
	custom   bool         // fn is "custom": a custom tool's call
	name     string       // "" when twice
	twice    bool         // named twice: see readCallPart
	text     gjson.Result // the text: a string, or a JSON value; absent if none
	id       string
	index    int64
	hasIndex bool
}

// readCallPart reads a tool call's fragment: its name and text only in
// "function" (text in "arguments") or "custom" (a custom tool's call, text
// in "input"), never at the fragment's top; and twice when it has two such
// members or two names in one, also spelled in another case. Parsers keep
// different copies (gjson the first, most the last), and the capture and a
// JSON answer's parser refuse such a call as a payment call without a name:
// read here with gjson's copy, or a name at the top, the assembled answer
// carried a clean payment call that ran where a stream or a JSON answer of
// the same call ran nothing. A member a fragment repeats (its index, id,
// or text) is read as the capture reads it, the last copy (of an index,
// the last that is an integer): read with gjson's first copy, a payment
// call ran with other arguments than the capture's, or took fragments of
// another call.
func readCallPart(tc gjson.Result) callPart {
	var p callPart
	functions, names := 0, 0
	var members jsonscan.CallNames
	tc.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "index":
			if n, err := strconv.Atoi(v.Raw); err == nil {
				p.index, p.hasIndex = int64(n), true
			}
			return true
		case "id":
			p.id = ""
			if v.Type == gjson.String {
				p.id = v.Str
			}
			return true
		}
		if !strings.EqualFold(k.Str, "function") && !strings.EqualFold(k.Str, "custom") {
			return true
		}
		if members.Null(k.Str, v.Raw) {
			return true // names nothing (jsonscan.CallNames)
		}
		if v.IsObject() {
			members.Object(k.Str)
		}
		functions++
		if k.Str != "function" && k.Str != "custom" || !v.IsObject() {
			return true
		}
		p.fn, p.custom = v, k.Str == "custom"
		textKey := "arguments"
		if p.custom {
			textKey = "input"
		}
		v.ForEach(func(fk, fv gjson.Result) bool {
			if fk.Str == textKey && (fv.Type == gjson.String || fv.IsObject() || fv.IsArray()) {
				p.text = fv
			}
			if strings.EqualFold(fk.Str, "name") {
				names++
				if fk.Str == "name" {
					p.name = fv.Str
				}
			}
			return true
		})
		return true
	})
	if functions > 1 || names > 1 || members.Clash() {
		p.twice, p.name = true, ""
	}
	return p
}

// addCall merges a tool call's (or, tool false, a function_call's)
// fragment. A custom tool's call stays one (its name and input in
// "custom"), and a tool call's other members (Gemini's thought signature
// in extra_content) stay on it, as the stream capture relays them and a
// JSON answer has them: assembled as a function call with neither, the
// bot's custom call came as a call without a name, refused as one, and
// Gemini refused the next round, whose assistant message had lost the
// signature.
func (b *completionBuilder) addCall(call *builtCall, tc gjson.Result, tool bool) error {
	b.callPieces++
	var p callPart
	if tool {
		p = readCallPart(tc)
	} else if id := tc.Get("id"); id.Type == gjson.String {
		p.id = id.Str
	}
	if p.id != "" && !call.hasID {
		call.id, call.hasID = p.id, true
	}
	if t := tc.Get("type"); t.Type == gjson.String && t.Str != "" && call.typ == "" {
		call.typ = t.Str
	}
	var a gjson.Result
	if tool {
		a = p.text
		if p.twice || call.hasName && p.fn.Exists() && p.custom != call.custom {
			// Named twice, or a named call's text given as the other
			// kind (a function's as a custom call's input, or the other
			// way round): refused, as the capture refuses such a
			// payment call, where appended it ran with text the call's
			// kind never had.
			call.twice = true
		}
		switch {
		case p.name == "" || call.twice:
		case !call.hasName:
			call.name, call.hasName, call.custom = p.name, true, p.custom
		case p.name != call.name && call.nameGoesOn(p, b.goesOn):
			// The next piece of a name streamed in pieces (callFor); the
			// name again, whole (Qwen repeats it), is the same name.
			if err := b.take(len(p.name)); err != nil {
				return err
			}
			call.name += p.name
		}
	} else {
		// A legacy function_call: its name and arguments in "function"
		// or at its top.
		fn := tc.Get("function")
		if !fn.IsObject() {
			fn = tc
		}
		a = fn.Get("arguments")
		// A name in pieces ("create_", then "order") is joined, as the
		// stream capture and a bot's SDK join it; a name said again
		// whole in a later delta is the same name. Kept as its first
		// piece, create_order reached the bot as a call of "create_".
		if n := fn.Get("name"); n.Type == gjson.String && n.Str != "" && n.Str != call.name {
			if err := b.take(len(n.Str)); err != nil {
				return err
			}
			call.name, call.hasName = call.name+n.Str, true
		}
	}
	if tool {
		var err error
		tc.ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "index", "id", "type", "function", "custom":
				return true
			}
			if v.Type == gjson.Null {
				return true
			}
			if err = b.take(len(k.Raw) + len(v.Raw)); err != nil {
				return false
			}
			if i, ok := call.extraAt[k.Raw]; ok {
				call.extraVals[i] = v.Raw
			} else {
				if call.extraAt == nil {
					call.extraAt = make(map[string]int)
				}
				call.extraAt[k.Raw] = len(call.extraKeys)
				call.extraKeys, call.extraVals = append(call.extraKeys, k.Raw), append(call.extraVals, v.Raw)
			}
			return true
		})
		if err != nil {
			return err
		}
	}
	text := a.Str
	switch {
	case a.IsObject() || a.IsArray():
		// Arguments sent as a JSON value, not a string (some providers
		// do): their text, as the stream capture and a JSON answer's
		// parser (proxy's arguments) read them. Taken as strings only,
		// a payment call ran with none and the bot's call lost its own.
		text = a.Raw
	case a.Type != gjson.String:
		return nil
	}
	if err := b.take(len(text) + len(call.id) + len(call.name)); err != nil {
		return err
	}
	if a.Type == gjson.String {
		call.args.add(a)
	} else {
		call.args.WriteString(text)
	}
	return nil
}

// fragText is text streamed as JSON string fragments, joined as the stream
// capture joins them (interceptors' decodeRaw, of the fragments'
// concatenation): a UTF-16 surrogate pair a provider wrote as \u escapes
// split between two fragments is one character. Decoded each on its own,
// each half was U+FFFD, and the bot's tool arguments (a city's name) and
// the model's words reached it corrupted.
type fragText struct {
	strings.Builder
	high string // a fragment's trailing escaped high surrogate, undecoded
}

// add appends a JSON string fragment, all of it but a trailing escaped high
// surrogate, which waits for the next fragment's start.
func (t *fragText) add(v gjson.Result) {
	raw := v.Raw[1 : len(v.Raw)-1]
	if t.high != "" {
		raw, t.high = t.high+raw, ""
	}
	if n := len(raw); n >= 6 && raw[n-6] == '\\' && raw[n-5] == 'u' {
		if h, err := strconv.ParseUint(raw[n-4:], 16, 16); err == nil && h >= 0xD800 && h <= 0xDBFF {
			bs := 0
			for i := n - 6; i >= 0 && raw[i] == '\\'; i-- {
				bs++
			}
			if bs%2 == 1 {
				raw, t.high = raw[:n-6], raw[n-6:]
			}
		}
	}
	if strings.IndexByte(raw, '\\') < 0 {
		t.WriteString(raw)
		return
	}
	t.WriteString(gjson.Parse(`"` + raw + `"`).Str)
}

// String is the text so far; a high surrogate still waiting for its pair is
// given up (U+FFFD, as decoded alone).
func (t *fragText) String() string {
	if t.high != "" {
		t.WriteString(gjson.Parse(`"` + t.high + `"`).Str)
		t.high = ""
	}
	return t.Builder.String()
}

// finished reports whether every choice shown has its finish_reason, one
// at least shown.
func (b *completionBuilder) finished() bool {
	return len(b.choices) > 0 && b.open == 0
}

// hasCalls reports whether a choice has a tool call or a legacy
// function_call.
func (b *completionBuilder) hasCalls() bool {
	for _, c := range b.choices {
		if len(c.calls) > 0 || c.function != nil {
			return true
		}
	}
	return false
}

// saysCalls reports whether a choice's finish_reason says it made tool
// calls ("tool_calls", or the legacy "function_call"): with an event
// skipped before it and no call read, the call was in what was skipped (a
// chunk naming its arguments twice holds a whole call), and the answer
// assembled without it is a finish of calls with none, which the bot's SDK
// waits on for a call that never comes.
func (b *completionBuilder) saysCalls() bool {
	for _, c := range b.choices {
		if c.finish == `"tool_calls"` || c.finish == `"function_call"` {
			return true
		}
	}
	return false
}

// The completion's shape, its members in OpenAI's order.
type (
	assembledCompletion struct {
		ID          json.RawMessage   `json:"id,omitempty"`
		Object      string            `json:"object"`
		Created     json.RawMessage   `json:"created,omitempty"`
		Model       json.RawMessage   `json:"model,omitempty"`
		Choices     []assembledChoice `json:"choices"`
		Usage       json.RawMessage   `json:"usage,omitempty"`
		Fingerprint json.RawMessage   `json:"system_fingerprint,omitempty"`
		Tier        json.RawMessage   `json:"service_tier,omitempty"`
	}
	assembledChoice struct {
		Index        int64              `json:"index"`
		Message      assembledMessage   `json:"message"`
		Logprobs     *assembledLogprobs `json:"logprobs,omitempty"`
		FinishReason json.RawMessage    `json:"finish_reason"`
	}
	assembledMessage struct {
		Role             string             `json:"role"`
		Content          any                `json:"content"` // nil, *string, or its parts' json.RawMessage
		Refusal          *string            `json:"refusal,omitempty"`
		Annotations      json.RawMessage    `json:"annotations,omitempty"`
		Audio            *assembledAudio    `json:"audio,omitempty"`
		Reasoning        *string            `json:"reasoning,omitempty"`
		ReasoningContent *string            `json:"reasoning_content,omitempty"`
		ReasoningDetails json.RawMessage    `json:"reasoning_details,omitempty"`
		Images           json.RawMessage    `json:"images,omitempty"`
		ToolCalls        []json.RawMessage  `json:"tool_calls,omitempty"`
		FunctionCall     *assembledFunction `json:"function_call,omitempty"`
	}
	assembledAudio struct {
		ID         string          `json:"id"`
		Data       string          `json:"data"`
		ExpiresAt  json.RawMessage `json:"expires_at,omitempty"`
		Transcript string          `json:"transcript"`
	}
	assembledToolCall struct {
		ID       string             `json:"id"`
		Type     string             `json:"type"`
		Function *assembledFunction `json:"function,omitempty"`
		Custom   *assembledCustom   `json:"custom,omitempty"`
	}
	assembledCustom struct {
		Name  string `json:"name"`
		Input string `json:"input"`
	}
	assembledFunction struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	}
	assembledLogprobs struct {
		Content []json.RawMessage `json:"content"`
		Refusal []json.RawMessage `json:"refusal,omitempty"`
	}
)

// billedUsage is the usage the events gave (the top-level one, else the
// choice's), as its counts (usageCounts); nil without one or any count.
func (b *completionBuilder) billedUsage() []byte {
	u := b.usage
	if u == "" {
		u = b.choiceUsage
	}
	if u == "" {
		return nil
	}
	if c := usageCounts(gjson.Parse(u), jsonscan.UsageCounts); c != "{}" {
		return []byte(c)
	}
	return nil
}

// build is the completion, choices and tool calls in index order, at most
// limit bytes of JSON.
func (b *completionBuilder) build() ([]byte, error) {
	if len(b.choices) == 0 {
		return nil, errors.New("event stream answering a non-stream request has no choice")
	}
	usage := b.usage
	if usage == "" {
		usage = b.choiceUsage
	}
	var lists listSplices
	w := assembledCompletion{ID: raw(b.id), Object: "chat.completion", Created: raw(b.created), Model: raw(b.model),
		Usage: raw(usage), Fingerprint: raw(b.fingerprint), Tier: raw(b.tier)}
	slices.SortStableFunc(b.choices, func(x, y *builtChoice) int { return cmp.Compare(x.index, y.index) })
	for _, c := range b.choices {
		m := assembledMessage{Role: c.role}
		if m.Role == "" {
			m.Role = "assistant"
		}
		var content *string
		for i, dst := range [...]**string{&content, &m.Refusal, &m.Reasoning, &m.ReasoningContent} {
			if c.has[i] {
				s := [...]*fragText{&c.content, &c.refusal, &c.reasoning, &c.reasonings}[i].String()
				*dst = &s
			}
		}
		m.ReasoningDetails = c.details.JSON()
		m.Annotations = lists.add(c.listHas[1], c.lists[1]) // in the order they are written
		m.Images = lists.add(c.listHas[0], c.lists[0])
		if a := c.audio; a != nil {
			m.Audio = &assembledAudio{ID: a.id, Data: a.data.String(), ExpiresAt: raw(a.expires), Transcript: a.transcript.String()}
		}
		switch {
		case len(c.parts) > 0:
			m.Content = c.partsJSON()
		case content != nil:
			m.Content = content
		}
		if !slices.ContainsFunc(c.calls, func(x *builtCall) bool { return !x.hasIdx }) {
			// By index, as the provider numbered them; else where they came.
			slices.SortStableFunc(c.calls, func(x, y *builtCall) int { return cmp.Compare(x.index, y.index) })
		}
		for _, tc := range c.calls {
			call, err := tc.render()
			if err != nil {
				return nil, err
			}
			m.ToolCalls = append(m.ToolCalls, call)
		}
		if c.function != nil {
			m.FunctionCall = &assembledFunction{Name: c.function.name, Arguments: c.function.args.String()}
		}
		wc := assembledChoice{Index: c.index, Message: m, FinishReason: raw(c.finish)}
		if wc.FinishReason == nil {
			wc.FinishReason = json.RawMessage("null")
		}
		if c.lpHas[0] || c.lpHas[1] {
			wc.Logprobs = &assembledLogprobs{Content: c.lpContent, Refusal: c.lpRefusal}
		}
		w.Choices = append(w.Choices, wc)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, fmt.Errorf("assembling the chat completion of an event stream: %w", err)
	}
	out, err := lists.splice(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	if err != nil {
		return nil, fmt.Errorf("assembling the chat completion of an event stream: %w", err)
	}
	if int64(len(out)) > b.limit {
		return nil, fmt.Errorf("%w: an event stream answering a non-stream request assembles to %d bytes, over %d",
			errBodyTooLarge, len(out), b.limit)
	}
	return out, nil
}

// render is the tool call as a JSON answer has it: a function's call, or a
// custom tool's, then its other members.
func (tc *builtCall) render() (json.RawMessage, error) {
	v := assembledToolCall{ID: tc.id, Type: tc.typ}
	name := tc.name
	if tc.twice {
		name = "" // refused, as the capture refuses it
	}
	if tc.custom {
		v.Custom = &assembledCustom{Name: name, Input: tc.args.String()}
		if v.Type == "" {
			v.Type = "custom"
		}
	} else {
		v.Function = &assembledFunction{Name: name, Arguments: tc.args.String()}
		if v.Type == "" {
			v.Type = "function"
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("assembling a tool call of an event stream: %w", err)
	}
	out := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(tc.extraKeys) == 0 {
		return out, nil
	}
	out = out[:len(out)-1] // its closing brace
	for i, k := range tc.extraKeys {
		out = append(append(append(append(out, ','), k...), ':'), tc.extraVals[i]...)
	}
	return append(out, '}'), nil
}

func raw(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}
