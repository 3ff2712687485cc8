package proxy

import (
	"strings"
	"testing"
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
