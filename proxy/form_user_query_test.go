package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
)

// TestFormUserKeptOutOfTheURL: the end user a multipart form names, in its
// "user" field or, failing one, in a metadata field that says OpenID (a
// bot that sends no X-WeChat-OpenID), is the request's end user on the rest
// of the path too, as a JSON body's is: a query parameter holding it
// (?user=, a tag) reaches the provider with the user's hash in its place,
// and so does a text field holding it (a prompt naming the speaker).
// passthroughForm rewrote the form's own identity fields, but the handler
// went on with no end user, and the OpenID in the URL reached the provider
// as sent (SPEC 2.2); a form naming its user only in its metadata had no
// end user at all, and its prompt took the OpenID along too, where the
// same request with a JSON body had it hashed everywhere.
func TestFormUserKeptOutOfTheURL(t *testing.T) {
	const id = "oWx-openid-form-4242-long" // long enough to be taken anywhere
	h := expectedUserHash("shop-bot", id)
	formCT := "multipart/form-data; boundary=" + formBoundaryTest
	for _, tc := range []struct {
		name, path, ct, body, query string
	}{
		{"JSON", "/v1/embeddings?user=" + id + "&tag=wx:" + id, "application/json",
			`{"model":"gpt-test","input":"hi","user":"` + id + `"}`, "user=" + h + "&tag=wx%3A" + h},
		{"form", "/v1/images/edits?user=" + id + "&tag=wx:" + id, formCT,
			form(t, field{"model", "", "gpt-test"}, field{"user", "", id}, field{"prompt", "", "a cat"}), "user=" + h + "&tag=wx%3A" + h},
		{"JSON, its user only in metadata", "/v1/images/generations?tag=wx:" + id, "application/json",
			`{"model":"gpt-test","prompt":"speaker ` + id + `","metadata":{"openid":"` + id + `"}}`, "tag=wx%3A" + h},
		{"form, its user only in metadata", "/v1/images/edits?tag=wx:" + id, formCT,
			form(t, field{"model", "", "gpt-test"}, field{"metadata[openid]", "", id}, field{"prompt", "", "speaker " + id}), "tag=wx%3A" + h},
		{"form, its user only in a metadata field of JSON", "/v1/images/edits?tag=wx:" + id, formCT,
			form(t, field{"model", "", "gpt-test"}, field{"metadata", "", `{"wx_openid":"` + id + `"}`}, field{"prompt", "", "speaker " + id}), "tag=wx%3A" + h},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, jsonHandler(200, `{"data":[]}`))
			base, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
			resp := send(t, http.MethodPost, base, tc.path, tc.body, map[string]string{"Content-Type": tc.ct})
			if body := readAll(t, resp.Body); resp.StatusCode != 200 {
				t.Fatalf("status %d %s", resp.StatusCode, body)
			}
			got := fp.requests()[0]
			if _, q, _ := strings.Cut(got.Path, "?"); q != tc.query {
				t.Errorf("provider got the query %q; want %q, the user's hash in the OpenID's place", q, tc.query)
			}
			if dq, _ := url.QueryUnescape(got.Path); strings.Contains(dq, id) || strings.Contains(string(got.Body), id) {
				t.Errorf("the OpenID reached the provider: %s %q", dq, got.Body)
			}
		})
	}
}

// TestQueryIdentifierOfAnotherHashed: a query parameter named as a body's
// identity members (user, safety_identifier, prompt_cache_key) holding an
// id other than the end user's reaches the provider as its hash, as the
// body's member does (the hash of its own value), or is left out under
// drop: only one holding the end user was rewritten, and another user's
// OpenID in ?safety_identifier= reached the provider's URL as sent
// (SPEC 2.2).
func TestQueryIdentifierOfAnotherHashed(t *testing.T) {
	const a, b = "oWx-openid-4242", "oWx-sharer-7777"
	hb := expectedUserHash("shop-bot", b)
	for _, tc := range []struct{ name, mode, query, want string }{
		{"safety_identifier", "hash", "safety_identifier=" + b + "&limit=2", "safety_identifier=" + hb + "&limit=2"},
		{"prompt_cache_key", "hash", "prompt_cache_key=" + b, "prompt_cache_key=" + hb},
		{"user", "hash", "user=" + b, "user=" + hb},
		{"user, drop", "drop", "user=" + b + "&limit=2", "limit=2"},
		// A list's name (Rack, PHP and Express's qs read user[] and
		// user[0] as user) and another case (ASP.NET binds a parameter
		// in any case) name the member too, and the metadata filter.
		{"user[]", "hash", "user[]=" + b + "&limit=2", "user[]=" + hb + "&limit=2"},
		{"safety_identifier[0], escaped", "hash", "safety_identifier%5B0%5D=" + b, "safety_identifier%5B0%5D=" + hb},
		{"User", "hash", "User=" + b, "User=" + hb},
		{"PROMPT_CACHE_KEY[], drop", "drop", "PROMPT_CACHE_KEY[]=" + b + "&limit=2", "limit=2"},
		{"Metadata[wx_openid]", "hash", "Metadata[wx_openid]=" + b + "&limit=2", "Metadata[wx_openid]=" + hb + "&limit=2"},
		{"METADATA of JSON", "hash", "METADATA=" + url.QueryEscape(`{"wx_openid":"`+b+`"}`), "METADATA=" + url.QueryEscape(`{"wx_openid":"`+hb+`"}`)},
		{"a name only like one stays", "hash", "username=" + b + "&user[x]=" + b + "&users=2", "username=" + b + "&user[x]=" + b + "&users=2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if q := forwardedQuery(t, tc.mode, tc.query, a); q != tc.want {
				t.Errorf("provider got the query %q; want %q", q, tc.want)
			}
		})
	}
}

// TestFormMetadataOfJSONWithAnEscapedUser: a form's "metadata" field of
// JSON that spells the end user through a JSON escape ("wx:\u006fWx…",
// as a JSON encoder that escapes non-ASCII-safe letters writes it) is
// rewritten as a JSON body's metadata is, which decodes it: the user's
// hash in its place, the member left out under drop. Read as raw text,
// the escape hid the OpenID from paygate, and a provider decoding the
// field read it, where the same metadata in a JSON body was hashed.
func TestFormMetadataOfJSONWithAnEscapedUser(t *testing.T) {
	const id = "oWx-openid-form-4242-long"
	const escaped = `\u006fWx-openid-form-4242-long`
	h := expectedUserHash("shop-bot", id)
	formCT := "multipart/form-data; boundary=" + formBoundaryTest
	for _, tc := range []struct{ name, mode, sent, want string }{
		{"hash, in a value", "hash", `{"conv":"wx:` + escaped + `","n":"1"}`, `{"conv":"wx:` + h + `","n":"1"}`},
		{"hash, the value", "hash", `{"who":"` + escaped + `"}`, `{"who":"` + h + `"}`},
		{"drop", "drop", `{"conv":"wx:` + escaped + `","n":"1"}`, `{"n":"1"}`},
		{"no escape of the user stays", "hash", `{"note":"a\"b"}`, `{"note":"a\"b"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, jsonHandler(200, `{"data":[]}`))
			base, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) { c.Privacy.ForwardUser = tc.mode }))
			sent := form(t, field{"model", "", "gpt-test"}, field{"metadata", "", tc.sent}, field{"prompt", "", "a cat"})
			resp := send(t, http.MethodPost, base, "/v1/images/edits", sent, map[string]string{"Content-Type": formCT, "X-WeChat-OpenID": id})
			if body := readAll(t, resp.Body); resp.StatusCode != 200 {
				t.Fatalf("status %d %s", resp.StatusCode, body)
			}
			want := form(t, field{"model", "", "vendor/upstream-model"}, field{"metadata", "", tc.want}, field{"prompt", "", "a cat"})
			if got := string(fp.requests()[0].Body); got != want {
				t.Errorf("provider got\n%q\nwant\n%q", got, want)
			}
		})
	}
}

// TestQueryMetadataOfJSONRewritten: a query's "metadata" parameter of JSON
// (a filter a bot wrote as the object itself, not as metadata[key]=…) is
// rewritten as a form's "metadata" field of JSON and a JSON body's
// metadata are: a member whose key says OpenID or UnionID gets the hash
// of its own value, whoever's it is, the end user spelled through an
// escape the user's hash, and under drop such a member is left out. Only
// a value holding the end user as written was rewritten, and a sharer's
// OpenID, or the end user's escaped, reached the provider's URL.
func TestQueryMetadataOfJSONRewritten(t *testing.T) {
	const a, b = "oWx-openid-4242-long-enough", "oWx-sharer-7777"
	ha, hb := expectedUserHash("shop-bot", a), expectedUserHash("shop-bot", b)
	q := url.QueryEscape
	for _, tc := range []struct{ name, mode, query, want string }{
		{"another's OpenID", "hash", "metadata=" + q(`{"wx_openid":"`+b+`"}`) + "&limit=2", "metadata=" + q(`{"wx_openid":"`+hb+`"}`) + "&limit=2"},
		{"another's UnionID", "hash", "metadata=" + q(`{"unionid":"`+b+`"}`), "metadata=" + q(`{"unionid":"`+hb+`"}`)},
		{"the end user escaped", "hash", "metadata=" + q(`{"conv":"wx:\u006fWx-openid-4242-long-enough"}`), "metadata=" + q(`{"conv":"wx:`+ha+`"}`)},
		{"drop", "drop", "metadata=" + q(`{"wx_openid":"`+b+`","n":"1"}`) + "&limit=2", "metadata=" + q(`{"n":"1"}`) + "&limit=2"},
		{"naming nobody stays as sent", "hash", "metadata=%7B%22n%22:%221%22%7D&after=chatcmpl-7", "metadata=%7B%22n%22:%221%22%7D&after=chatcmpl-7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if q := forwardedQuery(t, tc.mode, tc.query, a); q != tc.want {
				t.Errorf("provider got the query %q; want %q", q, tc.want)
			}
		})
	}
}

// forwardedQuery sends GET /v1/chat/completions?query for the end user
// openID under privacy.forward_user mode, and returns the query the
// provider got.
func forwardedQuery(t *testing.T, mode, query, openID string) string {
	t.Helper()
	fp := newFakeProvider(t, jsonHandler(200, `{"object":"list","data":[]}`))
	base, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) { c.Privacy.ForwardUser = mode }))
	resp := send(t, http.MethodGet, base, "/v1/chat/completions?"+query, "", map[string]string{"X-WeChat-OpenID": openID})
	if body := readAll(t, resp.Body); resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	_, q, _ := strings.Cut(fp.requests()[0].Path, "?")
	return q
}
