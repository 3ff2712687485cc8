package jsonscan

import (
	"encoding/binary"
	"math/bits"
	"unsafe"
)

// Valid reports whether s is valid JSON, as gjson.Valid decides it byte
// for byte, that opens at most maxDepth arrays and objects at once: what
// a body's validation was in two passes, jsonstr.NestedOver (so that
// gjson's recursion, once per level, never met a body of brackets) and
// gjson.Valid. It recurses once per level too, but stops at maxDepth
// before it goes deeper. Strings are walked eight bytes at a time. It
// allocates nothing. TestValidMatches and FuzzValid hold it to
// !jsonstr.NestedOver(s, maxDepth) && gjson.Valid(s).
func Valid(s string, maxDepth int) bool {
	v := validator{data: unsafe.Slice(unsafe.StringData(s), len(s)), s: s, max: maxDepth} // read only
	return v.valid()
}

// ValidMembers is Valid, and when s is an object, its members, in order,
// appended to top, as NextMember finds them one by one from the object's
// "{" on: the walk that validates the text locates them, so a reader of
// a body's top level needs no second one. (The members of text that is not
// valid mean nothing.) TestValidMatches and FuzzValid hold them to
// NextMember's.
//
// Only as many members as top has room for (its capacity) are appended;
// all reports whether every member was. An object with more is still
// validated, and its reader walks it (NextMember): growing top instead
// took 40 bytes of heap a member, some 40 times the text for one of
// short members, from whoever sent it.
//
// When c is not nil, the value of the first member whose key is c.Field's
// name as spelled, with no escape, is checked on the same walk as
// AmbiguousValue checks it: c.At is where that value is (0: no member
// was checked), c.Ambiguous what AmbiguousValue(s, c.At, c.Field, nil)
// reports, when s is valid. ReadChat checks its messages so, where a walk
// of their own took about 2,700 instructions of a non-stream turn.
func ValidMembers(s string, maxDepth int, top []Member, c *Check) (ms []Member, all, ok bool) {
	v := validator{data: unsafe.Slice(unsafe.StringData(s), len(s)), s: s, max: maxDepth} // read only
	data := v.data
	i := v.space(0)
	if i >= len(data) || data[i] != '{' || maxDepth < 1 {
		return top, true, v.valid()
	}
	// The top-level object is walked here, as object walks one, to keep
	// its members: appending in object, which recurses, would put top on
	// the heap.
	if i = v.space(i + 1); i >= len(data) {
		return top, false, false
	}
	if data[i] == '}' {
		return top, true, v.space(i+1) == len(data)
	}
	all = true
	for {
		if data[i] != '"' {
			return top, false, false
		}
		keyAt := i
		if i, ok = v.str(i + 1); !ok {
			return top, false, false
		}
		key := s[keyAt+1 : i-1]
		if i = v.space(i); i >= len(data) || data[i] != ':' {
			return top, false, false
		}
		if i = v.space(i + 1); i >= len(data) {
			return top, false, false
		}
		at := i
		if c != nil && c.At == 0 && key == c.Field.Name {
			i, ok = v.field(i, 1, c.Field)
			c.At, c.Ambiguous = at, v.amb
		} else {
			i, ok = v.value(i, 1)
		}
		if !ok {
			return top, false, false
		}
		if len(top) < cap(top) {
			top = append(top, Member{KeyAt: keyAt, Key: key, At: at, End: i})
		} else {
			all = false
		}
		if i = v.space(i); i >= len(data) {
			return top, false, false
		}
		switch data[i] {
		case '}':
			return top, all, v.space(i+1) == len(data)
		case ',':
			if i = v.space(i + 1); i >= len(data) {
				return top, false, false
			}
		default:
			return top, false, false
		}
	}
}

// A Check is the member whose value ValidMembers checks for members named
// twice or in another case (AmbiguousValue), and what it found.
type Check struct {
	Field     *Field
	At        int  // where the value checked is; 0: none was
	Ambiguous bool // the value names a member of Field's levels twice or in another case
}

// validator is Valid's walk over data (s, the same bytes); max is its
// maxDepth. amb: a value walked by field named a member of its level
// twice or in another case; the rest is then only validated.
type validator struct {
	data []byte
	s    string
	max  int
	amb  bool
}

// field is value for the value at data[i] of a member of field f, which
// it checks at f's levels as AmbiguousValue does (walkLevel's rules),
// setting v.amb at the first member named twice or in another case.
func (v *validator) field(i, depth int, f *Field) (int, bool) {
	switch {
	case f.Below == nil || v.amb:
	case !f.Elements && v.data[i] == '{':
		return v.object(i+1, depth+1, f.Below)
	case f.Elements && v.data[i] == '[':
		return v.array(i+1, depth+1, f.Below)
	}
	return v.value(i, depth)
}

// object validates an object's members from data[i], after its "{". Of
// a level lv (not nil), its keys are checked as walkLevel checks them and
// the values of its fields walked by field.
func (v *validator) object(i, depth int, lv *Level) (int, bool) {
	if depth > v.max {
		return i, false
	}
	data := v.data
	if i = v.space(i); i >= len(data) {
		return i, false
	}
	if data[i] == '}' {
		return i + 1, true
	}
	var seen uint64 // bit j: lv.Fields[j] met
	for {
		if data[i] != '"' {
			return i, false
		}
		keyAt := i
		var ok bool
		if i, ok = v.str(i + 1); !ok {
			return i, false
		}
		var f *Field
		if lv != nil && !v.amb {
			var bad bool
			if f, bad = lv.Member(KeyName(v.s[keyAt+1:i-1]), &seen); bad {
				v.amb, f = true, nil
			}
		}
		if i = v.space(i); i >= len(data) || data[i] != ':' {
			return i, false
		}
		if i = v.space(i + 1); i >= len(data) {
			return i, false
		}
		if f != nil {
			i, ok = v.field(i, depth, f)
		} else {
			i, ok = v.value(i, depth)
		}
		if !ok {
			return i, false
		}
		if i = v.space(i); i >= len(data) {
			return i, false
		}
		switch data[i] {
		case '}':
			return i + 1, true
		case ',':
			if i = v.space(i + 1); i >= len(data) {
				return i, false
			}
		default:
			return i, false
		}
	}
}

// array validates an array's elements from data[i], after its "[". Its
// objects of a level lv (not nil) are walked by object, as walkElements
// walks them.
func (v *validator) array(i, depth int, lv *Level) (int, bool) {
	if depth > v.max {
		return i, false
	}
	data := v.data
	if i = v.space(i); i >= len(data) {
		return i, false
	}
	if data[i] == ']' {
		return i + 1, true
	}
	for {
		var ok bool
		if lv != nil && data[i] == '{' && !v.amb {
			i, ok = v.object(i+1, depth+1, lv)
		} else {
			i, ok = v.value(i, depth)
		}
		if !ok {
			return i, false
		}
		if i = v.space(i); i >= len(data) {
			return i, false
		}
		switch data[i] {
		case ']':
			return i + 1, true
		case ',':
			if i = v.space(i + 1); i >= len(data) {
				return i, false
			}
		default:
			return i, false
		}
	}
}

func (v *validator) valid() bool {
	i := v.space(0)
	if i >= len(v.data) {
		return false
	}
	i, ok := v.value(i, 0)
	return ok && v.space(i) == len(v.data)
}

// space returns the index of the first byte at or after i that is not
// JSON white space.
func (v *validator) space(i int) int {
	for i < len(v.data) && IsSpace(v.data[i]) {
		i++
	}
	return i
}

// value validates the value at data[i], which is not white space; depth
// counts the arrays and objects open around it. It returns the index after
// the value.
func (v *validator) value(i, depth int) (int, bool) {
	switch v.data[i] {
	case '{':
		return v.object(i+1, depth+1, nil)
	case '[':
		return v.array(i+1, depth+1, nil)
	case '"':
		return v.str(i + 1)
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return ScanNumber(v.data, i)
	case 't':
		return ScanWord(v.data, i+1, "rue")
	case 'f':
		return ScanWord(v.data, i+1, "alse")
	case 'n':
		return ScanWord(v.data, i+1, "ull")
	}
	return i, false
}

// str validates a string from data[i], after its opening quote, and
// returns the index after its closing quote. The bytes that are the
// string's own (all but '"', '\\' and those below ' ') are skipped eight
// at a time (StringStops).
func (v *validator) str(i int) (int, bool) {
	data := v.data
	for {
		for len(data)-i >= 8 {
			if s := StringStops(binary.LittleEndian.Uint64(data[i:])); s != 0 {
				i += bits.TrailingZeros64(s) >> 3
				goto stop
			}
			i += 8
		}
		for ; i < len(data); i++ {
			if c := data[i]; c == '"' || c == '\\' || c < ' ' {
				goto stop
			}
		}
		return i, false
	stop:
		switch c := data[i]; {
		case c == '"':
			return i + 1, true
		case c < ' ':
			return i, false
		}
		// A backslash.
		if i++; i == len(data) {
			return i, false
		}
		switch data[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		case 'u':
			for range 4 {
				if i++; i >= len(data) || !IsHex(data[i]) {
					return i, false
				}
			}
		default:
			return i, false
		}
		i++
	}
}

// StringStops has the high bit of each byte of x (eight bytes of data,
// the first lowest) set that stops a string's run: '"', '\\', or below
// ' '. Above the lowest such byte a bit may be set wrongly (a borrow
// carries up), never below it, so its trailing zeros count exactly the
// bytes before the first stop.
func StringStops(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote := x ^ (ones * '"')
	slash := x ^ (ones * '\\')
	return ((x - ones*' ') | (quote - ones) | (slash - ones)) &^ x & highs
}

// IsHex reports whether c is a hexadecimal digit, as a \u escape takes four.
func IsHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// ScanNumber validates a number at data[i] as gjson does and returns the
// index after it: a leading zero ends its integer part (what follows is
// then refused by the caller).
func ScanNumber(data []byte, i int) (int, bool) {
	if data[i] == '-' {
		if i++; i == len(data) || data[i] < '0' || data[i] > '9' {
			return i, false
		}
	}
	if data[i] == '0' {
		i++
	} else {
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
	}
	if i < len(data) && data[i] == '.' {
		if i++; i == len(data) || data[i] < '0' || data[i] > '9' {
			return i, false
		}
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i == len(data) || data[i] < '0' || data[i] > '9' {
			return i, false
		}
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
	}
	return i, true
}

// ScanWord validates the rest of true, false or null (rest) at data[i].
func ScanWord(data []byte, i int, rest string) (int, bool) {
	if len(data)-i >= len(rest) && string(data[i:i+len(rest)]) == rest {
		return i + len(rest), true
	}
	return i, false
}
