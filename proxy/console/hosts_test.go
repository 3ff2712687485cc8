package console

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestOnlyHosts: the admin listener answers only the Host names it is
// reached by: any IP literal (one cannot be re-pointed), its listen name,
// localhost when it listens on loopback or every interface, and the names
// of server.admin_hosts, each on any port. Any other name, which a page
// under an attacker's name re-pointed at the listener (DNS rebinding)
// sends, is refused with 421 and the admin API's JSON error before the
// handler sees it, whatever the method and path.
func TestOnlyHosts(t *testing.T) {
	tests := []struct {
		name   string
		listen string
		names  []string
		host   string
		want   bool
	}{
		{"its listen IP with the port", "127.0.0.1:8081", nil, "127.0.0.1:8081", true},
		{"its listen IP without a port", "127.0.0.1:8081", nil, "127.0.0.1", true},
		{"its listen IP on another port (a port forward)", "127.0.0.1:8081", nil, "127.0.0.1:18081", true},
		{"localhost on loopback", "127.0.0.1:8081", nil, "localhost:8081", true},
		{"localhost in capitals on loopback", "127.0.0.1:8081", nil, "LocalHost:8081", true},
		{"localhost with a final dot on loopback", "127.0.0.1:8081", nil, "localhost.:8081", true},
		{"[::1] on loopback", "127.0.0.1:8081", nil, "[::1]:8081", true},
		{"[::1] without a port", "[::1]:8081", nil, "[::1]", true},
		{"localhost on IPv6 loopback", "[::1]:8081", nil, "localhost", true},
		{"localhost on localhost", "localhost:8081", nil, "localhost:8081", true},
		{"localhost on every interface", "0.0.0.0:8081", nil, "localhost:8081", true},
		{"localhost on every interface (no host)", ":8081", nil, "localhost:8081", true},
		{"localhost on every IPv6 interface", "[::]:8081", nil, "localhost:8081", true},
		{"a pod IP on every interface (a kubelet probe, Prometheus)", "0.0.0.0:8081", nil, "10.1.2.3:8081", true},
		{"any IP literal", "127.0.0.1:8081", nil, "192.0.2.7:8081", true},
		{"any IPv6 literal", "127.0.0.1:8081", nil, "[2001:db8::7]:8081", true},
		{"no Host (HTTP/1.0, never a browser)", "127.0.0.1:8081", nil, "", true},
		{"a listed name", "0.0.0.0:8081", []string{"paygate-admin.example.com"}, "paygate-admin.example.com", true},
		{"a listed name on another port, in capitals", "0.0.0.0:8081", []string{"Paygate-Admin.example.com."}, "PAYGATE-ADMIN.EXAMPLE.COM:443", true},
		{"its listen name", "admin.internal:8081", nil, "admin.internal:8081", true},

		{"another name on loopback", "127.0.0.1:8081", nil, "rebind.attacker.example:8081", false},
		{"another name on every interface", "0.0.0.0:8081", []string{"paygate-admin.example.com"}, "rebind.attacker.example", false},
		{"a listed name's subdomain", "0.0.0.0:8081", []string{"example.com"}, "evil.example.com", false},
		{"a listed name as a prefix", "0.0.0.0:8081", []string{"paygate-admin.example.com"}, "paygate-admin.example.com.evil.example", false},
		{"a name under localhost", "127.0.0.1:8081", nil, "localhost.attacker.example", false},
		{"localhost on a machine address", "10.0.0.5:8081", nil, "localhost:8081", false},
		{"a port that is not a number", "127.0.0.1:8081", nil, "127.0.0.1:http", false},
		{"an unclosed bracket", "127.0.0.1:8081", nil, "[::1:8081", false},
		{"trailing bytes after the bracket", "127.0.0.1:8081", nil, "[::1]x", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reached := false
			h := OnlyHosts(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { reached = true }),
				NewHosts(tc.listen, tc.names), func(h http.Handler) http.Handler {
					return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						w.Header().Set("X-Refused-By", "hosts")
						h.ServeHTTP(w, r)
					})
				})
			for _, method := range []string{"GET", "POST"} {
				reached = false
				req := httptest.NewRequest(method, "/admin/api/approvals/PG1/approve", nil)
				req.Host = tc.host
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if tc.want {
					if !reached || rec.Code != http.StatusOK {
						t.Errorf("%s Host %q: %d, reached %v; want it answered", method, tc.host, rec.Code, reached)
					}
					continue
				}
				var body struct {
					Error string `json:"error"`
				}
				err := json.Unmarshal(rec.Body.Bytes(), &body)
				if reached || rec.Code != http.StatusMisdirectedRequest || err != nil || body.Error == "" ||
					rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("X-Refused-By") != "hosts" {
					t.Errorf("%s Host %q: %d %s (%s), reached %v, refused by %q; want the 421 admin JSON error from the refusal wrapper, the handler not reached",
						method, tc.host, rec.Code, rec.Body, rec.Header().Get("Content-Type"), reached, rec.Header().Get("X-Refused-By"))
				}
			}
		})
	}
}
