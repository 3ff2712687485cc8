package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/failover"
)

// TestBearerScheme: the Authorization scheme is matched without regard to
// case (RFC 9110 11.1; hand-written bots send "bearer"), and spaces around
// the token do not matter; anything but a bearer token is refused.
func TestBearerScheme(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(200, `{}`))
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	tests := []struct {
		header string
		status int
	}{
		{"Bearer " + testClientKey, 200},
		{"bearer " + testClientKey, 200},
		{"BEARER " + testClientKey, 200},
		{"Bearer  " + testClientKey + " ", 200},
		{"Bearer\t" + testClientKey, 401}, // the scheme ends at a space (RFC 9110)
		{"Basic " + testClientKey, 401},
		{"Bearer", 401},
		{"Bearer ", 401},
		{testClientKey, 401},
	}
	for _, tc := range tests {
		t.Run(strings.ReplaceAll(tc.header, testClientKey, "KEY"), func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, url+"/v1/models", nil)
			req.Header.Set("Authorization", tc.header)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp.Body)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d; want %d (%s)", resp.StatusCode, tc.status, body)
			}
		})
	}
}

// TestCompressedBodyIsRefused: a body with a Content-Encoding is refused
// with 415 in OpenAI's error JSON naming the encoding, rather than read as
// JSON (a misleading "not valid JSON") or forwarded to a provider without
// its header; "identity" is no encoding.
func TestCompressedBodyIsRefused(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(200, okCompletion))
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	const plain = `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write([]byte(plain))
	zw.Close()
	for _, tc := range []struct {
		path, encoding string
		body           []byte
		status         int
	}{
		{"/v1/chat/completions", "gzip", zb.Bytes(), 415},
		{"/v1/embeddings", "gzip", zb.Bytes(), 415},
		{"/v1/chat/completions", "identity", []byte(plain), 200},
	} {
		t.Run(tc.path+" "+tc.encoding, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, url+tc.path, bytes.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+testClientKey)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Content-Encoding", tc.encoding)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d; want %d (%s)", resp.StatusCode, tc.status, body)
			}
			if tc.status == 415 && (!strings.HasPrefix(body, `{"error":{"message":"`) || !strings.Contains(body, "gzip")) {
				t.Errorf("body %s; want OpenAI error JSON naming the encoding", body)
			}
		})
	}
	if n := len(fp.requests()); n != 1 {
		t.Errorf("the provider saw %d requests; want 1 (the identity one)", n)
	}
}

// TestDeclaredOversizeBodyIsRefusedAtOnce: a request whose declared length
// is over server.max_body_bytes gets its 413 before any "100 Continue", so a
// client that waits for it (curl with a large body) never uploads the
// body.
func TestDeclaredOversizeBodyIsRefusedAtOnce(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(200, `{}`))
	u, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) { c.Server.MaxBodyBytes = 1 << 20 }))
	conn, err := net.Dial("tcp", strings.TrimPrefix(u, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", testClientKey, 5<<20)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // a bound on a hang, not a timing
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "max_body_bytes") {
		t.Fatalf("first answer %d %s; want the 413 at once", resp.StatusCode, body)
	}
}

// TestAdminBearerScheme: the admin API reads its bearer token as the bots'
// API does (TestBearerScheme): the scheme in any case, spaces ignored.
func TestAdminBearerScheme(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1", func(c *config.Config) { c.Admin.Token = "admin-token-0123456789abcdef" })
	router, err := failover.New(cfg, failover.Options{Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Close() })
	s, err := New(Options{Config: cfg, Upstream: router, Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(), HashKey: []byte(cfg.Privacy.HashKey)})
	if err != nil {
		t.Fatal(err)
	}
	h := s.AdminAuth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	for _, tc := range []struct {
		header string
		status int
	}{
		{"Bearer admin-token-0123456789abcdef", 204},
		{"bearer admin-token-0123456789abcdef", 204},
		{"Bearer  admin-token-0123456789abcdef ", 204},
		{"Basic admin-token-0123456789abcdef", 401},
		{"Bearer wrong", 401},
		{"Bearer ", 401},
	} {
		req := httptest.NewRequest(http.MethodGet, "/admin/api/orders", nil)
		req.Header.Set("Authorization", tc.header)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != tc.status {
			t.Errorf("%q: status %d; want %d", strings.ReplaceAll(tc.header, "admin-token-0123456789abcdef", "TOKEN"), w.Code, tc.status)
		}
	}
}
