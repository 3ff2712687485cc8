package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
)

// TestHashKeyRotationRenamesProviderStoredUsers holds the README's
// privacy.hash_key change: what the bots stored at a provider tagged with
// the end user (a stored completion's metadata, as the provider keeps it:
// the user's hash) is not found by the same user's filter after the
// change, which sends the new hash. Nothing paygate keeps moves, but a
// bot that lists a user's stored completions by metadata loses the ones
// from before the change.
func TestHashKeyRotationRenamesProviderStoredUsers(t *testing.T) {
	const openID = "oWx-openid-rotate"
	fp := newFakeProvider(t, jsonHandler(200, okCompletion))
	serve := func(key string) string {
		base, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) { c.Privacy.HashKey = key }))
		return base
	}
	old := serve(testHashKey)
	resp := post(t, old, "/v1/chat/completions", `{"model":"gpt-test","store":true,"metadata":{"openid":"`+openID+`"},"messages":[{"role":"user","content":"hi"}]}`, map[string]string{"X-WeChat-OpenID": openID})
	if body := readAll(t, resp.Body); resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	stored := gjson.GetBytes(fp.requests()[0].Body, "metadata.openid").String()
	if stored != expectedUserHash("shop-bot", openID) {
		t.Fatalf("the provider stored metadata.openid %q; want the user's hash", stored)
	}
	filter := func(base string) string {
		t.Helper()
		resp := send(t, http.MethodGet, base, "/v1/chat/completions?metadata[openid]="+openID, "", map[string]string{"X-WeChat-OpenID": openID})
		if body := readAll(t, resp.Body); resp.StatusCode != 200 {
			t.Fatalf("status %d %s", resp.StatusCode, body)
		}
		reqs := fp.requests()
		_, v, _ := strings.Cut(reqs[len(reqs)-1].Path, "metadata[openid]=")
		return v
	}
	if got := filter(old); got != stored {
		t.Errorf("under the same key the filter is %q; want %q, what was stored", got, stored)
	}
	if got := filter(serve("another-hash-key-0123456789abcdef")); got == stored || strings.Contains(got, openID) {
		t.Errorf("under a new key the filter is %q; want another hash than the stored %q", got, stored)
	}
}
