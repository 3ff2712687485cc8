package failover

import (
	"math/bits"

	"github.com/tidwall/gjson"
)

// maxTrackedChoices bounds the choices a stream's completeness is tracked
// for: OpenAI takes n up to 128; a larger n costs no more memory.
const maxTrackedChoices = 1024

// choiceSet tracks, for a stream asked for several choices (Request.Choices
// above 1), which choices it has shown and which of them have finished. One
// finish_reason ends a one-choice stream; with several, a stream is whole
// only when every choice it showed has its own, or a provider that finished
// choice 0 and then broke off choice 1 would end in [DONE], a silent
// truncation (SPEC 5). Choices a provider never shows (one that ignores n
// sends only choice 0) are not waited for at [DONE]; a connection that ends
// before [DONE] with fewer choices shown than asked for was cut (allShown).
// Only such streams pay for a parse of each event's choices.
type choiceSet struct {
	seen, done []uint64
	n          int64 // indexes from n on are not tracked (a provider's slip)
}

func newChoiceSet(n int) *choiceSet {
	n = min(n, maxTrackedChoices)
	words := (n + 63) / 64
	return &choiceSet{seen: make([]uint64, words), done: make([]uint64, words), n: int64(n)}
}

// allShown reports whether the stream has shown every choice asked for. A
// stream that ended without [DONE] is whole only then: a provider that
// streams its choices one after another and is cut after the first's
// finish looks finished otherwise. One that ignores n still ends with
// [DONE].
func (c *choiceSet) allShown() bool {
	shown := 0
	for _, w := range c.seen {
		shown += bits.OnesCount64(w)
	}
	return int64(shown) >= c.n
}

// note records the choices of one event and reports whether every choice
// shown so far has finished.
func (c *choiceSet) note(data []byte) bool {
	gjson.GetBytes(data, "choices").ForEach(func(_, ch gjson.Result) bool {
		i := ch.Get("index").Int()
		if i < 0 || i >= c.n {
			return true
		}
		w, bit := i/64, uint64(1)<<(i%64)
		c.seen[w] |= bit
		if fr := ch.Get("finish_reason"); fr.Type == gjson.String && fr.Str != "" {
			c.done[w] |= bit
		}
		return true
	})
	shown := false
	for w := range c.seen {
		if c.seen[w] != c.done[w] {
			return false
		}
		shown = shown || c.seen[w] != 0
	}
	return shown
}
