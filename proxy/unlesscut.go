package proxy

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync/atomic"
)

// unlessCut runs f on a goroutine of its own and waits for what it
// returns, unless the drain's deadline ends r first (ErrShuttingDown):
// cut, f runs on, detached from r, and what it returns is dropped, so
// that r is answered (server_shutdown) while its connection is still open,
// where waiting held the answer until the whole shutdown_timeout had
// passed and the connection was closed under it. A client that left is
// waited for as before: nobody reads that answer, and what f does is
// counted as ever. f must not use what r's handler may reuse once it
// returns. A panic in f is raised again here, as it would have been in
// the handler's goroutine; one after the cut is logged, f named as what
// (a payment call, an approval's prepay) with attrs.
func unlessCut[T any](r *http.Request, log *slog.Logger, what string, attrs []any, f func() T) (out T, cut bool) {
	type result struct {
		out   T
		panic any
		stack []byte
	}
	done := make(chan result, 1)
	var abandoned atomic.Bool
	go func() {
		defer func() {
			if p := recover(); p != nil {
				stack := debug.Stack()
				if abandoned.Load() {
					log.Error(what+" panicked after the drain deadline ended its request", append(attrs, "panic", fmt.Sprint(p), "stack", string(stack))...)
				}
				done <- result{panic: p, stack: stack}
			}
		}()
		done <- result{out: f()}
	}()
	var res result
	select {
	case res = <-done:
	case <-r.Context().Done():
		if shutDown(r) {
			// Marked before the last look, so that a panic landing
			// between the two is logged by f's goroutine, not lost (one
			// landing before the look is logged and passed on both).
			abandoned.Store(true)
			select {
			case res = <-done: // ended meanwhile
			default:
				return out, true
			}
		} else {
			res = <-done
		}
	}
	if res.panic != nil {
		// As it would have in the handler's goroutine: the server logs it
		// and closes the connection.
		panic(fmt.Sprintf("%v\n\n%s's goroutine:\n%s", res.panic, what, res.stack))
	}
	return res.out, false
}
