package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestAdminRequestWithoutTokenIsNoRefusedToken: the console asks the admin
// API without a token each time its sign-in page opens with no token kept
// ("Bearer " and nothing, to tell a refusal from an API that is off), and
// a probe or a scanner sends none at all: no token was guessed, so no
// "admin token refused" line, which would read as a guesser at every
// opening of the console and hold back, for its interval, the line of a
// real guess that follows. A wrong token sent is still logged.
func TestAdminRequestWithoutTokenIsNoRefusedToken(t *testing.T) {
	mux, logs := loggedAdminAPI(t)
	ask := func(auth string, set bool) {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, "/admin/api/providers", nil)
		if set {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("Authorization %q: %d; want 401", auth, rec.Code)
		}
	}
	ask("", false)       // no header
	ask("Bearer ", true) // the console's sign-in page
	ask("Bearer", true)
	if n := strings.Count(logs.String(), `"msg":"admin token refused"`); n != 0 {
		t.Fatalf("%d lines say an admin token was refused, for requests that sent none; want 0; log:\n%s", n, logs.String())
	}
	ask("Bearer adm-guess", true)
	if n := strings.Count(logs.String(), `"msg":"admin token refused"`); n != 1 {
		t.Errorf("%d lines say an admin token was refused after a wrong one was sent; want 1; log:\n%s", n, logs.String())
	}
}
