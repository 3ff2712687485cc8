package jsonscan

import "unsafe"

// A Span is where a JSON value lies in a text: s[At:End]. The zero Span is
// none (no value ends at 0).
type Span struct{ At, End int32 }

// Has reports whether the span holds a value.
func (p Span) Has() bool { return p.End > 0 }

// AnswerSpans is where the members of a non-stream chat completion that
// the proxy reads (interceptors.ReadAnswer) lie in its body, as the
// failover's validating pass over it (scanAnswer) found them, so that the
// proxy reads them without a walk of its own. Each span is the value of
// the member ReadAnswer's walk takes: the first of a top-level id, model
// or created exactly named (decoded); the one choices and usage; the
// members of choices[0].message when that is an object, and the usage
// object's counts (UsageCounts) when it is one. The pass refuses an answer
// that names any but the first three twice or in another case (the
// failover's completionLevel), so the first is the one.
type AnswerSpans struct {
	// OK: the body was scanned valid and unambiguous and the spans are of
	// it (Seal); else nothing is known (a body not scanned, or read from
	// events).
	OK bool
	// body and n are the first byte and the length of the body the spans
	// are of (Of).
	body *byte
	n    int32
	// Choices counts the elements of a choices array (0 when choices is
	// none or no array).
	Choices int32
	// At holds the spans, each at its index below (Field.Keep).
	At [answerSpans]Span
}

// Seal marks the spans OK and of body, the body the pass found them in.
func (p *AnswerSpans) Seal(body []byte) {
	p.OK, p.body, p.n = true, unsafe.SliceData(body), int32(len(body))
}

// Of reports whether the spans are OK and of body: the slice they were
// sealed with, not one cut or put in its place after (a Response's Body
// a caller changed), whose members lie elsewhere. A change to its bytes
// in place it cannot tell.
func (p *AnswerSpans) Of(body []byte) bool {
	return p.OK && len(body) == int(p.n) && unsafe.SliceData(body) == p.body
}

// The members whose spans AnswerSpans keeps, each its index in At.
const (
	AnswerID uint8 = iota + 1
	AnswerModel
	AnswerCreated
	AnswerUsage
	// choices[0].message's members, AnswerContent to
	// AnswerReasoningDetails.
	AnswerContent
	AnswerToolCalls
	AnswerFunctionCall
	AnswerReasoningContent
	AnswerReasoning
	AnswerReasoningDetails
	// The usage object's counts: prompt_tokens, completion_tokens,
	// total_tokens, prompt_tokens_details.cached_tokens (when the details
	// are an object), prompt_cache_hit_tokens and cached_tokens.
	AnswerPromptTokens
	AnswerCompletionTokens
	AnswerTotalTokens
	AnswerCachedDetails
	AnswerCacheHit
	AnswerCachedTop
	answerSpans
)
