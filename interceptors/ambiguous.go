package interceptors

import (
	"errors"

	"github.com/paygate/paygate/internal/jsonscan"
)

// ErrAmbiguousChunk is returned by Capture.Process for a chunk that names a
// member paygate reads twice, or in another case (ambiguousChunk): the
// relay skips it, as it skips a malformed one.
var ErrAmbiguousChunk = errors.New("interceptors: chunk names a member twice or in another case")

// ambiguousChunk reports whether the chunk s (a valid JSON object) names a
// member the capture reads (jsonscan.Chunk) twice in one object, or spells it
// in another case ("Tool_calls", a "Delta" beside the delta). The
// capture's walks take each copy of a repeated member, or the first, and
// only the exact name, where the bot's parser (JSON.parse, encoding/json)
// takes the last, and Go's any case: a payment call could reach the bot
// unheld, or one be held and run that the bot's reading of the chunk does
// not have, and the client calls paygate keeps for the bot's next request
// would not be the ones the bot got. Only chunks off the text fast path
// are walked (scanText refuses a second delta and a "delta" in another
// case), once, by position, without allocating: jsonscan.Ambiguous, the
// walker the non-stream check (failover) uses too.
func ambiguousChunk(s string) bool {
	return jsonscan.Ambiguous(s, 0, jsonscan.Chunk, nil)
}
