package interceptors

import (
	"strings"
	"unicode/utf8"

	"github.com/paygate/paygate/internal/jsonscan"
	"github.com/paygate/paygate/internal/jsonstr"
)

// The end user's OpenID outside the identity members (SPEC 2.2). Bots put
// it where no member names the user: a message's "name", a system prompt
// ("You are serving user o…"), the arguments and result of their own tool
// in the history, a content part, an embedding's input, a Response's
// instructions. After the identity members are rewritten, every JSON
// string of the body, key or value, that holds the end user gets, in the
// end user's place:
//
//   - under hash, the user's keyed hash, the one "user" carries: the
//     provider's caching and abuse signals see one stable pseudonym;
//   - under drop, DroppedUser: the text stays readable to the model, and
//     no identifier of the user is in it;
//   - under keep, the operator chose to send the OpenID: nothing changes.
//
// Only an end user id of userInsideMin bytes or more (an OpenID is 28) is
// looked for in text: a shorter one ("user":"7") is a count, a date or a
// price there as often as the user, and is rewritten in the identity
// members alone. An id inside a JSON number (digits only) is left as it is,
// since a string in its place would change the number's type.
//
// The body is read as bytes: one search for the id, and one pass over its
// escapes (an encoder that writes "o\u0041bc" spells the id in escapes,
// which the provider decodes). A body with neither, nearly every body, is
// returned as it is with no allocation. A string holding the user is
// patched in place (its other bytes unchanged), or, when it has escapes,
// decoded and written back whole with jsonstr.Append.

// DroppedUser is what takes the end user's place in text under
// privacy.forward_user: drop (and while the hash key is pending).
const DroppedUser = "u_anonymous"

// textWithoutUser returns body with the end user replaced, under u's
// privacy, in every JSON string holding it; body itself when none does.
// body is valid JSON; hash is the end user's hash when the caller has it
// (under hash), else "".
func textWithoutUser(body []byte, u Upstream, hash string) []byte {
	user := u.EndUser
	if !UserTakenAnywhere(user) || u.Privacy.Mode == "keep" {
		return body
	}
	s := unsafeString(body)
	if !containsUser(s, user) && !escapesUserByte(s, user) {
		return body
	}
	h := DroppedUser
	if u.Privacy.Mode == "hash" {
		if h = hash; h == "" {
			h, _ = u.Privacy.Identifier(u.Client, user)
		}
	}
	var out []byte
	last := 0 // body[:last] is in out
	for i := 0; ; {
		q := strings.IndexByte(s[i:], '"')
		if q < 0 {
			break
		}
		q += i
		end := jsonscan.StringEnd(s, q+1)
		if end < 0 {
			break
		}
		i = end + 1
		raw := s[q+1 : end]
		if len(raw) < len(user) {
			continue // a key, a role, an id: too short to hold the user, even escaped
		}
		if strings.IndexByte(raw, '\\') < 0 {
			if indexUser(raw, user, 0) < 0 {
				continue
			}
			// Patched in place: the hash, and DroppedUser, need no escape.
			if out == nil {
				out = make([]byte, 0, len(body)+64)
			}
			for j := indexUser(raw, user, 0); j >= 0; j = indexUser(raw, user, j+len(user)) {
				out = append(out, s[last:q+1+j]...)
				out = append(out, h...)
				last = q + 1 + j + len(user)
			}
			continue
		}
		v := stringValue(s[q : end+1])
		if !HoldsUser(v, user) {
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(body)+64)
		}
		out = append(out, s[last:q]...)
		out = jsonstr.Append(out, ReplaceUser(v, user, h))
		last = end + 1
	}
	if out == nil {
		return body
	}
	return append(out, s[last:]...)
}

// TextWithoutID returns body (valid JSON, as rewritten toward a provider
// under u) with id, an id of the end user's other than u.EndUser (the
// UnionID WeChat Cloud hosting names in X-WX-UNIONID), replaced in every
// JSON string holding it as textWithoutUser replaces the end user: under
// hash by id's own hash (Identifier), the one a metadata member naming it
// gets, under drop by DroppedUser. body itself when none holds it, or id
// is shorter than the ids looked for in text (UserTakenAnywhere).
func TextWithoutID(body []byte, u Upstream, id string) []byte {
	u.EndUser = id
	return textWithoutUser(body, u, "")
}

// containsUser is strings.Contains(s, user), searched by the byte of user
// least likely in a request: an OpenID starts with "o", the commonest
// byte of English text after "e", and strings.Index, anchored on the first
// byte, stopped at each "o" of a prompt (a third of this search's cost on
// the load benchmark's body). Its uppercase letters and digits are rare.
func containsUser(s, user string) bool {
	k := rarestByte(user)
	c := user[k]
	for from := k; from < len(s); {
		i := strings.IndexByte(s[from:], c)
		if i < 0 {
			return false
		}
		at := from + i - k
		if at+len(user) <= len(s) && s[at:at+len(user)] == user {
			return true
		}
		from += i + 1
	}
	return false
}

// rarestByte is the index of the byte of user least likely in a request
// body, by byteRank.
func rarestByte(user string) int {
	best, bestRank := 0, byte(255)
	for i := 0; i < len(user); i++ {
		if r := byteRank[user[i]]; r < bestRank {
			if r <= rareByte {
				return i // as rare as any: the search need look no further
			}
			best, bestRank = i, r
		}
	}
	return best
}

// rareByte is the rank of the rarest bytes.
const rareByte = 5

// byteRank ranks each byte by how often it occurs in a chat request, lower
// for rarer: uppercase letters (but the common capitals of sentences),
// then digits, '_' and '-', then lowercase letters, the commonest last.
var byteRank = func() (t [256]byte) {
	for c := range t {
		t[c] = 60
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = rareByte
	}
	for _, c := range "TIAWSCMH" {
		t[c] = 20
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = 30
	}
	t['_'], t['-'] = 40, 40
	for c := 'a'; c <= 'z'; c++ {
		t[c] = 50
	}
	for _, c := range "etaoinshrdlu" {
		t[c] = 100
	}
	return t
}()

// escapesUserByte reports whether s has an escape (\uXXXX, \n, \/, …)
// whose character may be part of user: the id may then be spelled with it
// in a string that the byte search does not find. Escapes of characters an
// OpenID does not have (quotes, line breaks, HTML characters) are the
// usual ones, and say no.
func escapesUserByte(s, user string) bool {
	for {
		i := strings.IndexByte(s, '\\')
		if i < 0 || i+1 >= len(s) {
			return false
		}
		c := s[i+1]
		switch c {
		case 'u':
			if i+5 >= len(s) {
				return false
			}
			r := rune(0)
			for _, h := range []byte(s[i+2 : i+6]) {
				r = r<<4 | rune(jsonscan.Unhex(h))
			}
			if r >= utf8.RuneSelf && !asciiOnly(user) || r < utf8.RuneSelf && strings.IndexByte(user, byte(r)) >= 0 {
				return true
			}
		default:
			if strings.IndexByte(user, unescaped(c)) >= 0 {
				return true
			}
		}
		s = s[i+2:] // past the escaped character, so "\\" is one escape
	}
}

// unescaped is the character of the JSON escape \c other than \u.
func unescaped(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	}
	return c // '"', '\\', '/'
}

// asciiOnly reports whether s is all ASCII.
func asciiOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
