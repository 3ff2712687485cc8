package httpwire

import (
	"net/http"
	"strings"
	"testing"
)

// fieldNames are the names passed to Field by paygate's code; each must be
// canonical, or Field would miss a header Get finds.
var fieldNames = []string{"Host", "Expect", "Authorization", "Accept", "X-Paygate-Session", "Content-Length", "X-Wechat-Openid"}

// TestFieldIsGet compares Field with http.Header.Get, the call it replaces,
// over header maps as a parser builds them and as a handler may set them:
// absent, empty slice, empty value, several values, and keys in other
// casings (which neither finds, since Get canonicalises only its argument).
func TestFieldIsGet(t *testing.T) {
	for _, name := range fieldNames {
		if c := http.CanonicalHeaderKey(name); c != name {
			t.Errorf("%q is not canonical (%q): Field would miss what Get finds", name, c)
		}
	}
	maps := []struct {
		desc string
		h    http.Header
	}{
		{"nil map", nil},
		{"absent", http.Header{"Other": {"x"}}},
		{"empty slice", http.Header{"%s": {}}},
		{"nil slice", http.Header{"%s": nil}},
		{"empty value", http.Header{"%s": {""}}},
		{"one value", http.Header{"%s": {"v1"}}},
		{"two values", http.Header{"%s": {"", "v2"}}},
		{"lower-case key", http.Header{"lower": {"v"}}},
		{"upper-case key", http.Header{"UPPER": {"v"}}},
	}
	for _, name := range fieldNames {
		for _, m := range maps {
			h := http.Header{}
			for k, v := range m.h {
				switch k {
				case "%s":
					k = name
				case "lower":
					k = strings.ToLower(name)
				case "UPPER":
					k = strings.ToUpper(name)
				}
				h[k] = v
			}
			if m.h == nil {
				h = nil
			}
			if got, want := Field(h, name), h.Get(name); got != want {
				t.Errorf("%s, %s: Field = %q, Get = %q", name, m.desc, got, want)
			}
		}
	}
}
