package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestFormUserKeptOutOfTheURL: the end user a multipart form names in its
// "user" field (a bot that sends no X-WeChat-OpenID) is the request's end
// user on the rest of the path too, as a JSON body's "user" is: a query
// parameter holding it (?user=, a tag) reaches the provider with the
// user's hash in its place. passthroughForm rewrote the form's field, but
// the handler went on with no end user, and the OpenID in the URL reached
// the provider as sent (SPEC 2.2), where the same request with a JSON
// body had it hashed.
func TestFormUserKeptOutOfTheURL(t *testing.T) {
	const id = "oWx-openid-form-4242-long" // long enough to be taken anywhere
	h := expectedUserHash("shop-bot", id)
	formCT := "multipart/form-data; boundary=" + formBoundaryTest
	for _, tc := range []struct {
		name, path, ct, body string
	}{
		{"JSON", "/v1/embeddings?user=" + id + "&tag=wx:" + id, "application/json",
			`{"model":"gpt-test","input":"hi","user":"` + id + `"}`},
		{"form", "/v1/images/edits?user=" + id + "&tag=wx:" + id, formCT,
			form(t, field{"model", "", "gpt-test"}, field{"user", "", id}, field{"prompt", "", "a cat"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, jsonHandler(200, `{"data":[]}`))
			base, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
			resp := send(t, http.MethodPost, base, tc.path, tc.body, map[string]string{"Content-Type": tc.ct})
			if body := readAll(t, resp.Body); resp.StatusCode != 200 {
				t.Fatalf("status %d %s", resp.StatusCode, body)
			}
			got := fp.requests()[0]
			if _, q, _ := strings.Cut(got.Path, "?"); q != "user="+h+"&tag=wx%3A"+h {
				t.Errorf("provider got the query %q; want the user's hash in the OpenID's place", q)
			}
			if dq, _ := url.QueryUnescape(got.Path); strings.Contains(dq, id) || strings.Contains(string(got.Body), id) {
				t.Errorf("the OpenID reached the provider: %s", dq)
			}
		})
	}
}
