package failover

import (
	"math"

	"github.com/paygate/paygate/internal/jsonscan"
)

// answerScan is what scanAnswer finds in a non-stream chat completion on
// the pass that validates it, so that the checks after it (answerError,
// hasChoices, ambiguousMember) need no walk of their own on the common
// answer.
type answerScan struct {
	// marks: markErrorTail, markErrorEscape and markResourceFinish, as
	// scanEvent's.
	// markEscape tells nothing of the answer: object clears it before
	// each key, to know whether that key holds an escape.
	marks eventMarks
	// choices is hasChoices(data) where the pass could tell it: the first
	// top-level member spelled choices, without escapes and before any key
	// with one, holds an array. choicesAsk leaves it to hasChoices (gjson's
	// lookup), which decodes keys and looks past other values.
	choices int8
	// ambiguous: jsonscan.Ambiguous finds a member of completionLevel
	// named twice or in another case (ambiguousMember names it).
	ambiguous bool
	// spans are where the members the proxy reads lie (spans.OK: the
	// answer is valid and not ambiguous), for Response.Spans.
	spans jsonscan.AnswerSpans
}

const (
	choicesUnknown int8 = iota // no top-level choices met (yet)
	choicesNone                // an empty array
	choicesSome                // a non-empty array
	choicesAsk
)

// answerScanner is scanAnswer's state on its pass.
type answerScanner struct {
	data []byte
	answerScan
}

// scanAnswer reports whether data is a JSON object valid as validJSON says
// (isJSONObject), and, when it is, what the non-stream checks of a chat
// completion look for, in one pass over it: the answer was walked five
// times (errorObject's bytes.Contains, jsonstr.NestedOver and gjson.Valid,
// hasChoices' lookup, jsonscan.Ambiguous). The validation is scanEvent's,
// gjson.Valid's byte for byte, and the members are checked as
// jsonscan.Ambiguous checks them (TestScanAnswerMatches holds it to each
// of the functions it stands for). What it finds in data that is not valid
// means nothing.
func scanAnswer(data []byte) (answerScan, bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return answerScan{}, false
	}
	s := answerScanner{data: data}
	i, ok := s.object(i+1, 1, completionLevel, true)
	if !ok || skipSpace(data, i) != len(data) {
		return answerScan{}, false
	}
	if s.choices == choicesUnknown {
		s.choices = choicesNone
	}
	if jsonscan.ErrorKey.Escapes(data) {
		// Asked once of the answer, as scanEvent asks it of an event
		// (markErrorEscape).
		s.marks |= markErrorEscape
	}
	// The spans are int32s: a body past 2 GiB is read by its own walk.
	if !s.ambiguous && len(data) <= math.MaxInt32 {
		s.spans.Seal(data)
	}
	return s.answerScan, true
}

// choiceLevel and messageLevel are completionLevel's levels of a choice
// and of its message; keepSpans marks the members whose spans scanAnswer
// keeps (jsonscan.Field.Keep), each a field of completionLevel the pass
// checks, so that the first copy is the only one. A top-level id, model
// and created are no fields of it (span).
var (
	choiceLevel  = levelBelow(completionLevel, "choices")
	messageLevel = levelBelow(choiceLevel, "message")
	_            = keepSpans(completionLevel)
)

func keepSpans(top *jsonscan.Level) bool {
	usage := levelBelow(top, "usage")
	for _, k := range []struct {
		lv   *jsonscan.Level
		name string
		at   uint8
	}{
		{top, "usage", jsonscan.AnswerUsage},
		{messageLevel, "content", jsonscan.AnswerContent},
		{messageLevel, "tool_calls", jsonscan.AnswerToolCalls},
		{messageLevel, "function_call", jsonscan.AnswerFunctionCall},
		{messageLevel, "reasoning_content", jsonscan.AnswerReasoningContent},
		{messageLevel, "reasoning", jsonscan.AnswerReasoning},
		{messageLevel, "reasoning_details", jsonscan.AnswerReasoningDetails},
		{usage, "prompt_tokens", jsonscan.AnswerPromptTokens},
		{usage, "completion_tokens", jsonscan.AnswerCompletionTokens},
		{usage, "total_tokens", jsonscan.AnswerTotalTokens},
		{levelBelow(usage, "prompt_tokens_details"), "cached_tokens", jsonscan.AnswerCachedDetails},
		{usage, "prompt_cache_hit_tokens", jsonscan.AnswerCacheHit},
		{usage, "cached_tokens", jsonscan.AnswerCachedTop},
	} {
		field(k.lv, k.name).Keep = k.at
	}
	return true
}

// levelBelow is the level below lv's field named name.
func levelBelow(lv *jsonscan.Level, name string) *jsonscan.Level { return field(lv, name).Below }

// field is lv's field named name.
func field(lv *jsonscan.Level, name string) *jsonscan.Field {
	for j := range lv.Fields {
		if lv.Fields[j].Name == name {
			return &lv.Fields[j]
		}
	}
	panic("failover: no field " + name)
}

// span is where the value of the member named k (decoded), of a level's
// field f (nil: a member of the answer's own that is none of its
// fields), goes in the spans, as ReadAnswer's walk takes it: nil when it
// takes no such member or has one already.
func (s *answerScanner) span(f *jsonscan.Field, k string) *jsonscan.Span {
	at := uint8(0)
	switch {
	case f != nil:
		at = f.Keep
		if at >= jsonscan.AnswerContent && at <= jsonscan.AnswerReasoningDetails && s.spans.Choices != 1 {
			return nil // a message of a choice after the first
		}
	case k == "id":
		at = jsonscan.AnswerID
	case k == "model":
		at = jsonscan.AnswerModel
	case k == "created":
		at = jsonscan.AnswerCreated
	}
	if at == 0 || s.spans.At[at].Has() {
		return nil
	}
	return &s.spans.At[at]
}

// answerError is answerError of a chat completion that scanAnswer found
// valid: the marks stand for errorObject's scans.
func (a *answerScan) answerError(data []byte) *failure {
	if a.marks&(markErrorTail|markErrorEscape) == 0 {
		if a.marks&markResourceFinish != 0 {
			return choiceError(unsafeString(data))
		}
		return nil
	}
	return errorObjectFound(data)
}

// hasChoices is hasChoices(data) of the data scanned.
func (a *answerScan) hasChoices(data []byte) bool {
	if a.choices == choicesAsk {
		return hasChoices(data)
	}
	return a.choices == choicesSome
}

// value validates the value at data[i] (whitespace before it skipped);
// depth counts the arrays and objects open around it. An object is of
// level lv, an array's object elements of level elems (nil: not checked).
//
// value, object and array repeat the shape of scanEvent's walk (scanAny,
// scanObject, scanArray) on purpose. One walker with the answer's member
// checks as a hook was measured: the hook is called indirectly (as a
// func value and, in Go 1.26, as a type parameter too), which cost every
// stream event 268 instructions over its own walk (2,601 a content
// chunk, BenchmarkEventChecks) and each answer 500. Events are the hot
// path; a change to one walk's validation must be made to the other
// (FuzzScanAnswer and FuzzScanEvent hold each to gjson.Valid).
func (s *answerScanner) value(i, depth int, lv, elems *jsonscan.Level) (int, bool) {
	data := s.data
	for ; i < len(data); i++ {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return s.object(i+1, depth+1, lv, false)
		case '[':
			return s.array(i+1, depth+1, elems)
		case '"':
			return scanString(data, i+1, &s.marks)
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			return jsonscan.ScanNumber(data, i)
		case 't':
			return jsonscan.ScanWord(data, i+1, "rue")
		case 'f':
			return jsonscan.ScanWord(data, i+1, "alse")
		case 'n':
			return jsonscan.ScanWord(data, i+1, "ull")
		default:
			return i, false
		}
	}
	return i, false
}

// object validates an object's members from data[i], after its "{", and
// checks them against lv as jsonscan.Ambiguous's walkLevel does; top: it
// is the answer itself, whose choices member it looks at.
func (s *answerScanner) object(i, depth int, lv *jsonscan.Level, top bool) (int, bool) {
	data := s.data
	if depth > maxNesting {
		return i, false
	}
	i = skipSpace(data, i)
	if i >= len(data) {
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
		start := i + 1
		var ok bool
		s.marks &^= markEscape
		if i, ok = scanString(data, start, &s.marks); !ok {
			return i, false
		}
		raw, escaped := unsafeString(data[start:i-1]), s.marks&markEscape != 0
		i = skipSpace(data, i)
		if i >= len(data) || data[i] != ':' {
			return i, false
		}
		i = skipSpace(data, i+1)
		if top && s.choices == choicesUnknown {
			if raw == "choices" {
				s.choices = choicesAsk
				if i < len(data) && data[i] == '[' {
					if j := skipSpace(data, i+1); j < len(data) && data[j] == ']' {
						s.choices = choicesNone
					} else {
						s.choices = choicesSome
					}
				}
			} else if escaped {
				s.choices = choicesAsk // it may decode to choices
			}
		}
		var below, elems *jsonscan.Level
		var span *jsonscan.Span
		if lv != nil && !s.ambiguous {
			// The member's field, as walkLevel finds it (one rule,
			// jsonscan.Level.Member): a repeat or another spelling of a
			// checked field makes the answer ambiguous, of an unchecked
			// one is not descended into. A key with an escape is decoded.
			k := raw
			if escaped {
				k = jsonscan.KeyName(raw)
			}
			f, bad := lv.Member(k, &seen)
			switch {
			case bad:
				s.ambiguous = true
			case f != nil && f.Below != nil && f.Elements:
				elems = f.Below
			case f != nil && f.Below != nil:
				below = f.Below
			}
			if !bad && (f != nil && f.Keep != 0 || top && f == nil) {
				span = s.span(f, k) // what the proxy reads
			}
		}
		at := i
		if i, ok = s.value(i, depth, below, elems); !ok {
			return i, false
		}
		if span != nil {
			*span = jsonscan.Span{At: int32(at), End: int32(i)}
		}
		i = skipSpace(data, i)
		if i >= len(data) {
			return i, false
		}
		switch data[i] {
		case '}':
			return i + 1, true
		case ',':
			i = skipSpace(data, i+1)
			if i >= len(data) {
				return i, false
			}
		default:
			return i, false
		}
	}
}

// array validates an array's elements from data[i], after its "[", its
// object elements of level elems.
func (s *answerScanner) array(i, depth int, elems *jsonscan.Level) (int, bool) {
	data := s.data
	if depth > maxNesting {
		return i, false
	}
	i = skipSpace(data, i)
	if i >= len(data) {
		return i, false
	}
	if data[i] == ']' {
		return i + 1, true
	}
	for {
		if elems == choiceLevel {
			s.spans.Choices++ // the answer's choices: one level has them
		}
		var ok bool
		if i, ok = s.value(i, depth, elems, nil); !ok {
			return i, false
		}
		i = skipSpace(data, i)
		if i >= len(data) {
			return i, false
		}
		switch data[i] {
		case ']':
			return i + 1, true
		case ',':
			i++
		default:
			return i, false
		}
	}
}
