package proxy

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/sse"
)

// syncBuffer lets the test read what the keep-alive goroutine wrote.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	n  chan struct{}
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case s.n <- struct{}{}:
	default:
	}
	return s.b.Write(p)
}

func TestKeepAlive(t *testing.T) {
	buf := &syncBuffer{n: make(chan struct{}, 1)}
	sw := sse.NewWriter(buf)
	stop := keepAlive(sw, time.Millisecond)
	<-buf.n // at least one keep-alive was written
	stop()
	buf.mu.Lock()
	got := buf.b.String()
	buf.mu.Unlock()
	if got == "" || strings.Trim(got, "\n") != "" {
		t.Errorf("wrote %q; want blank lines", got)
	}
	// After stop nothing more is written: the caller owns the writer again.
	if err := sw.Data([]byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	buf.mu.Lock()
	after := buf.b.String()
	buf.mu.Unlock()
	if !strings.HasSuffix(after, "data: {}\n\n") {
		t.Errorf("a keep-alive was written after stop: %q", after)
	}
	keepAlive(sw, 0)() // off: nothing to stop
}
