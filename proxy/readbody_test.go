package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
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
	_, apiErr := s.readBody(httptest.NewRecorder(), r)
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
		got, apiErr := s.readBody(httptest.NewRecorder(), r)
		if apiErr != nil || !bytes.Equal(got, want) {
			t.Errorf("a %d-byte body: %d bytes, %v", n, len(got), apiErr)
		}
		r = httptest.NewRequest(http.MethodPost, "/v1/chat/completions", stallAfter{bytes.NewReader(want)})
		r.ContentLength = int64(n) + 1
		if _, apiErr := s.readBody(httptest.NewRecorder(), r); apiErr == nil {
			t.Errorf("a body one byte short of its declared %d: accepted", n+1)
		}
	}
}
