package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
)

// TestEveryMetadataOpenIDIsHashed: a bot's metadata may name more than one
// OpenID ({"openid": …, "wx_openid": …}, the user and the one who shared
// the link), or an OpenID other than the end user's. Each member whose key
// says OpenID (X_openid, open_id, …) is an OpenID, and none reaches the
// provider (SPEC 2.2): under hash each gets the hash of its own value (the
// end user's the hash "user" gets), under drop each is left out; in a JSON
// body on chat completions and on a forwarded path, in a form's
// metadata[…] field, and in the stored completions filter's
// ?metadata[…]= (which must name what the chats were stored with). Only
// the first was hashed: the second reached the provider as sent.
func TestEveryMetadataOpenIDIsHashed(t *testing.T) {
	const a, b = "oWx-openid-4242", "oWx-sharer-7777"
	ha, hb := expectedUserHash("shop-bot", a), expectedUserHash("shop-bot", b)
	hab := expectedUserHash("shop-bot", a+","+b)
	formCT := "multipart/form-data; boundary=" + formBoundaryTest
	for _, tc := range []struct {
		name, mode, method, path, ct, body, header string
		want                                       string // the body, or for a GET the query, the provider got
	}{
		{"chat, two OpenIDs, no header", "hash", http.MethodPost, "/v1/chat/completions", "",
			`{"model":"gpt-test","messages":[],"metadata":{"openid":"` + a + `","shop":"s1","user_openid":"` + b + `"}}`, "",
			`{"model":"vendor/upstream-model","messages":[],"metadata":{"openid":"` + ha + `","shop":"s1","user_openid":"` + hb + `"}}`},
		{"chat, another OpenID than the header's", "hash", http.MethodPost, "/v1/chat/completions", "",
			`{"model":"gpt-test","messages":[],"metadata":{"wx_open_id":"` + b + `"}}`, a,
			`{"model":"vendor/upstream-model","messages":[],"metadata":{"wx_open_id":"` + hb + `"}}`},
		{"chat, two OpenIDs, drop", "drop", http.MethodPost, "/v1/chat/completions", "",
			`{"model":"gpt-test","messages":[],"metadata":{"openid":"` + a + `","Sharer-OpenID":"` + b + `","shop":"s1"}}`, "",
			`{"model":"vendor/upstream-model","messages":[],"metadata":{"shop":"s1"}}`},
		{"responses, two OpenIDs, no header", "hash", http.MethodPost, "/v1/responses", "",
			`{"model":"gpt-test","input":"hi","metadata":{"openid":"` + a + `","wx_openid":"` + b + `"}}`, "",
			`{"model":"vendor/upstream-model","input":"hi","metadata":{"openid":"` + ha + `","wx_openid":"` + hb + `"}}`},
		{"responses, a key escaped", "hash", http.MethodPost, "/v1/responses", "",
			`{"model":"gpt-test","input":"hi","metadata":{"openid":"` + a + `","wx_open\u0069d":"` + b + `"}}`, "",
			`{"model":"vendor/upstream-model","input":"hi","metadata":{"openid":"` + ha + `","wx_open\u0069d":"` + hb + `"}}`},
		// A UnionID (the user across all the merchant's apps) and a list
		// of OpenIDs name users as surely as an OpenID.
		{"chat, a UnionID and an OpenID list", "hash", http.MethodPost, "/v1/chat/completions", "",
			`{"model":"gpt-test","messages":[],"metadata":{"unionid":"` + b + `","Sharer_Union_ID":"` + b + `","sharer_openids":"` + b + `"}}`, a,
			`{"model":"vendor/upstream-model","messages":[],"metadata":{"unionid":"` + hb + `","Sharer_Union_ID":"` + hb + `","sharer_openids":"` + hb + `"}}`},
		{"chat, a UnionID nested", "hash", http.MethodPost, "/v1/chat/completions", "",
			`{"model":"gpt-test","messages":[],"metadata":{"ctx":{"wx_unionid":"` + b + `"},"shop":"s1"}}`, a,
			`{"model":"vendor/upstream-model","messages":[],"metadata":{"shop":"s1"}}`},
		{"form, a UnionID", "hash", http.MethodPost, "/v1/images/edits", formCT,
			form(t, field{"model", "", "gpt-test"}, field{"metadata[union_id]", "", b}), a,
			form(t, field{"model", "", "vendor/upstream-model"}, field{"metadata[union_id]", "", hb})},
		{"query, a UnionID", "hash", http.MethodGet, "/v1/chat/completions?metadata[unionid]=" + b, "", "", a,
			"metadata[unionid]=" + hb},
		// An id's member holding the end user's OpenID beside another's
		// is one value, hashed whole: replacing the end user's alone
		// sent the other in clear.
		{"chat, a list of the user's and another's OpenID", "hash", http.MethodPost, "/v1/chat/completions", "",
			`{"model":"gpt-test","messages":[],"metadata":{"group_openids":"` + a + `,` + b + `"}}`, a,
			`{"model":"vendor/upstream-model","messages":[],"metadata":{"group_openids":"` + hab + `"}}`},
		{"form, a list of the user's and another's OpenID", "hash", http.MethodPost, "/v1/images/edits", formCT,
			form(t, field{"model", "", "gpt-test"}, field{"metadata[group_openids]", "", a + "," + b}), a,
			form(t, field{"model", "", "vendor/upstream-model"}, field{"metadata[group_openids]", "", hab})},
		{"query, a list of the user's and another's OpenID", "hash", http.MethodGet, "/v1/chat/completions?metadata[group_openids]=" + a + "," + b, "", "", a,
			"metadata[group_openids]=" + hab},
		// Nested: a member or a metadata that is not a string, holding
		// an OpenID member at any depth, has nothing to hash it as and is
		// not sent.
		{"chat, an OpenID in a member's object", "hash", http.MethodPost, "/v1/chat/completions", "",
			`{"model":"gpt-test","messages":[],"metadata":{"ctx":{"share":{"wx_openid":"` + b + `"}},"shop":"s1"}}`, a,
			`{"model":"vendor/upstream-model","messages":[],"metadata":{"shop":"s1"}}`},
		{"chat, an OpenID in a member's array", "hash", http.MethodPost, "/v1/chat/completions", "",
			`{"model":"gpt-test","messages":[],"metadata":{"shop":"s1","sharers":[{"openid":"` + b + `"}]}}`, a,
			`{"model":"vendor/upstream-model","messages":[],"metadata":{"shop":"s1"}}`},
		{"responses, metadata an array holding an OpenID", "hash", http.MethodPost, "/v1/responses", "",
			`{"model":"gpt-test","input":"hi","metadata":[{"openid":"` + b + `"}]}`, "",
			`{"model":"vendor/upstream-model","input":"hi"}`},
		// A form's metadata field holding a JSON object, as a JSON
		// body's metadata member is.
		{"form, a metadata field of JSON", "hash", http.MethodPost, "/v1/images/edits", formCT,
			form(t, field{"model", "", "gpt-test"}, field{"metadata", "", `{"openid":"` + a + `","wx_openid":"` + b + `","ctx":{"openid":"` + b + `"},"shop":"s1"}`}), a,
			form(t, field{"model", "", "vendor/upstream-model"}, field{"metadata", "", `{"openid":"` + ha + `","wx_openid":"` + hb + `","shop":"s1"}`})},
		{"form, a metadata field of JSON, drop", "drop", http.MethodPost, "/v1/images/edits", formCT,
			form(t, field{"model", "", "gpt-test"}, field{"metadata", "", `{"wx_openid":"` + b + `","shop":"s1"}`}), a,
			form(t, field{"model", "", "vendor/upstream-model"}, field{"metadata", "", `{"shop":"s1"}`})},
		{"form, two OpenIDs, no header", "hash", http.MethodPost, "/v1/images/edits", formCT,
			form(t, field{"model", "", "gpt-test"}, field{"metadata[openid]", "", a}, field{"metadata[wx_openid]", "", b}), "",
			form(t, field{"model", "", "vendor/upstream-model"}, field{"metadata[openid]", "", ha}, field{"metadata[wx_openid]", "", hb})},
		{"form, two OpenIDs, drop", "drop", http.MethodPost, "/v1/images/edits", formCT,
			form(t, field{"model", "", "gpt-test"}, field{"metadata[openid]", "", a}, field{"metadata[wx_openid]", "", b}), a,
			form(t, field{"model", "", "vendor/upstream-model"})},
		// A list's name (metadata[wx_openid][], as PHP and Rails clients
		// write it) or a nested one names an OpenID as well.
		{"form, an OpenID list's field", "hash", http.MethodPost, "/v1/images/edits", formCT,
			form(t, field{"model", "", "gpt-test"}, field{"metadata[wx_openid][]", "", b}), a,
			form(t, field{"model", "", "vendor/upstream-model"}, field{"metadata[wx_openid][]", "", hb})},
		{"query, an OpenID list's filter", "hash", http.MethodGet, "/v1/chat/completions?metadata[wx_openid][]=" + b + "&metadata%5Bsharer%5D%5Bopenid%5D%5B0%5D=" + b, "", "", a,
			"metadata[wx_openid][]=" + hb + "&metadata%5Bsharer%5D%5Bopenid%5D%5B0%5D=" + hb},
		{"query, two OpenIDs, no header", "hash", http.MethodGet, "/v1/chat/completions?metadata[openid]=" + a + "&metadata%5Bwx_openid%5D=" + b + "&limit=2", "", "", "",
			"metadata[openid]=" + ha + "&metadata%5Bwx_openid%5D=" + hb + "&limit=2"},
		{"query, another OpenID than the header's", "hash", http.MethodGet, "/v1/chat/completions?metadata[openid]=" + b, "", "", a,
			"metadata[openid]=" + hb},
		{"query, two OpenIDs, drop", "drop", http.MethodGet, "/v1/chat/completions?metadata[openid]=" + a + "&metadata[wx_openid]=" + b + "&limit=2", "", "", "",
			"limit=2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, jsonHandler(200, okCompletion))
			base, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) { c.Privacy.ForwardUser = tc.mode }))
			hdr := map[string]string{}
			if tc.ct != "" {
				hdr["Content-Type"] = tc.ct
			}
			if tc.header != "" {
				hdr["X-WeChat-OpenID"] = tc.header
			}
			resp := send(t, tc.method, base, tc.path, tc.body, hdr)
			if body := readAll(t, resp.Body); resp.StatusCode != 200 {
				t.Fatalf("status %d %s", resp.StatusCode, body)
			}
			got := fp.requests()[0]
			if tc.method == http.MethodGet {
				if _, q, _ := strings.Cut(got.Path, "?"); q != tc.want {
					t.Errorf("provider got the query\n%s\nwant\n%s", q, tc.want)
				}
			} else if string(got.Body) != tc.want {
				t.Errorf("provider got\n%q\nwant\n%q", got.Body, tc.want)
			}
			for _, id := range []string{a, b} {
				if dq, _ := url.QueryUnescape(got.Path); strings.Contains(string(got.Body), id) || strings.Contains(dq, id) {
					t.Errorf("the OpenID %s reached the provider", id)
				}
			}
		})
	}
}

// TestDeepMetadataReadOnce: a metadata member nested as deep as a body
// may be (900 levels), with 2 MB of text at its bottom beside an OpenID
// member, is walked once: each level walked again what lay
// under it, 900 times the 2 MB. It is not sent: the OpenID at the bottom
// has nothing to hash it as.
func TestDeepMetadataReadOnce(t *testing.T) {
	const b, depth = "oWx-sharer-7777", 900
	fp := newFakeProvider(t, jsonHandler(200, okCompletion))
	base, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	text := strings.Repeat("x", 2<<20)
	for i, bottom := range []string{`{"note":"` + text + `","wx_openid":"` + b + `"}`} {
		deep := strings.Repeat(`{"a":`, depth) + bottom + strings.Repeat(`}`, depth)
		start := len(fp.requests())
		resp := send(t, http.MethodPost, base, "/v1/chat/completions",
			`{"model":"gpt-test","messages":[],"metadata":{"ctx":`+deep+`,"shop":"s1"}}`, map[string]string{"X-WeChat-OpenID": "oWx-openid-4242"})
		if body := readAll(t, resp.Body); resp.StatusCode != 200 {
			t.Fatalf("status %d %.200s", resp.StatusCode, body)
		}
		got := string(fp.requests()[start].Body)
		if strings.Contains(got, b) {
			t.Errorf("the OpenID %s nested deep reached the provider", b)
		}
		if i == 0 && got != `{"model":"vendor/upstream-model","messages":[],"metadata":{"shop":"s1"}}` {
			t.Errorf("provider got %.200s; want the metadata without ctx", got)
		}
	}
}
