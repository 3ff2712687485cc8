package proxy

import (
	"net/http"
	"testing"

	"github.com/tidwall/gjson"
)

// TestOperatorRoutesWrongMethod: /healthz, /readyz and /metrics asked with
// another method than GET (a load balancer's or a probe's check written
// as a POST) on the main listener are a 405 naming GET and HEAD, in
// OpenAI's error shape like the listener's other 405s. They were the
// catch-all's 404 "unknown endpoint … the OpenAI API is served under
// /v1", which told an operator the health route did not exist.
func TestOperatorRoutesWrongMethod(t *testing.T) {
	url, _ := newTestProxy(t, testConfig(t, "http://127.0.0.1:1", nil))
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
			resp := send(t, method, url, path, "", nil)
			body := readAll(t, resp.Body)
			if resp.StatusCode != http.StatusMethodNotAllowed || gjson.Get(body, "error.code").Str != "method_not_allowed" {
				t.Errorf("%s %s: %d %s; want 405 method_not_allowed", method, path, resp.StatusCode, body)
			}
			if got := resp.Header.Get("Allow"); got != "GET, HEAD" {
				t.Errorf("%s %s: Allow %q; want \"GET, HEAD\"", method, path, got)
			}
		}
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			if resp := send(t, method, url, path, "", nil); resp.StatusCode != http.StatusOK {
				t.Errorf("%s %s: %d; want 200", method, path, resp.StatusCode)
			}
		}
	}
}
