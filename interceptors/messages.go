package interceptors

import (
	"math"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/jsonscan"
	"github.com/paygate/paygate/internal/jsonstr"
)

// Reasoning is what a thinking model produced in a tool round besides its
// text, which some providers want back on the round's assistant message.
type Reasoning struct {
	// Content is the round's reasoning text: the reasoning_content (or
	// reasoning) deltas of a stream, a message's reasoning_content (or
	// reasoning).
	Content string
	// Key is the member the provider sent Content in, KeyReasoningContent or
	// KeyReasoning, and the one it goes back in: each provider knows only
	// its own name for it (DeepSeek requires reasoning_content back, Groq
	// refuses it with 400 and wants reasoning). "" is KeyReasoningContent.
	Key string
	// Details is a message's reasoning_details array as the provider sent
	// it (OpenRouter), nil when there is none.
	Details []byte
	// Parts is a message's content when the provider gave it as an array
	// of parts (Mistral's reasoning models: a "thinking" block and "text"
	// blocks), raw, nil otherwise. It goes back as the assistant message's
	// content in place of the text: the model's thinking and words as it
	// wrote them (https://docs.mistral.ai/resources/cookbooks/mistral-reasoning).
	Parts []byte
}

// The two names providers give a message's reasoning text.
const (
	KeyReasoningContent = "reasoning_content" // DeepSeek, vLLM
	KeyReasoning        = "reasoning"         // Groq, OpenRouter
)

// AssistantToolMessage renders the assistant message of a tool round, to be
// appended to the conversation before the tool results:
//
//	{"role":"assistant","content":…,"tool_calls":[{"id","type":"function","function":{"name","arguments"}, …Extra}]}
//
// A custom tool's call (ToolCall.Custom) is rendered as one,
// {"id","type":"custom","custom":{"name","input"}, …Extra}: as the model
// made it, for the provider's history and for the bot, whose SDK reads the
// call only from the member of its type.
// Empty content is sent as null (some providers reject an empty text part
// next to tool calls). Each call's Extra members (Gemini's
// extra_content.google.thought_signature, say) go back on the call exactly as
// the provider sent them, because some providers refuse the next round
// without them. Empty arguments are sent as "{}": the provider parses them
// (and see ParsableArguments); a custom call's input is text, and goes back
// as it came, empty or not.
func AssistantToolMessage(content string, calls []ToolCall) []byte {
	return AssistantToolMessageWith(content, Reasoning{}, calls)
}

// EchoesCall reports whether a legacy function_call of name with
// arguments args is the echo of one of a round's tool calls, calls: a
// function call of the same name with the same arguments. Some servers
// put the one call in both shapes at once (llama-cpp-python's
// _convert_completion_to_chat_function, in the message and in every
// streamed delta); read as two, a create_order ran twice, or its echo,
// refused beyond the budget, had the model ask the user about the order
// it had just made.
func EchoesCall(calls []ToolCall, name, args string) bool {
	for _, c := range calls {
		if !c.Custom && c.Name == name && c.Arguments == args {
			return true
		}
	}
	return false
}

// RepeatedObject returns the one JSON object that args is, byte for byte,
// two or more times over (white space around each copy allowed), and true;
// args and false for any other arguments. Some servers stream a call's
// arguments and then send the whole JSON again in a later delta, or send
// the complete object in every delta, so the arguments joined by index are
// one object twice (anomalyco/opencode#17339, GLM-style servers;
// NousResearch/hermes-agent#35718): every reading of such arguments is the
// same call. Different objects one after the other, or a piece of one
// before a whole one, are not: which the model meant is not for a reader
// to guess. Arguments nested deeper than MaxNesting are left as they are.
func RepeatedObject(args string) (string, bool) {
	i := jsonscan.SkipSpace(args, 0)
	if i == len(args) || args[i] != '{' || jsonstr.NestedOver(args, MaxNesting) {
		return args, false
	}
	end := jsonscan.SkipValue(args, i)
	if end < 0 {
		return args, false
	}
	one, rest := args[i:end], jsonscan.SkipSpace(args, end)
	if rest == len(args) || !gjson.Valid(one) {
		return args, false
	}
	for rest < len(args) {
		if !strings.HasPrefix(args[rest:], one) {
			return args, false
		}
		rest = jsonscan.SkipSpace(args, rest+len(one))
	}
	return one, true
}

// FencedObject returns the one JSON object that args holds inside a
// Markdown code fence and nothing else ("```json\n{…}\n```", or the fence
// without "json"; white space around each part allowed), and true; args
// and false for any other arguments. Some models and gateways send a call's
// arguments so (earendil-works/pi#8858, from DeepSeek; OpenRouter in
// just-every/code#355). A fence of another language, or one holding more
// than the object, is not read: which part is the call is not for a reader
// to guess.
func FencedObject(args string) (string, bool) {
	const fence = "```"
	i := jsonscan.SkipSpace(args, 0)
	if !strings.HasPrefix(args[i:], fence) {
		return args, false
	}
	i += len(fence)
	if strings.HasPrefix(args[i:], "json") {
		i += len("json")
	}
	i = jsonscan.SkipSpace(args, i)
	if i == len(args) || args[i] != '{' || jsonstr.NestedOver(args, MaxNesting) {
		return args, false
	}
	end := jsonscan.SkipValue(args, i)
	if end < 0 {
		return args, false
	}
	rest := jsonscan.SkipSpace(args, end)
	if !strings.HasPrefix(args[rest:], fence) || jsonscan.SkipSpace(args, rest+len(fence)) != len(args) {
		return args, false
	}
	if one := args[i:end]; gjson.Valid(one) {
		return one, true
	}
	return args, false
}

// EncodedObject returns the one JSON object that args, a JSON string,
// holds and nothing else (white space around either allowed), and true;
// args and false for any other arguments. Some models and servers
// serialize arguments already serialized, so the object comes encoded
// twice (vLLM's hermes parser with Granite 4, vllm-project/vllm#54964;
// Qwen2.5 in FoundationAgents/OpenManus#989). A string holding an array,
// text, another string or more than the object is not read: which part
// is the call is not for a reader to guess. Arguments nested deeper than
// MaxNesting are left as they are.
func EncodedObject(args string) (string, bool) {
	i := jsonscan.SkipSpace(args, 0)
	if i == len(args) || args[i] != '"' || jsonstr.NestedOver(args, MaxNesting) || !gjson.Valid(args) {
		return args, false
	}
	inner := gjson.Parse(args)
	if inner.Type != gjson.String {
		return args, false
	}
	s := inner.Str
	j := jsonscan.SkipSpace(s, 0)
	if j == len(s) || s[j] != '{' || jsonstr.NestedOver(s, MaxNesting) {
		return args, false
	}
	end := jsonscan.SkipValue(s, j)
	if end < 0 || jsonscan.SkipSpace(s, end) != len(s) {
		return args, false
	}
	if one := s[j:end]; gjson.Valid(one) {
		return one, true
	}
	return args, false
}

// ParsableArguments returns calls with the arguments that are not JSON (a
// call cut by max_tokens: `{"sku":"prem`; a Python-style dict) replaced by
// "{}", for the payment calls of an assistant message paygate sends a
// provider back: vLLM and SGLang answer 400 to a history whose arguments do
// not parse, which would end the turn instead of the clarification the
// call's result asks for and, in a kept exchange, fail every later request
// of the conversation. So are arguments that parse to no object (an
// array, a string holding the object, null, a number), which the payment
// tools refuse as such: SGLang answers 400 to them in a history too, and
// Gemini, whose function call arguments are an object (a Struct), the
// same. The bot's own calls are never passed through it:
// they are what the model wrote, and the bot's history carries them so.
// Nor is a custom call's input, which is text no provider parses.
// Arguments nested deeper than MaxNesting are replaced unparsed: the model's
// arguments come over any number of stream events, so no bound on an event
// bounds them, and gjson's validation recurses once per level (16 M levels
// passed the runtime's 1 GB stack limit and ended the process).
// A call without a name (StepFun and Xiaomi MiMo send some; one named twice
// is read as none), which the turn refuses, goes back named UnnamedCall,
// for the same reason: OpenAI answers an empty name in the history with a
// 400 ("function.name': empty string").
// calls itself is returned when nothing needs replacing.
func ParsableArguments(calls []ToolCall) []ToolCall {
	var out []ToolCall
	for i, c := range calls {
		argsOK := c.Custom || c.Arguments == "" ||
			!jsonstr.NestedOver(c.Arguments, MaxNesting) && gjson.Valid(c.Arguments) && gjson.Parse(c.Arguments).IsObject()
		if argsOK && c.Name != "" {
			if out != nil {
				out = append(out, c)
			}
			continue
		}
		if out == nil {
			out = append(make([]ToolCall, 0, len(calls)), calls[:i]...)
		}
		if !argsOK {
			c.Arguments = "{}"
		}
		if c.Name == "" {
			c.Name = UnnamedCall
		}
		out = append(out, c)
	}
	if out == nil {
		return calls
	}
	return out
}

// UnnamedCall is the name a refused call without one goes back to the
// provider under (ParsableArguments): a valid function name that names no
// tool, paygate's or, in all likelihood, the bot's. Its refusal is
// paygate's, so a follow-up reads it as a payment call's (the user was
// asked to clarify).
const UnnamedCall = "paygate_unnamed_call"

// AssistantToolMessageWith is AssistantToolMessage for a round that also
// produced reasoning: the message carries it, when there is any, under the
// name the provider gave it (Reasoning.Key: "reasoning_content" unless the
// provider said "reasoning"), and the reasoning_details array verbatim when
// there is one.
// DeepSeek's thinking mode answers the next request 400 ("The
// reasoning_content in the thinking mode must be passed back to the API")
// when the assistant message of a tool-call round lacks its reasoning
// (https://api-docs.deepseek.com/guides/thinking_mode); OpenRouter asks
// for reasoning_details back so the model can go on from its reasoning
// (https://openrouter.ai/docs/use-cases/reasoning-tokens). The name must
// not change on the way back: Groq answers a message that carries
// reasoning_content 400 ("property 'reasoning_content' is unsupported, did
// you mean 'reasoning'?").
func AssistantToolMessageWith(content string, r Reasoning, calls []ToolCall) []byte {
	out := make([]byte, 0, 64+len(content)+len(r.Content)+len(r.Details)+128*len(calls))
	out = append(out, `{"role":"assistant","content":`...)
	if p := trimSpace(r.Parts); len(p) > 2 && p[0] == '[' && p[len(p)-1] == ']' {
		out = append(out, p...)
	} else if content == "" {
		out = append(out, "null"...)
	} else {
		out = jsonstr.Append(out, content)
	}
	if r.Content != "" {
		if r.Key == KeyReasoning {
			out = append(out, `,"reasoning":`...)
		} else {
			out = append(out, `,"reasoning_content":`...)
		}
		out = jsonstr.Append(out, r.Content)
	}
	if d := trimSpace(r.Details); len(d) > 2 && d[0] == '[' && d[len(d)-1] == ']' && len(trimSpace(d[1:len(d)-1])) > 0 {
		out = append(out, `,"reasoning_details":`...)
		out = append(out, d...)
	}
	out = append(out, `,"tool_calls":[`...)
	for i, c := range calls {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"id":`...)
		out = jsonstr.Append(out, c.ID)
		if c.Custom {
			out = append(out, `,"type":"custom","custom":{"name":`...)
			out = jsonstr.Append(out, c.Name)
			out = append(out, `,"input":`...)
			out = jsonstr.Append(out, c.Arguments)
		} else {
			out = append(out, `,"type":"function","function":{"name":`...)
			out = jsonstr.Append(out, c.Name)
			out = append(out, `,"arguments":`...)
			args := c.Arguments
			if args == "" {
				args = "{}"
			}
			out = jsonstr.Append(out, args)
		}
		out = append(out, '}')
		if inner := objectInner(c.Extra); len(inner) > 0 {
			out = append(out, ',')
			out = append(out, inner...)
		}
		out = append(out, '}')
	}
	return append(out, "]}"...)
}

// ToolResultMessage renders a tool result message; the result JSON travels as
// the message's string content, as the Chat Completions API wants it.
func ToolResultMessage(callID string, result []byte) []byte {
	out := make([]byte, 0, 48+len(callID)+len(result)*5/4)
	out = append(out, `{"role":"tool","tool_call_id":`...)
	out = jsonstr.Append(out, callID)
	out = append(out, `,"content":`...)
	out = jsonstr.Append(out, string(result))
	return append(out, '}')
}

// FinalChunk renders the chunk that ends a turn on the client's stream: an
// empty delta with the turn's finish_reason, plus the top-level "paygate"
// extension (SPEC 2.3) when paygate is non-nil and the summed "usage" when
// usage is non-nil. Clients that read choices[0] of every chunk keep working.
// A non-empty role goes in the delta: the turn's one role delta, when no
// chunk before carried it (Capture.ClaimRole), for the Node SDK's stream
// helper fails an answer without one.
func FinalChunk(turnID string, model string, created int64, role, finish string, paygate []byte, usage *Usage) []byte {
	out := make([]byte, 0, 192+len(paygate))
	out = append(out, `{"id":`...)
	out = jsonstr.Append(out, turnID)
	out = append(out, `,"object":"chat.completion.chunk","created":`...)
	out = strconv.AppendInt(out, created, 10)
	out = append(out, `,"model":`...)
	out = jsonstr.Append(out, model)
	out = append(out, `,"choices":[{"index":0,"delta":{`...)
	if role != "" {
		out = jsonstr.Append(append(out, `"role":`...), role)
	}
	out = append(out, `},"logprobs":null,"finish_reason":`...)
	if finish == "" {
		out = append(out, "null"...)
	} else {
		out = jsonstr.Append(out, finish)
	}
	out = append(out, "}]"...)
	if paygate != nil {
		out = append(out, `,"paygate":`...)
		out = append(out, paygate...)
	}
	if usage != nil {
		out = append(out, `,"usage":`...)
		out = usage.AppendJSON(out)
	}
	return append(out, '}')
}

// AppendJSON appends the usage as an OpenAI usage object.
func (u *Usage) AppendJSON(out []byte) []byte {
	out = append(out, `{"prompt_tokens":`...)
	out = strconv.AppendInt(out, u.PromptTokens, 10)
	out = append(out, `,"completion_tokens":`...)
	out = strconv.AppendInt(out, u.CompletionTokens, 10)
	out = append(out, `,"total_tokens":`...)
	out = strconv.AppendInt(out, u.TotalTokens, 10)
	return append(out, '}')
}

// AppendUsage appends the usage object of a turn's rounds: objs are the
// usage objects the providers sent (RoundResult.UsageJSON, one per round
// that reported usage) and sum their counts summed. One object is appended
// byte for byte, so the bot gets exactly what the provider reported. Over
// several, the three counts are sum's; every other member any round sent
// is summed when numeric (DeepSeek's prompt_cache_hit_tokens and
// prompt_cache_miss_tokens, https://api-docs.deepseek.com/api/create-chat-completion;
// OpenRouter's cost, https://openrouter.ai/docs/use-cases/usage-accounting)
// and keeps the last round's value when not; an object (the "*_details"
// with cached prompt tokens and reasoning tokens, OpenRouter's
// cost_details, Perplexity's cost object, DashScope's cache_creation
// inside prompt_tokens_details, server_tool_use's web_search_requests) is
// summed member by member the same way, at every depth up to
// maxUsageDepth: each of its numbers counted what its round used, and the
// turn used them all. A key takes its first round's place in the order the
// rounds first named them, and no key is added that no round sent. A key
// one round's object names twice counts once, by its last copy
// (lastCopies). Without objs, the counts alone.
func AppendUsage(out []byte, sum *Usage, objs [][]byte) []byte {
	if len(objs) == 1 && len(objs[0]) > 0 {
		return append(out, objs[0]...)
	}
	b := sum.AppendJSON(out)
	if len(objs) == 0 {
		return b
	}
	var top usageNode
	for _, o := range objs {
		for _, m := range lastCopies(gjson.ParseBytes(o)) {
			switch m.key {
			case "prompt_tokens", "completion_tokens", "total_tokens":
				continue // sum's
			}
			top.child(m.key).add(m.v, 1)
		}
	}
	if len(top.members) == 0 {
		return b
	}
	b = b[:len(b)-1] // reopen the object
	for _, m := range top.members {
		b = append(b, ',')
		b = m.appendMember(b)
	}
	return append(b, '}')
}

// maxUsageDepth bounds the objects AppendUsage sums member by member:
// usage objects nest two or three deep; one deeper than this is kept as
// the last round's value, and no upstream's nesting costs a recursion per
// level.
const maxUsageDepth = 8

// usageNode is one member of the usage objects being summed: a value
// (detailMember), or an object summed member by member once any round
// sent it as one (a round's null or number then adds nothing).
type usageNode struct {
	detailMember
	object  bool
	members []*usageNode
}

// child is the member of n named key, added after the others when no
// round named it before.
func (n *usageNode) child(key string) *usageNode {
	for _, m := range n.members {
		if m.key == key {
			return m
		}
	}
	m := &usageNode{detailMember: detailMember{key: key}}
	n.members = append(n.members, m)
	return m
}

// add sums a round's value v of the member, depth levels below the usage
// object.
func (n *usageNode) add(v gjson.Result, depth int) {
	if !v.IsObject() || depth > maxUsageDepth {
		n.detailMember.add(v)
		return
	}
	n.object = true
	for _, m := range lastCopies(v) {
		n.child(m.key).add(m.v, depth+1)
	}
}

// keyValue is one member of a usage object.
type keyValue struct {
	key string
	v   gjson.Result
}

// lastCopies are the members of object v, a key named twice once, in its
// first copy's place with its last copy's value: the copy the bot's parser
// (JSON.parse, encoding/json) reads of a lone round's object, which
// AppendUsage passes on byte for byte. Both copies summed, two rounds of
// "cost":0.5,"cost":0.1 came to 1.2, not 0.2.
func lastCopies(v gjson.Result) []keyValue {
	var ms []keyValue
	v.ForEach(func(k, mv gjson.Result) bool {
		for i := range ms {
			if ms[i].key == k.Str {
				ms[i].v = mv
				return true
			}
		}
		ms = append(ms, keyValue{k.Str, mv})
		return true
	})
	return ms
}

// appendMember appends the member as "key":value.
func (n *usageNode) appendMember(b []byte) []byte {
	b = jsonstr.Append(b, n.key)
	b = append(b, ':')
	if !n.object {
		return n.appendValue(b)
	}
	b = append(b, '{')
	for i, m := range n.members {
		if i > 0 {
			b = append(b, ',')
		}
		b = m.appendMember(b)
	}
	return append(b, '}')
}

// detailMember is one member being summed over rounds: the sum of its
// numeric values, or the last non-numeric one when no round gave a number.
type detailMember struct {
	key      string
	n        int64
	f        float64
	numeric  bool
	fraction bool   // a value was not an integer: the sum is n+f
	prec     int    // the most digits after the point a value needs
	other    []byte // the last non-numeric value
}

func (m *detailMember) add(v gjson.Result) {
	if v.Type != gjson.Number {
		if !m.numeric {
			m.other = append(m.other[:0], v.Raw...)
		}
		return
	}
	m.numeric, m.other = true, nil
	if !strings.ContainsAny(v.Raw, ".eE") {
		// An integer sum that would pass int64's range stops at its end,
		// as a fraction's stops at float64's: wrapped around, two rounds'
		// large counts printed as a negative one, and printed whole, a
		// count past int64 an SDK decoding it into an int refuses with
		// the whole answer (go-openai's token details). An integer sent
		// past int64 is summed as a fraction is.
		if n, err := strconv.ParseInt(v.Raw, 10, 64); err == nil {
			switch {
			case n >= 0 && m.n > math.MaxInt64-n:
				m.n = math.MaxInt64
			case n < 0 && m.n < math.MinInt64-n:
				m.n = math.MinInt64
			default:
				m.n += n
			}
			return
		}
	}
	m.fraction = true
	m.f += v.Float()
	if p := decimals(v.Raw); p > m.prec {
		m.prec = p
	}
}

// decimals is how many digits after the point a JSON number needs: 0.00014
// five, 1.5e-5 six, 1.5e3 none. Over 17 (or unreadable) stands for "print
// as %g".
func decimals(num string) int {
	mant, exp := num, 0
	if i := strings.IndexAny(num, "eE"); i >= 0 {
		mant = num[:i]
		e, err := strconv.Atoi(num[i+1:])
		if err != nil || e < -17 || e > 400 {
			return 18
		}
		exp = e
	}
	p := 0
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		p = len(mant) - i - 1
	}
	return max(p-exp, 0)
}

// appendValue appends the sum, or the kept non-numeric value. A sum of
// fractions is printed with as many decimals as its most precise value
// needs, so 0.00014 + 0.00021 is 0.00035, not float64's
// 0.00035000000000000005. A sum past float64's range (two rounds' 1e308)
// stops at its end, and one of both infinities is 0: printed, +Inf or NaN
// is no JSON, and the bot could not read the answer it came in.
func (m *detailMember) appendValue(b []byte) []byte {
	if !m.numeric {
		return append(b, m.other...)
	}
	if !m.fraction {
		return strconv.AppendInt(b, m.n, 10)
	}
	sum, prec := float64(m.n)+m.f, m.prec
	switch {
	case math.IsNaN(sum):
		sum = 0
	case math.IsInf(sum, 0):
		sum, prec = math.Copysign(math.MaxFloat64, sum), 18
	}
	if prec > 17 {
		return strconv.AppendFloat(b, sum, 'g', -1, 64)
	}
	return strconv.AppendFloat(b, sum, 'f', prec, 64)
}

// objectInner returns the members of a raw JSON object without its braces,
// or nil when o is not a non-empty object.
func objectInner(o []byte) []byte {
	o = trimSpace(o)
	if len(o) < 2 || o[0] != '{' || o[len(o)-1] != '}' {
		return nil
	}
	return trimSpace(o[1 : len(o)-1])
}
