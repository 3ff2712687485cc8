package interceptors

import (
	"github.com/tidwall/gjson"
)

// partsMerger accumulates a streamed round's content when the provider
// gives it as parts: Mistral's reasoning models stream their thinking as
// "content":[{"type":"thinking","thinking":[{"type":"text","text":…}]}]
// deltas and their words as text, a piece per delta, and take the round's
// assistant message back only as those parts (a "thinking" block, then
// "text" blocks), as a non-stream answer carries them
// (https://docs.mistral.ai/resources/cookbooks/mistral-reasoning). A delta
// that continues the trailing part of its type extends it; the text the
// round streamed as plain strings takes its place among the parts as text.
type partsMerger struct {
	items []partItem
	// from is how much of the round's text (Capture.content) the parts
	// hold already, as text parts in their place.
	from int
}

// partItem is one merged part: a "text" or "thinking" part's text (raw
// JSON string contents, escapes kept), or any other part raw.
type partItem struct {
	typ  string // "text", "thinking", or "" for a part kept raw
	text []byte
	raw  []byte
}

// add takes a delta's content parts (raw, valid JSON array); content is
// the round's text so far, whose part not yet held goes first.
func (p *partsMerger) add(content []byte, parts string) {
	p.text(content)
	gjson.Parse(parts).ForEach(func(_, el gjson.Result) bool {
		switch typ := el.Get("type").Str; typ {
		case "text":
			if t := el.Get("text"); t.Type == gjson.String {
				p.extend("text", []byte(t.Raw[1:len(t.Raw)-1]))
				return true
			}
		case "thinking":
			if th := el.Get("thinking"); th.IsArray() {
				var b []byte
				th.ForEach(func(_, in gjson.Result) bool {
					if t := in.Get("text"); t.Type == gjson.String {
						b = append(b, t.Raw[1:len(t.Raw)-1]...)
					}
					return true
				})
				p.extend("thinking", b)
				return true
			}
		}
		p.items = append(p.items, partItem{raw: []byte(el.Raw)})
		return true
	})
}

// text adds the round's text that came since the parts last took it, as
// text.
func (p *partsMerger) text(content []byte) {
	if len(content) > p.from {
		p.extend("text", content[p.from:])
	}
	p.from = len(content)
}

func (p *partsMerger) extend(typ string, text []byte) {
	if n := len(p.items); n > 0 && p.items[n-1].typ == typ {
		p.items[n-1].text = append(p.items[n-1].text, text...)
		return
	}
	p.items = append(p.items, partItem{typ: typ, text: append([]byte(nil), text...)})
}

// json renders the parts, the round's text up to content's end included;
// nil when no delta came as parts.
func (p *partsMerger) json(content []byte) []byte {
	if len(p.items) == 0 {
		return nil
	}
	p.text(content)
	out := []byte{'['}
	for i, it := range p.items {
		if i > 0 {
			out = append(out, ',')
		}
		switch it.typ {
		case "text":
			out = append(out, `{"type":"text","text":"`...)
			out = append(append(out, it.text...), `"}`...)
		case "thinking":
			out = append(out, `{"type":"thinking","thinking":[{"type":"text","text":"`...)
			out = append(append(out, it.text...), `"}]}`...)
		default:
			out = append(out, it.raw...)
		}
	}
	return append(out, ']')
}

// reset empties the merger for the next round.
func (p *partsMerger) reset() { *p = partsMerger{} }

// firstPartText is the raw contents (escapes kept) of the first "text"
// part of parts (a raw JSON array) whose text is not empty, and whether
// there is one: where a round's text starts when it comes as parts.
func firstPartText(parts string) (raw string, ok bool) {
	gjson.Parse(parts).ForEach(func(_, el gjson.Result) bool {
		if el.Get("type").Str != "text" {
			return true
		}
		if t := el.Get("text"); t.Type == gjson.String && len(t.Raw) > 2 {
			raw, ok = t.Raw[1:len(t.Raw)-1], true
			return false
		}
		return true
	})
	return raw, ok
}
