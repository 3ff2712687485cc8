package logging

import (
	"bytes"
	"slices"
	"strings"
)

// partialSecret is a secret (or one of its encoded forms) of
// ClientMinSecret bytes or more, masked where more than half of it is
// echoed, not only where it is echoed whole. A provider or gateway that
// "masks" the key it refuses by keeping most of it hands the bot and the
// log most of the key; which part it keeps varies:
//
//   - one stretch of the key, from its start (sk-proj-AbCd…wxyz***), its
//     end (***…tail), or its middle (***ovA-CANARY-0123***): a stretch of
//     k bytes or more, anywhere in the key, is masked;
//   - its start and its end around a mark (sk-provA-CANAR****3456789abcdef):
//     a prefix and a suffix of the key, each of headTail bytes or more, the
//     suffix after the prefix with no more than len(v) bytes between them,
//     that hold k bytes or more together are masked, the mark too.
//
// OpenAI's own mask (sk-abc***wxyz) and a prefix keys share (sk-proj-)
// keep less than k, and are left as they are. So is a stretch that holds
// fewer than own bytes of v past its common prefix (commonPrefix): for a
// short secret, more than half of it may be mostly what every value of its
// kind shares ("paygate-redis": "paygate-r" is 9 bytes, but "paygate-"
// is the project's name and "paygate-request" no echo of the password).
type partialSecret struct {
	v   string
	k   int // partialLen(v)
	pre int // len(commonPrefix(v))
	own int // the fewest bytes of v past pre a span holds: min(ownMin, len(v)-pre)
	// blocks are v's stretches of (k+1)/2 bytes at offsets 0, b, 2b…
	// (at is each one's offset): a stretch of v of k bytes or more holds
	// one of them whole, so text without any holds no such stretch.
	blocks  []string
	at      []int
	blocksB [][]byte // blocks as bytes, for maybeIn
	head    string   // v's first headTail bytes
	tail    string   // v's last headTail bytes
	headB   []byte
	tailB   []byte
	// maxSpan bounds the text a span covers: a prefix, a mark of up to
	// len(v) bytes and a suffix.
	maxSpan int
}

// headTail is the fewest bytes of a key's start, and of its end, that
// count towards the half an echo keeping both reveals: fewer are as
// likely chance as echo.
const headTail = 4

// partialLen is the length from which a stretch of secret s is masked
// where it stands alone: more than half of s. Never under 8 bytes, so
// that a short secret's few first letters are no word's.
func partialLen(s string) int { return max(len(s)/2+1, 8) }

// ownMin is the fewest bytes of a secret past its common prefix that a
// partial echo must hold to be masked (all of them when it has fewer): a
// prefix and a byte or two more is what text naming the prefix holds.
const ownMin = 6

// commonPrefixes are prefixes keys of a kind share, longest first.
var commonPrefixes = []string{
	"sk-svcacct-", "sk-admin-", "sk-proj-", "sk-ant-", "sk_live_", "sk_test_", "rk_live_", "rk_test_", "sk-",
}

// commonPrefix is the start of v that values of its kind share and text
// that names the kind holds too: a known key prefix (commonPrefixes), or a
// word of 2 to 8 letters and the mark after it ("Bearer ", "Basic ",
// "Bearer%20", "ghp_", "paygate-"). "" when v starts with neither.
func commonPrefix(v string) string {
	for _, p := range commonPrefixes {
		if strings.HasPrefix(v, p) {
			return p
		}
	}
	i := 0
	for i < len(v) && i <= 8 && ('a' <= v[i] && v[i] <= 'z' || 'A' <= v[i] && v[i] <= 'Z') {
		i++
	}
	if i < 2 || i > 8 || i == len(v) {
		return ""
	}
	switch {
	case strings.HasPrefix(v[i:], "%20"):
		return v[:i+3]
	case strings.IndexByte("-_ +:", v[i]) >= 0:
		return v[:i+1]
	}
	return ""
}

// authSchemes are the HTTP auth schemes schemeCredential knows, matched
// without case: a header value's first word. Any other first word is part
// of the secret (a password "correcthorse batterystaple" has a space too).
var authSchemes = []string{
	"Bearer", "Basic", "Token", "Digest", "Negotiate", "NTLM", "OAuth", "Bot",
	"ApiKey", "Api-Key", "Key", "HOBA", "Mutual", "SSWS", "GenieKey", "DeepL-Auth-Key",
}

// schemeCredential is the credential of v when v is a header value with
// an auth scheme ("Bearer cfut_…", "Basic dXNl…", as written in a URL's
// query "Bearer%20…"): a known scheme word (authSchemes), one space, and a
// credential without one. Its partial echo is the credential's
// (NewRedactorMin): the scheme is what every such value shares, and with a
// short credential ("Bearer EMPTY") more than half of the value was the
// scheme and a letter or two of any word ("Use Bearer Error"). Only a
// known scheme: the value of any secret with one space (a Redis password
// "letmein Xy7#kQ2pZ") parsed as one, and its partial rule was its second
// word's alone, or none when that was under 12 bytes.
func schemeCredential(v string) (string, bool) {
	scheme, cred, ok := strings.Cut(v, " ")
	if !ok {
		scheme, cred, ok = strings.Cut(v, "%20")
	}
	if !ok || len(scheme) < 2 || len(scheme) > 20 || cred == "" || strings.ContainsAny(cred, " \t") || strings.Contains(cred, "%20") {
		return "", false
	}
	for _, a := range authSchemes {
		if strings.EqualFold(scheme, a) {
			return cred, true
		}
	}
	return "", false
}

func newPartialSecret(v string) *partialSecret {
	k := partialLen(v)
	pre := len(commonPrefix(v))
	p := &partialSecret{v: v, k: k, pre: pre, own: min(ownMin, len(v)-pre), maxSpan: 2 * len(v)}
	bl := (k + 1) / 2
	for o := 0; o+bl <= len(v); o += bl {
		p.blocks = append(p.blocks, v[o:o+bl])
		p.blocksB = append(p.blocksB, []byte(v[o:o+bl]))
		p.at = append(p.at, o)
	}
	p.head, p.tail = v[:headTail], v[len(v)-headTail:]
	p.headB, p.tailB = []byte(p.head), []byte(p.tail)
	return p
}

// maybeIn reports whether b may hold a span spans would find (Cut, and
// Has without a gramFilter): false is certain, true is checked by spans.
func (p *partialSecret) maybeIn(b []byte) bool {
	for _, bl := range p.blocksB {
		if bytes.Contains(b, bl) {
			return true
		}
	}
	// A prefix and a suffix, neither k bytes long, that hold k together.
	return bytes.Contains(b, p.headB) && bytes.Contains(b, p.tailB)
}

// spans calls yield with each stretch [lo, hi) of s to mask (see
// partialSecret), in no order and maybe overlapping, until yield returns
// false.
func (p *partialSecret) spans(s string, yield func(lo, hi int) bool) {
	v := p.v
	for j, bl := range p.blocks {
		o := p.at[j]
		for i := 0; ; {
			n := strings.Index(s[i:], bl)
			if n < 0 {
				break
			}
			at := i + n
			// s[at:] lines up with v[o:]: follow v back and on.
			lo, hi := at, at+len(bl)
			for lo > 0 && o-(at-lo) > 0 && s[lo-1] == v[o-(at-lo)-1] {
				lo--
			}
			for hi < len(s) && o+(hi-at) < len(v) && s[hi] == v[o+(hi-at)] {
				hi++
			}
			// v[vlo:vhi] is the stretch echoed.
			vlo, vhi := o-(at-lo), o+(hi-at)
			if hi-lo >= p.k && vhi-max(vlo, p.pre) >= p.own && !yield(lo, hi) {
				return
			}
			i = at + 1
		}
	}
	if !strings.Contains(s, p.tail) {
		return
	}
	for i := 0; ; {
		n := strings.Index(s[i:], p.head)
		if n < 0 {
			return
		}
		lo := i + n
		hi := lo + len(p.head)
		for hi < len(s) && hi-lo < len(v) && s[hi] == v[hi-lo] {
			hi++
		}
		i = lo + 1
		headOwn := max(0, hi-lo-p.pre) // v's bytes past its prefix in it
		if hi-lo >= p.k && headOwn >= p.own {
			continue // a stretch the blocks found
		}
		// A suffix of v that ends within len(v) bytes of the prefix and
		// what it may hold of v.
		win := s[hi:min(len(s), hi+len(v)+len(v)-(hi-lo))]
		for w := 0; ; {
			m := strings.Index(win[w:], p.tail)
			if m < 0 {
				break
			}
			end := w + m + len(p.tail)
			start := end - len(p.tail)
			for start > 0 && end-start < len(v) && win[start-1] == v[len(v)-(end-start)-1] {
				start--
			}
			own := headOwn + min(end-start, len(v)-p.pre)
			if start <= len(v) && (hi-lo)+(end-start) >= p.k && own >= p.own && !yield(lo, hi+end) {
				return
			}
			w += m + 1
		}
	}
}

// mask returns s with each span of p masked, overlapping ones as one.
func (p *partialSecret) mask(s string) string {
	var spans [][2]int
	p.spans(s, func(lo, hi int) bool {
		spans = append(spans, [2]int{lo, hi})
		return true
	})
	if len(spans) == 0 {
		return s
	}
	slices.SortFunc(spans, func(a, b [2]int) int { return a[0] - b[0] })
	var b strings.Builder
	at := 0
	for _, sp := range spans {
		if sp[1] <= at {
			continue
		}
		if sp[0] >= at {
			b.WriteString(s[at:sp[0]])
			b.WriteString(Mask)
		}
		at = sp[1]
	}
	b.WriteString(s[at:])
	return b.String()
}

// in reports whether s holds a span of p.
func (p *partialSecret) in(s string) bool {
	found := false
	p.spans(s, func(int, int) bool {
		found = true
		return false
	})
	return found
}
