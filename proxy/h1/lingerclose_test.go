//go:build linux

package h1

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
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

// TestLingeringCloseIsBounded: the wait after an early answer holds a
// connection only while the client may still need it. It ends when the
// client closes; a client that keeps sending is cut off after the bound of
// the whole (drainTime: each wait's, BodyStallTimeout, is not reached), one
// that goes silent after one wait, and Shutdown, which waits for it, returns;
// Close ends it at once. The
// disconnect watcher keeps no registration for it afterwards. The bound is set far from the test's own
// timeouts, so that each outcome has one cause.
func TestLingeringCloseIsBounded(t *testing.T) {
	const hour = time.Hour
	refuse := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	})
	// answered sends a request with a body far larger than it will ever
	// send and reads the early answer and the half-close after it.
	answered := func(t *testing.T, c net.Conn) {
		t.Helper()
		if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\nfirst bytes"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		if b, err := io.ReadAll(resp.Body); err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge || !resp.Close {
			t.Fatalf("answer %s %q, %v; close %v; want a 413 that says close", resp.Status, b, err, resp.Close)
		}
		if n, err := br.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("after the answer: read %d bytes, %v; want EOF (the server's half-close)", n, err)
		}
	}
	// sending writes to c until a write fails, which is the server's full
	// close (a reset, since what it sends then is not read); the channel
	// gets the error. The writes have no deadline, which would fail them
	// too.
	sending := func(c net.Conn) <-chan error {
		c.SetWriteDeadline(time.Time{})
		failed := make(chan error, 1)
		go func() {
			chunk := bytes.Repeat([]byte("A"), 64<<10)
			for {
				if _, err := c.Write(chunk); err != nil {
					failed <- err
					return
				}
			}
		}()
		return failed
	}
	shutdown := func(t *testing.T, s *Server) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v; the lingering connection was not closed", err)
		}
	}

	t.Run("the client's close ends it", func(t *testing.T) {
		firstID := lastWatchID()
		s := &Server{Handler: refuse, BodyStallTimeout: hour, maxDrainTime: hour}
		c := serveOne(t, s)
		answered(t, c)
		c.Close()
		shutdown(t, s)
		if n := watchedSince(firstID); n != 0 {
			t.Errorf("the watcher holds %d of this test's connections; want 0", n)
		}
	})
	t.Run("a client that keeps sending is cut off after the bound", func(t *testing.T) {
		s := &Server{Handler: refuse, BodyStallTimeout: hour, maxDrainTime: 50 * time.Millisecond}
		c := serveOne(t, s)
		answered(t, c)
		failed := sending(c)
		shutdown(t, s)
		select {
		case <-failed:
		case <-time.After(10 * time.Second):
			t.Fatal("the client still sends after Shutdown returned")
		}
	})
	t.Run("a client that goes silent is cut off after one wait", func(t *testing.T) {
		s := &Server{Handler: refuse, BodyStallTimeout: 50 * time.Millisecond, maxDrainTime: hour}
		c := serveOne(t, s)
		answered(t, c)
		shutdown(t, s)
	})
	t.Run("Close ends it", func(t *testing.T) {
		s := &Server{Handler: refuse, BodyStallTimeout: hour, maxDrainTime: hour}
		c := serveOne(t, s)
		answered(t, c)
		failed := sending(c)
		s.Close()
		select {
		case <-failed:
		case <-time.After(10 * time.Second):
			t.Fatal("the client still sends 10 s after Close")
		}
	})
}

// TestLingeringCloseOutlastsASlowUpload: a client still uploading a body
// well after its early answer reads that answer, as long as it is still
// sending: the Node openai SDK, uploading a 40 MB file to a paygate whose
// server.max_body_bytes is 8 MiB, sent the request's head, then nothing
// for two seconds while it read the file into its form, then the body.
// The lingering close was bounded by lingerTime from its start, net/http's
// 500 ms: the socket was closed under the client, whose next write failed
// (Node: "write EPIPE", reported as "Connection error." and retried, the
// whole upload sent again twice), and the bot never saw the 413 that said
// why. The client here pauses after its head for several times that bound
// (set short), then sends its body in small writes for as long again.
func TestLingeringCloseOutlastsASlowUpload(t *testing.T) {
	const (
		bound  = 100 * time.Millisecond
		chunks = 50
		pace   = 10 * time.Millisecond // between two writes: a client sending steadily
	)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":{"message":"too large"}}`, http.StatusRequestEntityTooLarge)
	}), maxLinger: bound}
	c := serveOne(t, s)
	chunk := bytes.Repeat([]byte("A"), 16<<10)
	if _, err := fmt.Fprintf(c, "POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", chunks*len(chunk)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	time.Sleep(5 * bound) // the client reading its file: its pace, not a synchronisation
	for i := range chunks {
		if _, err := c.Write(chunk); err != nil {
			t.Fatalf("write %d of %d, %v after the head: %v; want the server to read the upload until it ends", i+1, chunks, time.Since(start).Round(time.Millisecond), err)
		}
		time.Sleep(pace)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("after the upload: %v; want the 413", err)
	}
	if b, err := io.ReadAll(resp.Body); err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("answer %s %q, %v; want the 413", resp.Status, b, err)
	}
}
