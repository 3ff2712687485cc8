package interceptors

import (
	"slices"
	"strconv"

	"github.com/tidwall/gjson"
)

// ShiftAnnotations returns the raw JSON array of a message's (or a delta's)
// annotations with every start_index and end_index moved by chars, or nil
// when nothing moves (chars is 0, arr is no array, or no annotation has an
// offset). An annotation (OpenAI's and OpenRouter's url_citation,
// {"type":"url_citation","url_citation":{"start_index":…,"end_index":…,
// "url":…,"title":…}}) places its citation in the message's content in
// characters (Unicode code points) of that content; the offsets may also
// sit on the annotation itself. A provider counts them in its own round's
// text, and the bot reads them in the turn's, where the earlier rounds'
// text and the breaks between rounds come before it: chars is their length.
// Everything else in the array is kept byte for byte.
func ShiftAnnotations(arr string, chars int) []byte {
	if chars == 0 || len(arr) == 0 || arr[0] != '[' || !gjson.Valid(arr) {
		return nil
	}
	type num struct{ at, end int }
	var nums []num
	// gjson gives a nested value's Index in arr.
	offsets := func(obj gjson.Result) {
		obj.ForEach(func(k, v gjson.Result) bool {
			if (k.Str == "start_index" || k.Str == "end_index") && v.Type == gjson.Number {
				nums = append(nums, num{v.Index, v.Index + len(v.Raw)})
			}
			return true
		})
	}
	gjson.Parse(arr).ForEach(func(_, a gjson.Result) bool {
		if !a.IsObject() {
			return true
		}
		offsets(a)
		a.ForEach(func(_, v gjson.Result) bool {
			if v.IsObject() {
				offsets(v)
			}
			return true
		})
		return true
	})
	if len(nums) == 0 {
		return nil
	}
	slices.SortFunc(nums, func(a, b num) int { return a.at - b.at })
	out := make([]byte, 0, len(arr)+4*len(nums))
	pos := 0
	for _, n := range nums {
		out = append(out, arr[pos:n.at]...)
		v := gjson.Parse(arr[n.at:n.end]).Int()
		out = strconv.AppendInt(out, v+int64(chars), 10)
		pos = n.end
	}
	return append(out, arr[pos:]...)
}

// ShiftIndexes returns the raw JSON array of a delta's reasoning_details
// with each block's "index" moved by by, or nil when nothing moves, and
// the index after the highest block's once moved (0 for none). Each round
// numbers its blocks from 0, and the SDKs' stream helpers join the deltas
// of one index: a later round's blocks must come after the earlier
// rounds', as the bot's own tool calls do.
func ShiftIndexes(arr string, by int) ([]byte, int) {
	var out []byte
	pos, next := 0, 0
	gjson.Parse(arr).ForEach(func(_, el gjson.Result) bool {
		ix := el.Get("index")
		if !el.IsObject() || ix.Type != gjson.Number {
			return true
		}
		n := int(ix.Int()) + by
		next = max(next, n+1)
		if by != 0 {
			out = append(out, arr[pos:ix.Index]...)
			out = strconv.AppendInt(out, int64(n), 10)
			pos = ix.Index + len(ix.Raw)
		}
		return true
	})
	if out == nil {
		return nil, next
	}
	return append(out, arr[pos:]...), next
}
