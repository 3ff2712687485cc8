package proxy

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// TestChatFirstIsTheMuxChoice holds the chat route's shortcut to the
// ServeMux it bypasses: a request takes the shortcut only when the mux
// would have served the chat route for it (one it declines still goes to
// the mux, which decides as before), over methods, hosts and paths
// the mux cleans, redirects or unescapes. A request without a key is
// refused by the chat route, so serving the mux's choice costs nothing.
func TestChatFirstIsTheMuxChoice(t *testing.T) {
	s := newPaygate(t, testConfig(t, "http://127.0.0.1:1", nil), Options{})
	h, ok := s.Handler().(*chatFirst)
	if !ok {
		t.Fatalf("Handler is %T, not *chatFirst", s.Handler())
	}
	methods := []string{http.MethodPost, http.MethodGet, http.MethodHead, http.MethodPut, http.MethodOptions, http.MethodConnect, "post"}
	targets := []string{
		"/v1/chat/completions",
		"/v1/chat/completions?stream=true",
		"/v1/chat/completions/",
		"/v1//chat/completions",
		"/v1/./chat/completions",
		"/v1/chat/../chat/completions",
		"/v1/chat%2Fcompletions",
		"/v1/chat/complet%69ons",
		"/v1/chat/completions%20",
		"/V1/chat/completions",
		"/v1/chat/completionsx",
		"/v1/chat",
		"http://example.com/v1/chat/completions",
		"*",
	}
	hosts := []string{"", "127.0.0.1:8080", "example.com", "[::1]:443"}
	chosen := 0
	for _, m := range methods {
		for _, target := range targets {
			for _, host := range hosts {
				r := httptest.NewRequest(m, "/", nil)
				u, err := url.ParseRequestURI(target) // as a server reads it: dot segments kept
				if err != nil {
					t.Fatalf("%s: %v", target, err)
				}
				r.URL, r.RequestURI, r.Host = u, target, host
				// Handler names the pattern a redirect leads to as well;
				// the mux serves the chat route only without one.
				handler, pattern := h.mux.Handler(r)
				rec := httptest.NewRecorder()
				handler.ServeHTTP(rec, r.Clone(r.Context()))
				redirect := rec.Code == http.StatusMovedPermanently || rec.Code == http.StatusPermanentRedirect
				want := pattern == chatPattern && !redirect
				got := isChatRoute(r)
				if got && !want {
					t.Errorf("%s %s (host %q): shortcut taken, mux pattern %q, redirect %v", m, target, host, pattern, redirect)
				}
				if got {
					chosen++
				}
			}
		}
	}
	if chosen == 0 {
		t.Fatal("the shortcut was taken for no request: the table tests nothing")
	}
}
