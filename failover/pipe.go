package failover

import (
	"errors"
	"io"
	"time"
)

// pipe makes the answer of a 2xx head on a passthrough path (anything but
// chat completions) that is not JSON: the Response is returned at its head
// and Read delivers the body as the provider sends it, so that a file's
// content or a speech is neither held in memory nor capped in size. From
// here on the round has its answer: a body cut short is the caller's to
// report (Read), never another attempt, as for a stream after its first
// token. A JSON answer is never piped (attempt): it is read whole, up to
// Options.MaxJSONResponseBytes, so that a 2xx error envelope still fails
// over (answerError) and the proxy can drop a forged "paygate" member from it.
//
// The total timeout, which bounded the wait for the head, ends here: the
// body goes at the pace of the caller's client (a long download to a slow
// bot), and the total would cut it whatever the provider does. Each wait
// for the provider stays bounded by the idle timeout (Read); the caller
// bounds each write to its client by the same (IdleTimeout).
func (r *Router) pipe(a *Response, t *target) (*Response, *failure) {
	a.endWait() // Read bounds each wait for the provider
	a.noTotal()
	a.piped = true
	t.observe(r.opts.Now(), time.Since(a.start))
	return a, nil
}

// Piped reports an answer that Open returned at its head, a passthrough
// path's: Body is nil and Read delivers the body.
func (a *Response) Piped() bool { return a.piped }

// ContentLength is the body's length as the provider declared it; -1 when
// it did not.
func (a *Response) ContentLength() int64 { return a.length }

// IdleTimeout is the provider's timeouts.idle: how long Read waits for the
// provider's next bytes, and how long a relay of a piped answer lets its
// own client take over each write before it gives up on it.
func (a *Response) IdleTimeout() time.Duration { return a.idle }

// Read reads a piped answer's body (Piped) as the provider sends it: each
// wait for the provider is bounded by the idle timeout; the whole body is
// not bounded (the total timeout ends at the head). It returns io.EOF at
// the body's end. A body that ends short of it (the connection lost, an
// idle timeout) is a *StreamError naming the cause: the caller has sent
// the head on, nothing fails over any more, and it must end its own answer
// so that its client sees it incomplete. The end counts as a stream's does
// (finish): a body whole is a success for the provider's breaker, a body
// the provider cut (the connection lost, the idle timeout) a failure, so
// that a provider that cuts every download opens its breaker; the caller's
// cancellation is neither, and so is a Close before the end (the caller's
// client left or stopped reading). Each end is counted in
// paygate_upstream_stream_ends_total. For an answer that is not piped,
// Read returns io.EOF.
func (a *Response) Read(p []byte) (int, error) {
	if !a.piped {
		return 0, io.EOF
	}
	if a.end != nil {
		return 0, a.end
	}
	if len(p) == 0 {
		return 0, nil
	}
	a.waitIdle()
	n, err := a.body.Read(p)
	a.endWait()
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, io.EOF):
		return n, a.finish(io.EOF)
	}
	f := a.failFromErr(err, true)
	return n, a.finish(&StreamError{Provider: a.Provider, Cause: f.cause, Err: f.err})
}
