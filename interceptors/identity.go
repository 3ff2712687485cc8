package interceptors

import (
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/jsonscan"
	"github.com/paygate/paygate/internal/jsonstr"
)

// The end user's identity toward providers (SPEC 2.2: the OpenID never
// reaches one). A request body names its end user in "user" and, since
// OpenAI deprecated "user" for them, in "safety_identifier" and
// "prompt_cache_key", which current SDKs send; bots also tag requests with
// the OpenID in "metadata". privacy.forward_user decides what a provider
// gets in each, on chat completions and on every other /v1 path alike:
//
//   - "user": the keyed hash of the resolved end user (X-WeChat-OpenID,
//     else the body's "user") under hash, the resolved end user under keep;
//     removed under drop, or when there is no end user.
//   - "safety_identifier" and "prompt_cache_key": their own value through
//     Privacy.Identifier. Under hash it is the same keyed hash, so a value
//     that is the end user's OpenID becomes exactly what "user" gets, and
//     any other value a stable pseudonym: the provider's abuse tracking and
//     cache routing work as before, on values it cannot read back. Removed
//     under drop, sent as they are under keep.
//   - "metadata": a member whose value holds the resolved end user (is it,
//     or has it inside, as "wx:<openid>") has it replaced by the user's
//     hash under hash (a value that is not a string is removed: there is
//     nothing to hash it as), and is removed under drop; its other members
//     are the bot's business and stay. A metadata that is not an object
//     but holds the end user is rewritten as such a member would be.
//
// Each change is a splice of the raw bytes: the rest of the body reaches
// the provider byte for byte.

// The identity members, by their index in identity.m: chatUser and the
// members after it in chatMembers.
const (
	idUser = iota
	idSafetyID
	idCacheKey
	idMetadata
	idMembers
)

// span is a member located in a body: its key's opening quote and its
// value [at, end); end is 0 for a member the body does not have.
type span struct{ keyAt, at, end int }

// identity is where a body names its end user, as a read of it found the
// top-level members: src and size identify that body, obj is its opening
// brace.
type identity struct {
	src  *byte
	size int
	obj  int
	m    [idMembers]span
}

// newIdentity records the identity members of the members f a read found
// (indexed as chatMembers) in the object at body[obj].
func newIdentity(body []byte, obj int, f []jsonscan.Member) identity {
	id := identity{src: &body[0], size: len(body), obj: obj}
	for i := range id.m {
		if m := f[chatUser+i]; m.End != 0 {
			id.m[i] = span{m.KeyAt, m.At, m.End}
		}
	}
	return id
}

// member is the raw value of the identity member k (idUser, …) in the body
// id was read from, a view of it; "" for a member it does not have. The
// read found it already: a caller needs no walk of the body of its own.
func (id *identity) member(k int) string {
	m := id.m[k]
	if m.end == 0 {
		return ""
	}
	return unsafe.String(id.src, id.size)[m.at:m.end]
}

// RawUser is the chat body's "user" value as sent (a string's quotes
// included, an object's braces), a view of the body; "" for none.
func (c *Chat) RawUser() string { return c.read.member(idUser) }

// RawMetadata is the chat body's top-level "metadata" value as sent, a view
// of the body; "" for none.
func (c *Chat) RawMetadata() string { return c.read.member(idMetadata) }

// RawMetadata is the body's top-level "metadata" value as sent, a view of
// the body; "" for none (a body that is not a JSON object too).
func (p *Passthrough) RawMetadata() string { return p.read.member(idMetadata) }

// readFrom reports whether id was read from body (the same bytes in the
// same memory), so that its positions hold for it.
func (id *identity) readFrom(body []byte) bool {
	return len(body) > 0 && id.src == &body[0] && id.size == len(body)
}

// findIdentity reads the identity members of a body no read recorded: the
// first of each, as a path lookup finds it. A body that is not a JSON
// object has none.
func findIdentity(body []byte) *identity {
	id := &identity{}
	if !gjson.ValidBytes(body) {
		return id
	}
	s := unsafeString(body)
	i := jsonscan.SkipSpace(s, 0)
	if s[i] != '{' {
		return id
	}
	id.src, id.size, id.obj = &body[0], len(body), i
	for j := i + 1; ; {
		m, ok := jsonscan.NextMember(s, j, true)
		if !ok {
			return id
		}
		j = m.End
		k := jsonscan.KeyName(m.Key)
		for n := range id.m {
			if k == chatMembers[chatUser+n] && id.m[n].end == 0 {
				id.m[n] = span{m.KeyAt, m.At, m.End}
			}
		}
	}
}

// splice replaces body[from:to] with val as a JSON string, or with nothing
// when !set.
type splice struct {
	from, to int
	val      string
	set      bool
}

// rewrite returns body with its identity members rewritten for u and the
// end user taken out of its text (usertext.go), or body itself when
// nothing changes.
func (id *identity) rewrite(body []byte, u Upstream) []byte {
	out, hash := id.rewriteMembers(body, u)
	return textWithoutUser(out, u, hash)
}

// rewriteMembers returns body with its identity members rewritten for u,
// or body itself when nothing changes, and the end user's hash when it
// computed it ("" when not).
func (id *identity) rewriteMembers(body []byte, u Upstream) ([]byte, string) {
	if !id.readFrom(body) {
		return body, ""
	}
	if id.m[idSafetyID].end|id.m[idCacheKey].end|id.m[idMetadata].end == 0 {
		// The usual body names its user in "user" alone, if at all: one
		// splice, without the bookkeeping of several.
		m := id.m[idUser]
		if m.end == 0 {
			return body, ""
		}
		if u.EndUser != "" {
			if v, ok := u.Privacy.Forward(u.Client, u.EndUser); ok {
				out := make([]byte, 0, len(body)+len(v)+8)
				out = append(out, body[:m.at]...)
				out = jsonstr.Append(out, v)
				if u.Privacy.Mode != "hash" {
					v = ""
				}
				return append(out, body[m.end:]...), v
			}
		}
	}
	return id.rewriteAll(body, u)
}

// rewriteAll is rewriteMembers for any body.
func (id *identity) rewriteAll(body []byte, u Upstream) ([]byte, string) {
	s := unsafeString(body)
	p := u.Privacy
	var (
		buf     [8]splice
		edits   = buf[:0]
		drop    [idMetadata + 1]bool // top-level members to remove
		anyDrop bool
		hashed  string // p.Identifier of the end user, once computed
	)
	userHash := func() string {
		if hashed == "" {
			hashed, _ = p.Identifier(u.Client, u.EndUser)
		}
		return hashed
	}
	if m := id.m[idUser]; m.end != 0 {
		if v, ok := p.Forward(u.Client, u.EndUser); ok && u.EndUser != "" {
			edits = append(edits, splice{from: m.at, to: m.end, val: v, set: true})
			if p.Mode != "keep" {
				hashed = v
			}
		} else {
			drop[idUser], anyDrop = true, true
		}
	}
	for n := idSafetyID; n <= idCacheKey; n++ {
		m := id.m[n]
		switch {
		case m.end == 0 || p.Mode == "keep":
			continue
		case p.Mode == "drop":
			drop[n], anyDrop = true, true
			continue
		}
		raw := s[m.at:m.end]
		if raw == "null" {
			continue
		}
		if raw[0] != '"' {
			// Not a string: there is nothing to hash it as, and the
			// OpenID may be inside. It is not sent.
			drop[n], anyDrop = true, true
			continue
		}
		v := stringValue(raw)
		switch v {
		case "":
			continue // names nobody
		case u.EndUser:
			v = userHash() // computed once for all the members naming the user
		default:
			v, _ = p.Identifier(u.Client, v)
		}
		edits = append(edits, splice{from: m.at, to: m.end, val: v, set: true})
	}
	if m := id.m[idMetadata]; m.end != 0 && p.Mode != "keep" {
		// Without an end user the object may still name OpenIDs of its
		// own (metadataEdits).
		switch raw := s[m.at:m.end]; {
		case raw[0] == '{':
			edits = metadataEdits(s, m, u, edits, userHash)
		case raw[0] == '[' && nestsUserID(raw):
			// An array holding an OpenID member ([{"openid": …}]):
			// nothing to hash it as, not sent.
			drop[idMetadata], anyDrop = true, true
		case u.EndUser == "" || !holds(raw, u.EndUser):
			// Not an object and naming nobody: the bot's, sent as it is.
		case p.Mode == "hash" && raw[0] == '"':
			// A string naming the end user ("wx:<openid>") gives the
			// OpenID to a provider that takes it, or echoes it in its
			// 400, as surely as an object's member would: the user's
			// hash takes its place, as in a form's "metadata" field.
			v := stringValue(raw)
			edits = append(edits, splice{from: m.at, to: m.end, val: ReplaceUser(v, u.EndUser, userHash()), set: true})
		default:
			// Under drop, or not a string (nothing to hash it as): not sent.
			drop[idMetadata], anyDrop = true, true
		}
	}
	if anyDrop {
		edits = dropEdits(s, id, drop[:], edits)
	}
	return applyEdits(body, edits), hashed
}

// metadataEdits appends the edits of the metadata object m: each member
// whose string value is the end user gets the user's hash, and one whose
// key or string value holds the end user inside ("wx:<openid>", a conversation id built from
// it) has it replaced by the hash there (hash); a value that is not a
// string and holds the end user anywhere has nothing to hash it as, and
// is not sent; under drop every member naming the end user goes. A bot's
// tag that holds the OpenID gives it to the provider as surely as one that
// is the OpenID. A member whose key says OpenID or UnionID (UserIDKeyLike)
// names one whoever it is (the end user's, or another's: a sharer's wx_openid), and
// gets the hash of its own value (Identifier), or goes under drop or when
// its value is not a string; one with null or "" names nobody. A member
// whose object or array holds such a member at any depth has nothing to
// hash it as, and is not sent. Most
// metadata objects hold no such value, which the byte searches tell
// without a walk: a value that decodes to text holding the end user is
// spelled with it, or with an escape, and an id's key with "open" or
// "unio".
func metadataEdits(s string, m span, u Upstream, edits []splice, userHash func() string) []splice {
	obj := s[m.at:m.end]
	if (u.EndUser == "" || !strings.Contains(obj, u.EndUser)) && strings.IndexByte(obj, '\\') < 0 && !holdsIDWord(obj) {
		return edits
	}
	drop := u.Privacy.Mode == "drop"
	d := memberDropper{open: -1}
	for i := m.at + 1; ; {
		mm, ok := jsonscan.NextMember(s, i, true)
		if !ok {
			break
		}
		i = mm.End
		raw := s[mm.At:mm.End]
		// The key names the user as surely as the value: a bot's tag
		// keyed by the OpenID ({"wx:<openid>": "1"}) gets the hash in
		// the key's place, as stored completions are filtered by it
		// (queryWithoutUser rewrites the filter's name alike).
		keyAt, keyEnd := mm.KeyAt, mm.KeyAt+len(mm.Key)+2
		inKey, inValue := holds(s[keyAt:keyEnd], u.EndUser), holds(raw, u.EndUser)
		// A user's id named so by its key, whoever's (the end user's, or
		// a list holding it beside another's: hashed whole, as the
		// ?metadata filter is), or one nested in an object or array
		// ({"ctx": {"wx_openid": …}}).
		other := raw != "null" && raw != `""` && (UserIDKeyLike(stringValue(s[keyAt:keyEnd])) ||
			!inValue && (raw[0] == '{' || raw[0] == '[') && nestsUserID(raw))
		gone := false
		switch {
		case !inKey && !inValue && !other:
		case drop || (inValue || other) && raw[0] != '"':
			gone = true
		default:
			if inKey {
				k := stringValue(s[keyAt:keyEnd])
				edits = append(edits, splice{from: keyAt, to: keyEnd, val: ReplaceUser(k, u.EndUser, userHash()), set: true})
			}
			switch v := stringValue(raw); {
			case other && v != u.EndUser:
				h, _ := u.Privacy.Identifier(u.Client, v)
				edits = append(edits, splice{from: mm.At, to: mm.End, val: h, set: true})
			case inValue || other:
				edits = append(edits, splice{from: mm.At, to: mm.End, val: ReplaceUser(v, u.EndUser, userHash()), set: true})
			}
		}
		d.member(mm.KeyAt, mm.End, gone)
	}
	for _, sp := range d.finish() {
		edits = append(edits, splice{from: sp[0], to: sp[1]})
	}
	return edits
}

// holdsIDWord reports whether s holds "open" or "unio" in any case, as
// every key UserIDKeyLike takes does when it is not escaped.
func holdsIDWord(s string) bool {
	for i := 0; i+4 <= len(s); i++ {
		switch c := s[i] | 0x20; {
		case c == 'o' && s[i+1]|0x20 == 'p' && s[i+2]|0x20 == 'e' && s[i+3]|0x20 == 'n':
			return true
		case c == 'u' && s[i+1]|0x20 == 'n' && s[i+2]|0x20 == 'i' && s[i+3]|0x20 == 'o':
			return true
		}
	}
	return false
}

// nestsUserID reports whether the JSON object or array v holds, at any
// depth, a member whose key names a user's id (UserIDKeyLike) with a
// value other than null or "". One pass over v's strings: a walk of each
// level's members walked again all that lay under it, as many times as
// the levels above (up to 1000), a 2 MB note at the bottom read 900 times.
func nestsUserID(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] != '"' {
			continue
		}
		j := i + 1
		for j < len(v) && v[j] != '"' {
			if v[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(v) {
			return false
		}
		// A string followed by ':' is a key (v is valid JSON).
		if after := strings.TrimLeft(v[j+1:], " \t\r\n"); after != "" && after[0] == ':' && UserIDKeyLike(stringValue(v[i:j+1])) {
			val := strings.TrimLeft(after[1:], " \t\r\n")
			if !strings.HasPrefix(val, "null") && !strings.HasPrefix(val, `""`) {
				return true
			}
		}
		i = j
	}
	return false
}

// NestsUserID reports whether v, a form's "metadata" field, is a JSON
// object or array that holds a user's id member (UserIDKeyLike) at any
// depth: RewriteMetadata's to rewrite.
func NestsUserID(v string) bool {
	v = strings.TrimSpace(v)
	return v != "" && (v[0] == '{' || v[0] == '[') && gjson.Valid(v) && nestsUserID(v)
}

// RewriteMetadata returns v, a JSON "metadata" object or array as a form
// field carries it, rewritten for u as a JSON body's "metadata" member is
// (metadataEdits, and the end user taken out of its text), and false when
// it is not sent at all.
func RewriteMetadata(v string, u Upstream) (string, bool) {
	out := RewritePassthrough([]byte(`{"metadata":`+v+`}`), Passthrough{}, u)
	r := gjson.GetBytes(out, "metadata")
	return r.Raw, r.Exists()
}

// UserIDKeyLike reports a metadata key that names a WeChat user by an id
// of theirs, whose value no provider gets: an OpenID (OpenIDLike), a
// UnionID (unionid, union_id, union-id: the same person across every app
// of the merchant, more telling than an OpenID), or a list of either
// (openids, union_ids). Not the end user that OpenIDLike resolves: a
// UnionID pays for nothing.
func UserIDKeyLike(name string) bool {
	if n := len(name); n > 0 && name[n-1]|0x20 == 's' {
		name = name[:n-1]
	}
	return OpenIDLike(name) || UnionIDLike(name)
}

// UnionIDLike reports a name that ends in UnionID in any case, with or
// without a '-' or '_' inside (X-WX-UNIONID, wx_union_id), as OpenIDLike
// reads an OpenID's.
func UnionIDLike(name string) bool {
	for _, end := range [...]string{"unionid", "union_id", "union-id"} {
		if len(name) >= len(end) && strings.EqualFold(name[len(name)-len(end):], end) {
			return true
		}
	}
	return false
}

// OpenIDLike reports a name that ends in OpenID in any case, with or
// without a '-' or '_' inside (X-OpenID, X-Wechat-Open-Id, wx_open_id): not
// one that goes on (openid_issuer names no user).
func OpenIDLike(name string) bool {
	for _, end := range [...]string{"openid", "open_id", "open-id"} {
		if len(name) >= len(end) && strings.EqualFold(name[len(name)-len(end):], end) {
			return true
		}
	}
	return false
}

// holds reports whether the raw JSON value v holds the end user text
// (HoldsUser): in a string, or in a key or string within an array or
// object, as decoded.
func holds(v, text string) bool {
	if strings.IndexByte(v, '\\') < 0 {
		return HoldsUser(v, text)
	}
	r := gjson.Parse(v)
	if r.Type == gjson.String {
		return HoldsUser(r.Str, text)
	}
	found := false
	r.ForEach(func(k, e gjson.Result) bool {
		found = k.Type == gjson.String && HoldsUser(k.Str, text) || holds(e.Raw, text)
		return !found
	})
	return found
}

// dropEdits appends the edits that remove the top-level identity members
// marked in drop, each with one separating comma.
func dropEdits(s string, id *identity, drop []bool, edits []splice) []splice {
	d := memberDropper{open: -1}
	for i := id.obj + 1; ; {
		m, ok := jsonscan.NextMember(s, i, true)
		if !ok {
			break
		}
		i = m.End
		gone := false
		for n, dr := range drop {
			gone = gone || dr && id.m[n].keyAt == m.KeyAt
		}
		d.member(m.KeyAt, m.End, gone)
	}
	for _, sp := range d.finish() {
		edits = append(edits, splice{from: sp[0], to: sp[1]})
	}
	return edits
}

// applyEdits returns body with edits applied, in one copy; body itself when
// there is none. The edits do not overlap.
func applyEdits(body []byte, edits []splice) []byte {
	if len(edits) == 0 {
		return body
	}
	n := len(body)
	for i := 1; i < len(edits); i++ { // a handful: insertion sort
		for j := i; j > 0 && edits[j].from < edits[j-1].from; j-- {
			edits[j], edits[j-1] = edits[j-1], edits[j]
		}
	}
	for _, e := range edits {
		n += len(e.val) + 8
	}
	out := make([]byte, 0, n)
	pos := 0
	for _, e := range edits {
		out = append(out, body[pos:e.from]...)
		if e.set {
			out = jsonstr.Append(out, e.val)
		}
		pos = e.to
	}
	return append(out, body[pos:]...)
}

// Identifier returns the value to send for an identifier a body carries
// beside "user" (safety_identifier, prompt_cache_key, a metadata value that
// is the end user's OpenID), and whether to send it at all: under hash the
// keyed hash of the value, which for the end user's OpenID is what Forward
// sends as "user", so the provider sees one pseudonym per user wherever the
// bot put the OpenID; under drop nothing; under keep the value as sent. An
// empty value names nobody and is sent as it is.
func (p Privacy) Identifier(client, value string) (string, bool) {
	switch p.Mode {
	case "keep":
		return value, true
	case "drop":
		return "", false
	}
	if value == "" {
		return "", true
	}
	return p.Forward(client, value)
}

// RewritePassthrough applies privacy.forward_user to a passthrough body
// (embeddings, responses, …) that ReadPassthrough read as p, as RewriteChat
// does to a chat body (see identity.go): "user" becomes what Forward gives
// for the end user u.EndUser, "safety_identifier" and "prompt_cache_key"
// what Identifier gives for their values, and a metadata member naming the
// end user goes the same way. It returns body itself when nothing changes.
func RewritePassthrough(body []byte, p Passthrough, u Upstream) []byte {
	id := &p.read
	if !id.readFrom(body) {
		id = findIdentity(body)
	}
	return id.rewrite(body, u)
}

// userInsideMin is the length from which an end user's id found anywhere
// inside a value is taken for it: an OpenID (28), a UnionID, a UUID. A
// shorter one (a bot that numbers its users sends "user":"7") names the
// user only as a token of its own, next to no ASCII letter or digit:
// "wx:7" and "conv-7-1" do, "2024-07-17" and "A7B" are the bot's own and
// reach the provider as sent. Taken anywhere, a short id hashed or dropped
// every date, order number and count that held its digits.
const userInsideMin = 16

// UserTakenAnywhere reports whether the end user id user is taken for
// the user wherever a value holds it (userInsideMin long or more): a
// shorter one is taken only where a value names the user at all.
func UserTakenAnywhere(user string) bool { return len(user) >= userInsideMin }

// HoldsUser reports whether s holds the end user user: anywhere when the
// id is userInsideMin long or more, else as a token of its own.
func HoldsUser(s, user string) bool { return indexUser(s, user, 0) >= 0 }

// ReplaceUser returns s with each place HoldsUser finds user at replaced
// by h.
func ReplaceUser(s, user, h string) string {
	if s == user && user != "" {
		// The common case (metadata {"openid": user}) needs no new string:
		// a Builder here cost every such request an allocation.
		return h
	}
	var b strings.Builder
	last := 0
	for i := indexUser(s, user, 0); i >= 0; i = indexUser(s, user, last) {
		b.WriteString(s[last:i])
		b.WriteString(h)
		last = i + len(user)
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// indexUser is the index of the first place at or after from that
// HoldsUser takes for user, or -1.
func indexUser(s, user string, from int) int {
	if user == "" {
		return -1
	}
	for from <= len(s) {
		i := strings.Index(s[from:], user)
		if i < 0 {
			return -1
		}
		i += from
		if len(user) >= userInsideMin || !asciiAlnumAt(s, i-1) && !asciiAlnumAt(s, i+len(user)) {
			return i
		}
		from = i + 1
	}
	return -1
}

// asciiAlnumAt reports whether s has an ASCII letter or digit at i.
func asciiAlnumAt(s string, i int) bool {
	if i < 0 || i >= len(s) {
		return false
	}
	c := s[i]
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
