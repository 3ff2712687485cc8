package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
)

// TestUnionIDHeaderReachesNoProvider: WeChat Cloud hosting hands the bot's
// container X-WX-OPENID and X-WX-UNIONID, and a bot that forwards its
// headers to paygate and writes the user into its prompt gave the provider
// the UnionID, the same person across every app of the merchant, as
// written, while the OpenID beside it was hashed (otherOpenIDHeader). The
// header is not forwarded (the upstream request's headers are paygate's
// own), and its value is taken out of the body's text as a metadata
// UnionID member's is: the hash of its own value, u_anonymous under drop.
// With the OpenID in X-WeChat-OpenID, in X-WX-OPENID, or nowhere; in a
// JSON body and in a form's text fields and part headers alike.
func TestUnionIDHeaderReachesNoProvider(t *testing.T) {
	const openID = "oCLD1-openid_1a2b3c4d5e6f7g8"
	const unionID = "oUNI1-unionid_9z8y7x6w5v4u3t"
	for _, tc := range []struct {
		name, forward, path, openIDHeader, body, want string
		form                                          bool
	}{
		{"cloud hosting chat hash", "hash", "/v1/chat/completions", "X-WX-OPENID",
			`{"model":"gpt-test","messages":[{"role":"system","content":"You serve ` + openID + ` (` + unionID + `)"},{"role":"user","content":"hi"}]}`,
			`{"model":"vendor/upstream-model","messages":[{"role":"system","content":"You serve ` + expectedUserHash("shop-bot", openID) + ` (` + expectedUserHash("shop-bot", unionID) + `)"},{"role":"user","content":"hi"}]}`, false},
		{"paying user chat drop", "drop", "/v1/chat/completions", "X-WeChat-OpenID",
			`{"model":"gpt-test","messages":[{"role":"system","content":"You serve ` + openID + ` (` + unionID + `)"},{"role":"user","content":"hi"}]}`,
			`{"model":"vendor/upstream-model","messages":[{"role":"system","content":"You serve u_anonymous (u_anonymous)"},{"role":"user","content":"hi"}]}`, false},
		{"union id alone chat hash", "hash", "/v1/chat/completions", "",
			`{"model":"gpt-test","messages":[{"role":"system","content":"You serve ` + unionID + `"},{"role":"user","content":"hi"}]}`,
			`{"model":"vendor/upstream-model","messages":[{"role":"system","content":"You serve ` + expectedUserHash("shop-bot", unionID) + `"},{"role":"user","content":"hi"}]}`, false},
		{"cloud hosting embeddings hash", "hash", "/v1/embeddings", "X-WX-OPENID",
			`{"model":"embed-test","input":"profile of ` + unionID + `"}`,
			`{"model":"vendor/embed","input":"profile of ` + expectedUserHash("shop-bot", unionID) + `"}`, false},
		{"cloud hosting form hash", "hash", "/v1/audio/transcriptions", "X-WX-OPENID",
			form(t, field{"prompt", "", "Speaker: " + openID + " " + unionID}, field{"file", unionID + ".amr", "audio"}),
			form(t, field{"prompt", "", "Speaker: " + expectedUserHash("shop-bot", openID) + " " + expectedUserHash("shop-bot", unionID)},
				field{"file", expectedUserHash("shop-bot", unionID) + ".amr", "audio"}), true},
		{"cloud hosting form drop", "drop", "/v1/audio/transcriptions", "X-WX-OPENID",
			form(t, field{"prompt", "", "Speaker: " + unionID}, field{"file", "a.amr", "audio"}),
			form(t, field{"prompt", "", "Speaker: u_anonymous"}, field{"file", "a.amr", "audio"}), true},
		{"both in one part header", "hash", "/v1/audio/transcriptions", "X-WX-OPENID",
			form(t, field{"file", openID + "_" + unionID + ".amr", "audio"}),
			form(t, field{"file", expectedUserHash("shop-bot", openID) + "_" + expectedUserHash("shop-bot", unionID) + ".amr", "audio"}), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"Content-Type": "application/json", "X-WX-UNIONID": unionID}
			if tc.form {
				hdr["Content-Type"] = "multipart/form-data; boundary=" + formBoundaryTest
			}
			if tc.openIDHeader != "" {
				hdr[tc.openIDHeader] = openID
			}
			seen := forwardedOnce(t, tc.forward, tc.path, tc.body, hdr)
			for k, vs := range seen.Header {
				if strings.Contains(strings.ToLower(k), "union") || strings.Contains(strings.Join(vs, ","), unionID) {
					t.Errorf("provider got header %s: %q", k, vs)
				}
			}
			if got := string(seen.Body); got != tc.want {
				t.Errorf("provider got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// TestUnionIDHeaderOutOfTheURL: the UnionID X-WX-UNIONID names reached the
// provider, and its access logs, in the query and the URL's path as
// written, while the OpenID beside it was hashed there (queryWithoutUser)
// or refused (pathHoldsUser). In the query it is taken out as the end user
// is: the hash of its own value, the parameter left out under drop, kept
// under keep; the end user's already hashed parameters (user=,
// metadata[wx_openid]=) are not hashed a second time. In the path it is a
// 400 that reaches no provider, escaped once or twice too.
func TestUnionIDHeaderOutOfTheURL(t *testing.T) {
	const openID = "oURL1-openid_1a2b3c4d5e6f7g8"
	const unionID = "oURL2-unionid_9z8y7x6w5v4u3t"
	ho, hu := expectedUserHash("shop-bot", openID), expectedUserHash("shop-bot", unionID)
	for _, tc := range []struct{ name, forward, openIDHeader, path, want string }{
		{"a filter's value", "hash", "X-WX-OPENID", "/v1/vector_stores?q=" + unionID, "/v1/vector_stores?q=" + hu},
		{"within a value", "hash", "X-WX-OPENID", "/v1/files?purpose=batch&order=" + unionID + "-1", "/v1/files?purpose=batch&order=" + hu + "-1"},
		{"escaped, in a name", "hash", "X-WX-OPENID", "/v1/files?f%5B%6F" + unionID[1:] + "%5D=1", "/v1/files?f%5B" + hu + "%5D=1"},
		{"beside the end user's", "hash", "X-WX-OPENID",
			"/v1/chat/completions?user=" + openID + "&metadata%5Bwx_openid%5D=" + openID + "&q=" + unionID,
			"/v1/chat/completions?user=" + ho + "&metadata%5Bwx_openid%5D=" + ho + "&q=" + hu},
		{"beside the end user's metadata", "hash", "X-WX-OPENID",
			"/v1/chat/completions?metadata=" + url.QueryEscape(`{"wx_openid":"`+openID+`"}`) + "&q=" + unionID,
			"/v1/chat/completions?metadata=" + url.QueryEscape(`{"wx_openid":"`+ho+`"}`) + "&q=" + hu},
		// A metadata filter of JSON may spell it with an escape, which the
		// provider's JSON reader undoes, as a body's string may.
		{"escaped in a metadata filter of JSON", "hash", "X-WX-OPENID",
			"/v1/chat/completions?metadata=" + url.QueryEscape(`{"tag":"\u006f`+unionID[1:]+`"}`) + "&limit=2",
			"/v1/chat/completions?metadata=" + url.QueryEscape(`{"tag":"`+hu+`"}`) + "&limit=2"},
		{"escaped in a metadata filter of JSON, no end user", "hash", "",
			"/v1/chat/completions?metadata=" + url.QueryEscape(`{"tag":"\u006f`+unionID[1:]+`"}`),
			"/v1/chat/completions?metadata=" + url.QueryEscape(`{"tag":"`+hu+`"}`)},
		{"escaped in a metadata filter of JSON, drop", "drop", "X-WX-OPENID",
			"/v1/chat/completions?metadata=" + url.QueryEscape(`{"tag":"\u006f`+unionID[1:]+`"}`) + "&limit=2",
			"/v1/chat/completions?limit=2"},
		{"no end user", "hash", "", "/v1/files?order=" + unionID, "/v1/files?order=" + hu},
		{"drop", "drop", "X-WeChat-OpenID", "/v1/vector_stores?q=" + unionID + "&limit=2", "/v1/vector_stores?limit=2"},
		{"keep", "keep", "X-WX-OPENID", "/v1/vector_stores?q=" + unionID, "/v1/vector_stores?q=" + unionID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"X-WX-UNIONID": unionID}
			if tc.openIDHeader != "" {
				hdr[tc.openIDHeader] = openID
			}
			seen := forwardedOnceAs(t, http.MethodGet, tc.forward, tc.path, "", hdr)
			if seen.Path != tc.want {
				t.Errorf("provider's URL\n%s\nwant\n%s", seen.Path, tc.want)
			}
		})
	}
	// A UnionID header too short to be taken anywhere (the OpenID's 16
	// bytes, interceptors.UserTakenAnywhere) takes nothing out of the
	// URL: "7" is a bot's count or its own tag in metadata[…] as often as
	// anyone's id, and hashed there the provider got the wrong filter.
	t.Run("a short UnionID takes nothing", func(t *testing.T) {
		const path = "/v1/chat/completions?metadata%5Border%5D=7&limit=7"
		seen := forwardedOnceAs(t, http.MethodGet, "hash", path, "", map[string]string{"X-WX-OPENID": openID, "X-WX-UNIONID": "7"})
		if seen.Path != path {
			t.Errorf("provider's URL\n%s\nwant\n%s", seen.Path, path)
		}
	})
	for _, tc := range []struct{ name, forward, path string }{
		{"segment", "hash", "/v1/files/" + unionID},
		{"inside a segment", "drop", "/v1/files/file-" + unionID + "/content"},
		{"escaped", "hash", "/v1/files/%6F" + unionID[1:]},
		{"escaped twice", "hash", "/v1/files/%256F" + unionID[1:]},
	} {
		t.Run("path "+tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, jsonHandler(200, `{"object":"file","id":"file-1"}`))
			proxyURL, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) { c.Privacy.ForwardUser = tc.forward }))
			resp := send(t, http.MethodGet, proxyURL, tc.path, "", map[string]string{"X-WX-OPENID": openID, "X-WX-UNIONID": unionID})
			body := readAll(t, resp.Body)
			if resp.StatusCode != 400 || strings.Contains(body, unionID) || !strings.Contains(body, `"type":"invalid_request_error"`) {
				t.Errorf("status %d %s; want 400 with OpenAI's error JSON, not repeating the id", resp.StatusCode, body)
			}
			if seen := fp.requests(); len(seen) != 0 {
				t.Errorf("%d upstream requests (%s); want none", len(seen), seen[0].Path)
			}
		})
	}
}
