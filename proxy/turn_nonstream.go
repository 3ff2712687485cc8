package proxy

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/paygate/paygate/interceptors"
	"github.com/paygate/paygate/internal/jsonscan"
	"github.com/paygate/paygate/internal/jsonstr"
)

// nonStream runs the rounds of a non-streaming turn. Nothing reaches the
// client until the last round answered, so the answer is one
// chat.completion: the last round's, with the turn's first id, the summed
// usage and the paygate extension.
func (t *turn) nonStream() {
	// spoken is the text of the payment rounds before this one: a streaming
	// client reads every round's text, so the one answer carries it too;
	// thought is their reasoning, for the same reason.
	var spoken string
	var thought interceptors.Reasoning
	// thoughtBoth: the round thought's Key is from gave its reasoning
	// under both names (underBoth).
	var thoughtBoth bool
	// spokenParts is spoken as content parts, once a round gave its
	// content as parts (Mistral's reasoning models, a "thinking" block
	// before the text), nil before: a streaming client reads every
	// round's parts, the payment rounds' thinking too (partsOf).
	var spokenParts []byte
	// refused is their refusals, joined: a streaming client reads every
	// round's refusal deltas, a payment round's too.
	var refused string
	// past are their logprobs and reasoning_details, which a streaming
	// client also reads in full.
	var past roundArrays
	// capped is the answer a later round refused for the cap capLeft
	// lowered (capRefused) ends the turn with: the last payment round's,
	// built from what came before it.
	var capped []byte
	// oneDoc: the bot asked for JSON (response_format json_object or
	// json_schema) and parses the content as one JSON document, which a
	// model in JSON mode writes in each round, a payment round's too. The
	// answer's content is then the last round's text that is not empty
	// (spoken holds it alone, past none of the arrays of an earlier
	// round's), not every round's joined: two documents and a break, which
	// no JSON parser takes. A stream carries every round's, as it came
	// (SPEC 3.5).
	oneDoc := t.answersJSON()
	for round := 0; ; round++ {
		resp, err := t.open()
		if err != nil {
			if capped != nil && t.capRefused(err) {
				t.endCapped(err)
				t.writeCompletion(http.StatusOK, capped, nil, false)
				return
			}
			t.fail(err)
			return
		}
		ans := parseAnswer(resp.Body, &resp.Spans, t.isPaymentCall)
		resp.Close()
		t.readPaymentCalls(ans.payment)
		if len(ans.stray) > 0 {
			t.strayCalls(ans.stray)
		}
		if round == 0 {
			// The headers name the first round's provider; its answer
			// is not kept for that (an image model's pictures in it,
			// which past keeps, were held twice to the turn's end).
			t.s.setPaygateHeaders(t.w.Header(), resp)
		}
		t.endRound(round, resp, ans.id, ans.model, ans.created, ans.usage, ans.usageJSON)
		// The answer as the client gets it: the earlier rounds' text and
		// reasoning before this round's.
		whole := func() []byte {
			sp, spp, p := spoken, spokenParts, past
			if oneDoc && hasText(ans.content) {
				// This round's document is the content (see oneDoc).
				sp, spp = "", nil
				p.dropText()
			}
			return p.onto(withRefused(withThought(withSpoken(ans.body, sp, spp, ans.content, t.brk), thought, thoughtBoth, ans.reasoning), refused))
		}
		if len(ans.payment) == 0 {
			if len(ans.client) > 0 {
				if err := t.keepExchange(ans.content, ans.reasoning, nil, ans.client, nil); err != nil {
					t.withdraw(err)
					return
				}
			}
			t.writeCompletion(resp.StatusCode, whole(), ans.client, ans.madeIDs)
			return
		}
		if len(ans.client) > 0 {
			results := t.execute(ans.payment, ans.client, ans.finish())
			if t.clientGone {
				t.fail(context.Canceled)
				return
			}
			if err := t.keepExchange(ans.content, ans.reasoning, ans.payment, ans.client, results); err != nil {
				t.withdraw(err)
				return
			}
			t.writeCompletion(resp.StatusCode, whole(), ans.client, true)
			return
		}
		if round+1 >= t.budget.MaxRounds {
			// No round is left to tell the user what a payment call did, so
			// none runs: the turn ends with the clarification (SPEC 3).
			t.s.metrics.roundsExhausted.Inc()
			t.overRounds(ans.payment)
			b, p := ans.body, past
			said, before := joinText(spoken, ans.content, t.brk), textBefore(spoken, ans.content, t.brk)
			// The rounds' content as parts once one gave parts (a
			// Mistral reasoning model's thinking and words), as
			// withSpoken keeps them: a string of their text lost every
			// round's thinking, which a streaming bot reads.
			parts := partsOf(spokenParts, spoken, ans.content, string(ans.reasoning.Parts), t.brk)
			if oneDoc {
				// The clarification is the answer's one document, or
				// its refusal: the rounds' text is left out (see oneDoc).
				b, said, before, parts = withoutText(b), "", 0, nil
				p.dropText()
			}
			if t.clarifiesAsRefusal() {
				// The rounds' text, if any, as the content; the
				// clarification as the refusal (see clarifiesAsRefusal).
				if said != "" {
					b, _ = sjson.SetBytes(b, "choices.0.message.content", said)
				} else {
					b, _ = sjson.SetRawBytes(b, "choices.0.message.content", []byte("null"))
				}
				b, _ = sjson.SetBytes(b, refusalPath, gjson.GetBytes(b, refusalPath).Str+t.budget.Clarification)
			} else if parts != nil {
				clar := t.clarification()
				parts = textPart(textPart(parts, paragraphBreak(said, clar, t.brk)), clar)
				b, _ = sjson.SetRawBytes(b, "choices.0.message.content", append(append([]byte{'['}, parts...), ']'))
			} else {
				b, _ = sjson.SetBytes(b, "choices.0.message.content", joinText(said, t.clarification(), t.brk))
			}
			b = movedAnnotations(b, before)
			b, _ = sjson.DeleteBytes(b, "choices.0.message.tool_calls")
			// An audio model's speech of this payment round (about calls
			// that did not run) is not the answer's: a voice bot would
			// play it in place of the question.
			b, _ = sjson.DeleteBytes(b, "choices.0.message.audio")
			b, _ = sjson.SetBytes(b, "choices.0.finish_reason", "stop")
			t.writeCompletion(resp.StatusCode, p.onto(withRefused(withThought(b, thought, thoughtBoth, ans.reasoning), refused)), nil, false)
			return
		}
		// The answer of a turn that ends here at the bot's token cap, as
		// OpenAI ends a capped answer: this round's text after the
		// earlier rounds', no payment call, finish_reason "length".
		// Built only for a bot that set a cap: two copies of the answer
		// in every payment round otherwise.
		if t.hasCap() {
			capped, _ = sjson.DeleteBytes(whole(), "choices.0.message.tool_calls")
			capped, _ = sjson.SetBytes(capped, "choices.0.finish_reason", "length")
		}
		if oneDoc && hasText(ans.content) {
			// This round's document replaces the earlier one's.
			past.dropText()
			past.add(ans.body, 0)
			spoken, spokenParts = ans.content, nil
		} else {
			past.add(ans.body, textBefore(spoken, ans.content, t.brk))
			spokenParts = partsOf(spokenParts, spoken, ans.content, string(ans.reasoning.Parts), t.brk)
			spoken = joinText(spoken, ans.content, t.brk)
		}
		if r := gjson.GetBytes(ans.body, refusalPath); r.Type == gjson.String {
			refused += r.Str
		}
		if ans.reasoning.Content != "" {
			thought.Content += ans.reasoning.Content
			thought.Key = ans.reasoning.Key
			thoughtBoth = underBoth(ans.body, ans.reasoning)
		}
		// Executed first: execute gives the calls paygate's own ids
		// (uniqueCallIDs), which the assistant message must name as the
		// results do.
		results := t.execute(ans.payment, nil, ans.finish())
		if t.clientGone {
			t.fail(context.Canceled)
			return
		}
		if t.capSpent() {
			t.endCapped(nil)
			t.writeCompletion(resp.StatusCode, capped, nil, false)
			return
		}
		msgs := append([][]byte{interceptors.AssistantToolMessageWith(ans.content, ans.reasoning, interceptors.ParsableArguments(ans.payment))}, results...)
		if err := t.nextBody(msgs); err != nil {
			// As any failure before the answer: logged, the client gone
			// told nothing, the payment calls' actions in the error.
			t.fail(err)
			return
		}
	}
}

// textOfParts is the text of a content given as parts: the text of its
// "text" parts, joined.
func textOfParts(parts string) string {
	var b strings.Builder
	gjson.Parse(parts).ForEach(func(_, p gjson.Result) bool {
		if p.Get("type").Str == "text" {
			b.WriteString(p.Get("text").Str)
		}
		return true
	})
	return b.String()
}

// withSpoken returns the last round's answer with the earlier rounds' text
// before its own (content) as its message content; body as it is when the
// earlier rounds said nothing. A content of parts (Mistral's reasoning
// models answer [{"type":"thinking",…},{"type":"text",…}]) gets the earlier
// rounds' parts (spokenParts; the earlier text as a text part when none
// gave parts), and the break before the round's text as a text part, its
// own parts kept.
func withSpoken(body []byte, spoken string, spokenParts []byte, content, brk string) []byte {
	if spoken == "" && len(spokenParts) == 0 {
		return body
	}
	before := textBefore(spoken, content, brk)
	var out []byte
	var err error
	switch c := gjson.GetBytes(body, "choices.0.message.content"); {
	case c.IsArray():
		// The break goes by the round's text (content: its text parts
		// joined, as the bot joins them), not its first part, which a
		// reasoning model's "thinking" block may be.
		parts := append(make([]byte, 0, len(spokenParts)+len(spoken)+len(c.Raw)+48), '[')
		if spokenParts != nil {
			parts = append(parts, spokenParts...)
			parts = textPart(parts, paragraphBreak(spoken, content, brk))
		} else {
			// The earlier text and the break in one part, as before any
			// round gave parts.
			parts = textPart(parts, spoken+paragraphBreak(spoken, content, brk))
		}
		parts = appendElements(parts, c.Raw)
		out, err = sjson.SetRawBytes(body, "choices.0.message.content", append(parts, ']'))
	case spokenParts != nil && (c.Type == gjson.String || c.Type == gjson.Null || !c.Exists()):
		// An earlier round gave parts (a Mistral reasoning model's
		// thinking), which a streaming bot reads: kept, with this
		// round's text as a text part after them, as a turn whose rounds
		// are spent keeps them. A string of the text lost every earlier
		// round's thinking.
		parts := append(partsOf(slices.Clip(spokenParts), spoken, content, "", brk), ']')
		out, err = sjson.SetRawBytes(body, "choices.0.message.content", append([]byte{'['}, parts...))
	case c.Type == gjson.String || c.Type == gjson.Null || !c.Exists():
		out, err = sjson.SetBytes(body, "choices.0.message.content", joinText(spoken, content, brk))
	default:
		return body
	}
	if err != nil {
		return body
	}
	// The round's citations count in its own text, which the bot reads
	// after the earlier rounds' (parts or not).
	return movedAnnotations(out, before)
}

// partsOf returns the earlier rounds' content as parts (list, nil while
// none gave parts, see withSpoken) with a round's after it: the break
// between the earlier rounds' text (spoken) and the round's (content) as a
// text part, then its parts (raw), or its text as a text part when it gave
// a string. nil while neither the earlier rounds nor this one gave parts.
// The text parts joined read the rounds' text joined (joinText).
func partsOf(list []byte, spoken, content, parts, brk string) []byte {
	if list == nil {
		if parts == "" {
			return nil
		}
		list = textPart(make([]byte, 0, len(spoken)+len(parts)+32), spoken)
	}
	list = textPart(list, paragraphBreak(spoken, content, brk))
	if parts != "" {
		return appendElements(list, parts)
	}
	return textPart(list, content)
}

// textPart appends to the comma-separated parts list (after a '[', or
// not) a text part of text; list as it is when text is empty.
func textPart(list []byte, text string) []byte {
	if text == "" {
		return list
	}
	if len(list) > 0 && list[len(list)-1] != '[' {
		list = append(list, ',')
	}
	list = jsonstr.Append(append(list, `{"type":"text","text":`...), text)
	return append(list, '}')
}

// answersJSON reports whether the bot asked for a JSON answer
// (response_format json_object or json_schema), whose content it parses
// as one JSON document.
func (t *turn) answersJSON() bool {
	switch t.responseFormat() {
	case "json_object", "json_schema":
		return true
	}
	return false
}

// hasText reports whether a round's text says something: not empty, nor
// white space alone, which a JSON document may end with.
func hasText(content string) bool {
	return strings.TrimSpace(content) != ""
}

// withoutText returns a round's answer without the arrays that go with
// its text (its logprobs' content, its annotations), for an answer whose
// content is not that text; body as it is when it has none.
func withoutText(body []byte) []byte {
	if gjson.GetBytes(body, annotationsPath).Exists() {
		if out, err := sjson.DeleteBytes(body, annotationsPath); err == nil {
			body = out
		}
	}
	if gjson.GetBytes(body, logprobsContentPath).IsArray() {
		if out, err := sjson.SetRawBytes(body, logprobsContentPath, []byte("null")); err == nil {
			body = out
		}
	}
	return body
}

// clarifiesAsRefusal reports whether the clarification that ends a turn
// whose rounds are spent goes to the bot as the message's refusal, not its
// content: for a bot that asked for structured outputs (response_format
// json_schema), whose SDK parses the content against its schema (openai's
// parse() and stream helpers, a zod or pydantic model) and raises on an
// object the schema does not have, as {"clarification": …} is. A refusal
// is what OpenAI answers such a bot with when it will not fill the schema:
// the SDKs give it as message.refusal, with nothing parsed.
func (t *turn) clarifiesAsRefusal() bool {
	return t.responseFormat() == "json_schema"
}

// responseFormat is the type of the bot's response_format ("" for none),
// from the member ReadChat located: a walk of the body for it would cross
// the payment tools' definitions too, which on a short chat request was
// about 11,000 instructions a turn. paygate rewrites no response_format,
// so the body sent holds the one the bot sent, and ReadChat refused one
// given twice or in another case: the copy read here is the one the
// provider acts on.
func (t *turn) responseFormat() string {
	if t.chat.ResponseFormat == "" {
		return ""
	}
	return gjson.Get(t.chat.ResponseFormat, "type").Str
}

// clarification is the configured clarification as the bot reads it in
// the content at the end of a turn whose rounds are spent: for a bot that
// asked for a JSON object (response_format json_object) a JSON object,
// {"clarification": "<text>"}, so that the answer's content parses (it is
// the whole content unless the rounds said something before it, which a
// streaming bot already read); the plain text otherwise. A bot that asked
// for a json_schema gets it as the refusal (clarifiesAsRefusal).
func (t *turn) clarification() string {
	if t.answersJSON() {
		b := jsonstr.Append([]byte(`{"clarification":`), t.budget.Clarification)
		return string(append(b, '}'))
	}
	return t.budget.Clarification
}

// joinText joins the text of two rounds (or a round's and the
// clarification) as the client reads them: with a paragraph break between
// them when the first ends in a word and the second starts with one, as
// models end a round's text ("Let me set that up for you.") and start the
// next one's ("Your order is ready.") without the space that would
// separate them.
func joinText(before, after, brk string) string {
	return before + paragraphBreak(before, after, brk) + after
}

// paragraphBreak is what goes between the text before and the text after
// (see joinText): brk (roundsBreak), or "" when either is empty or white
// space already separates them. The break is paygate's: no logprobs entry
// goes with it, and the assistant messages kept for the provider carry each
// round's own text, without it.
func paragraphBreak(before, after, brk string) string {
	if before == "" || after == "" || endsWithSpace(before) || startsWithSpace(after) {
		return ""
	}
	return brk
}

// roundsBreak is the break between two rounds' text for a request whose
// "stop" member is stop (a string or an array of them): "\n\n", or a
// space when one of the stop sequences is in "\n\n" ("\n", "\n\n"):
// OpenAI gives the bot no text that holds one of its stop sequences, and a
// bot that stops at line breaks (one-line or one-paragraph answers) read
// paygate's break as the model going on past them. "" when a space is a
// stop sequence too.
func roundsBreak(stop gjson.Result) string {
	var stops []string
	if stop.Type == gjson.String {
		stops = append(stops, stop.Str)
	}
	if stop.IsArray() {
		stop.ForEach(func(_, s gjson.Result) bool {
			if s.Type == gjson.String {
				stops = append(stops, s.Str)
			}
			return true
		})
	}
	for _, brk := range [...]string{"\n\n", " "} {
		if !slices.ContainsFunc(stops, func(s string) bool { return s != "" && strings.Contains(brk, s) }) {
			return brk
		}
	}
	return ""
}

// endsWithSpace reports whether s ends with white space.
func endsWithSpace(s string) bool {
	r, _ := utf8.DecodeLastRuneInString(s)
	return unicode.IsSpace(r)
}

// startsWithSpace reports whether s starts with white space.
func startsWithSpace(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsSpace(r)
}

// withThought returns the last round's answer with the earlier rounds'
// reasoning (thought) before its own (own) in its message, under the name
// the provider used (under both when its message has its own reasoning
// under both, or has none and the earlier rounds' came under both:
// thoughtBoth); body as it is when the earlier rounds had none. A
// streaming client reads every round's reasoning deltas; the one answer
// dropped the payment rounds' reasoning.
func withThought(body []byte, thought interceptors.Reasoning, thoughtBoth bool, own interceptors.Reasoning) []byte {
	if thought.Content == "" {
		return body
	}
	key, both := own.Key, underBoth(body, own)
	if own.Content == "" {
		key, both = thought.Key, thoughtBoth
	}
	if key == "" {
		key = interceptors.KeyReasoningContent
	}
	out, err := sjson.SetBytes(body, "choices.0.message."+key, thought.Content+own.Content)
	if err != nil {
		return body
	}
	// A provider that writes the reasoning under both names (vLLM while
	// it moves from reasoning_content to reasoning) gets the earlier
	// rounds' under the other too: a streaming bot reads either.
	if both {
		if out2, err := sjson.SetBytes(out, "choices.0.message."+otherReasoningKey(key), thought.Content+own.Content); err == nil {
			out = out2
		}
	}
	return out
}

// refusalPath is the answer's refusal.
const refusalPath = "choices.0.message.refusal"

// withRefused returns the last round's answer with the earlier rounds'
// refusals (refused) before its own, joined as a streaming bot's SDK joins
// the refusal deltas; body as it is when they had none. The one answer
// carried the last round's alone, and a payment round's refusal ("I
// cannot show the card number.") never reached a bot that does not stream.
func withRefused(body []byte, refused string) []byte {
	if refused == "" {
		return body
	}
	out, err := sjson.SetBytes(body, refusalPath, refused+gjson.GetBytes(body, refusalPath).Str)
	if err != nil {
		return body
	}
	return out
}

// underBoth reports whether a round's answer body gives its reasoning r
// under both names: the member r was not read from holds the same text.
func underBoth(body []byte, r interceptors.Reasoning) bool {
	if r.Content == "" {
		return false
	}
	v := gjson.GetBytes(body, "choices.0.message."+otherReasoningKey(r.Key))
	return v.Type == gjson.String && v.Str == r.Content
}

// otherReasoningKey is the reasoning member other than key ("" is
// reasoning_content).
func otherReasoningKey(key string) string {
	if key == interceptors.KeyReasoning {
		return interceptors.KeyReasoningContent
	}
	return interceptors.KeyReasoning
}

// roundArrays holds the arrays of a turn's earlier answers that the one
// answer carries before the last round's own, as a streaming client reads
// every round's (its SDK appends each chunk's): choices[0].logprobs.content
// and .refusal, choices[0].message.reasoning_details, .annotations and
// .images (an image model's pictures, OpenRouter's), each at the index of
// its path in arrayPaths, as comma-separated elements. The answer joined
// every round's text and reasoning but kept the last round's arrays only,
// so its logprobs no longer spelled its content, and an earlier round's
// citations and pictures were lost. next holds, for reasoning_details and
// images, the index after the highest of the earlier rounds' entries,
// which a later round's are numbered after (interceptors.ShiftIndexes),
// as a streaming client gets them.
type roundArrays struct {
	els  [len(arrayPaths)][]byte
	next [len(arrayPaths)]int
}

var arrayPaths = [...]string{logprobsContentPath, "choices.0.logprobs.refusal", detailsPath, annotationsPath, imagesPath}

const (
	logprobsContentPath = "choices.0.logprobs.content"
	detailsPath         = "choices.0.message.reasoning_details"
	annotationsPath     = "choices.0.message.annotations"
	imagesPath          = "choices.0.message.images"
)

// indexed reports a path whose entries each round numbers from 0 in their
// "index": a later round's are numbered after the earlier rounds'.
func indexed(path string) bool { return path == detailsPath || path == imagesPath }

// add keeps the arrays of an earlier round's answer, whose text comes after
// chars characters of the answer's content (textBefore), as moved says.
// Once per payment round: one gjson walk of an answer that is not the hot
// path's.
func (a *roundArrays) add(body []byte, chars int) {
	for i, v := range gjson.GetManyBytes(body, arrayPaths[:]...) {
		if !v.IsArray() {
			continue
		}
		a.els[i] = appendElements(a.els[i], a.moved(i, v.Raw, chars))
	}
}

// dropText forgets the earlier rounds' arrays that go with their text
// (logprobs' content, annotations), for an answer whose content is not
// their text (a JSON document of a later round's, see nonStream).
func (a *roundArrays) dropText() {
	for i, path := range arrayPaths {
		if path == logprobsContentPath || path == annotationsPath {
			a.els[i] = nil
		}
	}
}

// moved is a round's array at arrayPaths[i] as the answer carries it: its
// annotations moved by the chars before its text, its reasoning_details
// blocks and pictures numbered after the earlier rounds' (noted in next).
func (a *roundArrays) moved(i int, raw string, chars int) string {
	var moved []byte
	switch path := arrayPaths[i]; {
	case path == annotationsPath:
		moved = interceptors.ShiftAnnotations(raw, chars)
	case indexed(path):
		var next int
		moved, next = interceptors.ShiftIndexes(raw, a.next[i])
		a.next[i] = max(a.next[i], next)
	}
	if moved == nil {
		return raw
	}
	return string(moved)
}

// textBefore is how many characters come before a round's text (content)
// in the turn's answer: the earlier rounds' (spoken) and the break between
// them (joinText).
func textBefore(spoken, content, brk string) int {
	return utf8.RuneCountInString(spoken) + utf8.RuneCountInString(paragraphBreak(spoken, content, brk))
}

// movedAnnotations returns the answer body with its message's annotations
// moved by chars (interceptors.ShiftAnnotations): a round's citations
// count in its own text, and the bot reads them in the turn's, which has
// chars characters before it. body as it is when none moves.
func movedAnnotations(body []byte, chars int) []byte {
	if chars == 0 {
		return body
	}
	moved := interceptors.ShiftAnnotations(gjson.GetBytes(body, annotationsPath).Raw, chars)
	if moved == nil {
		return body
	}
	out, err := sjson.SetRawBytes(body, annotationsPath, moved)
	if err != nil {
		return body
	}
	return out
}

// onto returns the last round's answer with the earlier rounds' elements
// before its own in each array; body as it is when they had none. An
// answer without logprobs gets an object for them.
func (a *roundArrays) onto(body []byte) []byte {
	for i, path := range arrayPaths {
		if len(a.els[i]) == 0 {
			continue
		}
		arr := append([]byte{'['}, a.els[i]...)
		if own := gjson.GetBytes(body, path); own.IsArray() {
			raw := own.Raw
			if indexed(path) {
				// The last round's entries after the earlier rounds'; not
				// noted: onto may run more than once for one answer.
				if moved, _ := interceptors.ShiftIndexes(raw, a.next[i]); moved != nil {
					raw = string(moved)
				}
			}
			arr = appendElements(arr, raw)
		}
		arr = append(arr, ']')
		out := body
		var err error
		if i < 2 && !gjson.GetBytes(out, "choices.0.logprobs").IsObject() {
			out, err = sjson.SetRawBytes(out, "choices.0.logprobs", []byte(`{"content":null,"refusal":null}`))
		}
		if err == nil {
			out, err = sjson.SetRawBytes(out, path, arr)
		}
		if err == nil {
			body = out
		}
	}
	return body
}

// appendElements appends the elements of the raw JSON array arr to list,
// comma-separated.
func appendElements(list []byte, arr string) []byte {
	inner := strings.TrimSpace(arr[1 : len(arr)-1])
	if inner == "" {
		return list
	}
	if len(list) > 0 && list[len(list)-1] != '[' {
		list = append(list, ',')
	}
	return append(list, inner...)
}

// roundAnswer is what the turn needs from one non-stream answer.
type roundAnswer struct {
	body      []byte
	id, model string
	created   int64 // 0: the answer had none
	content   string
	reasoning interceptors.Reasoning // goes back on the assistant message of a tool round
	usage     *interceptors.Usage    // nil: the answer had no usage object
	usageJSON []byte                 // that object as the provider sent it
	counts    interceptors.Usage     // what usage points to: no allocation of its own
	payment   []interceptors.ToolCall
	client    []interceptors.ToolCall
	// stray names the payment calls taken out of choices other than the
	// first (dropStrayCalls).
	stray []string
	// madeIDs: a call of the client's came without an id and got one
	// (MadeCallID): its tool_calls go out as the turn holds them.
	madeIDs bool
}

// parseAnswer reads a chat.completion without decoding it
// (interceptors.ReadAnswer), where the failover's pass found its members
// (sp, the Response's Spans; nil: walked here); only tool calls, which a
// plain answer has none of, are read with gjson. The strings kept are
// copies: the answer's body may be patched later.
func parseAnswer(body []byte, sp *jsonscan.AnswerSpans, isPayment func(string) bool) *roundAnswer {
	ra := interceptors.ReadAnswerAt(body, sp)
	a := &roundAnswer{body: body, id: ra.ID, model: ra.Model, created: ra.Created, content: ra.Content,
		reasoning: interceptors.Reasoning{Content: ra.Reasoning, Key: ra.ReasoningKey}}
	if ra.ReasoningDetails != "" {
		a.reasoning.Details = []byte(ra.ReasoningDetails)
	}
	if ra.ContentParts != "" {
		// Mistral's reasoning models: the round's text is in its "text"
		// parts, for the bot; the parts go back to the provider whole.
		a.content = textOfParts(ra.ContentParts)
		a.reasoning.Parts = []byte(ra.ContentParts)
	}
	if ra.Choices > 1 {
		a.body, a.stray = dropStrayCalls(body, isPayment)
	}
	if ra.HasUsage {
		a.counts = ra.Usage
		a.usage = &a.counts
		// The object itself, token details and all, as the walk found it:
		// in the memory ReadAnswer copied its strings into, which is the
		// answer's own and which nothing writes, so it is not copied
		// again. Read-only, as every round's usage object is.
		a.usageJSON = unsafe.Slice(unsafe.StringData(ra.UsageRaw), len(ra.UsageRaw))
	}
	i := 0
	defer func() {
		// The legacy shape of one call (a server that answers tools
		// with function_call): naming a payment tool, it is the
		// payment call it names, after the message's tool calls,
		// taken out of the answer; the bot's own stays as it came.
		fc := gjson.Parse(ra.FunctionCall)
		name := fc.Get("name")
		if name.Type != gjson.String || !isPayment(name.Str) {
			return
		}
		if b, err := sjson.DeleteBytes(a.body, "choices.0.message.function_call"); err == nil {
			a.body = b
			// The same call in both shapes (llama-cpp-python's server
			// sends one so) is one call: held back, run once.
			if args := arguments(fc.Get("arguments")); !interceptors.EchoesCall(a.payment, name.Str, args) {
				a.payment = append(a.payment, interceptors.ToolCall{Seq: i, Index: i, Name: name.Str, Arguments: args})
			}
		}
	}()
	if ra.ToolCalls == "" {
		return a
	}
	gjson.Parse(ra.ToolCalls).ForEach(func(_, call gjson.Result) bool {
		name, custom := callName(call)
		tc := interceptors.ToolCall{
			Seq:    i,
			ID:     call.Get("id").Str,
			Name:   name,
			Extra:  extraMembers(call),
			Custom: custom,
		}
		if custom {
			tc.Arguments = arguments(call.Get("custom.input"))
		} else {
			tc.Arguments = arguments(call.Get("function.arguments"))
		}
		// A call without a name is not the bot's to get, as the stream
		// capture holds one back: it goes with the payment calls, where
		// the turn refuses it.
		if tc.Name == "" || isPayment(tc.Name) {
			tc.Index = i
			a.payment = append(a.payment, tc)
		} else {
			if tc.ID == "" {
				// As the stream capture gives one (MadeCallID): the bot
				// names its call by id in its next request.
				tc.ID, a.madeIDs = interceptors.MadeCallID(), true
			}
			tc.Index = len(a.client)
			a.client = append(a.client, tc)
		}
		i++
		return true
	})
	return a
}

// finish is the answer's first choice's finish_reason, read only for a
// round with payment calls (execute).
func (a *roundAnswer) finish() string {
	return gjson.GetBytes(a.body, "choices.0.finish_reason").Str
}

// dropStrayCalls takes the payment calls, and the calls without a single
// name, out of every choice of the answer body but the first, and reports
// their names ("" for one without a single name). A signed-in turn asks for one choice (runTurn refuses
// n above 1) and continues the first one's conversation; a provider that
// answers with more anyway gave the bot, in another choice, a call of a
// tool it does not know, which never ran. The stream capture drops such
// calls too (interceptors.RoundResult.StrayCalls): in neither path do they
// run or reach the bot. A legacy function_call naming a payment tool is
// such a call (parseAnswer reads choice 0's as the payment call it names).
// The rest of those choices is left as it came, but for a finish_reason
// "tool_calls" (or "function_call") left without a call, which says
// "stop". Rare, so read with gjson.
func dropStrayCalls(body []byte, isPayment func(string) bool) ([]byte, []string) {
	var stray []string
	out := body
	gjson.GetBytes(body, "choices").ForEach(func(k, ch gjson.Result) bool {
		if k.Int() == 0 {
			return true
		}
		choice := "choices." + k.String()
		b := out
		var err error
		var dropped []string
		callsLeft := false
		if calls := ch.Get("message.tool_calls"); calls.IsArray() {
			kept := []byte{'['}
			calls.ForEach(func(_, call gjson.Result) bool {
				if name, _ := callName(call); name == "" || isPayment(name) {
					dropped = append(dropped, name)
					return true
				}
				if len(kept) > 1 {
					kept = append(kept, ',')
				}
				kept = append(kept, call.Raw...)
				return true
			})
			switch callsLeft = len(kept) > 1; {
			case len(dropped) == 0:
			case !callsLeft:
				b, err = sjson.DeleteBytes(b, choice+".message.tool_calls")
			default:
				b, err = sjson.SetRawBytes(b, choice+".message.tool_calls", append(kept, ']'))
			}
		}
		legacy := ch.Get("message.function_call")
		legacyLeft := legacy.Exists()
		if n := legacy.Get("name"); err == nil && n.Type == gjson.String && isPayment(n.Str) {
			b, err = sjson.DeleteBytes(b, choice+".message.function_call")
			dropped, legacyLeft = append(dropped, n.Str), false
		}
		if len(dropped) == 0 {
			return true
		}
		if f := ch.Get("finish_reason").Str; err == nil && !callsLeft && !legacyLeft && (f == "tool_calls" || f == "function_call") {
			// No call is left for a bot that runs the calls of a
			// choice that says it made some.
			b, err = sjson.SetBytes(b, choice+".finish_reason", "stop")
		}
		if err == nil {
			out, stray = b, append(stray, dropped...)
		}
		return true
	})
	return out, stray
}

// callName is a tool call's function name as the stream capture reads it,
// and whether the call named itself in "custom" (a custom tool's call, whose
// text is then "custom.input"): "" when the call names
// itself twice, a "function" or "custom" member repeated or a "name"
// repeated in it, also spelled in another case. Parsers keep
// different copies (gjson the first, most the last, Go's encoding/json any
// case), so paygate could run a payment call the bot reads as its own, or
// hand the bot a payment call: without a name, the turn refuses it. A
// null "function" or "custom" names nothing (relays that serialize unset
// fields send "custom":null beside a function call's "function"), unless
// the call has an object of that name too, in any case: a copy of it.
func callName(call gjson.Result) (name string, custom bool) {
	functions, names := 0, 0
	var members jsonscan.CallNames
	call.ForEach(func(k, fn gjson.Result) bool {
		if !strings.EqualFold(k.Str, "function") && !strings.EqualFold(k.Str, "custom") {
			return true
		}
		if members.Null(k.Str, fn.Raw) {
			return true // names nothing (jsonscan.CallNames)
		}
		if fn.IsObject() {
			members.Object(k.Str)
		}
		functions++
		fn.ForEach(func(fk, v gjson.Result) bool {
			if strings.EqualFold(fk.Str, "name") {
				names++
				if fk.Str == "name" && (k.Str == "function" || k.Str == "custom") {
					name, custom = v.Str, k.Str == "custom"
				}
			}
			return true
		})
		return true
	})
	if functions > 1 || names > 1 || members.Clash() {
		return "", false
	}
	return name, custom
}

// arguments is a tool call's arguments as the JSON text the payment tools
// parse and the bot's own call carries: a string's content, or the raw
// value when a provider sends them as a JSON object or array (the stream
// capture reads both, as here); .Str of an object is "", which would run
// create_order with {} and hand the bot its call with "{}".
func arguments(v gjson.Result) string {
	if v.IsObject() || v.IsArray() {
		return v.Raw
	}
	return v.Str
}

// extraMembers collects a tool call's members other than id, type, index,
// function and custom (a thought signature, say) as a raw JSON object. The
// call is rendered from its kind (ToolCall.Custom) with its name and text in
// the one member of that kind; a call with both is refused (callName), so
// neither is ever an extra that would give the bot a second copy.
func extraMembers(call gjson.Result) []byte {
	var out []byte
	call.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "id", "type", "index", "function", "custom":
			return true
		}
		if out == nil {
			out = []byte{'{'}
		} else {
			out = append(out, ',')
		}
		out = append(out, k.Raw...)
		out = append(out, ':')
		out = append(out, v.Raw...)
		return true
	})
	if out != nil {
		out = append(out, '}')
	}
	return out
}

// writeCompletion sends the turn's answer: body is the last round's
// chat.completion; its tool_calls are rendered from client (rewrite) when
// the round mixed payment and client calls, or a client call got an id it
// came without.
func (t *turn) writeCompletion(status int, body []byte, client []interceptors.ToolCall, rewrite bool) {
	// The upstream's own "paygate" member goes before paygate adds its own:
	// sjson would replace only the first, and bots trust it (SPEC 2.3).
	out := interceptors.DropPaygate(body)
	if len(t.rounds) > 1 {
		// The turn's id and created: the first round's, or the fallbacks
		// when it had none.
		out, _ = sjson.SetBytes(out, "id", t.turnID)
		out, _ = sjson.SetBytes(out, "created", t.created)
	}
	if rewrite {
		arr := []byte{'['}
		for i, c := range client {
			if i > 0 {
				arr = append(arr, ',')
			}
			m := interceptors.AssistantToolMessage("", []interceptors.ToolCall{c})
			arr = append(arr, gjson.GetBytes(m, "tool_calls.0").Raw...)
		}
		arr = append(arr, ']')
		out, _ = sjson.SetRawBytes(out, "choices.0.message.tool_calls", arr)
	}
	if len(client) > 0 && stopForCalls(gjson.GetBytes(out, "choices.0.finish_reason").Str) {
		// Gemini ends a tool round with "stop"; the client must hear
		// "tool_calls" to run its tools, as a streaming client does. A
		// round cut by max_tokens keeps "length", mixed or not: the
		// client's calls may be cut.
		out, _ = sjson.SetBytes(out, "choices.0.finish_reason", "tool_calls")
	}
	if t.hasUse && len(t.rounds) > 1 {
		u := t.usage
		out, _ = sjson.SetRawBytes(out, "usage", interceptors.AppendUsage(nil, &u, t.usageObjects()))
	}
	t.handed = client
	t.claimAnnouncements()
	if ext := t.extension(); ext != nil {
		out, _ = sjson.SetRawBytes(out, "paygate", ext)
	}
	h := t.w.Header()
	h["Content-Type"] = jsonType
	h["Content-Length"] = []string{strconv.Itoa(len(out))}
	if status == 0 {
		status = http.StatusOK
	}
	t.w.WriteHeader(status)
	if _, err := t.w.Write(out); err != nil {
		return
	}
	// The answer leaves now, not when the handler returns: the turn's
	// accounting (a store write, an fsync with the embedded store) comes
	// after it and must not delay it. The length is known, so this is still
	// one write with a Content-Length.
	if http.NewResponseController(t.w).Flush() != nil {
		return
	}
	t.s.markDelivered(t.r.Context(), t.caller, t.actions)
}
