package jsonscan

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
	// it; else nothing is known (a body not scanned, or read from events).
	OK bool
	// Choices counts the elements of a choices array (0 when choices is
	// none or no array).
	Choices                                       int32
	ID, Model, Created, Usage                     Span
	Content, ToolCalls, FunctionCall              Span
	ReasoningContent, Reasoning, ReasoningDetails Span
	// The usage object's counts: prompt_tokens, completion_tokens,
	// total_tokens, prompt_tokens_details.cached_tokens (when the details
	// are an object), prompt_cache_hit_tokens and cached_tokens.
	PromptTokens, CompletionTokens, TotalTokens Span
	CachedDetails, CacheHit, CachedTop          Span
}
