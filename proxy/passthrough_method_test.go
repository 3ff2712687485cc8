package proxy

import (
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestPassthroughMethods: the methods of the OpenAI API (and OPTIONS) are
// forwarded; TRACE, and the methods no OpenAI endpoint takes, are a 405
// that no provider sees. A server in front of a provider that answers
// TRACE (Apache's TraceEnable, IIS's TRACK) echoes the request it got,
// headers and all: forwarded, the echo handed any bot the operator's
// provider key.
func TestPassthroughMethods(t *testing.T) {
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodTrace, "TRACK":
			b, _ := httputil.DumpRequest(r, false)
			w.Header().Set("Content-Type", "message/http")
			_, _ = w.Write(b)
		default:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"object":"list","data":[]}`))
		}
	})
	proxyURL, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	for _, tc := range []struct {
		method    string
		forwarded bool
	}{
		{http.MethodGet, true},
		{http.MethodHead, true},
		{http.MethodPost, true},
		{http.MethodDelete, true},
		{http.MethodOptions, true},
		{http.MethodTrace, false},
		{"TRACK", false},
		{"PROPFIND", false},
		{"FOO", false},
	} {
		t.Run(tc.method, func(t *testing.T) {
			before := len(fp.requests())
			body := ""
			if tc.method == http.MethodPost {
				body = `{"purpose":"batch"}`
			}
			resp := send(t, tc.method, proxyURL, "/v1/files", body, nil)
			got := readAll(t, resp.Body)
			if strings.Contains(got, testProviderKey) {
				t.Fatalf("%s /v1/files: the answer holds the provider key: %s", tc.method, got)
			}
			reached := len(fp.requests()) - before
			if tc.forwarded {
				if resp.StatusCode != 200 || reached != 1 {
					t.Errorf("%s /v1/files: %d %s, provider asked %d times; want 200, forwarded once", tc.method, resp.StatusCode, got, reached)
				}
				return
			}
			if resp.StatusCode != http.StatusMethodNotAllowed || gjson.Get(got, "error.code").Str != "method_not_allowed" {
				t.Errorf("%s /v1/files: %d %s; want 405 method_not_allowed", tc.method, resp.StatusCode, got)
			}
			if allow := resp.Header.Get("Allow"); !strings.Contains(allow, "GET") || strings.Contains(allow, "TRACE") {
				t.Errorf("%s /v1/files: Allow %q; want the forwarded methods", tc.method, allow)
			}
			if reached != 0 {
				t.Errorf("%s /v1/files reached the provider %d times", tc.method, reached)
			}
		})
	}
}
