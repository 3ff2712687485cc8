package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/proxy/h1"
)

// TestOperatorAndNotifyListenersRefuseAmbiguousFraming: the admin listener
// (the operator token, the console) and the notification listener (faces
// the internet, behind the TLS proxy README asks for) refuse the heads a
// proxy in front may frame otherwise than paygate, as the bots' listener
// does: both Content-Length and Transfer-Encoding, Transfer-Encoding on
// HTTP/1.0, and a folded header line. Go's standard server served the
// first by its coding and kept the connection, so a proxy that framed the
// body by its length sent the rest of it as a request of its own (its
// next client's request taken for this one's body, an operator's token
// with it), and it joined a folded line to the one before. Each is a 400
// and a closed connection, on every listener.
func TestOperatorAndNotifyListenersRefuseAmbiguousFraming(t *testing.T) {
	if !h1.Supported() {
		t.Skip("proxy/h1 serves no listener on this platform")
	}
	src := `
server: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0", notify_listen: "127.0.0.1:0", shutdown_timeout: 5s, pprof: true}
clients: [{name: bot, key: ` + e2eClientKey + `}]
admin: {token: ` + testAdminToken + `}
store: {path: "` + filepath.Join(t.TempDir(), "paygate.db") + `"}
providers: [{name: fake, base_url: "http://127.0.0.1:1/v1", api_key: sk-upstream-secret}]
models: [{name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}]
`
	cfg, err := config.Parse([]byte(src), "framing.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	ready := make(chan map[string]string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, io.Discard, ready) }()
	addrs := <-ready
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()

	// Each path is one the listener answers (not with a 400) when the head
	// is plain, so a 400 is the framing's.
	heads := []struct {
		name string
		head func(host, path string) string
	}{
		{"both Content-Length and Transfer-Encoding", func(host, path string) string {
			return "POST " + path + " HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
		}},
		{"Transfer-Encoding on HTTP/1.0", func(host, path string) string {
			return "POST " + path + " HTTP/1.0\r\nHost: " + host + "\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
		}},
		{"obs-fold", func(host, path string) string {
			return "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nX-Note: a\r\n b\r\n\r\n"
		}},
	}
	listeners := []struct{ name, path string }{
		{"admin", "/healthz"},
		{"notify", "/wechatpay/notify"},
		{"main", "/healthz"},
	}
	for _, l := range listeners {
		for _, h := range heads {
			t.Run(l.name+": "+h.name, func(t *testing.T) {
				addr := addrs[l.name]
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if _, err := io.WriteString(c, h.head(addr, l.path)); err != nil {
					t.Fatal(err)
				}
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second)) // a bound on a hang, not a timing
				br := bufio.NewReader(c)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("reading the answer: %v", err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusBadRequest {
					t.Errorf("status %d; want 400", resp.StatusCode)
				}
				// The connection is closed: nothing more is read from it as a
				// request, and the client reads its end.
				if n, err := br.Read(make([]byte, 1)); err != io.EOF {
					t.Errorf("after the answer: %d bytes, %v; want the connection closed (EOF)", n, err)
				}
			})
		}
	}

	// What the listeners serve is served as before: the console, the
	// operators' metrics (an answer larger than one buffer), a CPU profile
	// behind the token, and the notify route's own refusal.
	admin, notify := "http://"+addrs["admin"], "http://"+addrs["notify"]
	for _, tc := range []struct {
		name, method, url, auth string
		want                    int
		wantBody                string
	}{
		{"console", "GET", admin + "/", "", http.StatusOK, "<html"},
		{"metrics", "GET", admin + "/metrics", "", http.StatusOK, "paygate_"},
		{"profile", "GET", admin + "/debug/pprof/profile?seconds=1", "Bearer " + testAdminToken, http.StatusOK, ""},
		{"notification", "POST", notify + "/wechatpay/notify", "", http.StatusUnauthorized, `"FAIL"`},
	} {
		t.Run("served: "+tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, tc.url, strings.NewReader(`{"id":"x"}`))
			if tc.method == "GET" {
				req.Body, req.ContentLength = nil, 0
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			if resp.StatusCode != tc.want || !strings.Contains(string(b), tc.wantBody) || len(b) == 0 {
				t.Errorf("%s %s: %d, %d bytes; want %d with %q", tc.method, tc.url, resp.StatusCode, len(b), tc.want, tc.wantBody)
			}
		})
	}
}
