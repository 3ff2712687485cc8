package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ForwardMethods are the methods a clients[].forward pattern may name: the
// ones an OpenAI-compatible API serves. A pattern without one matches any.
var ForwardMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// ForwardRule is one clients[].forward pattern, parsed: Method "" matches
// any method; Prefix makes Path a prefix (the pattern ended in "*") rather
// than the whole path.
type ForwardRule struct {
	Method string
	Path   string
	Prefix bool
}

// Matches reports whether a request's method and decoded path match the
// rule. Methods match exactly: HEAD is not GET.
func (f ForwardRule) Matches(method, path string) bool {
	if f.Method != "" && f.Method != method {
		return false
	}
	if f.Prefix {
		return strings.HasPrefix(path, f.Path)
	}
	return path == f.Path
}

// ParseForward parses a clients[].forward pattern: "METHOD /v1/path" or
// "/v1/path", with an optional trailing "*" as a prefix wildcard. The path
// is matched against the request's decoded path, without its query, so a
// pattern holding "?" or "#" could never match and is refused, as is a "*"
// elsewhere than at the end (it would be read literally).
func ParseForward(p string) (ForwardRule, error) {
	fields := strings.Fields(p)
	var r ForwardRule
	switch len(fields) {
	case 1:
		r.Path = fields[0]
	case 2:
		r.Method, r.Path = fields[0], fields[1]
		if !slices.Contains(ForwardMethods, r.Method) {
			return r, fmt.Errorf("the method %q is not one of %s (upper case), or leave it out to match any method", r.Method, strings.Join(ForwardMethods, ", "))
		}
	default:
		return r, errors.New(`want "METHOD /v1/path" or "/v1/path", e.g. "POST /v1/embeddings" or "GET /v1/responses/*"`)
	}
	if !strings.HasPrefix(r.Path, "/v1/") {
		return r, fmt.Errorf("the path %q must start with /v1/", r.Path)
	}
	if strings.ContainsAny(r.Path, "?#") {
		return r, fmt.Errorf("the path %q holds a query or fragment: a pattern matches the path alone", r.Path)
	}
	path := r.Path
	r.Path, r.Prefix = strings.CutSuffix(r.Path, "*")
	if strings.Contains(r.Path, "*") {
		return r, fmt.Errorf("the path %q has a \"*\" before its end: \"*\" is allowed only as the last character (a prefix wildcard)", path)
	}
	return r, nil
}
