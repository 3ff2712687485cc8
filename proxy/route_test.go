package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

type otherKey struct{}

// TestRoutedContext checks the context route gives handlers: it carries the
// request's requestCtx and stands in for the server's context in every other
// way, so a context derived from it is cancelled with the server's without a
// goroutine per derivation (what context does for a parent it cannot see
// through).
func TestRoutedContext(t *testing.T) {
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), otherKey{}, "server's"))
	defer cancel()
	var seen *requestCtx
	var ctx context.Context
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{metrics: m}
	h := s.route("test", func(w http.ResponseWriter, r *http.Request) {
		seen, ctx = reqInfo(r), r.Context()
	})
	req := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(parent)
	h.ServeHTTP(httptest.NewRecorder(), req)

	if seen == nil || seen.id == "" {
		t.Fatalf("reqInfo: got %+v; want the request's id", seen)
	}
	if got := ctx.Value(otherKey{}); got != "server's" {
		t.Errorf("a key of the server's context: got %v; want %q", got, "server's")
	}
	before := runtime.NumGoroutine()
	const n = 50
	children := make([]context.Context, n)
	stops := make([]context.CancelFunc, n)
	for i := range children {
		children[i], stops[i] = context.WithCancel(ctx)
	}
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	if after := runtime.NumGoroutine(); after >= before+n {
		t.Errorf("goroutines: %d before %d derived contexts, %d after; want no goroutine per context", before, n, after)
	}
	ran := make(chan struct{})
	context.AfterFunc(ctx, func() { close(ran) })
	cancel()
	for i, c := range children {
		<-c.Done() // a child that was not linked to the server's context never ends: the test times out
		if c.Err() != context.Canceled {
			t.Fatalf("child %d: got %v; want context.Canceled", i, c.Err())
		}
	}
	<-ran
}
