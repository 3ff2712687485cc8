package proxy

import (
	"net/http"
	"strings"
	"testing"
)

// TestQueryHoldingAClientKeyIsRefused: a bot whose tool puts its key in the
// URL as well (?api_key=…, ?key=…, as some SDKs and HTTP tools do for
// Google's and Azure's APIs) had its paygate client key sent to the
// provider in the forwarded request's query, where it stays in the
// provider's and every proxy's access logs: SPEC 5 says the client's key
// never leaves. Such a request is a 400 in OpenAI's error shape that names
// no key, and no provider sees it; a query without a key is forwarded as
// sent.
func TestQueryHoldingAClientKeyIsRefused(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(200, `{"object":"list","data":[]}`))
	base, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	for _, tc := range []struct {
		name, query string
		path        string // the target, when not /v1/files?query
		refused     bool
	}{
		{"api_key", "api_key=" + testClientKey, "", true},
		{"key among others", "limit=2&key=" + testClientKey + "&order=asc", "", true},
		{"escaped needlessly", "api_key=%73k-paygate-test-client-key", "", true},
		{"escaped twice", "api_key=%2573k-paygate-test-client-key", "", true},
		{"in the path escaped twice", "", "/v1/files/%2573k-paygate-test-client-key/content", true},
		{"inside a value", "after=x" + testClientKey, "", true},
		{"in the path", "", "/v1/files/" + testClientKey + "/content", true},
		{"no key", "limit=2&order=asc&after=file-abc", "", false},
		// Most of the key, not the key: an ordinary name that shares
		// the key's words (as "?name=paygate-demo" shares "paygate-d"
		// with the default dev key sk-paygate-dev) is forwarded.
		{"sharing most of the key", "purpose=my-paygate-test-client-kb", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(fp.requests())
			target := "/v1/files?" + tc.query
			if tc.path != "" {
				target = tc.path
			}
			resp := send(t, http.MethodGet, base, target, "", nil)
			body := readAll(t, resp.Body)
			seen := fp.requests()[before:]
			if !tc.refused {
				if resp.StatusCode != 200 || len(seen) != 1 || seen[0].Path != "/v1/files?"+tc.query {
					t.Fatalf("status %d %s, provider saw %+v; want 200 and the query as sent", resp.StatusCode, body, seen)
				}
				return
			}
			if len(seen) != 0 {
				t.Errorf("the provider got %s: the client key reached it", seen[0].Path)
			}
			typ, msg, ok := openAIError(body)
			if resp.StatusCode != http.StatusBadRequest || !ok || typ != "invalid_request_error" {
				t.Fatalf("status %d %s; want a 400 invalid_request_error", resp.StatusCode, body)
			}
			if strings.Contains(body, "paygate-test-client") {
				t.Errorf("the refusal quotes the key: %s", msg)
			}
		})
	}
}
