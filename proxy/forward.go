package proxy

import (
	"fmt"
	"net/http"

	"github.com/paygate/paygate/config"
)

// forwardRules is one client's clients[].forward, compiled once at New:
// the passthrough checks each request against it without parsing or
// allocating. key names the config key in the refusal, for the operator.
type forwardRules struct {
	rules []config.ForwardRule
	key   string
}

// compileForward parses the patterns of a clients[].forward list (checked
// at load already; New may be given a config that was not).
func compileForward(patterns []string, key string) (forwardRules, error) {
	fr := forwardRules{rules: make([]config.ForwardRule, 0, len(patterns)), key: key}
	for i, p := range patterns {
		r, err := config.ParseForward(p)
		if err != nil {
			return fr, fmt.Errorf("%s[%d] %q: %w", key, i, p, err)
		}
		fr.rules = append(fr.rules, r)
	}
	return fr, nil
}

// forwardAllowed refuses a forwarded request of a client whose
// clients[].forward matches none of its method and path, before its body
// is read and before any provider sees it: every forwarded path is sent
// with the operator's provider keys, so without the list any bot could
// list and read the account's files, stored completions, batches and
// fine-tuning jobs. path is the decoded path, as the provider reads it
// (upstreamPath has refused the escapes that could change its segments).
// A client without the list may call every path (SPEC 2.2).
func (s *Server) forwardAllowed(c *config.Client, method, path string) *apiError {
	fr, ok := s.forward[c]
	if !ok {
		return nil
	}
	for _, r := range fr.rules {
		if r.Matches(method, path) {
			return nil
		}
	}
	return &apiError{Status: http.StatusForbidden, Type: "invalid_request_error", Code: "path_not_allowed",
		Message: "paygate: " + method + " " + path + " is not allowed for this client: it matches none of the patterns of its " +
			fr.key + " in paygate's config"}
}
