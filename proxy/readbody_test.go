package proxy

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
)

// stallAfter yields its bytes, then fails as a client that stopped sending
// mid-body and closed does.
type stallAfter struct{ r io.Reader }

func (s stallAfter) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF {
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

// TestReadBodyDoesNotReserveTheDeclaredLength: a large declared
// Content-Length is not allocated before its bytes come: a client that
// declares megabytes and sends one byte must not make paygate hold them
// (a hundred such connections would pin the whole limit a hundred times).
// Bodies of every size still read whole, and a short one is refused.
func TestReadBodyDoesNotReserveTheDeclaredLength(t *testing.T) {
	cfg := &config.Config{}
	cfg.Server.MaxBodyBytes = 8 << 20
	s := &Server{cfg: cfg}
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", stallAfter{strings.NewReader("{")})
	r.ContentLength = 8 << 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, apiErr := s.readBody(httptest.NewRecorder(), r, new(bodyHeld))
	runtime.ReadMemStats(&after)
	if apiErr == nil || apiErr.Status != http.StatusBadRequest {
		t.Fatalf("a truncated body: %v; want a 400", apiErr)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Fatalf("reading a 1-byte (truncated) body allocated %d bytes: the declared length, not what arrived", got)
	}
	for _, n := range []int{0, 10, reserveUpTo, reserveUpTo + 1, 3 << 20} {
		want := bytes.Repeat([]byte("a"), n)
		r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(want))
		got, apiErr := s.readBody(httptest.NewRecorder(), r, new(bodyHeld))
		if apiErr != nil || !bytes.Equal(got, want) {
			t.Errorf("a %d-byte body: %d bytes, %v", n, len(got), apiErr)
		}
		r = httptest.NewRequest(http.MethodPost, "/v1/chat/completions", stallAfter{bytes.NewReader(want)})
		r.ContentLength = int64(n) + 1
		if _, apiErr := s.readBody(httptest.NewRecorder(), r, new(bodyHeld)); apiErr == nil {
			t.Errorf("a body one byte short of its declared %d: accepted", n+1)
		}
	}
}

// TestReadBodyGrowsToTheDeclaredLengthOnly: a large declared body, read as
// its bytes come, ends in a buffer of its length: doubling past it would
// hold twice the body for the whole round (failover may resend it), and
// allocate four times it.
func TestReadBodyGrowsToTheDeclaredLengthOnly(t *testing.T) {
	cfg := &config.Config{}
	cfg.Server.MaxBodyBytes = 32 << 20
	s := &Server{cfg: cfg}
	for _, n := range []int{8 << 20, 8<<20 + 1, 3*reserveUpTo + 7} {
		want := bytes.Repeat([]byte("a"), n)
		r := httptest.NewRequest(http.MethodPost, "/v1/files", bytes.NewReader(want))
		r.ContentLength = int64(n)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		got, apiErr := s.readBody(httptest.NewRecorder(), r, new(bodyHeld))
		runtime.ReadMemStats(&after)
		if apiErr != nil || !bytes.Equal(got, want) {
			t.Fatalf("%d bytes: read %d, %v", n, len(got), apiErr)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(2*n)+reserveUpTo || cap(got) != n {
			t.Errorf("a %d-byte declared body: %d bytes allocated, a buffer of %d kept; want at most twice the body and a buffer of its length", n, alloc, cap(got))
		}
	}
}

// deadlineBody yields its bytes, then fails as a body read does when the
// server's stall bound passes: a net.OpError naming both ends.
type deadlineBody struct{ r io.Reader }

func (s deadlineBody) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF {
		return n, &net.OpError{Op: "read", Net: "tcp",
			Source: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 8080},
			Addr:   &net.TCPAddr{IP: net.IPv4(203, 0, 113, 7), Port: 51234}, Err: os.ErrDeadlineExceeded}
	}
	return n, err
}

// TestStalledBodyIsARequestTimeout: a body whose client went silent (the
// server's body stall bound) is a 408, which SDKs retry, not a 400, which
// they do not; and the answer names neither end's address, which a read
// error's text does.
func TestStalledBodyIsARequestTimeout(t *testing.T) {
	cfg := &config.Config{}
	cfg.Server.MaxBodyBytes = 8 << 20
	s := &Server{cfg: cfg}
	for _, declared := range []int64{100, 100 << 10, -1} {
		r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", deadlineBody{strings.NewReader(`{"model":`)})
		r.ContentLength = declared
		_, apiErr := s.readBody(httptest.NewRecorder(), r, new(bodyHeld))
		if apiErr == nil {
			t.Fatalf("declared %d: a stalled body read without error", declared)
		}
		if apiErr.Status != http.StatusRequestTimeout || strings.Contains(apiErr.Message, "10.0.0.5") || strings.Contains(apiErr.Message, "203.0.113.7") {
			t.Errorf("declared %d: %d %q; want 408 without the addresses", declared, apiErr.Status, apiErr.Message)
		}
	}
}
