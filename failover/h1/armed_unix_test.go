//go:build linux

package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestArmedWriteFindsTheSocketFull: a request that fits the write buffer
// goes out in one armed write (armed_unix.go). When the socket cannot take
// all of it (a server not reading yet, small socket buffers), the rest goes
// out the usual way, waiting until it can, and the server gets every byte of
// every request on the kept-alive connection.
func TestArmedWriteFindsTheSocketFull(t *testing.T) {
	small := func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048)
			if serr == nil {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 2048)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
	ln, err := (&net.ListenConfig{Control: small}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	release := make(chan struct{})
	var once sync.Once
	armedShortHook = func() { once.Do(func() { close(release) }) }
	defer func() { armedShortHook = nil }()

	got := make(chan []byte, 2)
	served := make(chan struct{})
	go func() {
		defer close(served)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		<-release // reads nothing until the client found the socket full
		br := bufio.NewReader(c)
		for range 2 {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			b, err := io.ReadAll(req.Body)
			if err != nil {
				return
			}
			got <- b
			if _, err := io.WriteString(c, okAnswer); err != nil {
				return
			}
		}
	}()

	tr := &Transport{DialContext: (&net.Dialer{Control: small}).DialContext}
	defer tr.CloseIdleConnections()
	body := make([]byte, 14<<10) // fits the transport's 16 KiB buffer, not the sockets'
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	// A bound rather than a hang should a request go out short: the
	// server would wait for the rest of its body, the client for the answer.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 2 {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+ln.Addr().String()+"/v1/chat/completions", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		ans, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(ans) != "ok" {
			t.Fatalf("request %d: answer %q, %v", i, ans, err)
		}
		if b := <-got; !bytes.Equal(b, body) {
			t.Fatalf("request %d: the server got %d bytes, not the %d sent", i, len(b), len(body))
		}
		if i == 0 {
			select {
			case <-release:
			default:
				t.Fatal("the first request's armed write never found the socket full: the test shows nothing")
			}
		}
	}
	<-served
}

// countingConn embeds a TCP connection, so it has its SyscallConn, and
// counts what goes out through its Write.
type countingConn struct {
	*net.TCPConn
	written *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.TCPConn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

// TestArmedWriteKeepsAWrappedConnsWrite: a dialer's connection that wraps
// (embeds) a TCP connection gets every byte through its own Write: the
// armed write, which writes to the socket itself, is only for the net
// package's own TCP connections.
func TestArmedWriteKeepsAWrappedConnsWrite(t *testing.T) {
	u, _ := rawServer(t, func(_ int, c net.Conn) {
		br := bufio.NewReader(c)
		for {
			if _, err := readRequest(br); err != nil {
				return
			}
			if _, err := io.WriteString(c, okAnswer); err != nil {
				return
			}
		}
	})
	var written atomic.Int64
	d := &net.Dialer{}
	tr := &Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{nc.(*net.TCPConn), &written}, nil
	}}
	defer tr.CloseIdleConnections()
	var sent int64
	for range 3 {
		req, err := http.NewRequest(http.MethodPost, u+"/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
		if err != nil {
			t.Fatal(err)
		}
		var head bytes.Buffer
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		// What went out: the head as writeRequest frames it, and the body.
		fmt.Fprintf(&head, "POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nContent-Length: 13\r\n\r\n", strings.TrimPrefix(u, "http://"))
		sent += int64(head.Len()) + 13
	}
	if got := written.Load(); got != sent {
		t.Fatalf("the wrapping connection's Write saw %d bytes of the %d sent", got, sent)
	}
}

// gatedBody is a request body of known length whose last part is held back
// until release is closed and, after that, until the client's socket has
// bytes to read: the server's answer is already waiting when the request's
// last write goes out.
type gatedBody struct {
	first, rest []byte
	release     <-chan struct{}
	conn        *atomic.Pointer[net.TCPConn]
	t           *testing.T
}

func (b *gatedBody) Read(p []byte) (int, error) {
	if len(b.first) > 0 {
		n := copy(p, b.first)
		b.first = b.first[n:]
		return n, nil
	}
	if len(b.rest) == 0 {
		return 0, io.EOF
	}
	if b.release != nil {
		<-b.release
		b.release = nil
		waitReadable(b.t, b.conn.Load())
	}
	n := copy(p, b.rest)
	b.rest = b.rest[n:]
	return n, nil
}

// waitReadable waits (select(2), which leaves the poller's readiness as it
// is) until c has bytes to read.
func waitReadable(t *testing.T, c *net.TCPConn) {
	rc, err := c.SyscallConn()
	if err != nil {
		t.Error(err)
		return
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		for {
			var r syscall.FdSet
			r.Bits[fd/64] |= 1 << (fd % 64)
			tv := syscall.Timeval{Sec: 10}
			n, err := syscall.Select(int(fd)+1, &r, nil, nil, &tv)
			if err == syscall.EINTR {
				continue
			}
			if err == nil && n == 0 {
				err = errors.New("nothing to read after 10 s")
			}
			serr = err
			return
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		t.Error(err)
	}
}

// TestArmedWriteAfterAnEarlyAnswer: a request larger than the write buffer
// goes out in more than one write. A server may answer it before its last
// part arrives (a 401 or a 413 sent once the head is read) and then read
// the rest and wait for the next request, sending nothing more. The armed
// write clears the poller's readiness before it writes, so the answer
// already there must not be waited for: the exchange ends with it, at once.
func TestArmedWriteAfterAnEarlyAnswer(t *testing.T) {
	answered := make(chan struct{})
	var once sync.Once
	u, _ := rawServer(t, func(_ int, c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if _, err := io.WriteString(c, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\n{}"); err != nil {
				return
			}
			once.Do(func() { close(answered) })
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				return
			}
		}
	})
	var conn atomic.Pointer[net.TCPConn]
	d := &net.Dialer{}
	tr := &Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		conn.Store(nc.(*net.TCPConn))
		return nc, nil
	}}
	defer tr.CloseIdleConnections()
	// A bound rather than a hang: the test fails, it does not wait for ever.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	body := &gatedBody{first: bytes.Repeat([]byte("a"), 20<<10), rest: bytes.Repeat([]byte("b"), 4<<10), release: answered, conn: &conn, t: t}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u+"/v1/chat/completions", body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = 24 << 10
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("the answer sent before the request's last write was never read: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || string(b) != "{}" || err != nil {
		t.Fatalf("answer %d %q, %v; want 401 {}", resp.StatusCode, b, err)
	}
}

// TestPooledConnClosedAtCheckout: a server that closes its half of an idle
// keep-alive connection and reads on (a lingering close) does so just as
// the connection is taken for the next request. The close must not be
// lost to the armed write's reset of the poller's readiness, after which
// the exchange would wait for an answer until its deadline. With a body
// that can be had again, the pooled connection's peek comes after that
// reset, finds the close, and the request goes out on a new connection,
// answered. One that cannot is not written armed: the close fails it at
// once as ErrReusedConnLost, the caller's to decide on, as before the
// armed write.
func TestPooledConnClosedAtCheckout(t *testing.T) {
	for _, resendable := range []bool{true, false} {
		t.Run(map[bool]string{true: "GetBody", false: "no GetBody"}[resendable], func(t *testing.T) {
			halfClose := make(chan struct{})
			var got atomic.Int32 // requests the server read
			u, conns := rawServer(t, func(n int, c net.Conn) {
				br := bufio.NewReader(c)
				if _, err := readRequest(br); err != nil {
					return
				}
				got.Add(1)
				if _, err := io.WriteString(c, okAnswer); err != nil {
					return
				}
				if n == 1 {
					<-halfClose
					c.(*net.TCPConn).CloseWrite()
					io.Copy(io.Discard, c) // reads on, answers nothing
					return
				}
				for {
					if _, err := readRequest(br); err != nil {
						return
					}
					got.Add(1)
					if _, err := io.WriteString(c, okAnswer); err != nil {
						return
					}
				}
			})
			var first atomic.Pointer[net.TCPConn]
			d := &net.Dialer{}
			tr := &Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				nc, err := d.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				first.CompareAndSwap(nil, nc.(*net.TCPConn))
				return nc, nil
			}}
			defer tr.CloseIdleConnections()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			send := func() error {
				var body io.Reader = strings.NewReader(`{"model":"m"}`)
				if !resendable {
					body = io.NopCloser(body)
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, u+"/v1/chat/completions", body)
				if err != nil {
					return err
				}
				req.ContentLength = 13
				resp, err := tr.RoundTrip(req)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if err == nil && string(b) != "ok" {
					err = fmt.Errorf("answer %q", b)
				}
				return err
			}
			if err := send(); err != nil {
				t.Fatal(err)
			}
			var once sync.Once
			checkoutHook = func(c *conn) {
				once.Do(func() {
					// The server's FIN lands after the checkout, before
					// the request is written.
					close(halfClose)
					waitReadable(t, first.Load())
				})
			}
			defer func() { checkoutHook = nil }()
			err := send()
			if !resendable {
				if !errors.Is(err, ErrReusedConnLost) {
					t.Fatalf("the request after the pooled connection's close: %v; want ErrReusedConnLost", err)
				}
				if n := got.Load(); n != 1 {
					t.Fatalf("the server read %d requests; want 1", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("the request after the pooled connection's close: %v", err)
			}
			if n := conns.Load(); n != 2 {
				t.Fatalf("%d connections; want 2 (the closed one, then a new one)", n)
			}
			if n := got.Load(); n != 2 {
				t.Fatalf("the server read %d requests; want 2 (none on the closed connection)", n)
			}
		})
	}
}
