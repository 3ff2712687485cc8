package h1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingServer is an httptest server that counts the TCP connections it
// accepted.
func countingServer(t *testing.T, h http.Handler) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func post(t *testing.T, tr http.RoundTripper, ctx context.Context, u, body string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Test", "a")
	req.Header.Add("X-Test", "b")
	return tr.RoundTrip(req)
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

func TestExchangeIsExactAndReusesOneConnection(t *testing.T) {
	body := `{"model":"m","messages":[{"role":"user","content":"héllo \u00e9"}],"x":[1,2,3]}`
	type seen struct {
		method, uri, proto, host, ct, body string
		xtest                              []string
		length                             int64
		te                                 []string
	}
	got := make(chan seen, 100)
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.RequestURI, r.Proto, r.Host, r.Header.Get("Content-Type"), string(b), r.Header.Values("X-Test"), r.ContentLength, r.TransferEncoding}
		w.Header().Set("X-Upstream", "1")
		switch r.URL.Query().Get("kind") {
		case "chunked":
			fmt.Fprint(w, "part one,")
			w.(http.Flusher).Flush()
			fmt.Fprint(w, "part two")
		case "empty":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Header().Set("Content-Length", "7")
			fmt.Fprint(w, "answer!")
		}
	}))
	tr := &Transport{}
	cases := []struct{ kind, want string }{
		{"length", "answer!"}, {"chunked", "part one,part two"}, {"empty", ""},
		{"length", "answer!"}, {"chunked", "part one,part two"}, {"empty", ""},
	}
	for i, tc := range cases {
		resp, err := post(t, tr, context.Background(), srv.URL+"/v1/chat/completions?kind="+tc.kind, body)
		if err != nil {
			t.Fatalf("%d %s: %v", i, tc.kind, err)
		}
		if b := readAll(t, resp); b != tc.want || resp.Header.Get("X-Upstream") != "1" {
			t.Fatalf("%d %s: body %q header %q", i, tc.kind, b, resp.Header.Get("X-Upstream"))
		}
		s := <-got
		want := seen{"POST", "/v1/chat/completions?kind=" + tc.kind, "HTTP/1.1", srv.Listener.Addr().String(), "application/json", body, []string{"a", "b"}, int64(len(body)), nil}
		if fmt.Sprint(s) != fmt.Sprint(want) {
			t.Fatalf("%d: upstream saw %+v; want %+v", i, s, want)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for %d sequential exchanges; want 1", n, len(cases))
	}
}

// TestStreamArrivesAsSent: the body hands over each chunk as it arrives; the
// server sends the second only after the client has read the first.
func TestStreamArrivesAsSent(t *testing.T) {
	read := make(chan struct{})
	srv, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-read:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "data: two\n\n")
	}))
	resp, err := post(t, &Transport{}, context.Background(), srv.URL, "{}")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	close(read)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "\ndata: two\n\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
	resp.Body.Close()
}

// TestCancellation: cancelling the request's context while waiting for the
// head, or while reading the body, returns the context's cause and the
// upstream sees its connection close.
func TestCancellation(t *testing.T) {
	cause := errors.New("client went away")
	for _, during := range []string{"head", "body"} {
		t.Run(during, func(t *testing.T) {
			entered := make(chan struct{})
			gone := make(chan struct{})
			srv, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.ReadAll(r.Body) // net/http watches for a disconnect once the body is read
				if during == "body" {
					fmt.Fprint(w, "data: one\n\n")
					w.(http.Flusher).Flush()
				}
				close(entered)
				<-r.Context().Done()
				close(gone)
			}))
			ctx, cancel := context.WithCancelCause(context.Background())
			done := make(chan error, 1)
			go func() {
				resp, err := post(t, &Transport{}, ctx, srv.URL, "{}")
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				done <- err
			}()
			<-entered
			cancel(cause)
			select {
			case err := <-done:
				if !errors.Is(err, cause) {
					t.Fatalf("error %v; want the cancel cause", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the exchange did not end after cancellation")
			}
			select {
			case <-gone:
			case <-time.After(10 * time.Second):
				t.Fatal("the upstream did not see the disconnect")
			}
		})
	}
}

// stalledUpload is a large request body whose first Read gives 1 KiB and
// whose next waits until it is closed: a client's upload still coming.
type stalledUpload struct {
	served              bool          // the first Read was served (the writer's goroutine only)
	waiting, closed     chan struct{} // a Read waits; Close was called
	waitOnce, closeOnce sync.Once
}

func newStalledUpload() *stalledUpload {
	return &stalledUpload{waiting: make(chan struct{}), closed: make(chan struct{})}
}

func (u *stalledUpload) Read(p []byte) (int, error) {
	if !u.served {
		u.served = true
		return copy(p, bytes.Repeat([]byte("a"), 1024)), nil
	}
	u.waitOnce.Do(func() { close(u.waiting) })
	<-u.closed
	return 0, io.ErrClosedPipe
}

func (u *stalledUpload) Close() error {
	u.closeOnce.Do(func() { close(u.closed) })
	return nil
}

// TestStalledUploadIsClosed: a large body is written on a goroutine of its
// own, which may wait in the body's Read, where no deadline on the
// connection reaches it. Cancelled then, RoundTrip waited for that writer
// for ever; answered early (a 413), it returned, and the writer and the
// body were left for ever. The body is now closed, as net/http's
// Transport closes it (http.Request's contract has a Close unblock such a
// Read): RoundTrip returns, the writer ends.
func TestStalledUploadIsClosed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer string // what the server answers once it has the head; "": nothing
		cancel bool   // the request is cancelled while the writer waits
	}{
		{name: "cancelled", cancel: true},
		{name: "answered early", answer: "HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"},
		{name: "answered early, connection held", answer: "HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 2\r\n\r\n{}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, _ := rawServer(t, func(n int, c net.Conn) {
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, tc.answer)
				io.Copy(io.Discard, br) // until the client closes the connection
			})
			tr := &Transport{}
			defer tr.CloseIdleConnections()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			upload := newStalledUpload()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, u+"/v1/files", upload)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = 1 << 20 // over asyncBody
			type result struct {
				resp *http.Response
				err  error
			}
			done := make(chan result, 1)
			go func() {
				resp, err := tr.RoundTrip(req)
				done <- result{resp, err}
			}()
			if tc.cancel {
				<-upload.waiting
				cancel()
			}
			var r result
			select {
			case r = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("RoundTrip did not return within 10 s")
			}
			if tc.cancel {
				if !errors.Is(r.err, context.Canceled) {
					t.Errorf("error %v; want the context's", r.err)
				}
			} else {
				if r.err != nil {
					t.Fatalf("RoundTrip: %v; want the 413", r.err)
				}
				w := r.resp.Body.(*body).c.writer
				waitClosed(t, upload.closed, "the request's body closed at the early answer")
				if got := readAll(t, r.resp); r.resp.StatusCode != http.StatusRequestEntityTooLarge || got != "{}" {
					t.Errorf("%d %q; want the 413", r.resp.StatusCode, got)
				}
				waitClosed(t, w.done, "the body's writer ended")
			}
			waitClosed(t, upload.closed, "the request's body closed")
		})
	}
}

// rawServer answers each connection with fn, over a plain TCP listener, so a
// test can close connections where net/http would not.
func rawServer(t *testing.T, fn func(n int, c net.Conn)) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int32
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			n := int(conns.Add(1))
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); fn(n, c) }()
		}
	}()
	return "http://" + ln.Addr().String(), &conns
}

// readRequest reads one request and its body from br.
func readRequest(br *bufio.Reader) (*http.Request, error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(io.Discard, req.Body)
	return req, err
}

const okAnswer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// dropSecondOnFirstConn is a rawServer handler that shows every request to
// seen and answers okAnswer, except the second request on the first
// connection, which it reads and drops unanswered (the connection closes):
// the case of a keep-alive connection the server closed after reading.
func dropSecondOnFirstConn(seen func(req *http.Request, body []byte)) func(n int, c net.Conn) {
	return func(n int, c net.Conn) {
		br := bufio.NewReader(c)
		for i := 0; ; i++ {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			b, _ := io.ReadAll(req.Body)
			seen(req, b)
			if n == 1 && i == 1 {
				return
			}
			io.WriteString(c, okAnswer)
		}
	}
}

func TestIdleConnectionClosedByServer(t *testing.T) {
	// The server reads the second request whole on the first connection
	// and closes it without a byte of answer: it may have acted on it.
	for _, tc := range []struct {
		name       string
		method     string
		header     map[string]string
		wantResent bool
	}{
		{"a chat completion is not sent again: it may have been generated and billed", http.MethodPost, nil, false},
		{"a POST with an Idempotency-Key is sent again once", http.MethodPost, map[string]string{"Idempotency-Key": "k-1"}, true},
		{"a GET is sent again once", http.MethodGet, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var bodies []string
			var mu sync.Mutex
			u, conns := rawServer(t, dropSecondOnFirstConn(func(r *http.Request, b []byte) {
				mu.Lock()
				bodies = append(bodies, r.Method+string(b))
				mu.Unlock()
			}))
			tr := &Transport{}
			send := func(body string) (*http.Response, error) {
				var rd io.Reader
				if tc.method == http.MethodPost {
					rd = strings.NewReader(body)
				}
				req, err := http.NewRequest(tc.method, u, rd)
				if err != nil {
					t.Fatal(err)
				}
				for k, v := range tc.header {
					req.Header.Set(k, v)
				}
				return tr.RoundTrip(req)
			}
			resp, err := send(`{"n":1}`)
			if err != nil {
				t.Fatalf("first request: %v", err)
			}
			readAll(t, resp)
			resp, err = send(`{"n":2}`)
			if tc.wantResent {
				if err != nil {
					t.Fatalf("second request: %v", err)
				}
				if b := readAll(t, resp); b != "ok" {
					t.Fatalf("second request: %q", b)
				}
			} else if err == nil {
				resp.Body.Close()
				t.Fatal("second request: no error; want the lost connection reported, not the request sent again")
			} else if !errors.Is(err, ErrReusedConnLost) {
				t.Errorf("second request: %v; want it to wrap ErrReusedConnLost", err)
			}
			want, wantConns := 2, int32(1)
			if tc.wantResent {
				want, wantConns = 3, 2
			}
			mu.Lock()
			defer mu.Unlock()
			if len(bodies) != want || conns.Load() != wantConns {
				t.Errorf("upstream saw %q on %d connections; want %d requests on %d", bodies, conns.Load(), want, wantConns)
			}
		})
	}
	t.Run("a new connection that fails is not sent again", func(t *testing.T) {
		u, conns := rawServer(t, func(n int, c net.Conn) {
			readRequest(bufio.NewReader(c))
		})
		_, err := post(t, &Transport{}, context.Background(), u, "{}")
		if err == nil {
			t.Fatal("no error for a connection closed without an answer")
		}
		if errors.Is(err, ErrReusedConnLost) {
			t.Errorf("%v: a new connection's failure taken for a reused one's", err)
		}
		if n := conns.Load(); n != 1 {
			t.Fatalf("%d connections; want 1", n)
		}
	})
}

func TestEarlyCloseDropsTheConnection(t *testing.T) {
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		fmt.Fprint(w, "0123456789")
	}))
	tr := &Transport{}
	resp, err := post(t, tr, context.Background(), srv.URL, "{}")
	if err != nil {
		t.Fatal(err)
	}
	var b [3]byte
	io.ReadFull(resp.Body, b[:])
	resp.Body.Close()
	if _, err := resp.Body.Read(b[:]); err == nil {
		t.Fatal("read after close succeeded")
	}
	resp, err = post(t, tr, context.Background(), srv.URL, "{}")
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp); got != "0123456789" {
		t.Fatalf("second body %q", got)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections; want 2 (a half-read connection is not reused)", n)
	}
}

// closeRecorder is a request body in memory that reports its Close.
type closeRecorder struct {
	*bytes.Reader
	closed chan struct{}
}

func (c *closeRecorder) Close() error { close(c.closed); return nil }

// waitClosed fails the test unless ch is closed within 10 s: a writer
// goroutine that never ends, a body never closed.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not within 10 s", what)
	}
}

// TestEarlyAnswerToLargeUpload: a provider may answer a large upload
// before it reads it (413, 429, 401) and close the connection, or keep it
// and read nothing more. The caller gets that answer, as net/http's
// Transport gives it (SPEC 5: a 4xx other than 429 is not retried, and the
// provider's reason reaches the client; a 429's Retry-After counts), not
// the broken pipe the body's write ends with; the rest of the body is not
// sent, the goroutine that wrote it ends, the caller's body is closed, and
// the connection is not reused. A body the server reads whole first keeps
// the connection.
func TestEarlyAnswerToLargeUpload(t *testing.T) {
	const size = 8 << 20 // server.max_body_bytes' default
	payload := bytes.Repeat([]byte("a"), size)
	refuse := func(t *testing.T, status int, extra string) string {
		u, _ := rawServer(t, func(n int, c net.Conn) {
			if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
				return
			}
			fmt.Fprintf(c, "HTTP/1.1 %d %s\r\n%sContent-Length: 2\r\n\r\n{}", status, http.StatusText(status), extra)
			// Neither read nor closed until the test ends: the body's
			// write would block on full socket buffers for ever.
			<-t.Context().Done()
		})
		return u
	}
	for _, tc := range []struct {
		name       string
		server     func(t *testing.T) string
		requests   int
		wantStatus int
		wantHeader string // "Name: value"
		wantBody   string
		wantConns  int32
		wantErr    error
	}{
		{
			// net/http's server (nginx's too) answers, closes its side,
			// and reads on a while before the reset.
			name: "413 before reading, then closed",
			server: func(t *testing.T) string {
				srv, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					http.Error(w, `{"error":{"message":"too large"}}`, http.StatusRequestEntityTooLarge)
				}))
				return srv.URL
			},
			requests: 1, wantStatus: 413, wantBody: `{"error":{"message":"too large"}}` + "\n",
		},
		{
			name:     "429 before reading, connection held",
			server:   func(t *testing.T) string { return refuse(t, 429, "Retry-After: 7\r\n") },
			requests: 1, wantStatus: 429, wantHeader: "Retry-After: 7", wantBody: "{}",
		},
		{
			name:     "401 before reading, Connection: close",
			server:   func(t *testing.T) string { return refuse(t, 401, "Connection: close\r\n") },
			requests: 1, wantStatus: 401, wantBody: "{}",
		},
		{
			name: "read whole, then answered",
			server: func(t *testing.T) string {
				srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					n, _ := io.Copy(io.Discard, r.Body)
					fmt.Fprint(w, n)
				}))
				t.Cleanup(func() {
					if n := conns.Load(); n != 1 {
						t.Errorf("%d connections; want 1 (a body written whole keeps its connection)", n)
					}
				})
				return srv.URL
			},
			requests: 2, wantStatus: 200, wantBody: fmt.Sprint(size),
		},
		{
			name: "closed unanswered",
			server: func(t *testing.T) string {
				u, _ := rawServer(t, func(n int, c net.Conn) { http.ReadRequest(bufio.NewReader(c)) })
				return u
			},
			requests: 1, wantErr: ErrNotSent,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.server(t)
			tr := &Transport{}
			defer tr.CloseIdleConnections()
			for i := range tc.requests {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				upload := &closeRecorder{bytes.NewReader(payload), make(chan struct{})}
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, u+"/v1/files", upload)
				if err != nil {
					t.Fatal(err)
				}
				req.ContentLength = size
				resp, err := tr.RoundTrip(req)
				if tc.wantErr != nil {
					if !errors.Is(err, tc.wantErr) {
						t.Fatalf("request %d: err %v; want %v", i, err, tc.wantErr)
					}
					waitClosed(t, upload.closed, "the request's body closed")
					continue
				}
				if err != nil {
					t.Fatalf("request %d: %v; want the upstream's %d", i, err, tc.wantStatus)
				}
				w := resp.Body.(*body).c.writer
				if tc.wantStatus != 200 {
					// Before the answer's body is closed: the rest of the
					// upload was given up, not left blocked until then.
					waitClosed(t, w.done, "the body's writer ended")
				}
				if k, v, _ := strings.Cut(tc.wantHeader, ": "); k != "" && resp.Header.Get(k) != v {
					t.Errorf("request %d: %s: %q; want %q", i, k, resp.Header.Get(k), v)
				}
				if got := readAll(t, resp); resp.StatusCode != tc.wantStatus || got != tc.wantBody {
					t.Errorf("request %d: %d %q; want %d %q", i, resp.StatusCode, got, tc.wantStatus, tc.wantBody)
				}
				waitClosed(t, w.done, "the body's writer ended")
				waitClosed(t, upload.closed, "the request's body closed")
			}
		})
	}
}

// heldClose is a request body in memory whose Close waits for release:
// its writer has written it all, and has not yet ended. entered, when not
// nil, is closed as Close begins.
type heldClose struct {
	*bytes.Reader
	release chan struct{}
	entered chan struct{}
}

func (h *heldClose) Close() error {
	if h.entered != nil {
		close(h.entered)
	}
	<-h.release
	return nil
}

// TestRefusalRacingTheWriterKeepsTheConnection: a server that reads a
// large body whole and then refuses it (a 400 context_length_exceeded, a
// 429) on a kept connection may answer before the body's writer has
// ended. Taken for an early answer, the writer was cut by a write
// deadline in the past; having written everything, it ended without an
// error, and the connection was pooled with that deadline: the next
// request's write failed at once, sent again on a new connection or, with
// a body that cannot be had again, failed. The connection now serves the
// next request.
func TestRefusalRacingTheWriterKeepsTheConnection(t *testing.T) {
	const size = 100 << 10 // over asyncBody
	payload := bytes.Repeat([]byte("a"), size)
	first := &heldClose{bytes.NewReader(payload), make(chan struct{}), make(chan struct{})}
	var answered atomic.Int32
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if answered.Add(1) == 1 {
			// The first answer waits for the writer to be in its
			// body's Close: had it come before, the exchange, not the
			// writer, would close the body, and wait in Close for the
			// release that comes after RoundTrip returned.
			<-first.entered
		}
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":{"code":"context_length_exceeded"}}`)
	}))
	tr := &Transport{}
	defer tr.CloseIdleConnections()
	for i, upload := range []io.ReadCloser{first, io.NopCloser(bytes.NewReader(payload))} {
		// No GetBody: a failed write on a reused connection is not sent again.
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", upload)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = size
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if i == 0 {
			// The answer came while the writer was closing the body.
			w := resp.Body.(*body).c.writer
			close(first.release)
			waitClosed(t, w.done, "the body's writer ended")
		}
		if got := readAll(t, resp); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, got)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections; want 1 (a body written whole keeps its connection, whatever the answer)", n)
	}
}

func TestInterimAnswersAreSkipped(t *testing.T) {
	u, _ := rawServer(t, func(n int, c net.Conn) {
		if _, err := readRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"+okAnswer)
	})
	resp, err := post(t, &Transport{}, context.Background(), u, "{}")
	if err != nil {
		t.Fatal(err)
	}
	if b := readAll(t, resp); resp.StatusCode != 200 || b != "ok" {
		t.Fatalf("status %d body %q", resp.StatusCode, b)
	}
}

func TestRefusesBadRequests(t *testing.T) {
	tr := &Transport{}
	for _, tc := range []struct {
		name string
		mod  func(*http.Request)
	}{
		{"header value with CRLF", func(r *http.Request) { r.Header["X-A"] = []string{"v\r\nX-Injected: 1"} }},
		{"header name with colon", func(r *http.Request) { r.Header["X:A"] = []string{"v"} }},
		{"scheme", func(r *http.Request) { r.URL.Scheme = "ftp" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/x", strings.NewReader("{}"))
			tc.mod(req)
			if _, err := tr.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "h1:") {
				t.Fatalf("error %v; want a refusal", err)
			}
		})
	}
}

func TestTLSSpeaksHTTP11(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %v", r.Proto, r.TLS != nil)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	tr := &Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	for i := 0; i < 2; i++ {
		resp, err := post(t, tr, context.Background(), srv.URL, "{}")
		if err != nil {
			t.Fatal(err)
		}
		if b := readAll(t, resp); b != "HTTP/1.1 true" {
			t.Fatalf("server saw %q", b)
		}
	}
	// An untrusted certificate is refused, before any of the request is
	// written: ErrNotSent says so, for a caller that must not send a
	// request twice (failover's uploads and cancellations).
	_, err := post(t, &Transport{}, context.Background(), srv.URL, "{}")
	if err == nil {
		t.Fatal("an unknown certificate was accepted")
	}
	if !errors.Is(err, ErrNotSent) {
		t.Errorf("a failed handshake: %v; want ErrNotSent in it", err)
	}
}

func TestProxiedRequestsGoToFallback(t *testing.T) {
	var viaFallback atomic.Int32
	fb := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		viaFallback.Add(1)
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("fb")), Request: r}, nil
	})
	srv, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "direct") }))
	tr := &Transport{
		Proxy: func(r *http.Request) (*url.URL, error) {
			if r.URL.Path == "/proxied" {
				return url.Parse("http://proxy.invalid:3128")
			}
			return nil, nil
		},
		Fallback: fb,
	}
	for path, want := range map[string]string{"/proxied": "fb", "/direct": "direct"} {
		resp, err := post(t, tr, context.Background(), srv.URL+path, "{}")
		if err != nil {
			t.Fatal(err)
		}
		if b := readAll(t, resp); b != want {
			t.Fatalf("%s: %q; want %q", path, b, want)
		}
	}
	if viaFallback.Load() != 1 {
		t.Fatalf("fallback used %d times; want 1", viaFallback.Load())
	}
	// A proxy without a Fallback is an error, not a panic, and names no
	// proxy password.
	tr.Fallback = nil
	tr.Proxy = func(*http.Request) (*url.URL, error) { return url.Parse("http://user:secret@proxy.invalid:3128") }
	if _, err := post(t, tr, context.Background(), srv.URL+"/proxied", "{}"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("error %v; want a refusal without the proxy password", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestConcurrentExchanges runs many exchanges at once on a small pool (run
// with -race): every answer belongs to its request, and the pool never holds
// more than its cap.
func TestConcurrentExchanges(t *testing.T) {
	srv, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Query().Get("stream") == "1" {
			w.Write(b)
			w.(http.Flusher).Flush()
		}
		w.Write(bytes.ToUpper(b))
	}))
	tr := &Transport{MaxIdleConnsPerHost: 4}
	var wg sync.WaitGroup
	errs := make(chan error, 32*20)
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				body := fmt.Sprintf("req-%d-%d", g, i)
				stream := i % 2
				resp, err := post(t, tr, context.Background(), fmt.Sprintf("%s/?stream=%d", srv.URL, stream), body)
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				want := strings.ToUpper(body)
				if stream == 1 {
					want = body + want
				}
				if err != nil || string(b) != want {
					errs <- fmt.Errorf("%s: got %q, %v", body, b, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, l := range tr.idle {
		if len(l) > 4 {
			t.Fatalf("%d idle connections; cap 4", len(l))
		}
	}
}

// TestTLSSessionsResume: a second connection to the same TLS upstream resumes
// the first one's session instead of a full handshake.
func TestTLSSessionsResume(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%v", r.TLS.DidResume)
	}))
	srv.StartTLS()
	defer srv.Close()
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	tr := &Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	var got []string
	for i := 0; i < 2; i++ {
		resp, err := post(t, tr, context.Background(), srv.URL, "{}")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, readAll(t, resp))
		tr.CloseIdleConnections() // the next request dials anew
	}
	if strings.Join(got, " ") != "false true" {
		t.Fatalf("resumed per connection: %v; want false true", got)
	}
}

// TestIdleConnectionsAreClosedAfterTheTimeout: with no further requests, an
// idle connection is closed once IdleConnTimeout has passed, and the server
// sees it go.
func TestIdleConnectionsAreClosedAfterTheTimeout(t *testing.T) {
	closed := make(chan struct{})
	var once sync.Once
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			once.Do(func() { close(closed) })
		}
	}
	srv.Start()
	defer srv.Close()
	tr := &Transport{IdleConnTimeout: 20 * time.Millisecond}
	resp, err := post(t, tr, context.Background(), srv.URL, "{}")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the idle connection was not closed")
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.idle) != 0 {
		t.Fatalf("idle pool still holds %v", tr.idle)
	}
}

// TestRequestIsNotModified: a body of unknown length reaches the upstream
// with a Content-Length, is sent whole again on a resend, and the caller's
// request keeps its own Body, ContentLength and Header (an http.RoundTripper
// must not change them).
func TestRequestIsNotModified(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	u, _ := rawServer(t, dropSecondOnFirstConn(func(req *http.Request, b []byte) {
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%d:%s", req.ContentLength, b))
		mu.Unlock()
	}))
	tr := &Transport{}
	for i, payload := range []string{`{"n":1}`, `{"n":22}`} {
		body := io.NopCloser(strings.NewReader(payload)) // no length, no GetBody
		req, _ := http.NewRequest(http.MethodPost, u, body)
		req.ContentLength = -1
		req.Header.Set("Idempotency-Key", "k") // so the dropped one is sent again
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		readAll(t, resp)
		if req.Body != body || req.ContentLength != -1 || len(req.Header) != 1 || req.Header.Get("Idempotency-Key") != "k" {
			t.Fatalf("request %d changed: body %v length %d header %v", i, req.Body, req.ContentLength, req.Header)
		}
	}
	if got := strings.Join(seen, " "); got != `7:{"n":1} 8:{"n":22} 8:{"n":22}` {
		t.Fatalf("upstream saw %s; want each body with its length, the dropped one twice", got)
	}
}

// TestBodyOfUnknownLengthIsSent: a request's ContentLength of 0 with a Body
// other than nil or http.NoBody means "unknown" (http.Request's contract,
// which net/http's Transport honours): the body is read and sent with its
// length, as one of length -1 is, never dropped behind a Content-Length: 0.
func TestBodyOfUnknownLengthIsSent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%d:%s", r.ContentLength, b)
	}))
	defer srv.Close()
	tr := &Transport{}
	defer tr.CloseIdleConnections()
	for _, tc := range []struct {
		name   string
		body   io.Reader
		length int64
		want   string
	}{
		{"length 0, a body", io.MultiReader(strings.NewReader(`{"model":"m"}`)), 0, `13:{"model":"m"}`},
		{"length 0, an empty body", io.MultiReader(), 0, "0:"},
		{"length -1, a body", io.MultiReader(strings.NewReader(`{"n":1}`)), -1, `7:{"n":1}`},
		{"no body", nil, 0, "0:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, srv.URL, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = tc.length
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, resp); got != tc.want {
				t.Errorf("upstream got length:body %q; want %q", got, tc.want)
			}
		})
	}
}

// TestWriteBody holds the body copy to its Content-Length whichever way it
// goes: straight from a reader in memory when that holds exactly the length,
// through the connection's limit otherwise, whatever the limit held from
// the request before and letting go of the body after (a pooled connection
// must not keep a caller's body alive).
func TestWriteBody(t *testing.T) {
	type memBody struct{ bytes.Reader } // as failover's body: a type embedding one
	mem := func(s string) io.Reader { m := &memBody{}; m.Reset([]byte(s)); return m }
	tests := []struct {
		name    string
		r       io.Reader
		length  int64
		want    string
		wantErr bool
	}{
		{"in memory, exact", mem("hello"), 5, "hello", false},
		{"bytes.Reader, exact", bytes.NewReader([]byte("hello")), 5, "hello", false},
		{"in memory, longer than the length", mem("hello world"), 5, "hello", false},
		{"in memory, shorter than the length", mem("hi"), 5, "hi", true},
		{"a plain reader", io.MultiReader(strings.NewReader("hel"), strings.NewReader("lo!")), 5, "hello", false},
		{"a plain reader, short", io.MultiReader(strings.NewReader("hel")), 5, "hel", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			bw := bufio.NewWriter(&out)
			lim := &io.LimitedReader{N: 3} // as the request before may leave it
			err := writeBody(bw, tt.r, tt.length, lim)
			bw.Flush()
			if lim.R != nil {
				t.Errorf("the connection's limit still holds the body after the copy")
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if out.String() != tt.want {
				t.Fatalf("wrote %q, want %q", out.String(), tt.want)
			}
		})
	}
}
