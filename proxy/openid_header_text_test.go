package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
)

// TestOtherOpenIDHeaderTakenOutOfTheBody: a bot that names its end user in
// a header of another name (X-OpenID, X-Wx-Openid), which paygate logs as
// naming no end user, and puts the OpenID in its prompt too, had the
// OpenID reach the provider in the prompt: the header's value is taken as
// the end user toward the provider, as a metadata OpenID is (hashed in
// every string of the body, u_anonymous under drop), though never as a
// paying one. A JSON chat, a forwarded JSON body and a form alike.
func TestOtherOpenIDHeaderTakenOutOfTheBody(t *testing.T) {
	const openID = "oHDR7-openid_1a2b3c4d5e6f7g8"
	h := expectedUserHash("shop-bot", openID)
	formCT := "multipart/form-data; boundary=" + formBoundaryTest
	audio := field{"file", "a.txt", "audio"}
	for _, tc := range []struct {
		name, forward, header, path, ct, body, want string
	}{
		{"chat hash", "hash", "X-OpenID", "/v1/chat/completions", "application/json",
			`{"model":"gpt-test","messages":[{"role":"system","content":"You serve ` + openID + `"},{"role":"user","content":"hi"}]}`,
			`{"model":"vendor/upstream-model","messages":[{"role":"system","content":"You serve ` + h + `"},{"role":"user","content":"hi"}]}`},
		{"chat drop", "drop", "X-Wx-Openid", "/v1/chat/completions", "application/json",
			`{"model":"gpt-test","messages":[{"role":"system","content":"You serve ` + openID + `"},{"role":"user","content":"hi"}]}`,
			`{"model":"vendor/upstream-model","messages":[{"role":"system","content":"You serve u_anonymous"},{"role":"user","content":"hi"}]}`},
		{"embeddings hash", "hash", "X-OpenID", "/v1/embeddings", "application/json",
			`{"model":"embed-test","input":"profile of ` + openID + `"}`,
			`{"model":"vendor/embed","input":"profile of ` + h + `"}`},
		{"form hash", "hash", "X-Open-Id", "/v1/audio/transcriptions", formCT,
			form(t, field{"prompt", "", "Speaker: " + openID}, audio),
			form(t, field{"prompt", "", "Speaker: " + h}, audio)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := forwardedOnce(t, tc.forward, tc.path, tc.body, map[string]string{"Content-Type": tc.ct, tc.header: openID})
			if got := string(seen.Body); got != tc.want {
				t.Errorf("provider got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// TestOtherOpenIDHeaderTakenOutOfTheQuery: a call with no body paygate
// reads (a list filtered by the end user, a cancel) whose end user is
// named only in a header of another name had the OpenID in its query
// reach the provider and its access logs as written: the header's value
// is the end user there too, its hash in the query's place.
func TestOtherOpenIDHeaderTakenOutOfTheQuery(t *testing.T) {
	const openID = "oHDQ9-openid_9z8y7x6w5v4u3t2"
	h := expectedUserHash("shop-bot", openID)
	for _, tc := range []struct{ name, path, want string }{
		{"a filter's value", "/v1/vector_stores?q=" + openID, "/v1/vector_stores?q=" + h},
		{"within a value", "/v1/files?purpose=batch&order=" + openID + "-1", "/v1/files?purpose=batch&order=" + h + "-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := forwardedOnce(t, "hash", tc.path, "", map[string]string{"X-OpenID": openID})
			if seen.Path != tc.want {
				t.Errorf("provider's URL %s; want %s", seen.Path, tc.want)
			}
		})
	}
}

// forwardedOnce sends body to path with hdr through a proxy under
// privacy.forward_user forward, and returns the one request its provider
// got: a chat answered with a completion, any other path with an
// embeddings list.
func forwardedOnce(t *testing.T, forward, path, body string, hdr map[string]string) seenRequest {
	t.Helper()
	return forwardedOnceAs(t, http.MethodPost, forward, path, body, hdr)
}

// forwardedOnceAs is forwardedOnce with the request's method.
func forwardedOnceAs(t *testing.T, method, forward, path, body string, hdr map[string]string) seenRequest {
	t.Helper()
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasPrefix(r.URL.Path, "/v1/chat/") {
			_, _ = w.Write([]byte(okCompletion))
			return
		}
		_, _ = w.Write([]byte(`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5]}],"model":"vendor/embed","usage":{"prompt_tokens":1,"total_tokens":1}}`))
	})
	proxyURL, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) { c.Privacy.ForwardUser = forward }))
	resp := send(t, method, proxyURL, path, body, hdr)
	if b := readAll(t, resp.Body); resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, b)
	}
	seen := fp.requests()
	if len(seen) != 1 {
		t.Fatalf("%d upstream requests; want 1", len(seen))
	}
	return seen[0]
}

// TestOtherOpenIDHeaderAllocatesNothing: read on every chat request that
// names no end user, otherOpenIDHeader costs a range over the headers and
// no allocation, found or not; X-WeChat-OpenID sent empty (a visitor) is
// none of them, and of two the least name is taken. unionIDHeader, read on
// every request with a body paygate rewrites, allocates nothing either.
func TestOtherOpenIDHeaderAllocatesNothing(t *testing.T) {
	for _, tc := range []struct {
		h    http.Header
		want string
	}{
		{http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"r1"}}, ""},
		{http.Header{"X-Wechat-Openid": {""}, "Accept": {"*/*"}}, ""},
		{http.Header{"X-Openid": {"o-a"}, "Accept": {"*/*"}}, "o-a"},
		{http.Header{"X-Wx-Openid": {"o-b"}, "X-Openid": {"o-a"}}, "o-a"},
		{http.Header{"X-Openid-Issuer": {"wx"}}, ""},
		{http.Header{"X-Wx-Unionid": {"u-a"}, "X-Wx-Openid": {"o-b"}}, "o-b"},
	} {
		if got := otherOpenIDHeader(tc.h); got != tc.want {
			t.Errorf("otherOpenIDHeader(%v) = %q; want %q", tc.h, got, tc.want)
		}
		if n := testing.AllocsPerRun(100, func() { otherOpenIDHeader(tc.h) }); n != 0 {
			t.Errorf("otherOpenIDHeader(%v): %v allocations; want 0", tc.h, n)
		}
		if n := testing.AllocsPerRun(100, func() { unionIDHeader(tc.h) }); n != 0 {
			t.Errorf("unionIDHeader(%v): %v allocations; want 0", tc.h, n)
		}
	}
}
