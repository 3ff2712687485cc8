package jsonscan

// UsageCounts is the level of a chat completion's usage object (and a
// chunk's) whose counts paygate reads: the token counts and the cached
// prompt tokens, which the ledger prices apart (interceptors.ReadUsage and
// its usageField name them). Both duplicate-member checks walk a usage
// with it, the non-stream answer's (failover) and the stream chunk's
// (interceptors): a count read two ways is a cost or a token cap paygate
// books one way and the bot, which gets the provider's usage object as
// sent, another.
var UsageCounts = &Level{Fields: []Field{
	{Name: "prompt_tokens"}, {Name: "completion_tokens"}, {Name: "total_tokens"},
	{Name: "prompt_tokens_details", Below: &Level{Fields: []Field{{Name: "cached_tokens"}}}},
	{Name: "prompt_cache_hit_tokens"}, {Name: "cached_tokens"},
}}
