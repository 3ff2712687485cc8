package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
)

// TestQueryNamingTheUserIsRewritten: a forwarded request's query that names
// the end user (OpenAI's stored completions list filters by
// metadata[key]=value, and a bot lists a user's completions by the OpenID it
// tagged them with) gets the value the body's metadata member would: the
// user's hash under hash (which is what the provider stored, so the filter
// finds them), the parameter left out under drop. The query reached the
// provider as sent, the OpenID in the URL, where SPEC 2.2 says it never
// goes. Every other parameter stays as the bot escaped it.
func TestQueryNamingTheUserIsRewritten(t *testing.T) {
	const openID = "oWx-openid-4242"
	ho := expectedUserHash("shop-bot", openID)
	for _, tc := range []struct {
		name, mode, query, want string
	}{
		{"hash, brackets escaped", "hash", "limit=2&metadata%5Bopenid%5D=" + openID + "&after=c%2F1",
			"limit=2&metadata%5Bopenid%5D=" + ho + "&after=c%2F1"},
		{"hash, brackets raw", "hash", "metadata[openid]=" + openID, "metadata[openid]=" + ho},
		{"hash, value escaped", "hash", "metadata[u]=oWx%2Dopenid%2D4242&order=asc", "metadata[u]=" + ho + "&order=asc"},
		{"hash, user", "hash", "user=" + openID, "user=" + ho},
		{"drop", "drop", "limit=2&metadata%5Bopenid%5D=" + openID + "&order=asc", "limit=2&order=asc"},
		{"drop, the only parameter", "drop", "metadata[openid]=" + openID, ""},
		{"another value stays", "hash", "metadata[shop]=o-someone-else&model=gpt-test", "metadata[shop]=o-someone-else&model=gpt-test"},
		// Another's OpenID: the hash its chats were stored with
		// (TestEveryMetadataOpenIDIsHashed).
		{"another OpenID is its own hash", "hash", "metadata[openid]=o-someone-else&model=gpt-test", "metadata[openid]=" + expectedUserHash("shop-bot", "o-someone-else") + "&model=gpt-test"},
		{"hash, the OpenID inside a value", "hash", "metadata[conv]=wx%3A" + openID + "%3A1&order=asc", "metadata[conv]=" + url.QueryEscape("wx:"+ho+":1") + "&order=asc"},
		{"drop, the OpenID inside a value", "drop", "metadata[conv]=wx:" + openID + "&order=asc", "order=asc"},
		// A filter keyed by the OpenID names the user in its name.
		{"hash, the OpenID inside a parameter's name", "hash", "metadata%5Bwx%3A" + openID + "%5D=1&order=asc", url.QueryEscape("metadata[wx:"+ho+"]") + "=1&order=asc"},
		{"drop, the OpenID inside a parameter's name", "drop", "metadata[wx:" + openID + "]=1&order=asc", "order=asc"},
		{"keep", "keep", "metadata[openid]=" + openID, "metadata[openid]=" + openID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, jsonHandler(200, `{"object":"list","data":[]}`))
			base, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) { c.Privacy.ForwardUser = tc.mode }))
			resp := send(t, http.MethodGet, base, "/v1/chat/completions?"+tc.query, "", map[string]string{"X-WeChat-OpenID": openID})
			if body := readAll(t, resp.Body); resp.StatusCode != 200 {
				t.Fatalf("status %d %s", resp.StatusCode, body)
			}
			got := fp.requests()[0].Path
			_, q, _ := strings.Cut(got, "?")
			if q != tc.want {
				t.Errorf("provider got the query %q; want %q", q, tc.want)
			}
			if dq, _ := url.QueryUnescape(got); tc.mode != "keep" && strings.Contains(dq, openID) {
				t.Errorf("the OpenID reached the provider in the URL %s", got)
			}
		})
	}
}

// TestQueryOfAShortUserIdKeepsTheBotsOwnParameters: a bot that numbers its
// users ("user":"7", X-WeChat-OpenID: 20) lists their stored completions by
// metadata[user]=20 with limit=20 or after=chatcmpl-20. Only the parameters
// that name the user as a body's identity members do (metadata[…], user,
// safety_identifier, prompt_cache_key) are the user's: the count and the
// cursor are the bot's own and reach the provider as sent. Rewritten, the
// provider refused the limit (400) and the cursor named no completion; under
// drop they were left out and the list came back unpaged.
func TestQueryOfAShortUserIdKeepsTheBotsOwnParameters(t *testing.T) {
	const user = "20"
	h := expectedUserHash("shop-bot", user)
	for _, tc := range []struct {
		name, mode, query, want string
	}{
		{"hash", "hash", "limit=20&after=chatcmpl-20&metadata[user]=20&order=asc",
			"limit=20&after=chatcmpl-20&metadata[user]=" + h + "&order=asc"},
		{"hash, escaped brackets and the user's name", "hash", "metadata%5Bconv%5D=wx%3A20&limit=20&user=20",
			"metadata%5Bconv%5D=" + url.QueryEscape("wx:"+h) + "&limit=20&user=" + h},
		{"hash, keyed by the user", "hash", "metadata[wx:20]=1&limit=20", url.QueryEscape("metadata[wx:"+h+"]") + "=1&limit=20"},
		{"drop", "drop", "limit=20&metadata[user]=20&after=chatcmpl-20", "limit=20&after=chatcmpl-20"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if q := forwardedQuery(t, tc.mode, tc.query, user); q != tc.want {
				t.Errorf("provider got the query %q; want %q", q, tc.want)
			}
		})
	}
}

// TestQueryWithABadEscapeNamingTheUser: a parameter with an escape that does
// not decode (a stray "%") is still read for the end user, as a provider's
// server reads it (Python's parse_qsl keeps "%ZZ" as written and decodes the
// rest). Left as sent, the OpenID reached the provider in the URL under hash
// and drop: the pair's decoding failed, and it was taken for one naming no
// one.
func TestQueryWithABadEscapeNamingTheUser(t *testing.T) {
	const openID = "oWx-openid-4242"
	ho := expectedUserHash("shop-bot", openID)
	for _, tc := range []struct {
		name, mode, query, want string
	}{
		{"hash, in the value", "hash", "metadata[u]=" + openID + "%ZZ&limit=2", "metadata[u]=" + url.QueryEscape(ho+"%ZZ") + "&limit=2"},
		{"hash, escaped in the value", "hash", "metadata[u]=oWx%2Dopenid%2D4242%&limit=2", "metadata[u]=" + url.QueryEscape(ho+"%") + "&limit=2"},
		{"hash, in the name", "hash", "metadata[wx:" + openID + "%ZZ]=1&limit=2", url.QueryEscape("metadata[wx:"+ho+"%ZZ]") + "=1&limit=2"},
		{"drop", "drop", "metadata[u]=" + openID + "%ZZ&limit=2", "limit=2"},
		{"another value stays as sent", "hash", "metadata[u]=someone%ZZ&limit=2", "metadata[u]=someone%ZZ&limit=2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, jsonHandler(200, `{"object":"list","data":[]}`))
			base, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) { c.Privacy.ForwardUser = tc.mode }))
			resp := send(t, http.MethodGet, base, "/v1/chat/completions?"+tc.query, "", map[string]string{"X-WeChat-OpenID": openID})
			if body := readAll(t, resp.Body); resp.StatusCode != 200 {
				t.Fatalf("status %d %s", resp.StatusCode, body)
			}
			got := fp.requests()[0].Path
			_, q, _ := strings.Cut(got, "?")
			if q != tc.want {
				t.Errorf("provider got the query %q; want %q", q, tc.want)
			}
			if strings.Contains(lenientUnescape(got), openID) {
				t.Errorf("the OpenID reached the provider in the URL %s", got)
			}
		})
	}
}
