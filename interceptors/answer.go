package interceptors

import (
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/jsonscan"
)

// Answer is what the turn loop needs from a non-stream chat.completion. Its
// strings are copies: the caller may patch the body afterwards.
type Answer struct {
	ID, Model string
	// Created is the answer's "created" (0 when it has none): a turn of
	// several rounds answers with its first round's.
	Created int64
	// Content is choices[0].message.content, decoded; "" when it is not a
	// string (null with tool calls).
	Content string
	// ContentParts is choices[0].message.content when it is an array of
	// parts (Mistral's reasoning models: a "thinking" block and "text"
	// blocks), raw; "" otherwise, an empty array included.
	ContentParts string
	// Reasoning is choices[0].message.reasoning_content, a string (else its
	// reasoning, as OpenRouter names it), decoded: a thinking model's
	// reasoning, which a tool round must send back (AssistantToolMessageWith).
	Reasoning string
	// ReasoningKey is the member Reasoning was read from, KeyReasoningContent
	// or KeyReasoning (the name it goes back under); "" when neither came.
	ReasoningKey string
	// ReasoningDetails is the raw JSON array choices[0].message.reasoning_details
	// (OpenRouter); "" when the message has none.
	ReasoningDetails string
	// Usage holds the usage object's token counts when HasUsage.
	Usage    Usage
	HasUsage bool
	// UsageRaw is that usage object as the provider sent it, raw; "" when
	// it has none.
	UsageRaw string
	// ToolCalls is the raw JSON array choices[0].message.tool_calls; ""
	// when the message has no such array.
	ToolCalls string
	// FunctionCall is the raw JSON object choices[0].message.function_call,
	// the legacy shape of one call; "" when the message has no such object.
	FunctionCall string
	// Choices is how many elements the choices array has: more than one
	// when a provider answered with several, asked for (n) or not.
	Choices int
}

// ReadAnswer reads a chat.completion with the byte walker the stream
// capture uses (internal/jsonscan), in one walk over the body: it descends
// into the first choice's message and into the usage object where it meets
// them, skips every other value by its brackets and quotes, and decodes
// nothing but the few strings it keeps. This is the non-stream hot path: a path lookup per
// field, as gjson does it, scans the same bytes again for each. Where a key
// repeats, the first counts, as in a path lookup. body should be valid JSON
// (it came with a provider's 2xx); on anything else the walk stops where
// the structure breaks and returns the fields found so far.
func ReadAnswer(body []byte) Answer {
	var a Answer
	s := unsafeString(body)
	i := jsonscan.SkipSpace(s, 0)
	if i >= len(s) || s[i] != '{' {
		return a
	}
	var seen uint8
	walk(s, i, true, func(m jsonscan.Member) int {
		switch bit := answerField(jsonscan.KeyName(m.Key)); {
		case bit == 0 || seen&bit != 0:
			return jsonscan.SkipValue(s, m.At)
		case bit == seenChoices && s[m.At] == '[':
			seen |= bit
			return readChoices(s, m.At, &a)
		case bit == seenUsage && s[m.At] == '{':
			seen |= bit
			a.HasUsage = true
			end := readUsageObject(s, m.At, &a.Usage)
			if end > 0 {
				a.UsageRaw = s[m.At:end] // cloned with the others
			}
			return end
		default:
			seen |= bit
			end := jsonscan.SkipValue(s, m.At)
			switch {
			case end < 0:
			case bit == seenID:
				a.ID = stringValue(s[m.At:end])
			case bit == seenModel:
				a.Model = stringValue(s[m.At:end])
			case bit == seenCreated:
				a.Created = intValue(s[m.At:end])
			}
			return end
		}
	})
	// The strings read so far are views of body, which may change later.
	cloneStrings(&a.ID, &a.Model, &a.Content, &a.ContentParts, &a.Reasoning, &a.ReasoningDetails, &a.UsageRaw)
	return a
}

// ReadAnswerAt is ReadAnswer of a body whose members the failover's
// validating pass found (failover.Response.Spans): it reads them where
// they lie, with no walk of the body. With sp nil, not OK or of another
// body (jsonscan.AnswerSpans.Of: one cut or put in its place after the
// pass) it is ReadAnswer. failover's checkScanAnswer holds the two to
// one answer on every answer its tests and fuzzer let pass.
func ReadAnswerAt(body []byte, sp *jsonscan.AnswerSpans) Answer {
	if sp == nil || !sp.Of(body) {
		return ReadAnswer(body)
	}
	var a Answer
	s := unsafeString(body)
	v := func(at uint8) string { return s[sp.At[at].At:sp.At[at].End] }
	n := func(at uint8) int64 {
		if !sp.At[at].Has() {
			return 0
		}
		return intValue(v(at))
	}
	a.ID = stringValue(v(jsonscan.AnswerID))
	a.Model = stringValue(v(jsonscan.AnswerModel))
	a.Created = n(jsonscan.AnswerCreated)
	a.Choices = int(sp.Choices)
	if c := v(jsonscan.AnswerContent); c != "" {
		a.setContent(c)
	}
	if c := v(jsonscan.AnswerToolCalls); c != "" {
		a.setToolCalls(c)
	}
	if c := v(jsonscan.AnswerFunctionCall); c != "" {
		a.setFunctionCall(c)
	}
	// Only a string that says something counts, as readMessage takes it.
	if r := v(jsonscan.AnswerReasoningContent); len(r) > 2 && r[0] == '"' {
		a.setReasoning(r, KeyReasoningContent)
	} else if r := v(jsonscan.AnswerReasoning); len(r) > 2 && r[0] == '"' {
		a.setReasoning(r, KeyReasoning)
	}
	if d := v(jsonscan.AnswerReasoningDetails); d != "" {
		a.setReasoningDetails(d)
	}
	if u := v(jsonscan.AnswerUsage); u != "" && u[0] == '{' {
		a.HasUsage = true
		a.UsageRaw = u
		a.Usage = Usage{PromptTokens: n(jsonscan.AnswerPromptTokens), CompletionTokens: n(jsonscan.AnswerCompletionTokens),
			TotalTokens: n(jsonscan.AnswerTotalTokens),
			CachedTokens: cachedCounts{details: n(jsonscan.AnswerCachedDetails), hit: n(jsonscan.AnswerCacheHit),
				top: n(jsonscan.AnswerCachedTop)}.count()}
		a.Usage.fillTotal()
	}
	cloneStrings(&a.ID, &a.Model, &a.Content, &a.ContentParts, &a.Reasoning, &a.ReasoningDetails, &a.UsageRaw)
	return a
}

const (
	seenID uint8 = 1 << iota
	seenModel
	seenChoices
	seenUsage
	seenCreated
)

func answerField(key string) uint8 {
	switch key {
	case "id":
		return seenID
	case "model":
		return seenModel
	case "choices":
		return seenChoices
	case "usage":
		return seenUsage
	case "created":
		return seenCreated
	}
	return 0
}

// walk calls member for each member of the object (or element of the
// array) at s[at]; member returns the index after the value (jsonscan.SkipValue's,
// or a reader's that descended into it), or -1. walk returns the index after
// the object, or -1 where the structure breaks.
func walk(s string, at int, object bool, member func(m jsonscan.Member) int) int {
	for i := at + 1; ; {
		m, ok := jsonscan.MemberStart(s, i, object)
		if !ok {
			return m.End
		}
		if i = member(m); i < 0 {
			return -1
		}
	}
}

// readChoices reads choices[0].message from the array at s[at], counts its
// elements, and returns the index after the array, or -1.
func readChoices(s string, at int, a *Answer) int {
	first := true
	return walk(s, at, false, func(ch jsonscan.Member) int {
		a.Choices++
		if !first || s[ch.At] != '{' {
			first = false
			return jsonscan.SkipValue(s, ch.At)
		}
		first = false
		found := false
		return walk(s, ch.At, true, func(m jsonscan.Member) int {
			if found || jsonscan.KeyName(m.Key) != "message" {
				return jsonscan.SkipValue(s, m.At)
			}
			// The first "message" counts, as every repeated key here: a
			// later one does not stand in for a first that is not an object.
			found = true
			if s[m.At] != '{' {
				return jsonscan.SkipValue(s, m.At)
			}
			return readMessage(s, m.At, a)
		})
	})
}

// readMessage reads content, reasoning and tool_calls of the message
// object at s[at] and returns the index after it, or -1.
func readMessage(s string, at int, a *Answer) int {
	var content, calls, rcSeen, reasoning, details, other, legacy bool
	return walk(s, at, true, func(m jsonscan.Member) int {
		end := jsonscan.SkipValue(s, m.At)
		if end < 0 {
			return -1
		}
		switch jsonscan.KeyName(m.Key) {
		case "content":
			if !content {
				content = true
				a.setContent(s[m.At:end])
			}
		case "tool_calls":
			if !calls {
				calls = true
				a.setToolCalls(s[m.At:end])
			}
		case "function_call":
			if !legacy {
				legacy = true
				a.setFunctionCall(s[m.At:end])
			}
		case "reasoning_content":
			// Only a string counts, as in the stream capture: a server
			// that serializes unset fields sends "reasoning_content":
			// null beside the reasoning it names reasoning; and only one
			// that says something: some send "" there, and the payment
			// rounds' reasoning was lost for it (TestPaymentTurnSameAnswerStreamedOrNot).
			if !rcSeen && s[m.At] == '"' {
				rcSeen = true
				if end-m.At > 2 {
					reasoning = true
					a.setReasoning(s[m.At:end], KeyReasoningContent)
				}
			}
		case "reasoning":
			if !reasoning && !other && s[m.At] == '"' {
				other = true // used when no reasoning_content says something
				if end-m.At > 2 {
					a.setReasoning(s[m.At:end], KeyReasoning)
				}
			}
		case "reasoning_details":
			if !details {
				details = true
				a.setReasoningDetails(s[m.At:end])
			}
		}
		return end
	})
}

// The message's members as readMessage takes them, each from its raw
// value v (the first copy of its key). The views of the body are cloned
// with the others (cloneStrings).

func (a *Answer) setContent(v string) {
	if v[0] == '[' {
		// An empty list is no parts: sent back, "content": [] is a
		// message with nothing in it.
		if i := jsonscan.SkipSpace(v, 1); i < len(v) && v[i] != ']' {
			a.ContentParts = v
		}
		return
	}
	a.Content = stringValue(v)
}

func (a *Answer) setToolCalls(v string) {
	if v[0] == '[' {
		a.ToolCalls = strings.Clone(v)
	}
}

func (a *Answer) setFunctionCall(v string) {
	if v[0] == '{' {
		a.FunctionCall = strings.Clone(v)
	}
}

func (a *Answer) setReasoning(v, key string) {
	a.Reasoning, a.ReasoningKey = stringValue(v), key
}

func (a *Answer) setReasoningDetails(v string) {
	if v[0] == '[' {
		a.ReasoningDetails = v
	}
}

// readUsageObject reads the token counts of the usage object at s[at] into
// u and returns the index after the object, or -1.
func readUsageObject(s string, at int, u *Usage) int {
	var seen uint8
	var cached cachedCounts
	end := walk(s, at, true, func(m jsonscan.Member) int {
		bit := usageField(jsonscan.KeyName(m.Key))
		if bit == usageDetails && seen&bit == 0 && s[m.At] == '{' {
			seen |= bit
			return readCachedDetail(s, m.At, &cached.details)
		}
		end := jsonscan.SkipValue(s, m.At)
		if end < 0 || bit == 0 || seen&bit != 0 {
			return end
		}
		seen |= bit
		n := intValue(s[m.At:end])
		switch bit {
		case usagePrompt:
			u.PromptTokens = n
		case usageCompletion:
			u.CompletionTokens = n
		case usageTotal:
			u.TotalTokens = n
		case usageCacheHit:
			cached.hit = n
		case usageCachedTop:
			cached.top = n
		}
		return end
	})
	u.CachedTokens = cached.count()
	u.fillTotal()
	return end
}

// readCachedDetail reads cached_tokens (its first) from the
// prompt_tokens_details object at s[at] into *n and returns the index after
// the object, or -1.
func readCachedDetail(s string, at int, n *int64) int {
	found := false
	return walk(s, at, true, func(m jsonscan.Member) int {
		end := jsonscan.SkipValue(s, m.At)
		if end > 0 && !found && jsonscan.KeyName(m.Key) == "cached_tokens" {
			found = true
			*n = intValue(s[m.At:end])
		}
		return end
	})
}

// The members of a usage object the readers take (readUsage,
// readUsageObject), each the first time its key comes.
const (
	usagePrompt     uint8 = 1 << iota // prompt_tokens
	usageCompletion                   // completion_tokens
	usageTotal                        // total_tokens
	usageDetails                      // prompt_tokens_details, with cached_tokens
	usageCacheHit                     // prompt_cache_hit_tokens
	usageCachedTop                    // cached_tokens
)

func usageField(key string) uint8 {
	switch key {
	case "prompt_tokens":
		return usagePrompt
	case "completion_tokens":
		return usageCompletion
	case "total_tokens":
		return usageTotal
	case "prompt_tokens_details":
		return usageDetails
	case "prompt_cache_hit_tokens":
		return usageCacheHit
	case "cached_tokens":
		return usageCachedTop
	}
	return 0
}

// cachedCounts are the places a usage object may name the prompt tokens
// the provider served from its prompt cache, each a part of prompt_tokens:
// prompt_tokens_details.cached_tokens (OpenAI, OpenRouter, Qwen on
// DashScope, xAI, Gemini's OpenAI-compatible API), prompt_cache_hit_tokens
// (DeepSeek, https://api-docs.deepseek.com/api/create-chat-completion,
// beside prompt_cache_miss_tokens: the two sum to prompt_tokens) and a
// top-level cached_tokens (Moonshot's Kimi, https://platform.kimi.ai/docs/api/chat).
type cachedCounts struct{ details, hit, top int64 }

// count is the cached tokens: the first place that names some, in the order
// above (a provider that fills two, DeepSeek's details beside its own
// member, gives both the same count; one that leaves the details at 0
// beside its own member has counted there).
func (c cachedCounts) count() int64 {
	switch {
	case c.details != 0:
		return c.details
	case c.hit != 0:
		return c.hit
	}
	return c.top
}

// intValue is a raw JSON value as an integer, as gjson's Result.Int reads
// it: plain digits are read here, anything else (a sign, a fraction, an
// exponent, a numeric string) by gjson.
func intValue(v string) int64 {
	if len(v) == 0 || len(v) > 18 {
		return gjson.Parse(v).Int()
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return gjson.Parse(v).Int()
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// cloneStrings makes each *p a string of its own, all of them in one
// allocation: they are views of a body that may change later. (A decoded
// string is already fresh; copying it again is the rare case's price for one
// definition.)
func cloneStrings(ps ...*string) {
	n := 0
	for _, p := range ps {
		n += len(*p)
	}
	b := make([]byte, 0, n)
	for _, p := range ps {
		if *p == "" {
			*p = ""
			continue
		}
		at := len(b)
		b = append(b, *p...)
		*p = unsafe.String(&b[at], len(*p))
	}
}
