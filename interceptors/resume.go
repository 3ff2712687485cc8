package interceptors

import (
	"errors"
	"unsafe"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// ErrDiverged is Resume.Filter's error when a fresh answer does not begin
// with the text the client already received: splicing the two would hand the
// client an answer nobody wrote, so the stream must end with an error.
var ErrDiverged = errors.New("interceptors: the new answer diverges from what the client already received")

// Resume prepares the chunks of a stream that takes over a cut one (SPEC 5,
// recovery after the first byte), so that the client reads one answer:
//
//   - with skip (a fresh answer: the target's provider cannot continue a
//     prefill, or refused it), the answer's beginning must equal the text and
//     reasoning the client already received; chunk text inside that prefix is
//     dropped and a chunk straddling its end is cut to its suffix. A chunk
//     that departs from it (other text, a tool call or a finish while the
//     prefix is not yet matched) is ErrDiverged.
//   - with id set, every chunk's "id" becomes id (the client keeps the id it
//     first saw) and role deltas are removed (the client had its role).
//
// Chunks left with nothing for the client are dropped. Resume costs a JSON
// parse per chunk, paid only by recovered streams.
type Resume struct {
	id              string
	text, reasoning string
	tpos, rpos      int
	skip            bool
}

// NewResume starts filtering a stream that takes over one whose client
// already received text and reasoning. skip says the new stream is a fresh
// answer whose beginning repeats them; id, when not "", is the id the
// client's chunks must keep.
func NewResume(id, text, reasoning string, skip bool) *Resume {
	return &Resume{id: id, text: text, reasoning: reasoning, skip: skip}
}

// Matching reports whether part of the sent prefix is still to be matched.
func (r *Resume) Matching() bool {
	return r.skip && (r.tpos < len(r.text) || r.rpos < len(r.reasoning))
}

// Skipped returns how much of the sent text and reasoning the new stream has
// repeated so far (and Filter dropped).
func (r *Resume) Skipped() (text, reasoning string) {
	return r.text[:r.tpos], r.reasoning[:r.rpos]
}

// Filter returns the chunk to pass on, nil to drop it, or ErrDiverged.
// Data that is not a JSON object passes unchanged (the caller's own checks
// skip it).
func (r *Resume) Filter(data []byte) ([]byte, error) {
	if !r.Matching() && r.id == "" {
		return data, nil
	}
	s := unsafe.String(unsafe.SliceData(data), len(data))
	if !gjson.Valid(s) || !gjson.Get(s, "@this").IsObject() {
		return data, nil
	}
	out := data
	var err error
	set := func(path string, v string) {
		if err == nil {
			out, err = sjson.SetBytes(out, path, v)
		}
	}
	del := func(path string) {
		if err == nil {
			out, err = sjson.DeleteBytes(out, path)
		}
	}
	d := gjson.Get(s, "choices.0.delta")
	finish := gjson.Get(s, "choices.0.finish_reason")
	finished := finish.Exists() && finish.Type != gjson.Null && finish.String() != ""
	if r.Matching() {
		rkey := "reasoning_content"
		rv := d.Get(rkey)
		if !rv.Exists() {
			rkey = "reasoning"
			rv = d.Get(rkey)
		}
		if rv.Type == gjson.String && rv.String() != "" {
			rest, ok := consume(&r.rpos, r.reasoning, rv.String())
			if !ok {
				return nil, ErrDiverged
			}
			if rest == "" {
				del("choices.0.delta." + rkey)
			} else if rest != rv.String() {
				set("choices.0.delta."+rkey, rest)
			}
		}
		cv := d.Get("content")
		if cv.Type == gjson.String && cv.String() != "" {
			if r.rpos < len(r.reasoning) {
				return nil, ErrDiverged // the answer began before the sent reasoning ended
			}
			rest, ok := consume(&r.tpos, r.text, cv.String())
			if !ok {
				return nil, ErrDiverged
			}
			if rest == "" {
				del("choices.0.delta.content")
			} else if rest != cv.String() {
				set("choices.0.delta.content", rest)
			}
		}
		if r.Matching() && (d.Get("tool_calls").Exists() || d.Get("function_call").Exists() || finished) {
			return nil, ErrDiverged // the answer ended or turned to tools before repeating the prefix
		}
	}
	if r.id != "" {
		if d.Get("role").Exists() {
			del("choices.0.delta.role")
		}
		if gjson.Get(s, "id").Exists() {
			set("id", r.id)
		}
	}
	if err != nil {
		return nil, err
	}
	if len(out) != len(data) && emptyChunk(out) {
		return nil, nil
	}
	return out, nil
}

// emptyChunk reports a chunk with one choice whose delta carries nothing
// and no finish, and no usage: nothing for the client.
func emptyChunk(b []byte) bool {
	res := gjson.GetManyBytes(b, "choices.#", "choices.0.delta", "choices.0.finish_reason", "usage")
	if res[0].Int() != 1 || (res[2].Type != gjson.Null && res[2].String() != "") || (res[3].Exists() && res[3].Type != gjson.Null) {
		return false
	}
	empty := true
	res[1].ForEach(func(_, v gjson.Result) bool {
		if v.Type != gjson.Null && !(v.Type == gjson.String && v.String() == "") {
			empty = false
		}
		return empty
	})
	return empty
}

// consume matches got against sent[*pos:]: it advances *pos over the part of
// got inside the sent prefix and returns what lies beyond it, or false when
// got departs from the prefix.
func consume(pos *int, sent, got string) (string, bool) {
	rem := sent[*pos:]
	if len(got) <= len(rem) {
		if rem[:len(got)] != got {
			return "", false
		}
		*pos += len(got)
		return "", true
	}
	if got[:len(rem)] != rem {
		return "", false
	}
	*pos = len(sent)
	return got[len(rem):], true
}
