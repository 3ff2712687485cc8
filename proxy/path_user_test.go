package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
)

// TestOpenIDInForwardedPath: a forwarded request whose URL path holds the
// end user's OpenID (a bot that names its stored object, a file or a
// vector store, by its user) is a 400 that reaches no provider under hash
// and drop, as a Content-Type holding it is (TestOpenIDInForwardedHeaders):
// the path names the object, so no hash can stand in its place, and sent
// as written the provider and its access logs got the OpenID (SPEC 2.2).
// It counts spelled with escapes, as the provider decodes them, and escaped
// twice, as a proxy in front of it that decodes too makes of it; and for an
// end user named by the body's "user" as by the header. Under keep, and
// for a short id (a token in text, as elsewhere), the path goes as sent.
func TestOpenIDInForwardedPath(t *testing.T) {
	const openID = "oPATH7-openid_7a8b9c0d1e2f3g4"
	for _, tc := range []struct {
		name, mode, method, path, body, user string
		status                               int
	}{
		{"segment", "hash", http.MethodGet, "/v1/files/" + openID, "", openID, 400},
		{"inside a segment", "drop", http.MethodGet, "/v1/files/file-" + openID + "/content", "", openID, 400},
		{"escaped", "hash", http.MethodGet, "/v1/files/%6F" + openID[1:], "", openID, 400},
		{"body's user", "hash", http.MethodPost, "/v1/vector_stores/vs_" + openID + "/search", `{"query":"x","user":"` + openID + `"}`, "", 400},
		{"escaped twice", "hash", http.MethodGet, "/v1/files/%256F" + openID[1:], "", openID, 400},
		{"escaped twice inside", "drop", http.MethodGet, "/v1/files/" + openID[:11] + "%2569" + openID[12:], "", openID, 400},
		{"keep", "keep", http.MethodGet, "/v1/files/" + openID, "", openID, 200},
		{"short id", "hash", http.MethodGet, "/v1/files/file-u7", "", "u7", 200},
		{"id of 15 bytes", "hash", http.MethodGet, "/v1/files/file-o15bytes-openid", "", "o15bytes-openid", 200},
		{"escaped, another's", "hash", http.MethodGet, "/v1/files/file-%2541bc", "", openID, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, jsonHandler(200, `{"object":"file","id":"file-1"}`))
			proxyURL, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) { c.Privacy.ForwardUser = tc.mode }))
			hdr := map[string]string{}
			if tc.user != "" {
				hdr["X-WeChat-OpenID"] = tc.user
			}
			resp := send(t, tc.method, proxyURL, tc.path, tc.body, hdr)
			body := readAll(t, resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d %s; want %d", resp.StatusCode, body, tc.status)
			}
			seen := fp.requests()
			if tc.status != 200 {
				if len(seen) != 0 {
					t.Errorf("%d upstream requests (%s); want none", len(seen), seen[0].Path)
				}
				if strings.Contains(body, openID) || !strings.Contains(body, `"type":"invalid_request_error"`) {
					t.Errorf("answer %s; want OpenAI's error JSON, not repeating the id", body)
				}
				return
			}
			if len(seen) != 1 {
				t.Fatalf("%d upstream requests; want 1", len(seen))
			}
		})
	}
}
