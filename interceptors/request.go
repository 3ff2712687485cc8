package interceptors

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/paygate/paygate/internal/jsonscan"
	"github.com/paygate/paygate/internal/jsonstr"
)

// ErrBadRequest marks a client body paygate cannot forward; the proxy answers
// 400 with the message.
var ErrBadRequest = errors.New("bad request")

// ParamError is an ErrBadRequest about one member of the body. Param names
// it as OpenAI's errors do ("messages", "n", "tools", "tool_choice",
// "stream_options.include_usage"): the proxy puts it in the error's
// "param", which the OpenAI SDKs hand the bot as the error's param.
type ParamError struct {
	Param string
	// Code is OpenAI's error code for it ("invalid_type"), "" for none.
	Code string
	msg  string
}

func (e *ParamError) Error() string { return ErrBadRequest.Error() + ": " + e.msg }

// Unwrap makes a ParamError an ErrBadRequest to errors.Is.
func (e *ParamError) Unwrap() error { return ErrBadRequest }

// paramError is the ParamError about param, its message formatted.
func paramError(param, format string, args ...any) error {
	return &ParamError{Param: param, msg: fmt.Sprintf(format, args...)}
}

// CodeOf is the OpenAI error code an ErrBadRequest carries (ParamError),
// "" for none.
func CodeOf(err error) string {
	var pe *ParamError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// modelTypeError is the error of a "model" member (raw, its JSON) that is
// present and neither a string nor null: a number, a boolean, an array or
// an object, nil for any other. Such a body names no model; OpenAI refuses
// it as invalid_type, and paygate must not route it as a body naming none
// (to the first model's targets, its member as sent): a provider the bot
// never named would be asked, with whatever the member holds.
func modelTypeError(raw string) error {
	if raw == "" || raw == "null" || raw[0] == '"' {
		return nil
	}
	return typeError("model", "a string", raw)
}

// typeError is OpenAI's invalid_type error, in its words, of the member
// param whose value, raw, is not of the type want ("a string").
func typeError(param, want, raw string) error {
	var got string
	switch raw[0] {
	case '{':
		got = "an object"
	case '[':
		got = "an array"
	case '"':
		got = "a string"
	case 't', 'f':
		got = "a boolean"
	default:
		got = "an integer"
		if strings.ContainsAny(raw, ".eE") {
			got = "a decimal"
		}
	}
	return &ParamError{Param: param, Code: "invalid_type",
		msg: "Invalid type for '" + param + "': expected " + want + ", but got " + got + " instead."}
}

// ParamOf is the member an ErrBadRequest names (ParamError), "" for none.
func ParamOf(err error) string {
	var pe *ParamError
	if errors.As(err, &pe) {
		return pe.Param
	}
	return ""
}

// Chat is what paygate needs to know about a chat-completions body, read
// without decoding it.
type Chat struct {
	Model  string
	Stream bool
	// User is the body's "user" field, if any.
	User string
	// WantsUsage: the client itself asked for stream usage.
	WantsUsage bool
	// HasTools: the body has a "tools" member (AddTools then merges with
	// it; without one it appends the member).
	HasTools bool
	// HasFunctions: the body has a legacy "functions" member, whose names
	// may clash with the payment tools' (CheckFunctions).
	HasFunctions bool
	// HasPrediction: the body asks for Predicted Outputs (a "prediction"
	// that is not null), which providers refuse beside tools.
	HasPrediction bool
	// Choices is the body's "n" (0 when absent or null): how many choices
	// the client asks for.
	Choices int
	// ToolChoice is the body's "tool_choice" as sent, raw JSON ("" when
	// absent): what it lets the model call of the payment tools is
	// ReadPaymentChoice's.
	ToolChoice string
	// FunctionCall is the body's legacy "function_call" as sent, raw JSON
	// ("" when absent): it says of the legacy functions what tool_choice
	// says of tools (ReadPaymentChoice reads both).
	FunctionCall string
	// Stop is the body's "stop" as sent, raw JSON ("" when absent): the
	// turn breaks the rounds' text by it, and found here it costs no
	// second walk over the body. Refused repeated or in another case, as
	// the members paygate rewrites are: paygate read the first copy and
	// the provider the last (null then "\n": the bot that stops at line
	// breaks got the rounds' text joined by "\n\n").
	Stop string
	// ResponseFormat is the body's "response_format" as sent, raw JSON (""
	// when absent): a turn shapes its answer by its type (json_object,
	// json_schema), and found here it costs no second walk over the body,
	// which by then holds the payment tools' definitions too. Refused
	// repeated or in another case, as the members paygate rewrites are:
	// paygate read the first typed copy and the provider acts on the last
	// ({"type":"text"} then {"type":"json_object"}: the model wrote JSON and
	// the bot got paygate's clarification as plain text).
	ResponseFormat string

	// What ReadChat saw of the body it read, so that RewriteChat of the
	// same body does not search again.
	read chatRead
}

// chatRead is what ReadChat saw of the body it read: where it names the
// end user (identity, which also identifies the body) and whether it has a
// "stream_options" member.
type chatRead struct {
	identity
	streamOptions bool
}

// ReadChat validates body as a JSON object and reads the fields routing needs
// in one walk over its top-level members (the byte walker of
// internal/jsonscan), each value skipped by its brackets and quotes.
//
// A member paygate reads or rewrites (chatMembers, and the names in watch:
// the providers' drop_fields) must not appear twice at the top level, nor
// stream_options' include_usage within it: paygate, as every gjson or sjson
// path, acts on the first of a repeated member, while most JSON parsers, a
// provider's among them, keep the last. The body would route, account and
// hide the user by one value and be served by another, so it is an
// ErrBadRequest naming the member.
func ReadChat(body []byte, watch ...string) (Chat, error) {
	var top [topMembers]jsonscan.Member
	msgs := jsonscan.Check{Field: chatMessagesField} // the messages, checked as validObject walks them
	ms, all, err := validObject(body, top[:0], &msgs)
	if err != nil {
		return Chat{}, err
	}
	s := unsafeString(body)
	i := jsonscan.SkipSpace(s, 0)
	if s[i] != '{' {
		return Chat{}, fmt.Errorf("%w: the body must be a JSON object", ErrBadRequest)
	}
	var f [len(chatMembers)]jsonscan.Member // the member of each name, if any
	if err := topMembersOf(s, i, ms, all, chatMembers[:], chatChecked, f[:], watch); err != nil {
		return Chat{}, err
	}
	raw := func(j int) string { return s[f[j].At:f[j].End] } // "" for none
	c := Chat{read: chatRead{identity: newIdentity(body, i, f[:])}}
	c.Model = stringValue(raw(chatModel))
	if c.Model == "" {
		if err := modelTypeError(raw(chatModel)); err != nil {
			return Chat{}, err
		}
		return Chat{}, fmt.Errorf("%w: you must provide a model parameter", ErrBadRequest)
	}
	if v := raw(chatMessages); v == "" || v[0] != '[' {
		return Chat{}, paramError("messages", "'messages' must be an array")
	}
	// validObject checked the first "messages" spelled so; the member read
	// is another (spelled with escapes), or an ambiguous one's error is
	// to be named, by a walk of the messages alone.
	if msgs.At != f[chatMessages].At || msgs.Ambiguous {
		if err := checkMessageMembers(s, f[chatMessages].At); err != nil {
			return Chat{}, err
		}
	}
	if c.Stream, err = strictBool("stream", raw(chatStream)); err != nil {
		return Chat{}, err
	}
	c.User = stringValue(raw(chatUser))
	if m := f[chatStreamOptions]; m.End != 0 {
		c.read.streamOptions = true
		if v := raw(chatStreamOptions); v[0] != '{' && v != "null" {
			// RewriteChat sets include_usage in it: a string or a number
			// would be replaced by an object the bot never sent, an array
			// refused by sjson in words that name no member.
			return Chat{}, typeError("stream_options", "an object", v)
		}
		if s[m.At] == '{' {
			// include_usage is read here and set by RewriteChat: the same
			// rule as at the top level.
			var u [1]jsonscan.Member
			if err := readMembers(s, m.At, includeUsageName[:], len(includeUsageName), u[:], nil); err != nil {
				return Chat{}, inStreamOptions(err)
			}
			if c.WantsUsage, err = strictBool("include_usage", s[u[0].At:u[0].End]); err != nil {
				return Chat{}, inStreamOptions(err)
			}
		}
	}
	c.HasTools = f[chatTools].End != 0
	c.HasFunctions = f[chatFunctions].End != 0
	c.HasPrediction = f[chatPrediction].End != 0 && raw(chatPrediction) != "null"
	if c.Choices, err = choicesValue(raw(chatN)); err != nil {
		return Chat{}, err
	}
	c.ToolChoice = raw(chatToolChoice)
	c.FunctionCall = raw(chatFunctionCall)
	for _, j := range [...]int{chatToolChoice, chatFunctionCall} {
		if err := checkChoiceKeys(chatMembers[j], raw(j)); err != nil {
			return Chat{}, err
		}
	}
	c.Stop = raw(chatStop)
	for k := range nestedChecked {
		n := &nestedChecked[k]
		// response_format's type shapes the turn's answer (JSON mode), and
		// a thinking budget ends a payment turn at "length" (the proxy's
		// capSpent): the same rule as at the top level.
		if m := f[n.member]; m.End != 0 && s[m.At] == '{' {
			var u [1]jsonscan.Member
			if err := readMembers(s, m.At, n.name[:], len(n.name), u[:], nil); err != nil {
				return Chat{}, inMember(chatMembers[n.member], err)
			}
		}
	}
	c.ResponseFormat = raw(chatResponseFormat)
	cloneStrings(&c.Model, &c.User, &c.ToolChoice, &c.FunctionCall, &c.Stop, &c.ResponseFormat) // views of body until now
	return c, nil
}

// chatMessagesField is the members of a chat body's messages that paygate
// reads (jsonscan.AmbiguousValue): a message's role, content, tool_call_id,
// tool_calls, legacy function_call and name, a content part's type and text, a
// call's id, type, function and custom, and their name and arguments (or
// input). paygate's readers
// (gjson: the state message's place before the last user message, the
// restore of kept payment exchanges, the place it is kept for (the
// fingerprint of the message before, its text parts' text joined) and its
// renaming of the ids the bot's messages take, the budget a user's message
// already spent; failover's continuation of an assistant prefix and its
// thinking blocks sent as text; a payment tool's call or named result in
// the bot's history, hasPaymentCalls) take a repeated member's first copy and
// only the exact name; the provider's parser the last, and a Go-based one
// any case, Unicode's folding too (Fold). A history the end user's client
// wrote (a web chat that sends its transcript) could then read one way to
// paygate and another to the model: the payment state placed before a
// message the model reads as a system one, a forged result answering a
// restored payment call under the id paygate never saw taken, or a kept
// payment exchange restored after a message whose text paygate took for
// the one it was kept after while the model reads another. Such a body is
// an ErrBadRequest naming the member by its path, as a repeat at the top
// level is. The top level's own members are checked by ReadChat, which
// checks the messages on the walk that validates the body (a
// jsonscan.Check), and walks them alone (jsonscan.AmbiguousValue) only
// to name the member it found, or for a "messages" spelled with escapes.
var chatMessagesField = func() *jsonscan.Field {
	fn := &jsonscan.Level{Fold: true, Fields: []jsonscan.Field{{Name: "name"}, {Name: "arguments"}}}
	custom := &jsonscan.Level{Fold: true, Fields: []jsonscan.Field{{Name: "name"}, {Name: "input"}}}
	call := &jsonscan.Level{Fold: true, Fields: []jsonscan.Field{{Name: "id"}, {Name: "type"}, {Name: "function", Below: fn}, {Name: "custom", Below: custom}}}
	part := &jsonscan.Level{Fold: true, Fields: []jsonscan.Field{{Name: "type"}, {Name: "text"}}}
	msg := &jsonscan.Level{Fold: true, Fields: []jsonscan.Field{{Name: "role"}, {Name: "content", Below: part, Elements: true},
		{Name: "tool_call_id"}, {Name: "tool_calls", Below: call, Elements: true}, {Name: "function_call", Below: fn},
		// A result's name, which names the payment tool a forged one
		// answers (the proxy's hasPaymentCalls).
		{Name: "name"}}}
	return &jsonscan.Field{Name: "messages", Below: msg, Elements: true}
}()

// checkMessageMembers is the ErrBadRequest of a chat body's messages, the
// array at s[at], when they name a member of chatMessagesField twice in
// one object or in another case; nil when they do not. Its param is the
// member's path as OpenAI's errors name one ("messages[1].content[0].text"),
// and its message says where the member is and what to send instead.
func checkMessageMembers(s string, at int) error {
	var d jsonscan.Dup
	if !jsonscan.AmbiguousValue(s, at, chatMessagesField, &d) {
		return nil
	}
	param := d.Param()
	where := strings.TrimSuffix(param[:len(param)-len(d.Key)], ".")
	if d.Case {
		return paramError(param, "the member %q in %s is %q to some providers (their JSON parsers ignore case); spell it %q", d.Key, where, d.Name, d.Name)
	}
	return paramError(param, "the member %q appears more than once in %s; send it once", d.Name, where)
}

// The members ReadChat reads, by their index in chatMembers. tool_choice is
// read as it is (Chat.ToolChoice) and watched: the clarification round sets
// it (SetToolChoiceNone).
// functions, like tools, is checked for names that clash with the payment
// tools': a second copy would reach the provider unchecked. function_call
// is read as tool_choice is (Chat.FunctionCall). max_tokens and
// max_completion_tokens are only checked: a payment turn lowers them in
// each round after the first to what the rounds left of the bot's cap
// (the proxy's capLeft, by an sjson path: the first copy), and the
// provider reads the last. thinking and reasoning, and the budget inside
// them (nestedChecked), likewise: a payment turn ends at "length" when
// its rounds left no more of the cap than that budget (capSpent). The
// first ones, up to chatMetadata, are those ReadPassthrough reads too:
// routing and the end user's identity (identity.go).
const (
	chatModel = iota
	chatStream
	chatUser
	chatSafetyID
	chatCacheKey
	chatMetadata
	chatStreamOptions
	chatMessages
	chatTools
	chatToolChoice
	chatN
	chatFunctions
	chatFunctionCall
	chatPrediction
	chatResponseFormat
	chatMaxTokens
	chatMaxCompletionTokens
	chatStop
	chatThinking
	chatReasoning
	// chatChecked: the members above, all of chatMembers, are refused
	// repeated or in another case (readMembers).
	chatChecked
)

var (
	chatMembers = [...]string{"model", "stream", "user", "safety_identifier", "prompt_cache_key", "metadata",
		"stream_options", "messages", "tools", "tool_choice", "n", "functions", "function_call", "prediction",
		"response_format", "max_tokens", "max_completion_tokens", "stop", "thinking", "reasoning"}
	includeUsageName = [...]string{"include_usage"}
	// nestedChecked are the members ReadChat refuses repeated or in
	// another case inside an object member, beside stream_options'
	// include_usage: response_format's type, and the thinking budget of
	// Anthropic's thinking and of OpenRouter's reasoning, which the proxy
	// reads (by gjson path, the first copy) to end a payment turn whose
	// rounds left no more of the bot's cap than it.
	nestedChecked = [...]struct {
		member int
		name   [1]string
	}{{chatResponseFormat, [1]string{"type"}}, {chatThinking, [1]string{"budget_tokens"}}, {chatReasoning, [1]string{"max_tokens"}}}
	// choiceKeys are the keys ReadPaymentChoice reads in a tool_choice or
	// function_call.
	choiceKeys = [...]string{"type", "function", "custom", "name", "allowed_tools", "tools", "mode"}
)

// checkChoiceKeys refuses a tool_choice or function_call (member, its raw
// value v in valid JSON) that repeats a key within one of its objects, at
// any depth, or spells a key paygate reads there (choiceKeys) in another
// case: ReadPaymentChoice, as every gjson path, reads the first of a
// repeated key and the key as spelled, while most JSON parsers keep the
// last and Go's match names case-insensitively. {"type":"function",
// "function":{"name":"create_order"},"function":{"name":"get_weather"}}
// read two ways let the payment tools be offered and their calls run
// against what the provider was told. Keys of one object that are the
// same but for case are a repeat to Go's parsers too. The walk keeps its
// own stack (no recursion however deep the nesting) and a map per object
// (no quadratic search however many its keys).
func checkChoiceKeys(member, v string) error {
	if v == "" || v[0] != '{' && v[0] != '[' {
		return nil
	}
	type level struct {
		object bool
		keys   map[string]string // folded key → the key as sent
	}
	var stack []level
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '{', '[':
			stack = append(stack, level{object: v[i] == '{'})
		case '}', ']':
			stack = stack[:len(stack)-1]
		case '"':
			e := jsonscan.StringEnd(v, i+1)
			if e < 0 {
				return nil // not reached: the body is valid JSON
			}
			top := len(stack) - 1
			if j := jsonscan.SkipSpace(v, e+1); j < len(v) && v[j] == ':' && top >= 0 && stack[top].object {
				k := jsonscan.KeyName(v[i+1 : e])
				f := foldKey(k)
				if prev, ok := stack[top].keys[f]; ok {
					if prev == k {
						return paramError(member, "the member %q appears more than once in %s; send it once", k, member)
					}
					return paramError(member, "the member %q is %q in %s to some providers (their JSON parsers ignore case); send it once", k, prev, member)
				}
				if foldable(k) {
					for _, name := range choiceKeys {
						if strings.EqualFold(k, name) {
							return paramError(member, "the member %q is %q in %s to some providers (their JSON parsers ignore case); spell it %q", k, name, member, name)
						}
					}
				}
				if stack[top].keys == nil {
					stack[top].keys = make(map[string]string)
				}
				stack[top].keys[f] = k
			}
			i = e
		}
	}
	return nil
}

// foldKey is k with each rune replaced by the least of its case-folding
// orbit (unicode.SimpleFold): two keys strings.EqualFold calls equal have
// the same foldKey.
func foldKey(k string) string {
	b := make([]rune, 0, len(k))
	for _, r := range k {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		b = append(b, m)
	}
	return string(b)
}

// readMembers walks the members of the object whose '{' is s[i], in valid
// JSON, and sets f[j] to the member named names[j] (f[j].end stays 0 when
// there is none; the first when it repeats). A member named in
// names[:checked] or in watch that appears twice is an ErrBadRequest, and
// so is a key that is one of those names in another case: Go's encoding/json, in Go-based providers and relays
// (Ollama, LocalAI, one-api), matches member names case-insensitively, with
// Unicode folding ("uſer" is "user"), the last match winning, so such a
// key is the member there while paygate reads or rewrites another. It
// allocates nothing unless a key is escaped or watch has over 64 names.
func readMembers(s string, i int, names []string, checked int, f []jsonscan.Member, watch []string) error {
	var r memberMatch
	for i++; ; {
		m, ok := jsonscan.NextMember(s, i, true)
		if !ok {
			return nil
		}
		i = m.End
		if err := r.match(m, names, checked, f, watch); err != nil {
			return err
		}
	}
}

// topMembersOf is readMembers of the body's object at s[i]: of ms, the
// members validObject listed, when it listed all of them (all), else by
// readMembers' own walk.
func topMembersOf(s string, i int, ms []jsonscan.Member, all bool, names []string, checked int, f []jsonscan.Member, watch []string) error {
	if !all {
		return readMembers(s, i, names, checked, f, watch)
	}
	return matchMembers(ms, names, checked, f, watch)
}

// matchMembers is readMembers of an object whose members ms are, in
// order, as validObject found them.
func matchMembers(ms []jsonscan.Member, names []string, checked int, f []jsonscan.Member, watch []string) error {
	var r memberMatch
	for _, m := range ms {
		if err := r.match(m, names, checked, f, watch); err != nil {
			return err
		}
	}
	return nil
}

// memberMatch is what readMembers has seen of an object's members.
type memberMatch struct {
	seen     uint64 // watch[j] seen, for j < 64
	seenMore []bool
}

// match takes the object's next member m, as readMembers says.
func (r *memberMatch) match(m jsonscan.Member, names []string, checked int, f []jsonscan.Member, watch []string) error {
	k := jsonscan.KeyName(m.Key)
	// Only a key with an upper-case or non-ASCII letter can fold to a
	// lower-case name without being it; other keys skip EqualFold.
	fold := foldable(k)
	if t := byLenOf(names); t != nil && !fold && len(k) < len(t) {
		// No EqualFold can match a key that does not fold: only the names
		// of its length are compared.
		for _, j := range t[len(k)] {
			if j == 0 {
				break
			}
			if j--; k == names[j] {
				if f[j].End == 0 {
					f[j] = m
				} else if int(j) < checked {
					return repeatedMember(names[j])
				}
				break
			}
		}
	} else {
		if err := r.matchName(m, k, fold, names, checked, f); err != nil {
			return err
		}
	}
	return r.matchWatch(k, fold, watch)
}

// matchName is match's search of names for the key k, fold: foldable(k).
func (r *memberMatch) matchName(m jsonscan.Member, k string, fold bool, names []string, checked int, f []jsonscan.Member) error {
	for j, name := range names {
		if k == name {
			if f[j].End == 0 {
				f[j] = m
			} else if j < checked {
				return repeatedMember(name)
			}
			break
		}
		if fold && j < checked && strings.EqualFold(k, name) {
			return caseVariant(k, name)
		}
	}
	return nil
}

// matchWatch is match's search of watch for the key k, fold: foldable(k).
func (r *memberMatch) matchWatch(k string, fold bool, watch []string) error {
	for j, name := range watch {
		if k != name {
			// A watched name (drop_fields) may have upper-case letters.
			if (fold || len(k) == len(name)) && strings.EqualFold(k, name) {
				return caseVariant(k, name)
			}
			continue
		}
		if j < 64 {
			if r.seen&(1<<j) != 0 {
				return repeatedMember(name)
			}
			r.seen |= 1 << j
			continue
		}
		if r.seenMore == nil {
			r.seenMore = make([]bool, len(watch)-64)
		}
		if r.seenMore[j-64] {
			return repeatedMember(name)
		}
		r.seenMore[j-64] = true
	}
	return nil
}

// byLen lists, by a key's length, the indexes of chatMembers (each one
// more, 0 ending the list) of names that long: a key that does not fold
// is compared with those alone, not with all twenty (about 1,100
// instructions of a non-stream turn).
type byLen [22][3]int8

var chatByLen = func() (t byLen) {
	for j, name := range chatMembers {
		c := 0
		for c < len(t[len(name)]) && t[len(name)][c] != 0 {
			c++
		}
		if c == len(t[len(name)]) {
			panic("interceptors: chatByLen has no room for " + name) // grow byLen
		}
		t[len(name)][c] = int8(j + 1)
	}
	return t
}()

// byLenOf is the byLen of names, nil when it has none.
func byLenOf(names []string) *byLen {
	if len(names) == len(chatMembers) && unsafe.SliceData(names) == &chatMembers[0] {
		return &chatByLen
	}
	return nil
}

// foldable reports an upper-case ASCII letter or a non-ASCII byte in k.
func foldable(k string) bool {
	for i := 0; i < len(k); i++ {
		if c := k[i]; c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			return true
		}
	}
	return false
}

func caseVariant(key, name string) error {
	return paramError(name, "the member %q is %q to some providers (their JSON parsers ignore case); spell it %q", key, name, name)
}

func repeatedMember(name string) error {
	return paramError(name, "the member %q appears more than once; send it once", name)
}

// Passthrough is what paygate reads of a JSON body on another /v1 path
// (embeddings, moderations, responses, …): the members it routes by or
// rewrites.
type Passthrough struct {
	// Model is the body's "model" if it is a string; "" otherwise.
	Model  string
	Stream bool
	// User is the body's "user" if it is a string; HasUser: the body has
	// a "user" member, whatever its value.
	User    string
	HasUser bool

	// Where the body names its end user, for RewritePassthrough.
	read identity
}

// ReadPassthrough validates body as JSON and reads the members of
// Passthrough; a body that is not an object has none. As in ReadChat, a
// body that repeats one of them, or a member named in watch, at the top
// level is an ErrBadRequest.
func ReadPassthrough(body []byte, watch ...string) (Passthrough, error) {
	var top [topMembers]jsonscan.Member
	ms, all, err := validObject(body, top[:0], nil)
	if err != nil {
		return Passthrough{}, err
	}
	s := unsafeString(body)
	i := jsonscan.SkipSpace(s, 0)
	if s[i] != '{' {
		return Passthrough{}, nil
	}
	var f [len(passthroughMembers)]jsonscan.Member
	if err := topMembersOf(s, i, ms, all, passthroughMembers[:], len(passthroughMembers), f[:], watch); err != nil {
		return Passthrough{}, err
	}
	p := Passthrough{read: newIdentity(body, i, f[:])}
	p.Model = stringValue(s[f[chatModel].At:f[chatModel].End])
	if err := modelTypeError(s[f[chatModel].At:f[chatModel].End]); err != nil {
		return Passthrough{}, err
	}
	if p.Stream, err = strictBool("stream", s[f[chatStream].At:f[chatStream].End]); err != nil {
		return Passthrough{}, err
	}
	p.User = stringValue(s[f[chatUser].At:f[chatUser].End])
	p.HasUser = f[chatUser].End != 0
	cloneStrings(&p.Model, &p.User)
	return p, nil
}

// passthroughMembers are the members ReadPassthrough reads, the first of
// chatMembers: routing and identity.
var passthroughMembers = [...]string{chatModel: "model", chatStream: "stream", chatUser: "user",
	chatSafetyID: "safety_identifier", chatCacheKey: "prompt_cache_key", chatMetadata: "metadata"}

// inStreamOptions is err, about a member of "stream_options", with its
// param the member's path.
func inStreamOptions(err error) error { return inMember("stream_options", err) }

// inMember is err, a ParamError about a member of the top-level member
// parent, naming it by its path ("response_format.type") and saying where
// it is.
func inMember(parent string, err error) error {
	var pe *ParamError
	if errors.As(err, &pe) {
		return &ParamError{Param: parent + "." + pe.Param, msg: "in " + parent + ", " + pe.msg}
	}
	return err
}

// strictBool reads the raw value v of the boolean member name: true, false,
// null or absent ("") as OpenAI's API accepts them. Anything else is an
// ErrBadRequest, because providers' validators read it differently
// (pydantic's lax mode, in vLLM and LiteLLM, takes "yes", "on" and 1 as
// true; gjson takes "yes" as false), and paygate would stream, refuse
// streaming or account by another reading than the provider's.
func strictBool(name, v string) (bool, error) {
	switch v {
	case "true":
		return true, nil
	case "", "false", "null":
		return false, nil
	}
	return false, paramError(name, "'%s' must be true, false or null", name)
}

// choicesValue reads the raw value v of "n": an integer (2.0 is one), null
// or absent (0). Anything else is an ErrBadRequest, for the reason of
// strictBool: pydantic reads "2" as 2, and paygate's refusal of n > 1 would
// not see it.
func choicesValue(v string) (int, error) {
	if v == "" || v == "null" {
		return 0, nil
	}
	if n := gjson.Parse(v); n.Type == gjson.Number && n.Num == math.Trunc(n.Num) {
		return int(n.Int()), nil
	}
	return 0, paramError("n", "'n' must be an integer")
}

// Privacy decides what a provider learns about the end user (SPEC 2.2).
type Privacy struct {
	// Mode is "hash", "drop" or "keep".
	Mode string
	// Key keys the hash; stable across restarts and replicas.
	Key []byte

	macs   *sync.Pool  // *keyedMAC: keyed HMAC-SHA256 states, reset between uses
	hashes *userHashes // the last users' hashes
}

// userHashes keeps the hash of recent end users, one per slot of a table
// indexed by the user: a user's requests come in runs (a conversation's
// turns, each payment round's follow-up), and each hash is two SHA-256
// blocks, about 5,500 instructions, on every request of a known user. A
// slot holds one user at a time; a user whose slot another took is hashed
// again. It holds at most userHashSlots users, pseudonyms paygate already
// sends, with the OpenIDs they stand for.
type userHashes struct {
	seed  maphash.Seed
	slots [userHashSlots]atomic.Pointer[userHash]
}

// userHash is one user's hash, never changed once in a slot.
type userHash struct{ client, user, hash string }

// userHashSlots is how many users userHashes keeps: about 100 KB of
// OpenIDs, at most about 400 KB (keptIDMax).
const userHashSlots = 1024

// keptIDMax is the most bytes of client and user together whose hash
// userHashes keeps: an end user's id is at most 256 bytes, but Identifier
// also hashes a body's safety_identifier and prompt_cache_key, which no
// limit but max_body_bytes holds, and 1,024 of those kept would hold that
// many bodies' worth of memory. A longer value is hashed each time.
const keptIDMax = 320

// get is the hash of user of client, if its slot holds it.
func (c *userHashes) get(client, user string) (*atomic.Pointer[userHash], string, bool) {
	slot := &c.slots[maphash.String(c.seed, user)%userHashSlots]
	if e := slot.Load(); e != nil && e.user == user && e.client == client {
		return slot, e.hash, true
	}
	return slot, "", false
}

// keyedMAC is a pooled HMAC state with a scratch buffer for its input: a
// []byte handed to hash.Hash.Write escapes, so converting the strings on
// each call would allocate.
type keyedMAC struct {
	h   hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

// NewPrivacy is a Privacy whose hash reuses its keyed HMAC states: keying
// one is two SHA-256 blocks and four allocations, on every request of a
// known user.
func NewPrivacy(mode string, key []byte) Privacy {
	return Privacy{Mode: mode, Key: key, macs: &sync.Pool{New: func() any {
		return &keyedMAC{h: hmac.New(sha256.New, key), buf: make([]byte, 0, 128)}
	}}, hashes: &userHashes{seed: maphash.MakeSeed()}}
}

// Forward returns the value to send as "user" for an end user of a client,
// and whether to send the field at all.
func (p Privacy) Forward(client, user string) (string, bool) {
	switch p.Mode {
	case "keep":
		return user, true
	case "drop":
		return "", false
	}
	var slot *atomic.Pointer[userHash]
	if p.hashes != nil && len(client)+len(user) <= keptIDMax {
		var h string
		var ok bool
		if slot, h, ok = p.hashes.get(client, user); ok {
			return h, true
		}
	}
	var km *keyedMAC
	if p.macs != nil {
		km = p.macs.Get().(*keyedMAC)
		defer func() {
			if cap(km.buf) <= 1<<10 {
				p.macs.Put(km)
			}
		}()
	} else {
		km = &keyedMAC{h: hmac.New(sha256.New, p.Key)}
	}
	h := km.userHash(client, user)
	if slot != nil {
		// Copies: the caller's strings may be views of a request body
		// (Identifier's values), which outlives no request.
		slot.Store(&userHash{client: strings.Clone(client), user: strings.Clone(user), hash: h})
	}
	return h, true
}

// userHash is "u_" and the first 16 bytes of HMAC-SHA256(key, client NUL
// user) in hex. It leaves the state reset for the next use.
func (km *keyedMAC) userHash(client, user string) string {
	km.buf = append(append(append(km.buf[:0], client...), 0), user...)
	km.h.Write(km.buf)
	var out [2 + 32]byte
	copy(out[:], "u_")
	hex.Encode(out[2:], km.h.Sum(km.sum[:0])[:16])
	km.h.Reset()
	return string(out[:])
}

// Upstream describes the changes to make to a chat body before routing.
type Upstream struct {
	Client string
	// EndUser is the resolved end user (X-WeChat-OpenID, else the body's user).
	EndUser string
	Privacy Privacy
	// ForceUsage sets stream_options.include_usage so paygate can account a
	// streamed turn; the proxy then withholds the usage chunk from a client
	// that did not ask for it.
	ForceUsage bool
}

var includeUsage = []byte(`{"include_usage":true}`)

// RewriteChat applies the request-side patches of SPEC 3 step 3 that do not
// depend on the target (failover sets "model" and drops fields per target):
// the end user's identity as privacy.forward_user says (identity.go) and
// the stream usage paygate accounts by. The result shares no memory with
// body.
func RewriteChat(body []byte, c Chat, u Upstream) ([]byte, error) {
	id := &c.read.identity
	if !id.readFrom(body) {
		id = findIdentity(body)
	}
	out := id.rewrite(body, u)
	var err error
	if u.ForceUsage && c.Stream && !c.WantsUsage {
		has := c.read.streamOptions
		if !c.read.readFrom(body) {
			has = gjson.GetBytes(body, "stream_options").Exists()
		}
		var appended bool
		if !has {
			// The usual stream request has no stream_options: the member is
			// appended in one copy, where sjson would parse the path and
			// rebuild the body (2 µs of a stream request's rewrite).
			var o []byte
			if o, appended = appendMember(out, `"stream_options":`, includeUsage); appended {
				out = o
			}
		}
		if !appended {
			if out, err = sjson.SetBytes(out, "stream_options.include_usage", true); err != nil {
				return nil, fmt.Errorf("setting include_usage: %w", err)
			}
		}
	}
	if len(out) > 0 && &out[0] == &body[0] {
		out = append([]byte(nil), body...)
	}
	return out, nil
}

// validObject is the ErrBadRequest of a body that is not JSON. A UTF-8
// byte-order mark, which some Windows tools write first, is named: JSON
// allows none (RFC 8259), and "not valid JSON" hides the one byte at fault.
// So is a body nested deeper than MaxNesting, before any parse: gjson's
// validation recurses once per level, and a body of nothing but brackets
// (8 MiB at the default server.max_body_bytes) held 512 MB of stack and
// seconds of CPU per request, and past 1 GB of stack (a larger limit)
// the whole process died of a fatal stack overflow.
//
// One pass (jsonscan.ValidMembers) accepts what the two checks accept, and
// appends the members of a body that is an object to top, for a reader of
// the top level (matchMembers) to need no walk of its own; only a body it
// refuses is measured and parsed again, to name its fault. It appends no
// more than top has room for, all false when there were more: top is
// not grown on the heap, 40 bytes a member (330 MB for an 8 MiB body of
// "":0 members), and their reader walks the object itself (readMembers).
// The value of a member c names is checked on the same pass (ValidMembers).
func validObject(body []byte, top []jsonscan.Member, c *jsonscan.Check) (ms []jsonscan.Member, all bool, err error) {
	if ms, all, ok := jsonscan.ValidMembers(unsafeString(body), MaxNesting, top, c); ok {
		return ms, all, nil
	}
	if jsonstr.NestedOver(unsafeString(body), MaxNesting) {
		return nil, false, fmt.Errorf("%w: the body is nested more than %d levels deep", ErrBadRequest, MaxNesting)
	}
	// gjson.ValidBytes accepts no body ValidMembers refuses (FuzzValid):
	// none is taken as valid here with no members found, which would
	// forward its "user" unread.
	if bytes.HasPrefix(body, []byte("\xef\xbb\xbf")) {
		return nil, false, fmt.Errorf("%w: the body starts with a UTF-8 byte-order mark, which JSON does not allow: send it without one", ErrBadRequest)
	}
	return nil, false, fmt.Errorf("%w: the body is not valid JSON", ErrBadRequest)
}

// topMembers is how many top-level members of a body ReadChat and
// ReadPassthrough hold on the stack; a body with more is read by a walk
// of its own (readMembers). A chat request sends about a dozen.
const topMembers = 32

// MaxNesting is how deeply a client body's arrays and objects may nest.
// No chat request or tool schema comes near it, and the providers refuse
// deeper bodies too (Python's json stops near 1000 levels), so a deeper
// one is refused before it costs a parse.
const MaxNesting = 1000
