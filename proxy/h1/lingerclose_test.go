//go:build linux

package h1

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestEarlyAnswerReachesUploadingClient: a client still uploading a request
// body when the handler answers without reading it all (paygate refuses an
// oversize body with 413, a wrong key with 401, while a bot sends a
// multi-MB image) reads that answer, as from net/http's server. Closing a
// socket with unread bytes in it sends a reset, and a net/http client (as
// go-openai) or httpx then fails its write with "connection reset by peer"
// instead of reading the answer, and retries the upload: so the server
// half-closes and reads what the client still sends before it closes. A
// head the server refuses while the client is still sending it (431), or
// an Expect it cannot meet (417), is the same. A reset comes about half of
// the time without the lingering close, so ten uploads show it.
func TestEarlyAnswerReachesUploadingClient(t *testing.T) {
	const uploads = 10
	body := bytes.Repeat([]byte("A"), 4<<20)
	for _, tc := range []struct {
		name       string
		header     http.Header
		handler    http.HandlerFunc
		wantStatus int
	}{
		{"413 after reading part of the body", nil, func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20)); err != nil {
				http.Error(w, `{"error":{"message":"too large"}}`, http.StatusRequestEntityTooLarge)
			}
		}, http.StatusRequestEntityTooLarge},
		{"401 without reading the body", nil, func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error":{"message":"invalid key"}}`, http.StatusUnauthorized)
		}, http.StatusUnauthorized},
		{"431 to a head still being sent", http.Header{"X-Big": {strings.Repeat("h", 2<<20)}}, func(w http.ResponseWriter, r *http.Request) {
			t.Error("the handler ran for a head over MaxHeaderBytes")
		}, http.StatusRequestHeaderFieldsTooLarge},
		{"417 to an Expect the server does not know", http.Header{"Expect": {"something-else"}}, func(w http.ResponseWriter, r *http.Request) {
			t.Error("the handler ran for an unknown Expect")
		}, http.StatusExpectationFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{Handler: tc.handler, MaxHeaderBytes: 64 << 10}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go s.Serve(ln)
			defer s.Close()
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for i := range uploads {
				req, err := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+"/v1/chat/completions", bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				for k, v := range tc.header {
					req.Header[k] = v
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("upload %d of %d: %v; want the %d answer", i+1, uploads, err, tc.wantStatus)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != tc.wantStatus {
					t.Fatalf("upload %d of %d: %s %q, %v; want %d", i+1, uploads, resp.Status, b, err, tc.wantStatus)
				}
				if !resp.Close {
					t.Fatalf("upload %d: the answer does not say the connection closes", i+1)
				}
			}
		})
	}
}
