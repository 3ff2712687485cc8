package failover

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/failover/h1"
	"github.com/paygate/paygate/internal/jsonscan"
	"github.com/paygate/paygate/internal/jsonstr"
	"github.com/paygate/paygate/sse"
)

// Attempt is one upstream attempt of a round, kept for accounting: failed
// attempts are charged to their provider, never billed as the answer.
type Attempt struct {
	Provider string
	Model    string
	// Status is the upstream HTTP status; 0 when no headers arrived.
	Status int
	// Cause is why the attempt failed; "" for the attempt that answered.
	Cause string
	// Duration is the attempt's wall time until it answered or failed.
	Duration time.Duration
	// Usage is the usage object (raw JSON) of a failed attempt's 2xx
	// answer, refused as malformed (no choices, a member named twice)
	// though the provider billed it, or the last one a stream sent before
	// it failed ahead of its first token (heldUsage), or that events
	// answering a non-stream request gave before they were refused
	// (streamedCompletion), or the response.usage of a forwarded stream's
	// first event, a Responses API response.failed (forwardedEventError:
	// the Responses API's counts, input_tokens and output_tokens), or of a
	// 2xx error envelope or a forwarded stream's first event that is an
	// error (errorUsage); nil otherwise. The successful attempt's is
	// its answer's.
	Usage []byte
}

// failure is why an attempt did not answer acceptably, with what the policy
// needs to decide the next step.
type failure struct {
	cause      string
	status     int // HTTP status, or the status an error object stands for
	httpStatus int // the status line actually received; 0: none
	retryAfter time.Duration
	hasRetry   bool // a Retry-After (or retry-after-ms) header, a google.rpc.RetryInfo, OpenRouter's X-RateLimit-Reset (rateLimitReset) or OpenAI's reset of a spent limit (spentLimitReset) was present
	errType    string
	errCode    string
	errMsg     string
	errParam   string // the request parameter the error names; "": none (null)
	plain      bool   // errMsg is the text of a body that is not JSON (an HTML error page)
	flagged    bool   // the error names flagged input (OpenRouter's moderation metadata)
	badKey     bool   // the error's details name an invalid API key (Gemini's API_KEY_INVALID)
	keyInWords bool   // misconfigured by its message alone (badKeyMessage): this round only
	// billingInWords: out of credit by its message alone (billingMessage):
	// this round only, as keyInWords.
	billingInWords bool
	// requestCost: out of credit for this request's size only (OpenRouter's
	// 402 "…but can only afford N", affordsFewer, or its budgetOverWhole):
	// this round only, as billingInWords.
	requestCost bool
	redirect    bool // a 3xx answer; errMsg says where it pointed (redirectMessage)
	toTLS       bool // a TLS port's 400 to plain HTTP (plainToTLS); errMsg says to check the base_url
	err         error
	canceled    bool // the caller's context ended: not the provider's fault
	// usage is Attempt.Usage.
	usage []byte
	// reusedLost: a reused keep-alive connection ended before any byte of
	// the answer (h1.ErrReusedConnLost), a race with the server's idle
	// close rather than a fault of the provider's.
	reusedLost bool
	// unsent: the attempt failed before its request was sent whole (a
	// dial error, a failed TLS handshake, a write cut mid-request, a body
	// never read: unsent; a cancel between attempts, which sent nothing),
	// so the provider cannot have acted on it (mayHaveRun).
	unsent bool
	// targetLimit: the wait is that of a limit on the target's model
	// alone (OpenAI's per-model limits, spentLimitReset) or on its
	// provider's ":free" models (OpenRouter's free-model limits,
	// rateLimitReset, freeLimit): the target, or those, cool down, not
	// its provider, whose other models it does not limit.
	targetLimit bool
	// freeLimit: the limit is OpenRouter's own (its reset in
	// metadata.headers, not relayed) and its words name the account's
	// free-model limit (freeModelsLimit), which all its ":free" models
	// count toward (coolFreeTargets); not its limit on one ":free" model
	// in high demand.
	freeLimit bool
	// previousNotFound: a 400 saying the provider does not hold the
	// Responses request's previous_response_id (isPreviousResponseNotFound).
	previousNotFound bool
	// pathRefused: a 401 or 403 on a forwarded path (not chat
	// completions), which may say only that the provider key lacks that
	// endpoint's permission: this round only, as keyInWords.
	pathRefused bool
	// pathMissing: a 404 on a forwarded path that does not say the model
	// is missing, which says the provider does not serve that endpoint
	// (many OpenAI-compatible servers have no /responses or /embeddings)
	// and nothing of its chat completions (failedOwn).
	pathMissing bool
	// budget is OpenRouter's metadata.reason on a 402 of its in-flight
	// spending budget (budgetInFlight, budgetOverWhole); "": none.
	budget string
	// relayed: OpenRouter relays the error of the upstream provider that
	// served the target's model (error.metadata.provider_name), whose
	// limit is not that of OpenRouter's other models.
	relayed bool
	// spendLimit: OpenRouter names the spending limit that refused
	// (error.metadata.limit_source): a 401 or 403 so is the money the key
	// may spend, not a bad key (keyLimitMessage).
	spendLimit bool
	// modelQuota: out of the target's model's own quota (DashScope's free
	// tier of one model, isFreeTierSpent), not the account's: this round
	// only, as billingInWords, the provider's other models unaffected.
	modelQuota bool
	// t is the target the attempt asked; nil for a failure before any
	// (a body paygate could not adapt, a cancel, the round's time).
	t *target
}

// Phases of an attempt; a spent wait's cause follows its phase (deadlines).
const (
	phaseFirstByte int32 = iota
	phaseFirstToken
	phaseIdle
)

const (
	maxErrorBody  = 64 << 10 // bytes of an error body read for its reason
	maxHeld       = 1 << 20  // bytes of non-token events held before the first token
	maxMalformed  = 3        // malformed events tolerated in one stream
	drainWait     = 100 * time.Millisecond
	drainMaxBytes = 4 << 10
)

// attempt sends req to t once. On success the returned Response owns the
// connection (stream) or the whole body (non-stream). roundLeft bounds the
// wait for the answer by what is left of the round: for a stream until its
// first token, for a non-stream answer until a 2xx head has arrived (0:
// unbounded). headWait, when above 0, bounds a non-stream answer's wait
// for its head (Router.nonStreamWait). spent is what the round spent on t
// before this attempt, counted in its latency sample (Response.spent).
func (r *Router) attempt(caller context.Context, t *target, req *Request, body []byte, roundLeft, headWait, spent time.Duration) (*Response, *failure) {
	p := t.p
	to := p.cfg.Timeouts
	a := &Response{
		Provider: p.name,
		Model:    t.model,
		r:        r,
		t:        t,
		caller:   caller,
		measure:  generation(req),
		spent:    spent,
	}
	a.ctx.init(caller)
	headerWait := to.FirstByte.D()
	if !req.Stream {
		// A non-stream answer's head often comes only with the whole
		// answer (OpenAI), after as long as the model takes to write it:
		// the total timeout bounds the wait for it, or the attempt's
		// share of the round's time when a later target could answer
		// (nonStreamWait), not first_byte or first_token, which would
		// cut every long answer, and then the next target's, each of
		// them billed.
		headerWait = to.Total.D()
		if headWait > 0 {
			headerWait = min(headerWait, headWait)
		}
	}
	// The round's time and the total timeout share the attempt's one timer
	// with the phases (deadlines).
	a.startDeadlines(to.Idle.D(), to.FirstToken.D(), headerWait, to.Total.D(), roundLeft, a.ctx.cancel)

	method := req.Method
	if method == "" {
		method = http.MethodPost
	}
	hreq, err := p.newRequest(&a.ctx, method, req.Path, body, p.requestHeader(req.ContentType, req.Accept))
	if err != nil {
		a.release()
		return nil, &failure{cause: CauseClientError, status: http.StatusBadRequest, errMsg: "invalid upstream request", err: err, unsent: true}
	}

	var sent *sentMark
	if req.AtMostOnce && hreq.Body != nil && hreq.Body != http.NoBody {
		sent = new(sentMark)
		sent.wrap(hreq)
	}
	resp, err := p.rt.RoundTrip(hreq)
	if err != nil {
		f := a.failFromErr(err, false)
		f.unsent = unsent(err, sent)
		if f.cause == CauseFirstByteTimeout && !req.Stream && headWait > 0 {
			f.err = fmt.Errorf("%w (a non-stream answer's: its share of failover.max_round_time, %v, with another target to ask)",
				ErrFirstByteTimeout, headerWait)
		}
		a.release()
		return nil, f
	}
	ttfb := time.Since(a.start)
	p.ttfb.Observe(ttfb.Seconds())
	p.noteHead(time.Now())
	a.StatusCode, a.Header, a.body, a.length = resp.StatusCode, resp.Header, resp.Body, resp.ContentLength

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		a.setPhase(phaseIdle, to.Idle.D())
		data, cut := readErrorBody(resp.Body, resp.Header)
		f := classifyHTTP(resp.StatusCode, resp.Header, data, r.opts.Now())
		if cut {
			tooLargeReason(f, data, resp.ContentLength, resp.StatusCode)
		}
		if f.redirect && !isChatPath(req.Path) {
			// On a forwarded path the bot chose the path: a redirect
			// there (a trailing slash a FastAPI server redirects, a
			// file's content behind a signed URL) says nothing of the
			// provider's base_url, and must not put the provider in
			// cool-down for every bot. The round ends (another target
			// would redirect the same path) with a 502 that says where
			// it pointed; paygate follows no redirect.
			f.redirect, f.cause, f.status = false, CauseClientError, http.StatusBadGateway
			f.errType = "upstream_error"
			f.errMsg = "provider " + p.name + " " + redirectMessage(resp.StatusCode, resp.Header.Get("Location")) +
				": paygate follows no redirect; check the request's path"
		}
		if (f.cause == CauseMisconfigured && !f.keyInWords || f.cause == CauseModelNotFound && resp.StatusCode == http.StatusForbidden) &&
			!(isChatPath(req.Path) && method == http.MethodPost) &&
			(resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
			// On a forwarded path the bot chose the endpoint (listing
			// stored chat completions with GET too): a key restricted to
			// some (OpenAI's project keys with scopes, an organization's
			// admin paths) is refused there and serves
			// chat completions still. Held against the provider, one
			// bot's call took it out of service for every bot's chat for
			// the misconfigured cool-down. A key that is wrong is refused
			// on chat completions too, which cool the provider down. A 403
			// that says the key may not use the model (OpenAI's
			// model_not_found for a project key) is refused alike: the
			// next target, and with none left the bot's 403.
			f.pathRefused = true
		}
		if f.cause == CauseModelNotFound && resp.StatusCode == http.StatusNotFound &&
			!(isChatPath(req.Path) && method == http.MethodPost) && !isModelNotFound(f) {
			// A model the target lacks is refused on chat completions
			// too, which count against it; a path it lacks is not.
			f.pathMissing = true
		}
		r.cutPlain(f)
		a.release()
		return nil, f
	}

	if !req.Stream && !isChatPath(req.Path) && heldStream(req, resp) {
		return r.pipeEvents(a, t, resp)
	}
	whole := false // a whole completion is read as the stream asked for
	if !req.Stream || !isEventStream(resp.Header) {
		if !req.Stream {
			// The answer is coming: from its head on, its body is
			// bounded by the total timeout and by the idle timeout
			// between reads, not by the round's time. Providers that
			// send the head at once and keep the connection alive with
			// whitespace while the model thinks (OpenRouter, DeepSeek)
			// would otherwise be cut, and the next target asked (and
			// billed) in vain.
			a.roundAt.Store(0)
		}
		a.setPhase(phaseIdle, to.Idle.D())
		if !req.Stream && !isChatPath(req.Path) && !wantsJSONObject(req, resp) {
			// A passthrough answer that is not JSON (a file's content,
			// speech, JSON Lines) goes to the caller as it arrives,
			// whatever its size. A JSON one is read whole, as a chat
			// completion is: an error envelope sent with a 2xx still fails
			// over, and the proxy drops an upstream's forged "paygate"
			// member from it (interceptors.DropPaygate), which it can
			// only do to a whole object.
			if ct := resp.Header.Get("Content-Type"); isHTMLType(ct) && !fileContent(req) {
				// No OpenAI endpoint answers HTML: a 2xx page is a
				// CDN's browser challenge or a web site where the
				// base_url points, never the answer. Piped, the bot
				// took it for one and the breaker counted a success.
				// A stored file's content is the exception: it is
				// what was stored, an HTML file too.
				a.release()
				return nil, &failure{cause: CauseMalformed, status: http.StatusBadGateway, httpStatus: resp.StatusCode,
					err: fmt.Errorf("%d answer is an HTML page (content type %q), which no API answers", resp.StatusCode, ct)}
			}
			if f := a.holdFirstBytes(req, resp); f != nil {
				a.release()
				return nil, f
			}
			return r.pipe(a, false)
		}
		limit := r.opts.MaxResponseBytes
		if !isChatPath(req.Path) {
			limit = r.opts.MaxJSONResponseBytes // an embeddings batch, which cannot be streamed instead
		}
		data, err := a.readBody(limit)
		if wantsJSONObject(req, resp) {
			// A byte order mark before a chat or other JSON answer (a
			// relay on Windows, a .NET server): RFC 8259 lets a parser
			// ignore it, and the OpenAI SDKs read such an answer (the
			// Node SDK's fetch decodes UTF-8, the mark stripped). Kept,
			// the answer was no JSON object and failed over, billed
			// twice. A stored file's content is what was stored.
			data = bytes.TrimPrefix(data, utf8BOM)
		}
		if !req.Stream && isChatPath(req.Path) && (req.Method == "" || req.Method == http.MethodPost) &&
			(err == nil || a.caller.Err() == nil) && eventsBody(data) {
			// A provider that ignores "stream": false (some
			// OpenAI-compatible servers and relays) answered with
			// chat.completion.chunk events: the chat completion they
			// stream is the answer, as if sent as JSON, so a payment call
			// in it is captured and run as in any non-stream answer.
			// Failed over as not a JSON object, a valid answer was billed
			// by this provider, asked again and of the next target, and
			// held against the provider's breaker. An error event in it
			// fails over as the same error in a JSON body would.
			body, f := r.streamedCompletion(a, data, err, limit, req.Choices, req.Names)
			if f == nil {
				if why := ambiguousMember(body); why != "" {
					// Malformed as the same answer sent as JSON is: a
					// completion after keep-alives is the body as it
					// came, so paygate and the bot would read it two
					// ways (the assembled one skipped such chunks).
					// Billed as that answer is (billedUsage).
					f = &failure{cause: CauseMalformed, status: http.StatusBadGateway, httpStatus: resp.StatusCode, usage: billedUsage(body),
						err: fmt.Errorf("%d event stream's answer names a member two ways: %s", resp.StatusCode, why)}
				}
			}
			if f != nil {
				r.cutPlain(f)
				a.release()
				return nil, f
			}
			if err != nil {
				r.log.WarnContext(caller, "upstream event stream complete, its end cut: accepted", "provider", p.name, "target", t.model,
					"bytes", len(data), "err", err)
			}
			a.Body = body
			a.Header.Set("Content-Type", "application/json")
			a.Header.Del("Content-Length")
			a.sample(false, time.Since(a.start))
			a.release()
			return a, nil
		}
		if err != nil && (errors.Is(err, io.ErrUnexpectedEOF) || a.caller.Err() == nil) && wholeAnswer(req.Path, data) {
			// The framing was cut (a chunked body's last chunk, bytes
			// short of its Content-Length), the connection reset or the
			// body silent past the idle timeout after the whole answer
			// had come: take it, as a stream that ends so after its
			// finish reason is complete (and events answering a
			// non-stream request are). Asked again, the provider would
			// generate and bill it again, and so would the next. The
			// connection is not reused (release closes a body not read
			// to its end).
			r.log.WarnContext(caller, "upstream answer complete, its framing cut: accepted", "provider", p.name, "target", t.model,
				"bytes", len(data), "err", err)
			err = nil
		}
		var cut error // what ended events labelled otherwise early
		if err != nil && req.Stream && a.caller.Err() == nil && isChatPath(req.Path) && eventsBody(data) {
			// Events labelled otherwise (below), their connection cut,
			// reset or silent past the idle timeout (as a non-stream
			// request's events are taken): read as a stream so ended
			// is, whole after its finish, else ended there by the same
			// error. Failed over, an answer that had finished was asked
			// again, and billed.
			r.log.WarnContext(caller, "upstream event stream labelled otherwise cut: read as a stream so cut", "provider", p.name, "target", t.model,
				"bytes", len(data), "err", err)
			cut, err = err, nil
		}
		if err != nil {
			f := a.failFromErr(err, true)
			a.release()
			return nil, f
		}
		// A non-stream chat completion is validated and checked for an
		// error, its choices and a member named two ways in one pass
		// (scanAnswer); any other answer, or one it finds no valid
		// object, by the checks it stands for.
		var scan answerScan
		scanned := false
		chatPost := isChatPath(req.Path) && (req.Method == "" || req.Method == http.MethodPost)
		if !req.Stream && chatPost {
			scan, scanned = scanAnswer(data)
		}
		var f *failure
		if scanned {
			f = r.eventWait(scan.answerError(data), data)
		} else {
			f = r.eventWait(answerError(req.Path, data), data)
		}
		if f != nil {
			f.httpStatus = resp.StatusCode
			f.usage = errorUsage(data)
			r.cutPlain(f)
			a.release()
			return nil, f
		}
		if !req.Stream {
			if wantsJSONObject(req, resp) && !scanned && !isJSONObject(data) &&
				(isChatPath(req.Path) || !isJSONArray(data) && (len(data) > 0 || generation(req))) {
				// A truncated body, a CDN's or WAF's HTML page with a 200,
				// an empty one where a generation was asked for: no
				// answer, whatever the status says. On a forwarded path a
				// JSON array is an answer (the rerank and tokenize answers
				// of Hugging Face's text-embeddings-inference), and so is
				// an empty body to any other call (a DELETE's 200 with
				// Content-Length: 0), passed on as it came: no error
				// envelope is either, and failed as malformed, each call
				// was sent twice (a DELETE too) and held against the
				// provider's breaker, which then took the provider out of
				// every bot's chat.
				// An event stream labelled JSON (a forwarded call that
				// asked for one, its provider's or relay's one label for
				// every answer) was billed as any stream is: its last
				// usage is the attempt's (streamedUsage).
				a.release()
				return nil, &failure{cause: CauseMalformed, status: http.StatusBadGateway, httpStatus: resp.StatusCode, usage: streamedUsage(data),
					err: fmt.Errorf("%d answer of %d bytes (content type %q) is not a JSON object",
						resp.StatusCode, len(data), resp.Header.Get("Content-Type"))}
			}
			if chatPost && !(scanned && scan.hasChoices(data) || !scanned && hasChoices(data)) {
				// A JSON object without choices is no chat completion: a
				// provider's error in a 200 in a shape of its own (Baidu
				// Qianfan's {"error_code":18,"error_msg":"Open api qps
				// request limit reached"}, a relay's {"code":50001,"msg":…},
				// an empty {}). Handed on, the bot took it for an answer
				// with nothing in it; it is a malformed answer, as a cut
				// one is (wholeAnswer), so the target is asked once more,
				// then the next.
				a.release()
				return nil, &failure{cause: CauseMalformed, status: http.StatusBadGateway, httpStatus: resp.StatusCode, usage: billedUsage(data),
					err: fmt.Errorf("%d answer of %d bytes is no chat completion (no choices)%s",
						resp.StatusCode, len(data), r.ownErrorText(data))}
			}
			if chatPost && (!scanned || scan.ambiguous) {
				if why := ambiguousMember(data); why != "" {
					// Read one way by paygate and another by the bot
					// (ambiguousMember): no answer either can trust.
					a.release()
					return nil, &failure{cause: CauseMalformed, status: http.StatusBadGateway, httpStatus: resp.StatusCode, usage: billedUsage(data),
						err: fmt.Errorf("%d answer names a member two ways: %s", resp.StatusCode, why)}
				}
			}
			a.Body = data
			if scanned {
				a.Spans = scan.spans
			}
			a.sample(req.Stream, time.Since(a.start))
			a.release()
			return a, nil
		}
		// A provider that ignores "stream": true (some OpenAI-compatible
		// servers and relays) answered with a whole chat completion: it
		// goes to the client as the stream it asked for, its events read
		// below as any provider's are, so a payment call in it is held
		// and run as in a streamed answer. Failed over as malformed, a
		// valid answer was billed by this provider, asked again and of
		// the next target, and held against the provider's breaker.
		events, ok := completionEvents(req.Path, data)
		whole = ok
		if !ok && isChatPath(req.Path) && eventsBody(data) {
			// The events a stream request asked for, labelled as
			// something else (application/json, text/plain, none: a
			// relay that sets one label for every answer), known by
			// their first byte as a non-stream request's are
			// (eventsBody). Read as a JSON body, they were none and
			// failed over, asked again and of the next target, each
			// billed. They are read below as any stream's, all here.
			events, whole = data, true
		} else if !ok {
			a.release()
			return nil, &failure{cause: CauseMalformed, status: http.StatusBadGateway, httpStatus: resp.StatusCode, usage: billedUsage(data),
				err: fmt.Errorf("stream requested, got content type %q and no whole chat completion", resp.Header.Get("Content-Type"))}
		} else if why := ambiguousMember(data); why != "" {
			// Malformed as it is when not streamed: its events would
			// carry a repeated member of the message into the delta
			// (which a payment turn's capture skips, its text and calls
			// with it) and a repeated count into the usage chunk.
			a.release()
			return nil, &failure{cause: CauseMalformed, status: http.StatusBadGateway, httpStatus: resp.StatusCode, usage: billedUsage(data),
				err: fmt.Errorf("%d answer names a member two ways: %s", resp.StatusCode, why)}
		}
		_ = resp.Body.Close() // read to its end
		resp.Body = io.NopCloser(bytes.NewReader(events))
		if cut != nil {
			resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(events), errAfter{cut}))
		}
		a.body, a.length = resp.Body, -1
		resp.Header.Set("Content-Type", "text/event-stream")
		resp.Header.Del("Content-Length")
	}

	// A stream: hold everything up to the first token-bearing event.
	a.stream = true
	if req.Choices > 1 {
		a.choices = newChoiceSet(req.Choices)
	}
	if !whole {
		// Counted from the attempt's start. A whole completion's events
		// are all here: its first token is not waited for (its body's
		// reads were each bounded by the idle timeout).
		a.setPhaseAt(phaseFirstToken, to.FirstToken.D())
	}
	src, f := a.decodedStream(resp)
	if f != nil {
		return nil, f
	}
	a.pre = prefixReader{r: src}
	if isChatPath(req.Path) {
		// Events labelled otherwise (whole) too: a completion after
		// keep-alive comments labelled application/json is one, and
		// kept only to maxErrorBody, one larger was taken for a stream
		// ended before its first token, asked again and billed.
		a.pre.max = int(min(r.opts.MaxResponseBytes, math.MaxInt32))
	}
	pre := &a.pre
	a.rd = sse.NewReader(pre)
	held := 0
	// usage: the last usage object the held events carried (heldUsage).
	// An attempt that fails before its first token was billed the prompt
	// all the same, and counts it (Attempt.Usage), as a stream cut later
	// counts the last usage it sent.
	var usage []byte
	for {
		ev, err := a.rd.Next()
		if err != nil {
			if f := r.eventWait(bareError(pre, err, held, a.malformed), pre.buf); f != nil {
				f.httpStatus = resp.StatusCode
				a.release()
				return nil, f
			}
			if data := objectBody(pre, err, held, a.malformed, a.caller.Err() == nil); data != nil {
				// A whole chat completion labelled an event stream (a
				// relay that labels the answer by the request's
				// "stream"): known by its first byte, it is the answer,
				// read as one sent as JSON is (above). Read as events,
				// it held none, and failed over as a cut stream, asked
				// again and of the next target, each billed.
				events, ok := completionEvents(req.Path, data)
				why := ""
				if ok {
					why = ambiguousMember(data)
				}
				if !ok || why != "" {
					a.release()
					err := fmt.Errorf("stream requested, got an event stream holding a JSON object of %d bytes and no whole chat completion", len(data))
					if why != "" {
						err = fmt.Errorf("%d answer names a member two ways: %s", resp.StatusCode, why)
					}
					return nil, &failure{cause: CauseMalformed, status: http.StatusBadGateway, httpStatus: resp.StatusCode, usage: billedUsage(data), err: err}
				}
				pre.stop, pre.buf = true, nil
				a.rd.Release()
				a.rd = sse.NewReader(bytes.NewReader(events))
				continue
			}
			f := a.failFromErr(err, true)
			if f.cause == CauseConnectionLost && errors.Is(err, io.EOF) {
				f.err = fmt.Errorf("stream ended before the first token: %w", ErrConnectionLost)
			}
			a.release()
			return nil, withUsage(usage, f)
		}
		if ev.IsDone() {
			a.release()
			return nil, withUsage(usage, &failure{cause: CauseEmptyStream, status: http.StatusBadGateway, httpStatus: resp.StatusCode,
				err: errors.New("stream ended with [DONE] before the first token")})
		}
		m, bad := a.scanMalformed(ev)
		if bad {
			if a.malformed >= maxMalformed {
				a.release()
				return nil, withUsage(usage, &failure{cause: CauseMalformed, status: http.StatusBadGateway, httpStatus: resp.StatusCode,
					err: fmt.Errorf("%d malformed events before the first token", a.malformed)})
			}
			continue
		}
		if u := heldUsage(ev.Data); u != nil {
			usage = u
		}
		if f := r.eventWait(eventErrorMarked(ev, m), ev.Data); f != nil {
			f.httpStatus = resp.StatusCode
			a.release()
			return nil, withUsage(usage, f)
		}
		s := unsafeString(ev.Data)
		if tokenBearing(s) {
			pre.stop, pre.buf = true, nil
			// The answer has begun: from here each wait for the provider
			// is bounded by the idle timeout (Next).
			a.endWait()
			a.phaseKind.Store(phaseIdle)
			a.pending = true
			a.cur = ev
			if a.choices != nil {
				a.finished = a.choices.note(ev.Data)
			} else if m&markFinish != 0 {
				a.finished = true
			}
			ttft := time.Since(a.start)
			p.ttft.Observe(ttft.Seconds())
			a.sample(true, ttft)
			return a, nil
		}
		if a.choices != nil {
			a.choices.note(ev.Data) // a choice shown, not yet finished
		}
		held += len(ev.Data)
		if held > maxHeld {
			a.release()
			return nil, withUsage(usage, &failure{cause: CauseMalformed, status: http.StatusBadGateway, httpStatus: resp.StatusCode,
				err: fmt.Errorf("over %d bytes of events without a token", maxHeld)})
		}
		a.held = append(a.held, bytes.Clone(ev.Data))
	}
}

var errRoundTime = errors.New("round time spent")

// errAfter is a reader that only fails with err: the end of a body read
// whole whose connection ended early, as its stream would have ended.
type errAfter struct{ err error }

func (e errAfter) Read([]byte) (int, error) { return 0, e.err }

// prefixReader keeps, until stop (the stream's first token), what a
// stream holds from its first line that opens with "{" on, at most
// maxErrorBody bytes, for bareError. It lives in the Response. No line of
// an event opens so ("data:", ":", "event:", "id:"), so the streams that
// end well copy and allocate nothing for it, and look for such a line only
// until their first token. Keep-alives may come before it: a server that
// sends its head at once keeps the stream alive while the model works
// (comments, empty-data events) and may fail after them; kept from the
// stream's first byte on only when that was "{", such a server's refusal
// was taken for a lost connection, asked again and of the next target. So
// may a byte order mark, which the event reader strips at the stream's
// start, as the standard says: a server that writes one before its events
// writes it before a bare error too.
//
// Kept, it is kept up to max bytes when max is above maxErrorBody: a chat
// completion sent whole to a stream request and labelled an event stream,
// after keep-alive comments or none (objectBody).
type prefixReader struct {
	r       io.Reader
	buf     []byte
	stop    bool
	keep    bool // a line opening with "{" has come: buf holds it on
	started bool // the stream's first bytes (a byte order mark) are read
	midLine bool // the last byte read follows more than blanks on its line
	max     int
}

func (p *prefixReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if p.stop || n == 0 {
		return n, err
	}
	c := b[:n]
	if !p.keep {
		if !p.started {
			p.started, c = true, bytes.TrimPrefix(c, utf8BOM)
		}
		i := objectLine(c, p.midLine)
		if i < 0 {
			p.midLine = endsMidLine(c, p.midLine)
			return n, err
		}
		p.keep, c = true, c[i:]
	}
	limit := max(maxErrorBody, p.max)
	if k := min(len(c), limit-len(p.buf)); k > 0 {
		p.buf = append(p.buf, c[:k]...)
	} else {
		p.stop, p.buf = true, nil
	}
	return n, err
}

// objectLine is the index in c of the first "{" that opens a line (blanks
// before it), -1 when none does; mid tells that c[0] follows more than
// blanks on its line.
func objectLine(c []byte, mid bool) int {
	for off := 0; ; {
		j := bytes.IndexByte(c[off:], '{')
		if j < 0 {
			return -1
		}
		j += off
		k := j - 1
		for k >= 0 && (c[k] == ' ' || c[k] == '\t') {
			k--
		}
		if k < 0 && !mid || k >= 0 && (c[k] == '\n' || c[k] == '\r') {
			return j
		}
		off = j + 1
	}
}

// endsMidLine reports whether the byte after c follows more than blanks on
// its line; mid is that of c[0].
func endsMidLine(c []byte, mid bool) bool {
	k := len(c) - 1
	for k >= 0 && (c[k] == ' ' || c[k] == '\t') {
		k--
	}
	if k < 0 {
		return mid
	}
	return c[k] != '\n' && c[k] != '\r'
}

// bareError is the failure of an event stream whose body is an error
// object written without "data:", as some servers do when the request
// fails after they sent an event stream's head (go-openai reads such a
// line as the error for this reason): the event reader skips it as no
// field, and the stream ended without an event was taken for a lost
// connection, retried and sent on, a content filter's refusal included,
// the provider's reason lost. Only a stream that ended (err, io.EOF)
// with no event but keep-alives (prefixReader), its bytes from the
// object's line on kept whole, is read so.
func bareError(pre *prefixReader, err error, held, malformed int) *failure {
	if !errors.Is(err, io.EOF) || held > 0 || malformed > 0 || pre.stop {
		return nil
	}
	return bareErrorIn(pre.buf)
}

// objectBody is the JSON object a stream's bytes are, blanks around it
// and keep-alive comments before it, when the stream ended (err io.EOF)
// with no event read (no event held nor malformed) and prefixReader kept
// all of the object; nil otherwise. A stream whose framing was cut (err
// io.ErrUnexpectedEOF), or, its caller still there (alive), whose
// connection was reset or went silent past a timeout after a whole chat
// completion has it too, as a JSON body so ended has (wholeAnswer).
func objectBody(pre *prefixReader, err error, held, malformed int, alive bool) []byte {
	cut := errors.Is(err, io.ErrUnexpectedEOF) || err != nil && !errors.Is(err, io.EOF) && alive
	if !errors.Is(err, io.EOF) && !cut || held > 0 || malformed > 0 || pre.stop || !pre.keep {
		return nil
	}
	data := bytes.TrimSpace(pre.buf)
	if !isJSONObject(data) || cut && !hasChoices(data) {
		return nil
	}
	return data
}

// bareErrorIn is the failure of a stream's bytes that are one error
// object, whitespace around it (a byte order mark before it); nil for
// anything else.
func bareErrorIn(b []byte) *failure {
	return errorObject(bytes.TrimSpace(bytes.TrimPrefix(b, utf8BOM)))
}

// utf8BOM is the byte order mark a stream may start with (prefixReader).
var utf8BOM = []byte("\ufeff")

// failFromErr names the cause of a transport or read error from what ended
// the attempt's context; afterHeaders tells a reset from a cut.
func (a *Response) failFromErr(err error, afterHeaders bool) *failure {
	f := &failure{err: err, httpStatus: a.StatusCode}
	if a.caller.Err() != nil {
		f.cause, f.canceled, f.err = CauseCanceled, true, context.Cause(a.caller)
		return f
	}
	switch c := a.ctx.cause(); {
	case errors.Is(c, ErrFirstByteTimeout):
		f.cause, f.status, f.err = CauseFirstByteTimeout, http.StatusGatewayTimeout, c
	case errors.Is(c, ErrFirstTokenTimeout):
		f.cause, f.status, f.err = CauseFirstTokenTimeout, http.StatusGatewayTimeout, c
	case errors.Is(c, ErrIdleTimeout):
		f.cause, f.status, f.err = CauseIdleTimeout, http.StatusGatewayTimeout, c
	case errors.Is(c, ErrTotalTimeout):
		f.cause, f.status, f.err = CauseTotalTimeout, http.StatusGatewayTimeout, c
	case errors.Is(c, errRoundTime):
		f.cause, f.status, f.err = CauseRoundTime, http.StatusGatewayTimeout, c
	case errors.Is(err, errBodyTooLarge):
		f.cause, f.status = CauseResponseTooLarge, http.StatusBadGateway
	case errors.Is(err, sse.ErrTooLarge), errors.Is(err, errBadEncoding):
		f.cause, f.status = CauseMalformed, http.StatusBadGateway
	case afterHeaders:
		f.cause, f.status = CauseConnectionLost, http.StatusBadGateway
	case errors.Is(err, errProxyAuth):
		// The proxy's 407 to CONNECT: as its 407 over plain http is.
		f.cause, f.status, f.httpStatus = CauseMisconfigured, http.StatusBadGateway, http.StatusProxyAuthRequired
	case isTimeout(err):
		f.cause, f.status = CauseConnectTimeout, http.StatusGatewayTimeout
	default:
		f.cause, f.status = CauseConnect, http.StatusBadGateway
		f.reusedLost = errors.Is(err, h1.ErrReusedConnLost)
	}
	return f
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

var errBodyTooLarge = errors.New("response body too large")

// readBody reads a whole non-stream body, each read bounded by the idle
// timeout and all of it by the total timeout. A body with a
// Content-Encoding is decoded (decoder), limit bounding what it decodes to.
// A read error comes with what was read before it (wholeAnswer).
func (a *Response) readBody(limit int64) ([]byte, error) {
	n := 4 << 10
	if cl := a.length; cl > 0 && cl <= limit {
		n = int(cl) + 1
	}
	var src io.Reader = a.body
	if ce := a.Header["Content-Encoding"]; len(ce) > 0 {
		a.waitIdle() // a decoder reads its header at once
		d, err := decoder(a.body, ce)
		if err != nil {
			return nil, err
		}
		if d != nil {
			src = d
			a.Header.Del("Content-Encoding") // Body is the decoded content
			if cl := a.length; cl >= 0 && cl < limit {
				n = min(4*int(cl)+1, int(limit)+1)
			}
		}
	}
	buf := make([]byte, 0, n)
	for {
		a.waitIdle()
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		m, err := src.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if int64(len(buf)) > limit {
			return nil, fmt.Errorf("%w: over %d bytes", errBodyTooLarge, limit)
		}
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// wholeAnswer reports whether data, the body of a non-stream answer to
// path whose connection ended early, is the whole answer all the same: one
// valid JSON object, which nothing may follow but white space, and for a
// chat completion one with its choices; on a forwarded path a JSON array
// too, which is an answer there as it is when its framing is whole.
// Truncated JSON is never valid, so a body cut inside the answer still
// fails over.
func wholeAnswer(path string, data []byte) bool {
	if isChatPath(path) {
		return isJSONObject(data) && hasChoices(data)
	}
	return isJSONObject(data) || isJSONArray(data)
}

// cutPlain bounds the text of a failure read from a body that is no error
// JSON (readErrorFields keeps it whole): masked, then cut to
// maxPlainErrorText, so that a key across the cut is never half shown.
func (r *Router) cutPlain(f *failure) {
	if f.plain {
		f.errMsg = r.errText.cut(f.errMsg, maxPlainErrorText)
	}
}

// hasChoices reports whether data, a JSON object, holds a non-empty
// choices array: what makes it a chat completion.
func hasChoices(data []byte) bool {
	return gjson.GetBytes(data, "choices.#").Int() > 0
}

// ownErrorText is what a provider's error in a shape of its own says, for
// the attempt's error (and so the log): the first string among the members
// such bodies use (Qianfan's error_msg, msg, message, error), masked and
// then cut short (errText: a key cut first would reach the log as its first
// bytes, which the log's masking no longer knows), as ": provider says %q";
// "" when there is none. The body itself is never logged.
func (r *Router) ownErrorText(data []byte) string {
	for _, v := range gjson.GetManyBytes(data, "error_msg", "msg", "message", "error", "error.message") {
		if v.Type == gjson.String && v.Str != "" {
			return fmt.Sprintf(": provider says %q", r.errText.cut(v.Str, maxPlainErrorText))
		}
	}
	return ""
}

// wantsJSONObject reports whether a non-stream 2xx answer to req is an
// answer only when it is a JSON object: a chat completion's always, any
// other's when its Content-Type says JSON. Other answers (audio, a file's
// content) are passed on as they are, and so are the bodiless ones (a HEAD,
// 204, 205) on other paths, where a DELETE may well answer so. A chat
// completion answered with any 2xx but a JSON object (a 204, a 202 that
// queued it, a 206) has no answer in it: it fails over as malformed, never
// reaching the bot as an empty success. A stored file's content
// (fileContent) is no API answer whatever its type: a .json file a
// provider labels application/json is what was stored, a top-level array
// or JSON Lines too, and a stored log's "error" member is no error of the
// call. Read as an answer, such a file was never downloaded (a 502 after
// the next target's 404) and each try went against the provider's breaker:
// an "insufficient_quota" in it took the provider out of service.
func wantsJSONObject(req *Request, resp *http.Response) bool {
	switch {
	case req.Method == http.MethodHead:
		return false
	case isChatPath(req.Path):
		return true
	case resp.StatusCode == http.StatusNoContent, resp.StatusCode == http.StatusResetContent, fileContent(req):
		return false
	}
	return isJSONType(resp.Header.Get("Content-Type"))
}

// isChatPath reports whether path (below the base URL, with its query) is
// the chat completions endpoint. An attempt asks it about seven times, so
// it compares in place rather than cutting the query off first.
func isChatPath(path string) bool {
	const chat = "/chat/completions"
	return strings.HasPrefix(path, chat) && (len(path) == len(chat) || path[len(chat)] == '?')
}

// isJSONType reports a JSON media type: application/json or a +json one.
func isJSONType(ct string) bool {
	if strings.EqualFold(ct, "application/json") || strings.EqualFold(ct, "application/json; charset=utf-8") {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// fileContent reports a download of a stored file's bytes, a GET of a
// path ending in /content (/files/{id}/content, a code interpreter
// container's /containers/{id}/files/{id}/content, /videos/{id}/content):
// the answer is whatever was stored, and an HTML file its provider labels
// text/html is the answer, not a CDN's page. Refused, such a file could
// never be downloaded, and each try counted against the provider's
// breaker, which opened for every bot's chat.
func fileContent(req *Request) bool {
	return req.Method == http.MethodGet && strings.HasSuffix(pathOnly(req.Path), "/content")
}

// isHTMLType reports an HTML media type: text/html or application/xhtml+xml.
func isHTMLType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "text/html" || mt == "application/xhtml+xml")
}

// isJSONObject reports whether data is one valid JSON value, an object.
func isJSONObject(data []byte) bool {
	i := skipSpace(data, 0)
	return i < len(data) && data[i] == '{' && validJSON(unsafeString(data))
}

// isJSONArray reports whether data is one valid JSON value, an array.
func isJSONArray(data []byte) bool {
	i := skipSpace(data, 0)
	return i < len(data) && data[i] == '[' && validJSON(unsafeString(data))
}

// maxNesting is how deeply a provider's answer or event may nest its
// arrays and objects and still be JSON to paygate. No answer comes near
// it; a deeper one is malformed.
const maxNesting = 1000

// validJSON is gjson.Valid for a provider's bytes, refusing first, with
// jsonstr.NestedOver, what nests deeper than maxNesting: gjson's
// validation recurses once per level, so a 2 MB answer of brackets took
// 128 MB of stack, and one of MaxResponseBytes (32 MiB) passed the
// runtime's 1 GB stack limit, a fatal error that ended the process. A
// stream's events are validated by scanEvent, and a non-stream chat
// completion by scanAnswer, which are validJSON and count the levels on
// their one pass.
func validJSON(s string) bool {
	return !jsonstr.NestedOver(s, maxNesting) && gjson.Valid(s)
}

func readAtMost(r io.Reader, n int64) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r, n))
}

// readErrorBody reads the content of a non-2xx answer's body for its
// reason, at most maxErrorBody bytes of it, decoded as its
// Content-Encoding says (decoder): a server or CDN that gzips answers
// unasked gzips its errors too, and read raw, a gzipped 400
// context_length_exceeded was classified as an unreadable 400 (the round
// ended where the next, larger target would have answered) and its gzip
// bytes became the client's message. The bound is on decoded bytes, so a
// small body that decodes to a huge one costs no more than a plain one.
// What the body decodes to before a decoding error is kept; a coding
// paygate does not decode, or bytes that do not start as their coding
// says, leave no body at all: the status alone classifies the answer, and
// the client is never shown the encoded bytes. cut tells that the body
// filled the bound, or its reading failed before it, and what was read is
// no whole JSON document: its JSON is cut (tooLargeReason).
func readErrorBody(body io.Reader, h http.Header) (data []byte, cut bool) {
	src := body
	if ce := h["Content-Encoding"]; len(ce) > 0 {
		d, err := decoder(body, ce)
		if err != nil {
			return nil, false
		}
		if d != nil {
			src = d
		}
	}
	data, err := readAtMost(src, maxErrorBody)
	// No byte past the bound is asked for: a provider that sent exactly
	// the bound and stalled held the turn for the idle timeout (30s by
	// default) on that read. A whole JSON document ends where it ends.
	// A body whose reading failed before the bound (a gzip stream or a
	// body that ended early: a relay that closed mid-answer) is as cut:
	// its text was shown, the echo it quoted with it.
	cut = (err != nil || len(data) == maxErrorBody) && len(data) > 0 && !validJSON(unsafeString(data))
	return data, cut
}

// tooLargeReason settles the reason of an error answer cut at maxErrorBody
// (a validation error echoing the whole request, as pydantic's "input"
// members, vLLM and LiteLLM send; a context-length error quoting the
// prompt): the members read before the cut are kept (gjson answers for
// them on the cut document), and a reason past the cut is said to be so,
// with the answer's size (Content-Length; else "over 64 KiB") and status,
// where the bot got paygate's bare "refused the request" and the log no
// reason. A cut JSON body is never shown as text: its first bytes are
// the echoed request. The cause is classifyHTTP's, as for an unreadable
// body of any size.
func tooLargeReason(f *failure, data []byte, length int64, status int) {
	if f.redirect || f.toTLS {
		return
	}
	if f.plain {
		// A UTF-8 byte order mark may stand before the document (a .NET
		// or Windows-made relay's): its echo was shown past it.
		i := 0
		if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
			i = 3
		}
		if i = skipSpace(data, i); i < len(data) && (data[i] == '{' || data[i] == '[') {
			f.plain, f.errMsg = false, ""
		}
	}
	if f.errMsg != "" {
		return
	}
	if len(data) < maxErrorBody {
		f.errMsg = fmt.Sprintf("the provider's error answer ended before its reason could be read (HTTP %d)", status)
		return
	}
	size := fmt.Sprintf("over %d bytes", maxErrorBody)
	if length > maxErrorBody {
		size = fmt.Sprintf("%d bytes", length)
	}
	f.errMsg = fmt.Sprintf("the provider's error answer (%s) was too large to read its reason (HTTP %d)", size, status)
}

func isEventStream(h http.Header) bool {
	ct := h.Get("Content-Type")
	// The values providers send are known without mime.ParseMediaType's
	// map of parameters.
	if strings.EqualFold(ct, "text/event-stream") || strings.EqualFold(ct, "text/event-stream; charset=utf-8") {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "text/event-stream"
}

// unsafeString views b as a string without copying, for gjson lookups whose
// results do not outlive b.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// errBadEncoding marks a body paygate could not decode: a Content-Encoding
// it does not know, or bytes that are not what the encoding says.
var errBadEncoding = errors.New("undecodable Content-Encoding")

// decoder returns a reader of the content of body, sent with the
// Content-Encoding values ce (codings applied in order, so undone last
// first): nil when they are all identity. It knows gzip (x-gzip) and
// deflate (zlib or raw, newDeflateReader); any other coding (br, zstd) is
// errBadEncoding. paygate asks no provider for an encoding (it sends no
// Accept-Encoding), so such an answer comes from a misconfigured server or
// CDN, and an answer read whole must be read (an error object, a forged
// paygate member), not passed on as it came; so must an error answer's
// reason (readErrorBody). A gzip or zlib header is read at
// once, from body; so are deflate's first two bytes.
func decoder(body io.Reader, ce []string) (io.Reader, error) {
	var codings []string
	for _, v := range ce {
		for c := range strings.SplitSeq(v, ",") {
			if c = strings.ToLower(strings.TrimSpace(c)); c != "" && c != "identity" {
				codings = append(codings, c)
			}
		}
	}
	if len(codings) == 0 {
		return nil, nil
	}
	r := body
	for i := len(codings) - 1; i >= 0; i-- {
		var err error
		switch codings[i] {
		case "gzip", "x-gzip":
			r, err = gzip.NewReader(r)
		case "deflate":
			r, err = newDeflateReader(r)
		default:
			return nil, fmt.Errorf("%w: %q is not one paygate decodes", errBadEncoding, codings[i])
		}
		if err != nil {
			return nil, decodeErr(err)
		}
	}
	return decodeReader{r}, nil
}

// newDeflateReader reads the content of a body sent as "deflate", which RFC
// 9110 says is the zlib format (RFC 1950) but which many servers (IIS, some
// CDNs and frameworks) send as raw DEFLATE (RFC 1951), without the zlib
// header and checksum; browsers and curl accept both. The first two bytes
// tell them apart: a zlib header's CMF names compression method 8 with a
// window of at most 32 KiB (CINFO up to 7), and CMF*256+FLG is a multiple
// of 31. Anything else is read as raw DEFLATE; decoded only as zlib, such a
// server failed every JSON answer as malformed, against its breaker. (Raw
// DEFLATE passes the check only by chance, 1 in 31 of its rare streams
// that begin with a non-final stored block; such a body is then a
// malformed answer.)
func newDeflateReader(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r) // a ByteReader, which flate reads without buffering it again
	h, err := br.Peek(2)
	if err != nil {
		return nil, err
	}
	if cmf, flg := h[0], h[1]; cmf&0x0f == 8 && cmf>>4 <= 7 && (uint16(cmf)<<8|uint16(flg))%31 == 0 {
		return zlib.NewReader(br)
	}
	return flate.NewReader(br), nil
}

// decodeReader marks its decoder's complaints about the bytes as
// errBadEncoding; the connection's errors pass as they are.
type decodeReader struct{ r io.Reader }

func (d decodeReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF {
		err = decodeErr(err)
	}
	return n, err
}

// streamDecoder reads a decoded event stream: a stream that ends inside
// its coding's frame was cut, like one that ends between events, which
// recovery may take on; decodeReader calls a body that ends early
// undecodable, which for a body read whole it is.
type streamDecoder struct{ d decodeReader }

func (s streamDecoder) Read(p []byte) (int, error) {
	n, err := s.d.r.Read(p)
	if err != nil && err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) {
		err = decodeErr(err)
	}
	return n, err
}

func decodeErr(err error) error {
	var corrupt flate.CorruptInputError
	if errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, zlib.ErrHeader) ||
		errors.Is(err, zlib.ErrChecksum) || errors.Is(err, zlib.ErrDictionary) || errors.As(err, &corrupt) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %w", errBadEncoding, err)
	}
	return err
}

// decodedStream is an event stream's body to read events from: decoded
// when it came with a Content-Encoding (a server or CDN that compresses
// unasked compresses streams too, gzip's flushes keeping it incremental;
// read raw, every attempt failed as a lost connection), its header then
// dropped, since the events are the decoded content. The decoder reads the
// coding's header now, within the first-token timeout; a coding it cannot
// read fails the attempt (released).
func (a *Response) decodedStream(resp *http.Response) (io.Reader, *failure) {
	ce := resp.Header["Content-Encoding"]
	if len(ce) == 0 {
		return resp.Body, nil
	}
	d, err := decoder(resp.Body, ce)
	if err != nil {
		f := a.failFromErr(err, true)
		a.release()
		return nil, f
	}
	if d == nil {
		return resp.Body, nil
	}
	resp.Header.Del("Content-Encoding")
	a.length = -1 // the declared length is of the coded bytes
	return streamDecoder{d.(decodeReader)}, nil
}

// heldUsage is the usage counts (usageCounts) of an event held before the
// first token: its top-level usage, else its first choice's (Moonshot's
// place for it); nil when it has none. The include_usage chunk of a stream
// that ends without a token, or a running usage on a role chunk (vLLM's
// continuous_usage_stats), names the prompt the provider billed.
func heldUsage(data []byte) []byte {
	if !bytes.Contains(data, usageName) {
		return nil
	}
	u := gjson.GetBytes(data, "usage")
	if !u.IsObject() {
		if u.Exists() && bytes.Count(data, usageName) < 2 {
			return nil // "usage":null, as include_usage has it on every chunk but the last
		}
		u = gjson.GetBytes(data, "choices.0.usage")
	}
	if !u.IsObject() {
		return nil
	}
	if c := usageCounts(u, jsonscan.UsageCounts); c != "{}" {
		return []byte(c)
	}
	return nil
}

// errorUsage is the usage object of a 2xx error envelope (an error and no
// object or id, as OpenRouter sends once the model has started), or of a
// forwarded stream's first event that is an error: the provider's count of
// the work it did before it failed (Attempt.Usage), the member a client
// reads (jsonscan.SetMember), its counts under the chat or the Responses
// API's names, as the proxy reads them. Left out, a provider that failed
// so, billed and asked again, was in no figure of the ledger. nil when it
// has none.
func errorUsage(data []byte) []byte {
	if u, _ := jsonscan.SetMember(unsafeString(data), "usage"); u.IsObject() {
		return []byte(u.Raw)
	}
	return nil
}

// withUsage is f, with usage as its Attempt.Usage unless it names one.
func withUsage(usage []byte, f *failure) *failure {
	if f.usage == nil {
		f.usage = usage
	}
	return f
}

// streamedUsage is the usage object of data, a 2xx answer read whole
// that is an event stream (eventsBody) refused as malformed, which the
// provider billed all the same (Attempt.Usage): its last data line's that
// has one, at the top level (a legacy completion's include_usage chunk)
// or in its "response" (the Responses API's response.completed,
// incomplete or failed), under either API's names, as the proxy reads a
// forwarded stream's (its usageTail). nil for another answer, or without
// one.
func streamedUsage(data []byte) []byte {
	if !eventsBody(data) || !bytes.Contains(data, usageName) {
		return nil
	}
	var last []byte
	for rest := data; len(rest) > 0; {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
		v, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r"), []byte("data:"))
		if !ok || !bytes.Contains(v, usageName) {
			continue
		}
		u := gjson.GetBytes(v, "usage")
		if !u.IsObject() {
			u = gjson.GetBytes(v, "response.usage")
		}
		if u.IsObject() {
			last = []byte(u.Raw)
		}
	}
	return last
}

// usageName is a usage member's key, as heldUsage looks for it.
var usageName = []byte(`"usage"`)

// billedUsage is the usage object of a 2xx answer refused as malformed,
// which the provider billed all the same (Attempt.Usage), as the ledger
// reads an answer's: its counts named once each, the first copy
// (usageCounts); nil when it has none or none of them.
func billedUsage(data []byte) []byte {
	u := gjson.GetBytes(data, "usage")
	if !u.IsObject() {
		return nil
	}
	if c := usageCounts(u, jsonscan.UsageCounts); c != "{}" {
		return []byte(c)
	}
	return nil
}
