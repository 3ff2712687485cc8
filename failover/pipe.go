package failover

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// maxPeek is how much of a JSON passthrough answer is read before Open
// returns it. An answer that ends within it is checked as a chat
// completion is (an error object in a 2xx, an empty or truncated body, a
// CDN's page sent as JSON: the same target once more, then the next); a
// longer one must at least begin as a JSON object. An error object is no
// longer than an error body is read for (maxErrorBody).
const maxPeek = maxErrorBody

// pipe makes the answer of a 2xx head on a passthrough path (anything but
// chat completions): the Response is returned at its head and Read
// delivers the body as the provider sends it, so that a file's content, a
// speech or a long list of embeddings is neither held in memory nor capped
// in size. From here on the round has its answer: a body cut short is the
// caller's to report (Read), never another attempt, as for a stream after
// its first token. A JSON answer is first read up to maxPeek, so that an
// error object sent with a 2xx still fails over.
func (r *Router) pipe(a *Response, t *target, req *Request, resp *http.Response) (*Response, *failure) {
	if wantsJSONObject(req, resp) {
		data, whole, err := a.peekBody(maxPeek)
		if err != nil {
			f := a.failFromErr(err, true)
			a.release()
			return nil, f
		}
		if whole {
			if f := errorObject(data); f != nil {
				f.httpStatus = resp.StatusCode
				a.release()
				return nil, f
			}
			if !isJSONObject(data) {
				a.release()
				return nil, &failure{cause: CauseMalformed, status: http.StatusBadGateway, httpStatus: resp.StatusCode,
					err: fmt.Errorf("%d answer of %d bytes (content type %q) is not a JSON object",
						resp.StatusCode, len(data), resp.Header.Get("Content-Type"))}
			}
			a.Body = data
			t.observe(r.opts.Now(), time.Since(a.start))
			a.release()
			return a, nil
		}
		if i := skipSpace(data, 0); i == len(data) || data[i] != '{' {
			a.release()
			return nil, &failure{cause: CauseMalformed, status: http.StatusBadGateway, httpStatus: resp.StatusCode,
				err: fmt.Errorf("%d answer (content type %q) does not begin as a JSON object",
					resp.StatusCode, resp.Header.Get("Content-Type"))}
		}
		a.pre = data
	}
	a.endWait() // Read bounds each wait for the provider
	a.piped = true
	t.observe(r.opts.Now(), time.Since(a.start))
	return a, nil
}

// peekBody reads a body until it ends (whole) or at least limit bytes of
// it are read, each read bounded by the idle timeout and all of them by
// the total timeout.
func (a *Response) peekBody(limit int) (data []byte, whole bool, err error) {
	n := 4 << 10
	if cl := a.length; cl >= 0 && cl < int64(limit) {
		n = int(cl) + 1
	}
	buf := make([]byte, 0, n)
	for len(buf) < limit {
		a.waitIdle()
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		m, err := a.body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if errors.Is(err, io.EOF) {
			return buf, true, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
	return buf, false, nil
}

// Piped reports an answer that Open returned at its head, a passthrough
// path's: Body is nil and Read delivers the body.
func (a *Response) Piped() bool { return a.piped }

// ContentLength is the body's length as the provider declared it; -1 when
// it did not.
func (a *Response) ContentLength() int64 { return a.length }

// Read reads a piped answer's body (Piped) as the provider sends it: each
// wait for the provider is bounded by the idle timeout, the whole body by
// the total timeout. It returns io.EOF at the body's end. A body that ends
// short of it (the connection lost, a timeout) is a *StreamError naming
// the cause: the caller has sent the head on, nothing fails over any more,
// and it must end its own answer so that its client sees it incomplete.
// The provider answered, so the cut counts against neither its breaker nor
// its health (a slow client makes a long answer hit its total timeout).
// For an answer that is not piped, Read returns io.EOF.
func (a *Response) Read(p []byte) (int, error) {
	if !a.piped {
		return 0, io.EOF
	}
	if a.end != nil {
		return 0, a.end
	}
	if len(a.pre) > 0 {
		n := copy(p, a.pre)
		a.pre = a.pre[n:]
		return n, nil
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
		a.end = io.EOF
		return n, io.EOF
	}
	f := a.failFromErr(err, true)
	a.end = &StreamError{Provider: a.Provider, Cause: f.cause, Err: f.err}
	if !f.canceled {
		a.r.log.Warn("upstream answer cut after its head", "provider", a.Provider, "model", a.Model,
			"cause", f.cause, "err", f.err)
	}
	return n, a.end
}
