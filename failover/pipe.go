package failover

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/sse"
)

// pipe makes the answer of a 2xx head on a passthrough path (anything but
// chat completions) that is not JSON: the Response is returned once its
// first bytes came (holdFirstBytes; an event stream's first event,
// pipeEvents) and Read delivers the body as the provider sends it, so that a file's
// content or a speech is neither held in memory nor capped in size. From
// here on the round has its answer: a body cut short is the caller's to
// report (Read), never another attempt, as for a stream after its first
// token. A JSON answer is never piped (attempt): it is read whole, up to
// Options.MaxJSONResponseBytes, so that a 2xx error envelope still fails
// over (answerError) and the proxy can drop a forged "paygate" member from it.
// An event stream comes here once its first event was read and is no error
// (pipeEvents).
//
// The total timeout, which bounded the wait for the head, ends here: the
// body goes at the pace of the caller's client (a long download to a slow
// bot), and the total would cut it whatever the provider does. Each wait
// for the provider stays bounded by the idle timeout (Read); the caller
// bounds each write to its client by the same (IdleTimeout). stream: the
// answer is an event stream held to its first event (pipeEvents), whose
// time the lowest-latency strategy keeps as a time to first token.
func (r *Router) pipe(a *Response, stream bool) (*Response, *failure) {
	a.endWait() // Read bounds each wait for the provider
	a.noTotal()
	a.piped, a.events = true, stream
	a.sample(stream, time.Since(a.start))
	return a, nil
}

// heldStream reports a 2xx answer to a forwarded call that pipeEvents
// holds until its first event: an event stream with a body (not the
// answer to a HEAD, nor a 204 or 205).
func heldStream(req *Request, resp *http.Response) bool {
	return req.Method != http.MethodHead && resp.StatusCode != http.StatusNoContent &&
		resp.StatusCode != http.StatusResetContent && isEventStream(resp.Header)
}

// pipeEvents makes the answer of a 2xx event stream on a forwarded path (a
// streamed Responses call, a legacy completion, a transcription): as a
// chat stream is (SPEC 5), it is held until its first data event, which
// must come within the first_token timeout (counted from the head's
// arrival) and the round's time, and which fails the attempt, before any
// byte reached the caller, when it is an error (forwardedEventError), or
// [DONE]. Piped at its head, such a stream's rate limit or failed response
// reached the bot as a 200 and counted as the provider's success.
//
// Then the stream is piped as any other answer: Read delivers the bytes
// held, exactly as they came (comment lines, event names and line ends
// included: the proxy's relay filters them as before), then the rest. A
// stream whose first event is larger than maxHeld is piped unread when
// that much has come: no error object is that large. A stream sent with a
// Content-Encoding is decoded, as a chat stream is, and its header
// dropped: the events are read here, and the caller gets what they say.
func (r *Router) pipeEvents(a *Response, t *target, resp *http.Response) (*Response, *failure) {
	// From the head, not the attempt's start as for a chat stream, whose
	// head waits only first_byte: a forwarded call's head waits up to the
	// total timeout or its share of the round (nonStreamWait), its upload
	// included, and a head later than first_token was failed at once,
	// its generation sent to the next target and billed twice.
	a.setPhase(phaseFirstToken, t.p.cfg.Timeouts.FirstToken.D())
	src, f := a.decodedStream(resp)
	if f != nil {
		return nil, f
	}
	h := &holdReader{r: src}
	rd := sse.NewReader(h)
	ev, err := rd.Next()
	for err == nil && blankData(ev) {
		// A keep-alive, as a comment is: the first event is the next one.
		ev, err = rd.Next()
	}
	switch {
	case errors.Is(err, errHoldFull):
		// Too large to be an error: the answer.
	case err != nil:
		if errors.Is(err, io.EOF) {
			// An error object without "data:", the whole body (bareError).
			if f = r.eventWait(bareErrorIn(h.buf), h.buf); f != nil {
				f.httpStatus = resp.StatusCode
				break
			}
		}
		f = a.failFromErr(err, true)
		if f.cause == CauseConnectionLost && errors.Is(err, io.EOF) {
			f.err = fmt.Errorf("stream ended before its first event: %w", ErrConnectionLost)
		}
	case ev.IsDone():
		f = &failure{cause: CauseEmptyStream, status: http.StatusBadGateway, httpStatus: resp.StatusCode,
			err: errors.New("stream ended with [DONE] before its first event")}
	default:
		if f = r.eventWait(forwardedEventError(ev), ev.Data); f != nil {
			f.httpStatus = resp.StatusCode
		} else if cut := rd.Err(); cut != nil && !errors.Is(cut, io.EOF) && !errors.Is(cut, errHoldFull) {
			// The connection failed before the event's blank line (the
			// reader dispatches what came of it): its last line may be
			// cut, and a provider that dropped the connection within
			// its first event has not answered. Piped, the cut bytes
			// reached the caller as its stream's first event, and the
			// stream then aborted, where another target could still
			// answer with nothing sent.
			f = a.failFromErr(cut, true)
		}
	}
	rd.Release()
	if f != nil {
		a.release()
		return nil, f
	}
	a.body = &heldBody{held: h.buf, r: src, c: resp.Body}
	a.roundAt.Store(0) // the round has its answer
	// Its first event's time is a stream's, as a chat stream's first token.
	return r.pipe(a, true)
}

// forwardedEventError is eventError for the first event of a forwarded
// stream, which also knows the Responses API's response.failed: a failed
// response's error is in response.error ({code, message}), its status
// what the code stands for, and 500 without one. Its response.usage, an
// object, is the attempt's Usage: OpenAI bills a failed response's tokens;
// so is the usage of an error event that carries one (errorUsage).
func forwardedEventError(ev sse.Event) *failure {
	if f := eventError(ev); f != nil {
		f.usage = errorUsage(ev.Data)
		return f
	}
	if !bytes.Contains(ev.Data, responseFailed) {
		return nil
	}
	s := unsafeString(ev.Data)
	if gjson.Get(s, "type").Str != "response.failed" {
		return nil
	}
	f := &failure{status: http.StatusInternalServerError}
	if e := gjson.Get(s, "response.error"); e.IsObject() {
		readErrorValue(f, e)
		f.status = objectStatus(e, f)
	}
	if f.errMsg == "" {
		f.errMsg = "the provider's response failed"
	}
	f.cause = causeOf(f)
	if u := gjson.Get(s, "response.usage"); u.IsObject() {
		f.usage = []byte(u.Raw)
	}
	return f
}

var responseFailed = []byte(`response.failed`)

// errHoldFull ends the reading of a forwarded stream's first event at
// maxHeld bytes (holdReader).
var errHoldFull = errors.New("first event larger than what is held")

// holdReader keeps every byte read through it, up to maxHeld: what
// pipeEvents read of a stream to find its first event, which the caller
// must still get.
type holdReader struct {
	r   io.Reader
	buf []byte
}

func (h *holdReader) Read(p []byte) (int, error) {
	if len(h.buf) >= maxHeld {
		return 0, errHoldFull
	}
	n, err := h.r.Read(p)
	h.buf = append(h.buf, p[:n]...)
	return n, err
}

// heldBody is a held answer's body: the bytes read to find a stream's
// first event (pipeEvents), or an answer's first bytes (holdFirstBytes),
// then the rest of it.
type heldBody struct {
	held []byte
	err  error     // what the read of held ended with (its body's end, or a cut), returned after it
	r    io.Reader // the stream after held: the connection's body, or its decoder
	c    io.Closer // the connection's body
}

// heldRead reports a piped answer whose held bytes the caller has read:
// what Read returns next comes from the provider.
func (a *Response) heldRead() bool {
	b, ok := a.body.(*heldBody)
	return !ok || len(b.held) == 0
}

func (b *heldBody) Read(p []byte) (int, error) {
	if len(b.held) > 0 {
		n := copy(p, b.held)
		b.held = b.held[n:]
		return n, nil
	}
	if b.err != nil {
		return 0, b.err
	}
	return b.r.Read(p)
}

// holdFirstBytes reads the first bytes of a piped answer that is no event
// stream (speech's audio, a file's content) before the caller gets its
// head, as pipeEvents reads a stream's first event: a provider that sends
// the head and loses the connection (or falls silent past the idle
// timeout) before the first byte of its body has sent the caller nothing,
// and the attempt fails as one cut before its head, so that the round
// moves on as its rules say (the next target for speech or a download;
// for a call sent at most once, the end of the round). Returned at its
// head, such an answer reached the bot as a head and then an aborted
// connection: a bare EOF to go-openai, a lost connection the Node SDK
// retried on the same provider, and the next target never asked. A body
// declared empty, and a bodiless answer (a HEAD's, a 204's or 205's), is
// not read. The bytes read are the caller's first (heldBody), with how
// their read ended.
func (a *Response) holdFirstBytes(req *Request, resp *http.Response) *failure {
	if req.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent ||
		resp.StatusCode == http.StatusResetContent || resp.ContentLength == 0 {
		return nil
	}
	buf := make([]byte, firstBytes)
	var n int
	var err error
	for n == 0 && err == nil {
		n, err = resp.Body.Read(buf)
	}
	if n == 0 && !errors.Is(err, io.EOF) {
		return a.failFromErr(err, true)
	}
	a.body = &heldBody{held: buf[:n], err: err, r: resp.Body, c: resp.Body}
	return nil
}

// firstBytes is how much of a piped answer holdFirstBytes reads at most.
const firstBytes = 512

func (b *heldBody) Close() error { return b.c.Close() }

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
	var n int
	var err error
	if a.cutAfter != nil {
		err, a.cutAfter = a.cutAfter, nil
	} else {
		// A probe's event stream flows once the provider sends more than
		// its first event, held before the head was returned (Response.probe).
		flows := a.probe && a.breakerDone != nil && a.heldRead()
		a.waitIdle()
		n, err = a.body.Read(p)
		a.endWait()
		if n > 0 && flows {
			a.reportBreaker(nil)
		}
		if n > 0 && err != nil && !errors.Is(err, io.EOF) {
			// The body's last bytes came with its cut (gzip's last read
			// of a stream compressed without a flush per event hands
			// over its last block and the missing last chunk together):
			// the caller gets them first, and the cut at the next call,
			// once EndsWhole has told whether they ended the answer.
			// Taken at once, the cut of a stream whose last event was
			// in those bytes ended the bot's answer early.
			a.cutAfter = err
			return n, nil
		}
	}
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, io.EOF):
		return n, a.finish(io.EOF)
	}
	f := a.failFromErr(err, true)
	if a.endsWhole && !f.canceled {
		// The caller read the answer's end (EndsWhole): a cut now loses
		// nothing, and is the body's end, a success for the breaker.
		a.r.log.WarnContext(&a.ctx, "upstream answer cut after its end: taken whole", "provider", a.Provider, "target", a.Model,
			"cause", f.cause, "err", f.err)
		return n, a.finish(io.EOF)
	}
	return n, a.finish(&StreamError{Provider: a.Provider, Cause: f.cause, Err: f.err})
}

// EndsWhole tells Read whether the bytes it returned so far end the
// answer whole, which only the caller can tell: a forwarded event stream
// whose last event (a Response's response.completed, a legacy
// completion's [DONE]) it has read, nothing after it. A cut from then on
// (a provider, or a relay in front of it, that drops the connection
// without the body's last chunk, or falls silent past the idle timeout)
// is the body's end: Read returns io.EOF, and it counts as a complete
// stream, as a chat stream cut after its finish reason does (SPEC 5). As a
// cut it ended the bot's answer early, its usage uncounted, and a relay
// that cuts every stream so opened the provider's breaker.
func (a *Response) EndsWhole(whole bool) { a.endsWhole = whole }
