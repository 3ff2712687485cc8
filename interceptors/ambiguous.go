package interceptors

import (
	"errors"

	"github.com/paygate/paygate/internal/jsonscan"
)

// ErrAmbiguousChunk is returned by Capture.Process for a chunk that names a
// member paygate reads twice, or in another case (ambiguousChunk): the
// relay skips it, as it skips a malformed one.
var ErrAmbiguousChunk = errors.New("interceptors: chunk names a member twice or in another case")

// What ambiguousChunk found.
const (
	chunkClear      = iota
	chunkAmbiguous  // a member the capture reads: the chunk is skipped
	chunkCountTwice // only a usage count: the chunk is read, its usage object not sent on
)

// ambiguousChunk reports whether the chunk s (a valid JSON object) names a
// member the capture reads (jsonscan.Chunk) twice in one object, or spells it
// in another case ("Tool_calls", a "Delta" beside the delta). The
// capture's walks take each copy of a repeated member, or the first, and
// only the exact name, where the bot's parser (JSON.parse, encoding/json)
// takes the last, and Go's any case: a payment call could reach the bot
// unheld, or one be held and run that the bot's reading of the chunk does
// not have, and the client calls paygate keeps for the bot's next request
// would not be the ones the bot got. Such a chunk is chunkAmbiguous.
//
// One whose only such member is a usage's count (chunkCountTwice) is read
// all the same: it often carries the answer's last words, a tool call and
// the finish beside its usage, which skipping it would take from the bot
// without a word (paygate then makes up the finish). Its usage is read
// as the capture reads any (the first copy, which the ledger and a token
// cap count), and the bot gets those counts as paygate writes them, not
// the provider's object (Capture.Process).
//
// Only chunks off the text fast path are walked (scanText refuses a
// second delta, a "delta" in another case and a usage), by position,
// without allocating: jsonscan.Ambiguous, the walker the non-stream check
// (failover) uses too; a second walk only for a chunk the first found
// ambiguous.
func ambiguousChunk(s string) int {
	switch {
	case !jsonscan.Ambiguous(s, 0, jsonscan.Chunk, nil):
		return chunkClear
	case jsonscan.Ambiguous(s, 0, jsonscan.ChunkButCounts, nil):
		return chunkAmbiguous
	}
	return chunkCountTwice
}
