// Package reasoning merges the reasoning_details deltas of a streamed
// chat completion into the array a non-stream answer carries. Both the
// stream capture (interceptors, for a payment round's assistant message)
// and the event-stream assembler (failover, for a non-stream request that
// an upstream answered with a stream) need the same merge; one copy here
// keeps them from drifting apart.
package reasoning

import (
	"strings"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/jsonstr"
)

// Details accumulates the reasoning_details deltas of a streamed round
// into the array a non-stream answer would carry, for the round's assistant
// tool message. OpenRouter streams each reasoning block (reasoning.text,
// reasoning.summary, reasoning.encrypted) in pieces that share its type and
// index: the text, summary and data strings arrive in parts to be joined,
// and the other members (id, format, signature) whole, once or repeated
// (https://openrouter.ai/docs/use-cases/reasoning-tokens, "Preserving
// reasoning blocks"). Models behind it that sign their reasoning (Gemini 3's
// thought signatures, Claude's thinking signatures) refuse a tool round's
// next request without the blocks, so a payment turn could not go on.
type Details struct {
	items []detailItem
}

// detailItem is one merged block: its members in the order they first came,
// the joinable ones' raw string contents (escapes kept) concatenated.
type detailItem struct {
	typ   string
	index string // the raw index value, "0" when absent
	keys  []string
	vals  [][]byte // raw JSON value, or a joined string's contents (see str)
	str   []bool   // vals[i] is a joined string's contents, quotes left off
}

// joinable reports the members whose string parts are concatenated.
func joinable(key string) bool { return key == "text" || key == "summary" || key == "data" }

// Add merges one delta's reasoning_details array (raw JSON, valid). raw
// may share memory with the chunk, which the caller reuses: what is kept
// is copied.
func (d *Details) Add(raw string) {
	gjson.Parse(raw).ForEach(func(_, el gjson.Result) bool {
		if !el.IsObject() {
			return true
		}
		typ := el.Get("type").String()
		index := "0"
		if ix := el.Get("index"); ix.Exists() && ix.Type == gjson.Number {
			index = ix.Raw
		}
		it := d.item(typ, index)
		el.ForEach(func(k, v gjson.Result) bool {
			d.items[it].set(k.Str, v)
			return true
		})
		return true
	})
}

// item returns the position of the block of typ and index, adding it.
func (d *Details) item(typ, index string) int {
	for i := range d.items {
		if d.items[i].typ == typ && d.items[i].index == index {
			return i
		}
	}
	d.items = append(d.items, detailItem{typ: strings.Clone(typ), index: strings.Clone(index)})
	return len(d.items) - 1
}

func (it *detailItem) set(key string, v gjson.Result) {
	at := -1
	for i, k := range it.keys {
		if k == key {
			at = i
			break
		}
	}
	if joinable(key) && v.Type == gjson.String {
		part := v.Raw[1 : len(v.Raw)-1]
		switch {
		case at < 0:
			it.keys = append(it.keys, strings.Clone(key))
			it.vals = append(it.vals, []byte(part))
			it.str = append(it.str, true)
		case it.str[at]:
			it.vals[at] = append(it.vals[at], part...)
		default: // a string after a null: the string
			it.vals[at], it.str[at] = append(it.vals[at][:0], part...), true
		}
		return
	}
	if at >= 0 && v.Type == gjson.Null {
		return // a later null does not erase what came
	}
	if at < 0 {
		it.keys = append(it.keys, strings.Clone(key))
		it.vals = append(it.vals, []byte(v.Raw))
		it.str = append(it.str, false)
		return
	}
	it.vals[at], it.str[at] = append(it.vals[at][:0], v.Raw...), false
}

// Reset empties the merger for the next round, keeping nothing.
func (d *Details) Reset() { d.items = nil }

// JSON renders the merged array; nil when no block came.
func (d *Details) JSON() []byte {
	if len(d.items) == 0 {
		return nil
	}
	out := []byte{'['}
	for i, it := range d.items {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, '{')
		for j, k := range it.keys {
			if j > 0 {
				out = append(out, ',')
			}
			out = jsonstr.Append(out, k)
			out = append(out, ':')
			if it.str[j] {
				out = append(out, '"')
				out = append(out, it.vals[j]...)
				out = append(out, '"')
			} else {
				out = append(out, it.vals[j]...)
			}
		}
		out = append(out, '}')
	}
	return append(out, ']')
}
