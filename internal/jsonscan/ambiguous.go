package jsonscan

import (
	"strconv"
	"strings"
)

// A Level is the members of one object that a reader reads, the members
// Ambiguous allows neither a repeat nor another spelling: paygate's
// walkers and gjson take a repeated member's first copy, and only the
// exact name, where the bot's parser (JSON.parse, Python's json, Go's
// encoding/json) takes the last, and encoding/json any case. An answer
// that names one of them twice, or a "Tool_calls" beside the tool_calls,
// reads one way to paygate and another to the bot.
type Level struct {
	Fields []Field // at most 64
	// Fold: a key that is a field's name under Unicode's simple case
	// folding, as Go's encoding/json matches keys ("argumentſ" with the
	// long s, "\u212a" the Kelvin sign), is another case of it too, not
	// only one of the same length in bytes that strings.EqualFold takes.
	// A client's request is read so (interceptors.ReadChat, as its
	// top-level members are); the byte count keeps the check off every
	// other key of the stream capture's levels.
	Fold bool
	// short is the length of the shortest field's name, where Folded
	// sets it: a key no longer than it folds to no longer name.
	short int
}

// A Field is a member of a Level.
type Field struct {
	Name string
	// Below, when not nil, is the level of the member's value: an object
	// (Elements false) or the objects of an array (Elements true). A value
	// of the other kind is not walked, nor an array's other elements.
	Below    *Level
	Elements bool
	// Unchecked: the member may repeat or come in another case, as its
	// reader checks that itself (the proxy's callName refuses a call that
	// names itself twice); Below is walked in its first exactly named copy.
	Unchecked bool
	// Keep is where a pass that keeps the spans of a chat completion's
	// members (AnswerSpans.At) puts this member's value; 0: nowhere. Set
	// on the failover's completionLevel only; Ambiguous ignores it.
	Keep uint8
}

// A Dup is a member of a Level that a JSON text names twice or in another
// case: the first Ambiguous met.
type Dup struct {
	Key  string // the key as the text spells it, decoded (a view of the text)
	Name string // the Field's name
	// Case: Key spells Name in another case; else Name comes twice.
	Case bool
	// up is the path down to the object Key is in, innermost first: the
	// field each level below the top descended by, and whether into an
	// array's element. Filled as the walk unwinds, so a text with no Dup
	// costs nothing for it.
	up    [maxDepth]step
	depth int
	elem  int // the element a walkElements that met the Dup was in
}

type step struct {
	name     string
	elements bool
	index    int // the array's element, when elements
}

// maxDepth bounds the path a Dup keeps: deeper levels are still walked
// and checked, their path cut short.
const maxDepth = 8

// Path is the path of the object the Dup's member is in, each level's
// field followed by "[]" for an array's element and ".": "" at the top,
// "choices[].message." below.
func (d *Dup) Path() string {
	var b strings.Builder
	for i := d.depth - 1; i >= 0; i-- {
		b.WriteString(d.up[i].name)
		if d.up[i].elements {
			b.WriteString("[]")
		}
		b.WriteByte('.')
	}
	return b.String()
}

// Param is the member's path as OpenAI's errors name a member in their
// "param", each array's element by its index:
// "messages[2].tool_calls[0].function.name". The path is kept as the
// walk unwinds, innermost level first, so one more than maxDepth levels
// deep loses its outermost levels: it reads from a level below the top
// (no Level of paygate's is that deep; ReadChat's are three).
func (d *Dup) Param() string {
	var b strings.Builder
	for i := d.depth - 1; i >= 0; i-- {
		b.WriteString(d.up[i].name)
		if d.up[i].elements {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(d.up[i].index))
			b.WriteByte(']')
		}
		b.WriteByte('.')
	}
	if d.Case {
		b.WriteString(d.Key)
	} else {
		b.WriteString(d.Name)
	}
	return b.String()
}

// String names the member with its path and what is wrong with it:
// "choices[].message.Tool_calls (tool_calls spelled in another case)",
// "usage.prompt_tokens (named twice)".
func (d *Dup) String() string {
	if d.Case {
		return d.Path() + d.Key + " (" + d.Name + " spelled in another case)"
	}
	return d.Path() + d.Name + " (named twice)"
}

// Ambiguous reports whether the object at s[at] (s valid JSON) names a
// member of lv, or of a level below it in the values it holds, twice in
// one object or in another case, and when so and d is not nil puts the
// first one met in *d. It walks by position, once, in document order,
// and allocates nothing unless a key is spelled with escapes: it runs on
// every chunk off the stream capture's fast path and on every non-stream
// answer. A text with no object at s[at] has none.
func Ambiguous(s string, at int, lv *Level, d *Dup) bool {
	if at >= len(s) || s[at] != '{' {
		return false
	}
	return walkLevel(s, at, lv, d) == -2
}

// AmbiguousValue is Ambiguous of the value at s[at] (s valid JSON) of a
// member of field f, its path starting with f: of its object, or its
// array's objects (f.Elements), at level f.Below. A reader that already
// holds the member (ReadChat its messages) walks it alone, not the
// object's other members again, a request's tool schemas among them. A
// value of the other kind, or f without a level below, has none.
func AmbiguousValue(s string, at int, f *Field, d *Dup) bool {
	if at >= len(s) || f.Below == nil {
		return false
	}
	var i int
	switch {
	case !f.Elements && s[at] == '{':
		i = walkLevel(s, at, f.Below, d)
	case f.Elements && s[at] == '[':
		i = walkElements(s, at, f.Below, d)
	default:
		return false
	}
	if i != -2 {
		return false
	}
	if d != nil && d.depth < maxDepth {
		d.up[d.depth] = step{f.Name, f.Elements, d.elem}
		d.depth++
	}
	return true
}

// walkLevel walks the object at s[at] of level lv and returns the index
// after it, -1 where the structure breaks, or -2 when it (or an object
// below it) names a member of its level twice or in another case.
func walkLevel(s string, at int, lv *Level, d *Dup) int {
	var seen uint64 // bit j: lv.Fields[j] met
	for i := at + 1; ; {
		m, ok := MemberStart(s, i, true)
		if !ok {
			return m.End
		}
		k := KeyName(m.Key)
		f, bad := lv.Member(k, &seen)
		if bad {
			if d != nil {
				*d = Dup{Key: k, Name: f.Name, Case: k != f.Name}
			}
			return -2
		}
		switch {
		case f == nil || f.Below == nil:
			i = SkipValue(s, m.At)
		case !f.Elements && s[m.At] == '{':
			i = walkLevel(s, m.At, f.Below, d)
		case f.Elements && s[m.At] == '[':
			i = walkElements(s, m.At, f.Below, d)
		default:
			i = SkipValue(s, m.At)
		}
		if i == -2 && d != nil && d.depth < maxDepth {
			d.up[d.depth] = step{f.Name, f.Elements, d.elem}
			d.depth++
		}
		if i < 0 {
			return i
		}
	}
}

// Member is the field of lv that the key k (decoded) names, for a
// walker to descend into, and bad when k makes the object ambiguous: it
// names a checked field met before (seen, bit j: lv.Fields[j] met, which
// Member updates) or spells it in another case, f then that field. A
// repeat or another spelling of an unchecked field is neither (nil,
// false). The one rule of Ambiguous's walk and of the failover's answer
// scan, which checks a chat completion on its validating pass.
func (lv *Level) Member(k string, seen *uint64) (f *Field, bad bool) {
	for j := range lv.Fields {
		if name := lv.Fields[j].Name; len(k) == len(name) {
			if exact := k == name; exact || strings.EqualFold(k, name) {
				return lv.met(j, exact, seen)
			}
		}
	}
	// A key longer than a name folds to it only by a rune of two or more
	// bytes (ſ, K): a Fold level asks only of a key longer than its
	// shortest name with a byte past ASCII, which the keys of an answer
	// or chunk seldom have.
	if lv.Fold && len(k) > lv.short && !ascii(k) {
		for j := range lv.Fields {
			if name := lv.Fields[j].Name; len(k) > len(name) && strings.EqualFold(k, name) {
				return lv.met(j, false, seen)
			}
		}
	}
	return nil, false
}

// met is Member's answer for a key that names lv.Fields[j], exactly or
// in another case.
func (lv *Level) met(j int, exact bool, seen *uint64) (*Field, bool) {
	fj := &lv.Fields[j]
	if fj.Unchecked {
		if exact && *seen&(1<<j) == 0 {
			*seen |= 1 << j
			return fj, false
		}
		return nil, false
	}
	if !exact || *seen&(1<<j) != 0 {
		return fj, true
	}
	*seen |= 1 << j
	return fj, false
}

// walkElements walks the array at s[at] whose object elements are of
// level lv (walkLevel) and returns the index after it, -1 or -2.
func walkElements(s string, at int, lv *Level, d *Dup) int {
	for i, n := at+1, 0; ; n++ {
		m, ok := MemberStart(s, i, false)
		if !ok {
			return m.End
		}
		if s[m.At] == '{' {
			i = walkLevel(s, m.At, lv, d)
		} else {
			i = SkipValue(s, m.At)
		}
		if i == -2 && d != nil {
			d.elem = n
		}
		if i < 0 {
			return i
		}
	}
}

// ascii reports whether k is all ASCII: eight bytes at a time, as Member
// asks it of most keys of a Fold level that name none of its fields.
func ascii(k string) bool {
	for ; len(k) >= 8; k = k[8:] {
		if k[0]|k[1]|k[2]|k[3]|k[4]|k[5]|k[6]|k[7] >= 0x80 {
			return false
		}
	}
	for i := 0; i < len(k); i++ {
		if k[i] >= 0x80 {
			return false
		}
	}
	return true
}
