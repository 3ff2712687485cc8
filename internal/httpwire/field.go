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
