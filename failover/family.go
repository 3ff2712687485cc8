package failover

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/internal/jsonscan"
)

// mistralModels are the names Mistral's models go by, whoever serves them
// (Mistral's API; OpenRouter's mistralai/…; Azure's Mistral-Large-2411; a
// vLLM serving mistralai/Mistral-7B-Instruct-v0.3 with Mistral's tokenizer):
// each of these checks the tool call ids of a conversation as Mistral's
// API does.
var mistralModels = []string{"mistral", "magistral", "ministral", "mixtral", "devstral", "codestral", "pixtral", "voxtral"}

// setFamily sets which of adaptMessages' rules t gets: those of family
// (the target's in the config, else its provider's; config.Family*), or,
// with none or "auto", those baseURL and t's model suggest (isMistral,
// isMistralAPI, isDeepSeek). A guess is wrong both ways for real
// deployments: an Azure deployment or a vLLM served-model name of a
// Mistral model, a gateway before api.mistral.ai or DeepSeek's API, and
// openrouter/auto are missed; an OpenAI fine-tune named …mistral… is
// taken for Mistral and loses its assistants' audio, refusal and name. A
// family written in the config is used as it is, without the guess. It
// runs once per target, in New: a request pays nothing for it.
func (t *target) setFamily(family, baseURL string) error {
	switch family {
	case "", config.FamilyAuto:
		t.mistral, t.mistralAPI, t.deepseek = isMistral(baseURL, t.model), isMistralAPI(baseURL), isDeepSeek(baseURL, t.model)
	case config.FamilyOpenAI:
	case config.FamilyMistral:
		t.mistral = true
	case config.FamilyMistralAPI:
		t.mistral, t.mistralAPI = true, true
	case config.FamilyDeepSeekAPI:
		t.deepseek = true
	default:
		return fmt.Errorf("unknown family %q", family)
	}
	return nil
}

// isMistral reports whether a target of the provider at baseURL asking for
// model reaches a Mistral model: Mistral's own API, or a model named as
// Mistral names its models. It is the guess of family auto.
func isMistral(baseURL, model string) bool {
	if isMistralAPI(baseURL) {
		return true
	}
	m := strings.ToLower(model)
	return slices.ContainsFunc(mistralModels, func(n string) bool { return strings.Contains(m, n) })
}

// isMistralAPI reports whether baseURL is Mistral's own API (on
// mistral.ai).
func isMistralAPI(baseURL string) bool {
	u, err := url.Parse(baseURL)
	if err != nil {
		return false
	}
	h := strings.ToLower(u.Hostname())
	return h == "mistral.ai" || strings.HasSuffix(h, ".mistral.ai")
}

// adaptMessages returns body as t's model takes its conversation: for a
// Mistral target, with every tool call id that is not Mistral's shape
// mapped to one that is (mistralToolCallIDs) and no member on an assistant
// message or a call that Mistral does not take (mistralAssistants), and,
// on Mistral's own API, without stream_options (withoutStreamOptions); for
// any other, with
// Mistral's thinking blocks left out of the assistant messages that carry
// them (thinkingAsText); for every target, with an assistant message that
// holds only a refusal holding it as its content (refusalAsContent). body
// itself is never modified; when nothing changes, body itself is returned.
//
// refusalAsContent reads a content as thinkingAsText leaves it: a content
// of thinking blocks is text (or "") only then.
//
// toolsTail is Request.ToolsTail: the checks for a message to adapt leave
// out that many bytes at body's end when they hold the appended tools
// (messagesScope).
func (t *target) adaptMessages(body []byte, toolsTail int) ([]byte, error) {
	if toolsTail > 0 && len(t.p.drop) > 0 {
		// patch deleted members: the tail may have moved or gone.
		toolsTail = 0
	}
	if t.mistral {
		out, err := refusalAsContent(body, toolsTail)
		if err != nil {
			return nil, err
		}
		if out, err = mistralAssistants(out); err != nil {
			return nil, err
		}
		if t.mistralAPI {
			if out, err = withoutStreamOptions(out); err != nil {
				return nil, err
			}
		}
		return mistralToolCallIDs(out)
	}
	out, err := thinkingAsText(body, toolsTail)
	if err != nil {
		return nil, err
	}
	if out, err = refusalAsContent(out, toolsTail); err != nil || !t.deepseek {
		return out, err
	}
	return deepseekReasoning(out)
}

// isDeepSeek reports whether a target of the provider at baseURL asking
// for model reaches DeepSeek's own API, whose thinking mode wants every
// tool round's reasoning_content back: the provider on deepseek.com, or
// one of the model names that API serves. DeepSeek's models elsewhere
// (OpenRouter's deepseek/…, Groq's deepseek-r1-distill-…, which refuses
// reasoning_content) take the conversation as it is. It is the guess of
// family auto.
func isDeepSeek(baseURL, model string) bool {
	if u, err := url.Parse(baseURL); err == nil {
		if h := strings.ToLower(u.Hostname()); h == "deepseek.com" || strings.HasSuffix(h, ".deepseek.com") {
			return true
		}
	}
	m := strings.ToLower(model)
	return m == "deepseek-chat" || m == "deepseek-reasoner" || strings.HasPrefix(m, "deepseek-v4")
}

// deepseekReasoning returns body with a reasoning_content on every
// assistant message with tool calls that has none: the message's
// "reasoning" (Groq's and OpenRouter's name for it) when it is text, else
// "". DeepSeek's thinking mode answers 400 "Missing `reasoning_content`
// field in the assistant message at message index 2" without it
// (https://api-docs.deepseek.com/guides/thinking_mode#tool-calls), so a
// payment round answered by OpenAI (or Mistral, or OpenRouter) whose next
// round failed over to DeepSeek ended the turn after its payment ran.
// The member goes first in the message, every other byte as it came.
func deepseekReasoning(body []byte) ([]byte, error) {
	if !bytes.Contains(body, []byte("tool_calls")) {
		return body, nil
	}
	var edits []edit
	i := 0
	gjson.Get(unsafeString(body), "messages").ForEach(func(_, m gjson.Result) bool {
		defer func() { i++ }()
		if !m.IsObject() || m.Get("role").Str != "assistant" || !hasCalls(m.Get("tool_calls")) || m.Get("reasoning_content").Exists() {
			return true
		}
		r := m.Get("reasoning")
		raw := appendQuoted([]byte(`{"reasoning_content":`), r.Str)
		if r.Type != gjson.String {
			raw = []byte(`{"reasoning_content":""`)
		}
		// The message has tool_calls: a member follows.
		raw = append(append(raw, ','), m.Raw[1:]...)
		edits = append(edits, edit{path: fmt.Sprintf("messages.%d", i), at: m.Index, end: m.Index + len(m.Raw), old: m.Raw, raw: raw})
		return true
	})
	if len(edits) == 0 {
		return body, nil
	}
	return splice(body, edits)
}

// mistralAssistantMembers are the members Mistral's API takes on an
// assistant message, and mistralCallMembers those of one of its
// tool_calls; it refuses any other (pydantic's extra_forbidden).
var (
	mistralAssistantMembers = []string{"role", "content", "tool_calls", "prefix"}
	mistralCallMembers      = []string{"id", "type", "function", "index"}
)

// mistralAssistants returns body with every assistant message holding only
// the members Mistral's API takes, and each of its tool calls likewise.
// Mistral answers any other 422 extra_forbidden ("loc": ["body",
// "messages", 3, "assistant", "reasoning_content"], or ["body",
// "messages", 2, "assistant", "tool_calls", 0, "name"]), and paygate
// sends another provider's payment round back as that provider wants it:
// DeepSeek's reasoning_content, OpenRouter's reasoning and
// reasoning_details, Gemini's extra_content (its thought signature) on
// each call. A payment round of one of them whose next round failed over
// to Mistral ended the turn after its payment ran, and so did a bot's
// history of their turns. What is left out was another model's; Mistral's
// own reasoning comes as content parts. Only a message that carries such a
// member changes, rebuilt from its other members as they came. A body
// without "assistant", plainly or with escapes ("\u0061ssistant", which
// Mistral reads as assistant: assistantKey.InKey), has none.
func mistralAssistants(body []byte) ([]byte, error) {
	if !assistantKey.InKey(body) {
		return body, nil
	}
	var edits []edit
	i := 0
	gjson.Get(unsafeString(body), "messages").ForEach(func(_, m gjson.Result) bool {
		defer func() { i++ }()
		if !m.IsObject() || m.Get("role").Str != "assistant" || !mistralExtra(m) {
			return true
		}
		if raw, changed := keepMembers(m, mistralAssistantMembers, func(k string, v gjson.Result) []byte {
			if k != "tool_calls" || !v.IsArray() {
				return nil
			}
			calls, changed := []byte{'['}, false
			v.ForEach(func(_, c gjson.Result) bool {
				if len(calls) > 1 {
					calls = append(calls, ',')
				}
				if kept, ch := keepMembers(c, mistralCallMembers, nil); ch {
					calls, changed = append(calls, kept...), true
				} else {
					calls = append(calls, c.Raw...)
				}
				return true
			})
			if !changed {
				return nil
			}
			return append(calls, ']')
		}); changed {
			edits = append(edits, edit{path: fmt.Sprintf("messages.%d", i), at: m.Index, end: m.Index + len(m.Raw), old: m.Raw, raw: raw})
		}
		return true
	})
	if len(edits) == 0 {
		return body, nil
	}
	return splice(body, edits)
}

// mistralExtra reports whether the assistant message m, or one of its
// tool calls, has a member Mistral does not take: the test, without
// allocating, before keepMembers rebuilds it. Most assistant messages sent
// to Mistral have none (its own answers, a bot's plain history).
func mistralExtra(m gjson.Result) bool {
	extra := false
	m.ForEach(func(k, v gjson.Result) bool {
		if !slices.Contains(mistralAssistantMembers, k.Str) {
			extra = true
		} else if k.Str == "tool_calls" && v.IsArray() {
			v.ForEach(func(_, c gjson.Result) bool {
				if c.IsObject() {
					c.ForEach(func(ck, _ gjson.Result) bool {
						extra = !slices.Contains(mistralCallMembers, ck.Str)
						return !extra
					})
				}
				return !extra
			})
		}
		return !extra
	})
	return extra
}

// keepMembers returns the object o with only the members named in keep,
// each as it came but where inner (when not nil) returns a new value for
// it, and whether anything changed; o itself when nothing did or when o is
// no object.
func keepMembers(o gjson.Result, keep []string, inner func(k string, v gjson.Result) []byte) ([]byte, bool) {
	if !o.IsObject() {
		return []byte(o.Raw), false
	}
	out, changed := []byte{'{'}, false
	o.ForEach(func(k, v gjson.Result) bool {
		if !slices.Contains(keep, k.Str) {
			changed = true
			return true
		}
		val := []byte(v.Raw)
		if inner != nil {
			if n := inner(k.Str, v); n != nil {
				val, changed = n, true
			}
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(append(append(out, k.Raw...), ':'), val...)
		return true
	})
	if !changed {
		return []byte(o.Raw), false
	}
	return append(out, '}'), true
}

// thinkingAsText returns body with the content of each assistant message
// whose content parts include a "thinking" block (Mistral's reasoning
// models: [{"type":"thinking","thinking":[…]},{"type":"text","text":…}],
// which paygate sends back on a payment round's assistant message, as
// Mistral takes it) replaced by the text of its text parts, or null when
// there is none beside tool calls. No provider but Mistral takes a
// thinking block: OpenAI (and DashScope, which takes its schema) answer
// 400 "Invalid value: 'thinking'. Supported values are: 'text' and
// 'refusal'.", DeepSeek 400 "unknown variant `thinking`, expected
// `text`", and deepseek-reasoner takes an assistant's content only as a
// string; so a payment round of Magistral whose next round failed over
// to one of them ended the turn after its payment ran. The thinking was
// another model's, and is left out; every other message is sent as it
// came.
//
// Every target of every request asks first whether a thinking block may
// be there at all (thinkingKey), on the body without the payment tools
// that end it (toolsTail, messagesScope).
func thinkingAsText(body []byte, toolsTail int) ([]byte, error) {
	if !thinkingKey.InKey(messagesScope(body, toolsTail)) {
		return body, nil
	}
	var edits []edit
	i := 0
	gjson.Get(unsafeString(body), "messages").ForEach(func(_, m gjson.Result) bool {
		defer func() { i++ }()
		c := m.Get("content")
		if !c.IsArray() || m.Get("role").Str != "assistant" {
			return true
		}
		thinking, text := false, ""
		c.ForEach(func(_, p gjson.Result) bool {
			switch p.Get("type").Str {
			case "thinking":
				thinking = true
			case "text":
				text += p.Get("text").Str
			}
			return true
		})
		if !thinking {
			return true
		}
		raw := appendQuoted(nil, text)
		if text == "" && hasCalls(m.Get("tool_calls")) {
			raw = []byte("null")
		}
		edits = append(edits, edit{path: fmt.Sprintf("messages.%d.content", i), at: c.Index, end: c.Index + len(c.Raw), old: c.Raw, raw: raw})
		return true
	})
	if len(edits) == 0 {
		return body, nil
	}
	return splice(body, edits)
}

// refusalAsContent returns body with each assistant message that has a
// refusal (text, not empty) and no calls (tool_calls, function_call)
// holding the refusal as its content, in the refusal's place among its
// members, every other member as it came (a second copy of the refusal
// left out, so that the content is named once): the refusal alone where the
// message has no content (null, absent, "" or []), after a text content
// that does not already say it as a paragraph of its own (a content of
// parts beside a refusal is left as it came). Such a message is what a
// bot keeps of an answer paygate ended with its clarification as the
// refusal (a json_schema turn whose rounds are spent; streamed, after the
// rounds' text) or of an OpenAI model's refusal, pushed into its history
// as the SDK gave it, and its next request carries it before the user's
// answer. DeepSeek's API answers it 400 "Invalid assistant message:
// content or tool_calls must be set", Mistral's 400 "Assistant message
// must have either content or tool_calls, but not none." (once
// mistralAssistants left the refusal out), Ollama's 400 "invalid message content
// type: <nil>", vLLM's with Mistral's tokenizer 400 "Invalid assistant
// message: … content=None tool_calls=None"; Mistral's API leaves out a
// refusal beside text (mistralAssistants: it refuses the member), and a
// server that takes it and reads no refusal gives its model a
// conversation where the user answers a question nobody asked. OpenAI's own targets get the same: family
// openai is also every server that takes OpenAI's schema (Ollama, vLLM,
// DashScope), which no family tells apart from OpenAI; OpenAI takes an
// assistant's content as text whatever it says, and documents content as
// required unless the message has calls, where what its model reads of a
// refusal beside it is not documented. The text moves (a copy left in the
// refusal could be read twice), and the model reads as its own words the
// question it asked. toolsTail is as for thinkingAsText.
func refusalAsContent(body []byte, toolsTail int) ([]byte, error) {
	if !holdsRefusalText(messagesScope(body, toolsTail)) {
		return body, nil
	}
	var edits []edit
	i := 0
	gjson.Get(unsafeString(body), "messages").ForEach(func(_, m gjson.Result) bool {
		defer func() { i++ }()
		if !m.IsObject() || m.Get("role").Str != "assistant" {
			return true
		}
		r, c := m.Get("refusal"), m.Get("content")
		if r.Type != gjson.String || r.Str == "" || hasCalls(m.Get("tool_calls")) || hasCalls(m.Get("function_call")) {
			return true
		}
		text := r.Raw
		switch {
		case !c.Exists() || c.Type == gjson.Null || c.Type == gjson.String && c.Str == "" || c.IsArray() && len(c.Array()) == 0:
		case c.Type == gjson.String && !strings.Contains(c.Str, r.Str):
			text = string(appendQuoted(nil, c.Str+"\n\n"+r.Str))
		default:
			return true
		}
		out, moved := []byte{'{'}, false
		m.ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "content":
				return true
			case "refusal":
				// A second copy is left out: the content is named once.
				if moved {
					return true
				}
				k.Raw, v.Raw, moved = `"content"`, text, true
			}
			if len(out) > 1 {
				out = append(out, ',')
			}
			out = append(append(append(out, k.Raw...), ':'), v.Raw...)
			return true
		})
		edits = append(edits, edit{path: fmt.Sprintf("messages.%d", i), at: m.Index, end: m.Index + len(m.Raw), old: m.Raw, raw: append(out, '}')})
		return true
	})
	if len(edits) == 0 {
		return body, nil
	}
	return splice(body, edits)
}

// messagesScope is body without its last toolsTail bytes when they begin
// with a top-level-looking `,"tools":` (Request.ToolsTail), else body: what
// the checks for a message to adapt search. In JSON text a quote inside a
// string is escaped, so those bytes are a member, not a string's text; that
// it is the top-level "tools" the caller appended last is the caller's
// word. A wrong tail is one that does not begin so, and is ignored.
func messagesScope(body []byte, toolsTail int) []byte {
	if toolsTail <= 0 || toolsTail > len(body) || !bytes.HasPrefix(body[len(body)-toolsTail:], []byte(`,"tools":`)) {
		return body
	}
	return body[:len(body)-toolsTail]
}

// refusalKey finds a body that may hold an assistant's refusal
// (jsonscan.Finder says why not bytes.Contains). Its pivot stays f: l
// saved 1,216 instructions a BenchmarkNonStreamTurn, whose body is mostly
// the payment tools' "refund"s, but is the commoner letter in a history.
var refusalKey = jsonscan.NewFinder(`"refusal"`)

// holdsRefusalText reports whether body has a member named refusal whose
// value is text, the only one refusalAsContent moves: a "refusal" followed,
// past white space, by a colon and a quote (in JSON text an unescaped
// "refusal" is a whole string, and one before a colon a key). OpenAI's
// Python and Node SDKs give back "refusal": null on every assistant
// message, which a bot that keeps them sends on every turn: the walk of
// the messages, about 14 µs an attempt for a 20-turn history, would find
// nothing there. A body with a \u escape of one of the word's bytes
// ("r\u0065fusal", which every provider reads as refusal) is walked: the
// key may be spelled so.
func holdsRefusalText(body []byte) bool {
	if refusalKey.Escapes(body) {
		return true
	}
	s := unsafeString(body)
	for off := 0; ; {
		i := refusalKey.Index(body[off:])
		if i < 0 {
			return false
		}
		off += i + len(`"refusal"`)
		if j := jsonscan.SkipSpace(s, off); j < len(s) && s[j] == ':' {
			if j = jsonscan.SkipSpace(s, j+1); j < len(s) && s[j] == '"' {
				return true
			}
		}
	}
}

// streamOptionsKey finds a body that may hold stream_options
// (withoutStreamOptions), by InKey: a key spelled with escapes, which
// Mistral reads as stream_options, is one too.
var streamOptionsKey = jsonscan.NewFinder(`"stream_options"`)

// assistantKey finds a body that may hold an assistant message
// (mistralAssistants), by InKey: a role spelled with escapes is one too.
var assistantKey = jsonscan.NewFinder(`"assistant"`)

// thinkingKey finds a body that may hold a thinking block
// (jsonscan.Finder says why not bytes.Contains), by InKey: a type or key
// spelled with escapes is one too.
var thinkingKey = jsonscan.NewFinder(`"thinking"`)

// withoutStreamOptions returns body without its stream_options: Mistral's
// API answers a request carrying one 422 extra_forbidden ("loc": ["body",
// "stream_options", "include_usage"]), and paygate sets include_usage on
// every streamed chat request to count its usage, so every stream sent to
// api.mistral.ai failed. Mistral puts the usage on a stream's finish chunk
// unasked, where paygate reads it. A Mistral model served elsewhere (vLLM,
// OpenRouter) takes stream_options, and vLLM counts usage only by it.
func withoutStreamOptions(body []byte) ([]byte, error) {
	if !streamOptionsKey.InKey(body) || !gjson.Get(unsafeString(body), "stream_options").Exists() {
		return body, nil
	}
	out, err := sjson.DeleteBytes(body, "stream_options")
	if err != nil {
		return nil, fmt.Errorf("leaving out stream_options: %w", err)
	}
	return out, nil
}

// validMistralID reports whether id is a tool call id Mistral takes:
// exactly 9 characters of [a-zA-Z0-9].
func validMistralID(id string) bool {
	if len(id) != 9 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// mistralIDChars are the characters of the ids mistralID makes.
const mistralIDChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// mistralID maps id to a 9-character [a-zA-Z0-9] id, the same for the same
// id and salt, so a call and its result, sent in different messages and
// rounds, keep naming each other.
func mistralID(id string, salt int) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%d\x00%s", salt, id)))
	n := binary.BigEndian.Uint64(h[:8])
	var b [9]byte
	for i := range b {
		b[i] = mistralIDChars[n%uint64(len(mistralIDChars))]
		n /= uint64(len(mistralIDChars))
	}
	return string(b[:])
}

// toolCallIDs calls fn with each tool call id body's messages name: the
// id of call j of message i's tool_calls, or (j is -1) the tool_call_id
// of message i.
func toolCallIDs(body []byte, fn func(i, j int, v gjson.Result)) {
	i := 0
	gjson.Get(unsafeString(body), "messages").ForEach(func(_, m gjson.Result) bool {
		j := 0
		m.Get("tool_calls").ForEach(func(_, c gjson.Result) bool {
			fn(i, j, c.Get("id"))
			j++
			return true
		})
		fn(i, -1, m.Get("tool_call_id"))
		i++
		return true
	})
}

// edit is one JSON value of a body to replace: the value at path, whose
// raw JSON old is body[at:end], by raw.
type edit struct {
	path    string
	at, end int
	old     string
	raw     []byte
}

// splice returns body with each edit made: in place, every other byte as
// it came, or with sjson when a value is not where gjson placed it. body
// itself is never modified.
func splice(body []byte, edits []edit) ([]byte, error) {
	for _, e := range edits {
		if e.at <= 0 || e.end > len(body) || unsafeString(body[e.at:e.end]) != e.old {
			out := body
			for _, e := range edits {
				var err error
				if out, err = sjson.SetRawBytes(out, e.path, e.raw); err != nil {
					return nil, fmt.Errorf("setting %s: %w", e.path, err)
				}
			}
			return out, nil
		}
	}
	edits = slices.Clone(edits)
	slices.SortFunc(edits, func(a, b edit) int { return a.at - b.at })
	out := make([]byte, 0, len(body))
	prev := 0
	for _, e := range edits {
		out = append(out, body[prev:e.at]...)
		out = append(out, e.raw...)
		prev = e.end
	}
	return append(out, body[prev:]...), nil
}

// mistralToolCallIDs returns body with every tool call id (an assistant
// message's tool_calls[].id, a tool message's tool_call_id) that is not 9
// characters of [a-zA-Z0-9] replaced by one that is: Mistral answers any
// other 400 "Tool call id was call_… but must be a-z, A-Z, 0-9, with a
// length of 9." An id is only a name pairing a call with its result, and
// the conversation's ids come from everywhere: OpenAI's call_ ids of 24
// characters in a round answered before a failover to Mistral, a bot's
// history of calls another provider made, paygate's own call_pg_… for a
// call that came without an id. The same id maps to the same id wherever
// it appears, to none the request already names, and no two ids to one.
// Each id is spliced in place: every other byte is sent as it came. The
// ids Mistral answers with are its own, and reach the bot as it made them.
func mistralToolCallIDs(body []byte) ([]byte, error) {
	if !bytes.Contains(body, []byte("tool_call")) {
		return body, nil
	}
	type idAt struct {
		edit
		id string
	}
	// The ids Mistral refuses: most conversations sent to Mistral have
	// none (its own ids, their results), and cost no allocation.
	var ids []idAt
	toolCallIDs(body, func(i, j int, v gjson.Result) {
		if v.Type != gjson.String || validMistralID(v.Str) {
			return
		}
		path := fmt.Sprintf("messages.%d.tool_call_id", i)
		if j >= 0 {
			path = fmt.Sprintf("messages.%d.tool_calls.%d.id", i, j)
		}
		ids = append(ids, idAt{edit{path: path, at: v.Index, end: v.Index + len(v.Raw), old: v.Raw}, v.Str})
	})
	if len(ids) == 0 {
		return body, nil
	}
	// The ids the request already names, which no mapped id may take.
	taken := map[string]bool{}
	toolCallIDs(body, func(_, _ int, v gjson.Result) {
		if v.Type == gjson.String && validMistralID(v.Str) {
			taken[v.Str] = true
		}
	})
	mapped := map[string]string{}
	edits := make([]edit, 0, len(ids))
	for _, e := range ids {
		id, ok := mapped[e.id]
		if !ok {
			id = mistralID(e.id, 0)
			for salt := 1; taken[id]; salt++ {
				id = mistralID(e.id, salt)
			}
			taken[id] = true
			mapped[e.id] = id
		}
		e.raw = appendQuoted(nil, id)
		edits = append(edits, e.edit)
	}
	return splice(body, edits)
}
