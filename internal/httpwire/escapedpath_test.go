package httpwire

import (
	"net/url"
	"testing"
)

// escapedPathCases are URLs whose EscapedPath must be url.URL's: plain
// paths, paths with bytes that escape, "*", and a RawPath that spells
// the path otherwise (kept by url.URL) or does not match it (ignored).
var escapedPathCases = []url.URL{
	{Path: "/v1/chat/completions"},
	{Path: ""},
	{Path: "/"},
	{Path: "*"},
	{Path: "/a b/c"},
	{Path: "/a%2Fb"},
	{Path: "/ünï/cødé"},
	{Path: "/a:b@c;d=e,f$g&h+i"},
	{Path: "/a/b", RawPath: "/a%2Fb"},
	{Path: "/a/b", RawPath: "/a/b"},
	{Path: "/a/b", RawPath: "/x/y"},
	{Path: "/a b", RawPath: "/a%20b"},
	{Path: "/v1/chat/completions", RawQuery: "x=1"},
}

// TestEscapedPathMatchesURL holds EscapedPath to url.URL.EscapedPath, the
// call it replaces in the upstream request line.
func TestEscapedPathMatchesURL(t *testing.T) {
	for _, u := range escapedPathCases {
		if got, want := EscapedPath(&u), u.EscapedPath(); got != want {
			t.Errorf("EscapedPath(%+v) = %q; url.URL says %q", u, got, want)
		}
	}
}

func FuzzEscapedPath(f *testing.F) {
	for _, u := range escapedPathCases {
		f.Add(u.Path, u.RawPath)
	}
	f.Fuzz(func(t *testing.T, path, raw string) {
		u := url.URL{Path: path, RawPath: raw}
		if got, want := EscapedPath(&u), u.EscapedPath(); got != want {
			t.Fatalf("EscapedPath(%q, RawPath %q) = %q; url.URL says %q", path, raw, got, want)
		}
	})
}
