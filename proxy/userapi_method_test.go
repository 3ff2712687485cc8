package proxy

import (
	"net/http"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/store/testdrivers"
)

// TestUserAPIWrongMethod: a user API path asked with a method it does not
// serve is a 405 naming the method it does (Allow), in OpenAI's error JSON,
// as the models routes answer; it was a 404 "unknown endpoint", which sent a
// bot's developer looking for a path that exists. A path paygate does not
// serve at all stays a 404.
func TestUserAPIWrongMethod(t *testing.T) {
	srv := userAPIServer(t, testdrivers.Open(t, "embedded", nil))
	for _, tc := range []struct {
		method, path string
		status       int
		allow, code  string
	}{
		{http.MethodPost, "/v1/paygate/orders", 405, "GET", "method_not_allowed"},
		{http.MethodDelete, "/v1/paygate/orders/PG-1", 405, "GET", "method_not_allowed"},
		{http.MethodGet, "/v1/paygate/refunds/rf_1/confirm", 405, "POST", "method_not_allowed"},
		{http.MethodPut, "/v1/paygate/refunds/rf_1/cancel", 405, "POST", "method_not_allowed"},
		{http.MethodGet, "/v1/paygate/refunds/rf_1", 404, "", "unknown_url"},
		{http.MethodPost, "/v1/paygate/orders/PG-1/pay", 404, "", "unknown_url"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp := send(t, tc.method, srv, tc.path, "", map[string]string{headerOpenID: "o-user-1"})
			body := readAll(t, resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d %s; want %d", resp.StatusCode, body, tc.status)
			}
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q; want %q", got, tc.allow)
			}
			e := gjson.Get(body, "error")
			if e.Get("code").Str != tc.code || e.Get("type").Str != "invalid_request_error" || e.Get("message").Str == "" {
				t.Errorf("body %s; want OpenAI's error JSON with code %s", body, tc.code)
			}
		})
	}
}
