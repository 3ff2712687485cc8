package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/payments"
)

// panickingTools is recordingTools whose create_order panics (a bug in the
// payment service) once the keep-alives of the gap have begun.
type panickingTools struct{ recordingTools }

func (*panickingTools) Execute(context.Context, payments.Caller, string, string) payments.Outcome {
	time.Sleep(30 * time.Millisecond)
	panic("test: a payment call's bug")
}

// afterReturnWriter is the handler's ResponseWriter that counts the writes
// made to it after the handler returned (or panicked): each is refused
// there, where it reached the server's connection or a buffer it pools.
type afterReturnWriter struct {
	http.ResponseWriter
	returned atomic.Bool
	late     chan struct{}
}

var errAfterReturn = errors.New("test: written after the handler returned")

func (w *afterReturnWriter) lateWrite() bool {
	if !w.returned.Load() {
		return false
	}
	select {
	case w.late <- struct{}{}:
	default:
	}
	return true
}

func (w *afterReturnWriter) Write(b []byte) (int, error) {
	if w.lateWrite() {
		return 0, errAfterReturn
	}
	return w.ResponseWriter.Write(b)
}

func (w *afterReturnWriter) FlushError() error {
	if w.lateWrite() {
		return errAfterReturn
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *afterReturnWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestStreamKeepAliveStopsWhenAPaymentCallPanics: a streamed turn whose
// payment call panics (passed on to the handler's goroutine, as the server
// reports a handler's panic) stops its keep-alives (server.sse_keepalive)
// before the handler unwinds. Left running, the keep-alive goroutine went
// on writing to the response after the handler returned: on net/http's
// server into the connection's writer after it was flushed and handed
// back to the pool (another connection's, or nil: a panic outside any
// handler, which ends the process and every payment call in it), on
// proxy/h1's beside the connection's teardown.
func TestStreamKeepAliveStopsWhenAPaymentCallPanics(t *testing.T) {
	fp := newFakeProvider(t, roundByRound(callsRound(true, createOrderCall), textRound(true, "done")))
	late := make(chan struct{}, 1)
	cfg := testConfig(t, fp.URL, func(c *config.Config) { c.Server.SSEKeepalive = config.Duration(2 * time.Millisecond) })
	_, url := servePaygate(t, cfg, Options{Tools: &panickingTools{}, State: &memState{}}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			aw := &afterReturnWriter{ResponseWriter: w, late: late}
			defer aw.returned.Store(true)
			h.ServeHTTP(aw, r)
		})
	})
	resp := post(t, url, "/v1/chat/completions", chatBody(true, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"})
	_, _ = io.Copy(io.Discard, resp.Body) // cut: the handler panicked
	select {
	case <-late:
		t.Fatal("a keep-alive was written after the handler panicked; want the keep-alives stopped first")
	case <-time.After(100 * time.Millisecond): // 50 keep-alive intervals
	}
}
