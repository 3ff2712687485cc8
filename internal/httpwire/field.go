package httpwire

import "net/http"

// Field is h.Get(name) for a name already in canonical form, read from the
// map directly. http.Header.Get canonicalises its argument on every call,
// a byte-by-byte check of the name; the hot path's six lookups of constant
// names (Host, Expect, Authorization, Accept, X-Paygate-Session and a
// response's Content-Length) spent about 2,000 instructions a request on
// it. A name that is not canonical would find nothing here where Get finds
// it: TestFieldIsGet holds every name a caller passes.
func Field(h http.Header, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// HasToken reports whether the field value v holds token (lower case, not
// empty) in any ASCII case, with the value's ends, spaces, tabs or
// commas on either side: net/http's reading of a request's Expect
// (Request.expectsContinue), which finds "100-continue" in
// "foo 100-continue" where a comma-separated list
// (httpguts.HeaderValuesContainsToken) holds the one token
// "foo 100-continue".
func HasToken(v, token string) bool {
	for i := 0; i+len(token) <= len(v); i++ {
		if i > 0 && !tokenBoundary(v[i-1]) {
			continue
		}
		if end := i + len(token); end < len(v) && !tokenBoundary(v[end]) {
			continue
		}
		j := 0
		for j < len(token) && matchFold(v[i+j], token[j]) {
			j++
		}
		if j == len(token) {
			return true
		}
	}
	return false
}

func tokenBoundary(c byte) bool { return c == ' ' || c == '\t' || c == ',' }
