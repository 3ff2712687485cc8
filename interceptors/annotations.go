package interceptors

import (
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
	out, moved := appendShifted(nil, arr, 0, len(arr), chars)
	if !moved {
		return nil
	}
	return out
}

// appendShifted appends arr[lo:hi] to dst, every start_index and end_index
// of the annotations array arr in it moved by chars, and reports whether
// one moved. It allocates nothing but dst's growth.
func appendShifted(dst []byte, arr string, lo, hi, chars int) ([]byte, bool) {
	if chars == 0 {
		return append(dst, arr[lo:hi]...), false
	}
	pos, moved := lo, false
	// The offsets in the order they are in arr: an annotation's own and
	// those of the objects in it, each where it stands. gjson gives a
	// nested value's Index in arr.
	offset := func(k, v gjson.Result) {
		if (k.Str == "start_index" || k.Str == "end_index") && v.Type == gjson.Number && v.Index >= pos && v.Index+len(v.Raw) <= hi {
			dst = append(dst, arr[pos:v.Index]...)
			dst = strconv.AppendInt(dst, v.Int()+int64(chars), 10)
			pos, moved = v.Index+len(v.Raw), true
		}
	}
	gjson.Parse(arr).ForEach(func(_, a gjson.Result) bool {
		if !a.IsObject() {
			return true
		}
		a.ForEach(func(k, v gjson.Result) bool {
			if v.IsObject() {
				v.ForEach(func(k, v gjson.Result) bool {
					offset(k, v)
					return true
				})
				return true
			}
			offset(k, v)
			return true
		})
		return true
	})
	return append(dst, arr[pos:hi]...), moved
}

// ShiftIndexes returns the raw JSON array of a delta's reasoning_details
// with each block's "index" moved by by, or nil when nothing moves, and
// the index after the highest block's once moved (0 for none). Each round
// numbers its blocks from 0, and the SDKs' stream helpers join the deltas
// of one index: a later round's blocks must come after the earlier
// rounds', as the bot's own tool calls do.
func ShiftIndexes(arr string, by int) ([]byte, int) {
	out, next := appendIndexes(nil, arr, by)
	return out, next
}

// appendIndexes appends arr to dst with each block's index moved by by,
// or nothing when none moves, and returns the index after the highest
// block's once moved. It allocates nothing but dst's growth: a later
// round's every reasoning delta is renumbered on its way through the
// Capture.
func appendIndexes(dst []byte, arr string, by int) ([]byte, int) {
	pos, next, moved := 0, 0, false
	gjson.Parse(arr).ForEach(func(_, el gjson.Result) bool {
		ix := el.Get("index")
		if !el.IsObject() || ix.Type != gjson.Number {
			return true
		}
		n := int(ix.Int()) + by
		next = max(next, n+1)
		if by != 0 {
			dst = append(dst, arr[pos:ix.Index]...)
			dst = strconv.AppendInt(dst, int64(n), 10)
			pos, moved = ix.Index+len(ix.Raw), true
		}
		return true
	})
	if !moved {
		return dst, next
	}
	return append(dst, arr[pos:]...), next
}
