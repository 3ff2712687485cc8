package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/proxy/console"
)

// TestAdminListenerBoundsAStalledBody: the admin listener's server has no
// ReadTimeout (it would cut a CPU profile short), and net/http reads what a
// handler left of a small body before it answers. So a client that
// declared a body and stopped sending, with no token and whatever the
// route (a refusal of the CSRF guard or of the token, the health check,
// the metrics), held its connection and goroutine for as long as it stayed
// connected and never got an answer. The body must arrive within
// adminBodyTimeout: past it the request is answered and its connection
// closed.
func TestAdminListenerBoundsAStalledBody(t *testing.T) {
	old := adminBodyTimeout
	adminBodyTimeout = 200 * time.Millisecond
	t.Cleanup(func() { adminBodyTimeout = old })
	adminURL, _, no := adminHostsApp(t)
	u, err := url.Parse(adminURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method, path string
		headers            string
		want               int
	}{
		{"health check", "GET", "/healthz", "", http.StatusOK},
		{"metrics", "GET", "/metrics", "", http.StatusOK},
		{"CSRF refusal", "POST", "/admin/api/approvals/" + no + "/approve", "", http.StatusForbidden},
		{"token refusal", "POST", "/admin/api/approvals/" + no + "/approve", console.CSRFHeader + ": 1\r\n", http.StatusUnauthorized},
		{"a read with the token", "GET", "/admin/api/orders", "Authorization: Bearer " + testAdminToken + "\r\n", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", u.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			req := tc.method + " " + tc.path + " HTTP/1.1\r\nHost: " + u.Host + "\r\n" + tc.headers +
				"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second)) // a bound on a hang, not a timing
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer 10 s after the client stalled its body (%v): the connection is held for as long as the client stays", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d; want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

// TestAdminBodyBoundEndsWithTheBody: the bound on an admin request's body
// bounds the body only: a handler that outlasts it once the body is read
// (an approval waiting on WeChat Pay's prepay) is not cancelled by it, as
// it would be by a deadline on the whole request.
func TestAdminBodyBoundEndsWithTheBody(t *testing.T) {
	const bound = 50 * time.Millisecond
	cancelled := make(chan bool, 1)
	srv := newHTTPServer("admin", boundAdminBody(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			t.Errorf("reading the body: %v", err)
		}
		select {
		case <-r.Context().Done():
			cancelled <- true
		case <-time.After(10 * bound): // the handler outlasts the bound
			cancelled <- false
		}
	}), bound), nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	resp, err := http.Post("http://"+ln.Addr().String()+"/admin/api/approvals/PG1/approve", "application/json", strings.NewReader(`{"reason":"ok"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if <-cancelled {
		t.Error("the request's context ended when the body's bound passed, after the body was read")
	}
}
