package failover

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/paygate/paygate/internal/jsonscan"
	"github.com/paygate/paygate/sse"
)

// NameJudge tells a tool call's name given in pieces from a name of its
// own (Request.Names).
type NameJudge interface {
	NameGoesOn(name, piece string) bool
}

// Request is one round's request, already rewritten by the proxy.
type Request struct {
	// Model is the public model name; "" means the first configured model
	// (non-chat paths without a model).
	Model string
	// Method is the HTTP method; "" means POST.
	Method string
	// Path follows the provider's base_url and includes the raw query, e.g.
	// "/chat/completions".
	Path string
	// Body is sent with "model" set to each target's upstream name (when
	// Model names one: a forwarded call that names none goes as sent), the
	// target provider's drop_fields deleted and, for a first_only provider,
	// System moved first; on the chat path the conversation is also
	// adapted to the target's family (adaptMessages: Mistral's tool call
	// ids and assistant members, its API without stream_options, another
	// model's thinking blocks as text, a lone refusal as the content,
	// DeepSeek's reasoning_content on tool rounds) and Continuation is
	// appended as its provider takes it. Nothing else changes. Open never
	// modifies Body itself.
	Body []byte
	// Stream marks a chat stream: Open returns only after the first
	// token-bearing event was read and is not an error.
	Stream bool
	// ContentType and Accept are the only client headers forwarded.
	ContentType, Accept string
	// SameUpstreamModel restricts failover to targets serving the same
	// upstream model as the model's first target (embeddings: vectors of two
	// models never mix).
	SameUpstreamModel bool
	// AtMostOnce marks a request that no provider may get twice once one
	// may have acted on it: a forwarded POST that creates something (a
	// file, an upload, a batch, a fine-tuning job, an assistant, a thread,
	// a vector store, a background Response). Replayable says which
	// forwarded calls may be sent again; the zero value keeps SPEC 5's
	// failover, which every generation (chat completions above all) gets.
	//
	// Such a request moves on, to the same target again or the next, only
	// after a failure that shows the provider did not act on it: nothing
	// of it was sent (a dial or TLS error), or the provider refused it (a
	// 4xx such as 429, or 503 or 529). A 5xx other than those, a 2xx that
	// is no answer, a timeout or a connection lost once it was written
	// ends the round with that cause (502 or 504), its message saying
	// that nothing else was tried; and its wait for a head is not cut at
	// a share of the round's time (Router.nonStreamWait). This departs
	// from SPEC 5, which gives forwarded paths the chat path's failover:
	// sent again, a creation the provider had performed before its
	// gateway failed was made twice, on one account or two, each billed,
	// and the bot knew of one. An error the bot can check for is the
	// lesser harm.
	AtMostOnce bool
	// ExcludeProviders names providers the round must not try: a stream
	// recovery never goes back to the provider that just broke it.
	ExcludeProviders []string
	// ExcludeTargets names targets the round must not try, by provider and
	// upstream model: a turn's later rounds, whose conversation only
	// grew, do not go back to a target that refused an earlier round's
	// for its length (SPEC 5: context_length_exceeded, never the same
	// target again). The round's other targets of that provider stay; a
	// round that would have none left asks them anyway, so the client
	// gets their own reason rather than a 503 for no target, and so does
	// one whose other targets all say the model does not exist: the
	// client gets the refusal of the length, not a 404 for a model they
	// serve.
	ExcludeTargets []TargetName
	// Names, when set, tells whether piece, a tool call's name that a
	// later fragment gives under the index or id of a call named name
	// whose arguments have not started, is the next piece of that name,
	// in events answering a non-stream request (streamedCompletion): as
	// the caller's stream capture joins it, which knows the tool names
	// failover does not. nil: any other name there is a piece. An
	// interface, not a func, so a caller can hand itself and build what
	// it judges by only when such an answer comes (rarely): a func value
	// bound to the caller costs every request an allocation.
	Names NameJudge
	// Choices is the chat request's "n" when above 1: such a stream is
	// whole only when every choice it showed has finished (choiceSet).
	Choices int
	// Continuation, when set, asks for the rest of an answer whose
	// beginning the client already received (a stream cut after its first
	// byte). Each target gets it as its provider's continuation mode says:
	// prefill, prefix_flag and partial_flag append it as a trailing
	// assistant message (with "prefix": true or "partial": true) and the
	// model continues it; none
	// sends Body unchanged, and the caller must skip the fresh answer's
	// already-sent beginning. Response.Continued tells which happened.
	Continuation *Continuation
	// Affinity, when set, names the conversation the request belongs to:
	// under the weighted strategy its rounds and turns draw one order of
	// the targets, in proportion to weight over conversations, so that
	// they reach the provider whose prompt cache holds its prefix. Zero:
	// drawn anew.
	Affinity Affinity
	// System, when set, is a system message the caller inserted into the
	// conversation (paygate's payment state, SPEC 3 step 3, just before
	// the last user message). A target whose provider takes system
	// messages only first (system_messages: first_only) gets it moved into
	// the leading message (moveSystemFirst); every other target gets Body's
	// placement. The caller keeps it where it is in every round: later
	// rounds only append messages.
	System *SystemMessage
	// ToolsTail, when above 0, is how many bytes at Body's end are a
	// "tools" member the caller appended as Body's last (with its comma)
	// and what follows it (the closing brace): paygate's payment tools,
	// about 1,300 bytes a turn. The checks of every target for a message
	// to adapt (adaptMessages: an assistant's refusal, a thinking block)
	// search Body without them, where their "refund"s and "function"s cost
	// a search for "refusal" about 3,500 instructions a turn; no message
	// is there. Only a tail that begins with `,"tools":` is left out, and
	// none for a provider with drop_fields, whose deletions may move it.
	// The caller names it only while Body still ends with those bytes:
	// a later round's messages go before them, but a member set anew
	// (the clarification round's tool_choice) lands after them.
	ToolsTail int
}

// Affinity names a conversation (Request.Affinity): its client, its end
// user and its session. Held as the caller's strings, it costs a request
// of another strategy nothing.
type Affinity struct {
	Client, User, Session string
}

// TargetName names one target of a model: its provider's config name and
// its upstream model, as Attempt names them.
type TargetName struct {
	Provider, Model string
}

// SystemMessage is the system message a Request's caller inserted:
// messages[Index] of Body, {"role":"system","content":Text}.
type SystemMessage struct {
	Index int
	Text  string
}

// Continuation is the text of an answer the client already received.
type Continuation struct {
	Text string
}

// Response is the answer of the target that succeeded. For a stream, the
// connection stays open until Close. Next and Close belong to one goroutine
// (the one serving the client); to abort from elsewhere, cancel the context
// given to Open.
type Response struct {
	// Provider is the config name of the provider that answered.
	Provider string
	// Model is the target's upstream model name.
	Model string
	// Attempts counts attempts in the round, the successful one included.
	Attempts int
	// StatusCode and Header are the upstream's; the proxy filters headers.
	StatusCode int
	Header     http.Header
	// Body is a non-stream answer's whole body; nil for a stream and for
	// a piped answer (Piped), whose body Read delivers.
	Body []byte
	// Spans is where the members of a non-stream chat completion's Body
	// that interceptors.ReadAnswer reads lie, as the answer's validating
	// pass found them (scanAnswer), for interceptors.ReadAnswerAt to read
	// without a walk of its own; not OK for any other Body. They describe
	// Body as it came: ReadAnswerAt walks a Body cut or put in its place
	// (AnswerSpans.Of); a caller that changes its bytes in place must not
	// use them.
	Spans jsonscan.AnswerSpans
	// Tried lists the round's attempts, the successful one last.
	Tried []Attempt
	// tried0 holds Tried of a round its first attempt answered, most
	// rounds: no slice of its own on the heap (tryTarget).
	tried0 [1]Attempt
	// Continued reports that the request carried Request.Continuation as an
	// assistant prefill the model continued: the stream holds only the
	// rest of the answer. False for a fresh answer (continuation none, no
	// continuation asked, or a target that refused the prefill and was
	// asked again without it).
	Continued bool

	r         *Router
	t         *target
	caller    context.Context
	ctx       attemptCtx // the attempt's: ends with the caller's, or early (a timeout, release)
	deadlines            // the attempt's timeouts, on one lazily re-armed timer

	body      io.ReadCloser
	length    int64 // Content-Length; -1 unknown
	rd        *sse.Reader
	pre       prefixReader // what rd reads before the first token, for bareError
	held      [][]byte     // non-token events read before the first token
	heldNext  int
	pending   bool       // cur (the first token event) not yet returned
	peeked    bool       // cur is the next event, read by Buffered: [DONE] or valid JSON, not yet checked further
	marks     eventMarks // a peeked cur's, from scanEvent
	noError   bool       // the event Next returned last is known to have no `"error"` (EventMayHoldError)
	oneLine   bool       // the event Next returned last is known to hold no CR or LF (EventOneLine)
	cur       sse.Event  // aliases rd's buffer; cleared once Next returns it
	finished  bool       // a finish_reason was seen (of every choice shown, with choices)
	choices   *choiceSet
	malformed int
	lost      int   // malformed events skipped before the answer finished (Skipped)
	lateLost  int   // those skipped after it (SkippedAfterFinish)
	end       error // sticky terminal result of Next (of Read, piped)
	piped     bool  // a passthrough answer returned at its head (Read)
	events    bool  // piped, an event stream held to its first event (pipeEvents)
	endsWhole bool  // the caller has the whole piped answer so far (EndsWhole)
	cutAfter  error // the body's error that came with its last bytes, for the next Read
	endCut    error // what ended a whole stream other than its end (CutAfterFinish)
	// breakerDone reports a stream's outcome to its provider's breaker,
	// once, when the stream ends (finish, Close): a provider that cuts
	// every stream after its first token must count as failing, not as a
	// success at the first token and a failure at the cut, which never add
	// up to the consecutive failures that trip it.
	breakerDone func(error)
	measure     bool // the request is a generation: its times are latency samples (generation)
	// spent is what the round spent on the target before this attempt
	// (its failed attempts, the waits before their retries), added to
	// the attempt's latency sample: the bot waited through it too.
	spent    time.Duration
	released bool
	closed   bool
	stream   bool
	// probe marks a stream that was its provider's half-open probe. Its
	// success is reported (through breakerDone) at its first event after
	// the first token, when the answer shows it flows (closing the
	// breaker, so that other rounds need not wait for the end of a long
	// answer), or at its end when that comes first; a failure at its end
	// after that is the probe's failure after all, and opens the breaker
	// again at once, as a probe failing before its first token does. A
	// provider that cuts every stream is thus never closed for longer than
	// its probe's stream, and one that stalls after the first token not
	// at all. A piped event stream's probe (events) flows at the first
	// bytes the provider sends after its first event (Read).
	probe bool
	// probeGen is the provider's breakerGen when the probe was let out.
	probeGen uint32
}

// reportBreaker gives the stream's outcome to the breaker, once.
func (a *Response) reportBreaker(err error) {
	if a.breakerDone != nil {
		done := a.breakerDone
		a.breakerDone = nil
		a.t.p.report(&a.ctx, done, err)
		return
	}
	if a.probe {
		a.probe = false
		if err != nil && !errors.Is(err, errNeutral) {
			a.t.p.probeFailed(&a.ctx, a.probeGen)
		}
	}
}

// Next returns the stream's next event: held events first, then events as
// they arrive, each within the idle timeout and all within the total
// timeout. Comment lines are never returned; a malformed event (not JSON,
// not [DONE]) is skipped and logged: the data of every event returned is
// valid JSON as gjson.Valid reads it (scanEvent), which a reader of it
// need not check again (interceptors.Capture.ProcessValid). Next returns io.EOF after an event with
// a finish_reason, at [DONE] or when the connection ends; any other end
// ([DONE] or the connection's end before a finish_reason) is a
// *StreamError. An error object in the stream (an event named "error"
// too: eventError), or a choice that finishes with "error" (OpenRouter),
// ends it as a *StreamError classified as the
// same error before the first byte would be (StreamError.Class); after the
// answer's finish (whole) it is logged and the stream ends as io.EOF, as
// it does at the maxMalformed-th malformed event. Event.Data is valid until the next call of Next or
// Buffered. For a non-stream
// Response, Next returns io.EOF. The time between a return of Next and
// the next call is the caller's (it passes the event on, at its client's
// pace: a slow bot blocks its writes, and the provider's with them), which
// the total timeout does not count (deadlines.pause): it bounds the
// provider's answer, and a bot that stops reading is its server's to cut.
func (a *Response) Next() (sse.Event, error) {
	// now is the attempt's elapsed time as last read: at the call, then
	// after each wait for the provider; the pause starts at it.
	now := a.resume()
	defer func() { a.pauseAt(now) }()
	a.noError, a.oneLine = false, false // known only of an event returned
	if a.end != nil {
		return sse.Event{}, a.end
	}
	if a.rd == nil {
		return sse.Event{}, io.EOF
	}
	if a.heldNext < len(a.held) {
		d := a.held[a.heldNext]
		a.heldNext++
		return sse.Event{Data: d}, nil
	}
	if a.pending {
		// Let go of it once returned: a picture that opens the answer
		// (tens of MiB) was held until a later read ahead replaced it,
		// possibly to the stream's end.
		ev := a.cur
		a.pending, a.cur = false, sse.Event{}
		return ev, nil
	}
	// idleAt is the idle wait a heartbeat (blankData) came in: like a
	// comment, it does not end the wait, or a provider sending nothing
	// else held the stream until the total timeout.
	var idleAt int64
	for {
		// The idle timeout guards only a wait for the provider: an event
		// already whole in the buffer (a burst read at once) comes without
		// one.
		var ev sse.Event
		var err error
		var m eventMarks
		peeked := a.peeked
		switch {
		case peeked:
			ev, m, a.peeked = a.cur, a.marks, false
			a.cur = sse.Event{}
		case a.rd.Buffered():
			ev, err = a.rd.Next()
		default:
			if idleAt > 0 {
				// The last event was a heartbeat: the wait goes on, to
				// the deadline it had (the timer, re-armed meanwhile,
				// may be due later: setPhaseAt moves it back).
				a.setPhaseAt(phaseIdle, time.Duration(idleAt))
			} else {
				a.waitIdleAt(now)
			}
			idleAt = a.waitAt.Load()
			ev, err = a.rd.Next()
			a.endWait()
			now = time.Since(a.start)
		}
		if err != nil {
			return sse.Event{}, a.finish(a.streamEnd(err))
		}
		if ev.IsDone() {
			if !a.finished {
				// A relay (one-api, new-api) ends a stream its upstream
				// broke with [DONE]: the model never said it was done,
				// so a tool call may be cut and a held payment call must
				// not run. It is a cut like any other (recovery may take
				// the round on).
				return sse.Event{}, a.finish(&StreamError{Provider: a.Provider, Cause: CauseConnectionLost, Err: errDoneBeforeFinish})
			}
			return sse.Event{}, a.finish(io.EOF)
		}
		if !peeked {
			var bad bool
			if m, bad = a.skipMalformed(ev); bad {
				if a.end != nil {
					return sse.Event{}, a.end
				}
				if !blankData(ev) {
					idleAt = 0
				}
				continue
			}
		}
		idleAt = 0
		if f := a.r.eventWait(eventErrorMarked(ev, m), ev.Data); f != nil {
			if a.whole() {
				// The answer had finished: an error after it (a relay's
				// hiccup) takes nothing from it. Ended as a cut, it was
				// recovered from another provider (a second answer,
				// billed) or reported to the bot after its answer.
				why := a.r.loggedReason(f)
				a.r.log.WarnContext(&a.ctx, "upstream error event after the stream's finish ignored", "provider", a.Provider, "target", a.Model,
					"status", f.status, "code", f.errCode, "message", why)
				a.endCut = fmt.Errorf("error event after the finish (status %d, code %q): %s", f.status, f.errCode, why)
				return sse.Event{}, a.finish(io.EOF)
			}
			// Classified as before the first byte: the caller must not ask
			// another provider to finish what a content filter stopped.
			return sse.Event{}, a.finish(&StreamError{Provider: a.Provider, Cause: CauseStreamError,
				Err:   fmt.Errorf("error event (status %d, code %q): %s", f.status, f.errCode, a.r.loggedReason(f)),
				Class: f.cause, Status: f.status, Type: f.errType, Code: f.errCode, Message: f.errMsg, Param: f.errParam, obj: f})
		}
		if a.choices != nil {
			a.finished = a.choices.note(ev.Data)
		} else if !a.finished && m&markFinish != 0 {
			a.finished = true
		}
		a.noError = m&(markErrorTail|markErrorEscape) == 0
		a.oneLine = m&markLineBreak == 0
		if a.probe && a.breakerDone != nil {
			a.reportBreaker(nil) // the probe's answer flows (Response.probe)
		}
		return ev, nil
	}
}

// EventMayHoldError reports whether the data of the event Next returned
// last may hold the string "error" in quotes (`"error"`, a key or a
// value) with a value that is not null. It is false only when the pass
// that validated the event found no string ending in "rror" (scanEvent),
// or each such string is a key whose value is null (errorTailsNull), so
// that a relay can skip its own
// search for an "error" member (interceptors.DropEmptyError) on nearly
// every chunk; an event held from before the first token, the first token
// itself, and one after a Next that returned an error report true.
func (a *Response) EventMayHoldError() bool { return !a.noError }

// EventOneLine reports whether the data of the event Next returned last is
// known to hold no raw CR or LF, so that it leaves on one "data:" line as
// it is (sse.Writer.QueueLine) with no search for line breaks: the pass
// that validated it saw none where JSON allows one (scanEvent). False
// where EventMayHoldError is true for want of that pass.
func (a *Response) EventOneLine() bool { return a.oneLine }

// scanMalformed reports whether ev is malformed (neither [DONE] nor JSON,
// nor named "error"), to be skipped, and counts and logs it (SPEC 5); the
// caller ends the stream at the maxMalformed-th. An event whose data is empty or blank is
// skipped too but neither counted nor logged: servers and relays send
// "data:" with nothing as a keep-alive while the model thinks, as others
// send comments, and counted, the third of them ended a healthy answer.
// For a valid event it returns the marks scanEvent found on the same
// pass, for eventErrorMarked (none for [DONE]).
func (a *Response) scanMalformed(ev sse.Event) (eventMarks, bool) {
	if ev.IsDone() {
		return 0, false
	}
	m, ok := scanEvent(ev.Data)
	if ok {
		if m&markErrorTail != 0 && m&markErrorEscape == 0 && errorTailsNull(ev.Data) {
			m &^= markErrorTail
		}
		return m, false
	}
	if string(ev.Name) == "error" {
		// The provider's failure in plain words ("data: Internal Server
		// Error") or none: an error whatever its data (eventError), as
		// the SDKs raise one. Skipped as malformed, the stream was read
		// on past it and a payment call the round then finished ran.
		return 0, false
	}
	if blankData(ev) {
		return 0, true
	}
	a.malformed++
	if mayHoldChunk(ev.Data) {
		if a.whole() {
			a.lateLost++
		} else {
			a.lost++
		}
	}
	a.r.log.WarnContext(&a.ctx, "upstream malformed event skipped", "provider", a.Provider, "target", a.Model, "bytes", len(ev.Data))
	return 0, true
}

// blankData reports an event whose data is empty or only whitespace: a
// keep-alive, never an answer's event. An event named "error" is none,
// whatever its data: it is an error (scanMalformed).
func blankData(ev sse.Event) bool {
	return len(bytes.TrimSpace(ev.Data)) == 0 && string(ev.Name) != "error"
}

// Skipped reports how many events of the answer were skipped as malformed
// (SPEC 5) before it finished, those before the first token included,
// that may have been a chunk: what they carried is missing from the events
// Next returned. A caller that assembles a tool call from them must not
// act on it: the pieces left can make valid arguments that are not the
// model's ({"sku":"a"} without its lost `,"quantity":2`). Blank keep-alive
// events, and those with no bracket (a word some servers send as a
// keep-alive), lose nothing and are not counted.
func (a *Response) Skipped() int { return a.lost }

// SkippedAfterFinish is Skipped for the events skipped after the answer
// finished. They take nothing from it, unless the stream goes on with a
// piece of a tool call after its finish (some relays put finish_reason on
// every chunk of a call): a caller that assembles calls checks, before it
// takes each event, whether this count grew.
func (a *Response) SkippedAfterFinish() int { return a.lateLost }

// CutAfterFinish returns what ended a stream after its answer's finish,
// which Next reports as io.EOF (whole), when it was not the stream's end:
// the connection cut, reset or silent past a timeout, an error event, or
// malformed events. Nil for a stream that ended at [DONE] or at the body's
// clean end, for one not ended yet, and for a non-stream answer. What was
// to follow the finish, the usage chunk of a stream with
// stream_options.include_usage, may never have come: a caller that finds no
// usage says so, rather than blame the provider for sending none.
func (a *Response) CutAfterFinish() error { return a.endCut }

// mayHoldChunk reports whether a malformed event's data may be a chunk,
// cut or garbled: it has an object's or array's bracket.
func mayHoldChunk(data []byte) bool { return bytes.ContainsAny(data, "{[") }

// skipMalformed is scanMalformed after the first token: the maxMalformed-th
// ends the stream (a.end), as complete once the answer had finished
// (whole).
func (a *Response) skipMalformed(ev sse.Event) (eventMarks, bool) {
	m, bad := a.scanMalformed(ev)
	if !bad {
		return m, false
	}
	if a.malformed >= maxMalformed {
		if a.whole() {
			a.endCut = fmt.Errorf("%d malformed events", a.malformed)
			a.finish(io.EOF)
		} else {
			a.finish(&StreamError{Provider: a.Provider, Cause: CauseMalformed, Err: fmt.Errorf("%d malformed events", a.malformed)})
		}
	}
	return 0, true
}

// Buffered reports whether Next can return without waiting for the
// provider: a held event, or a whole event already read off the connection.
// A relay flushes its client only when it is false, so a burst of events
// read together reaches the client in one write, and an event is never held
// back while paygate waits (SPEC 5 asks for events as they come). A
// malformed event in the buffer is skipped here, not counted as the next
// one: Next would skip it and wait, with the events queued before it
// unflushed. The next event is read ahead for that (peeked), so the event
// Next returned last is no longer valid after Buffered.
func (a *Response) Buffered() bool {
	switch {
	case a.end != nil || a.rd == nil:
		return true // Next returns at once: the stream is over or not a stream
	case a.heldNext < len(a.held) || a.pending || a.peeked:
		return true
	}
	for a.rd.Buffered() {
		ev, err := a.rd.Next()
		if err != nil {
			a.finish(a.streamEnd(err))
			return true
		}
		if m, bad := a.skipMalformed(ev); !bad {
			a.cur, a.marks, a.peeked = ev, m, true
			return true
		}
		if a.end != nil {
			return true
		}
	}
	return false
}

// Holding reports whether Next still has events held from before the first
// token to return, the first token included.
func (a *Response) Holding() bool { return a.heldNext < len(a.held) || a.pending }

// whole reports whether the answer has finished: its finish_reason came
// (every choice asked for shown and finished, with choices). Whatever ends
// the stream after that (a missing [DONE], a cut, an idle connection, an
// error event, malformed events) changes nothing: the stream is complete.
func (a *Response) whole() bool {
	return a.finished && (a.choices == nil || a.choices.allShown())
}

// streamEnd names how a stream that stopped delivering events ended.
func (a *Response) streamEnd(err error) error {
	if a.whole() {
		if !errors.Is(err, io.EOF) {
			a.endCut = err // cut, reset or silent after the finish
		}
		return io.EOF
	}
	f := a.failFromErr(err, true)
	if f.cause == CauseConnectionLost && errors.Is(err, io.EOF) {
		f.err = ErrConnectionLost
	}
	return &StreamError{Provider: a.Provider, Cause: f.cause, Err: f.err}
}

// finish records a stream's end once: metrics, and a breaker failure when
// the provider broke the stream.
func (a *Response) finish(err error) error {
	a.end = err
	outcome := "complete"
	var breaker error // complete: a success
	limited := false  // a rate limit ended it: no answer (target.answered)
	if se := streamError(err); se != nil {
		outcome = se.Cause
		breaker = errNeutral // canceled: not the provider's doing
		own := true          // the target's failure (failedOwn), for the lowest-latency order
		switch {
		case se.Refused():
			// A content filter doing its work: the provider is healthy,
			// as a refusal before the first byte counts (round.decide).
			breaker, own = nil, false
			a.r.log.InfoContext(&a.ctx, "upstream refused the stream", "provider", a.Provider, "target", a.Model, "code", se.Code)
		case se.Class == CauseInsufficientQuota:
			// The account is out of money: out of service, as before
			// the first byte (round.decide), not a breaker failure. Money
			// this request alone lacks (its max_tokens' credit), one
			// model's quota or words alone cool nothing there, and
			// nothing here: a stream they ended put the provider out of
			// every bot's rounds for the quota cool-down.
			if se.obj == nil || se.obj.accountOutOfMoney() {
				a.r.outOfQuota(&a.ctx, a.t.p, a.r.opts.Now(), a.r.errText.cut(se.Message, maxPlainErrorText))
			}
			a.r.log.WarnContext(&a.ctx, "upstream stream failed", "provider", a.Provider, "target", a.Model, "cause", se.Cause, "err", se.Err)
		case se.Class == CauseRateLimited:
			// Too fast or overloaded: the back-off keeps other rounds
			// away meanwhile, as before the first byte (round.decide);
			// only an overload (503, 529) counts against the breaker.
			breaker, limited = rateLimitOutcome(0, se.Status), true
			var w time.Duration
			if se.obj != nil {
				// A limit on the target's model alone (OpenRouter's
				// relayed one) backs off that target, as before the
				// first byte: backed off as a whole, OpenRouter was out
				// of every other model's rounds meanwhile.
				w = a.r.coolRateLimited(a.t, se.obj, a.r.opts.Now())
			} else {
				w = a.r.backOff(a.t.p, a.r.opts.Now(), se.Status == http.StatusTooManyRequests)
			}
			a.r.log.WarnContext(&a.ctx, "upstream stream failed", "provider", a.Provider, "target", a.Model, "cause", se.Cause,
				"backoff", w, "err", se.Err)
		case se.Class == CauseContextLength || se.Class == CauseRequestTooLarge:
			// The request too large for this target: the provider is
			// healthy, as before the first byte (round.decide).
			breaker, own = nil, false
			a.r.log.InfoContext(&a.ctx, "upstream stream failed", "provider", a.Provider, "target", a.Model, "cause", se.Cause, "class", se.Class, "code", se.Code)
		case se.Class == CauseModelNotFound || se.Class == CauseMisconfigured:
			own = false
			// The target's model, or a key refused in words that may be
			// the bot's own: neither way, as before the first byte
			// (round.decide's keyInWords).
			a.r.log.WarnContext(&a.ctx, "upstream stream failed", "provider", a.Provider, "target", a.Model, "cause", se.Cause, "class", se.Class, "code", se.Code)
		case se.Cause == CauseCanceled:
			own = false
		default:
			breaker = errProviderFailure
			a.r.log.WarnContext(&a.ctx, "upstream stream failed", "provider", a.Provider, "target", a.Model, "cause", se.Cause, "err", se.Err)
		}
		if own && a.measure {
			// A failure of the target's own, as one before the first
			// token is (failedOwn): measured by its first token alone, a
			// target that broke its streams mid-answer (a connection
			// lost, an overload or quota error event) kept the
			// lowest-latency lead, once any back-off ended, and every
			// bot's answer broke on it, to be recovered elsewhere.
			a.t.failedAt(latencyKind(a.stream || a.events), a.r.opts.Now())
		}
	}
	a.reportBreaker(breaker)
	if !limited {
		// The provider took the request within its limits, whatever
		// ended the stream after its first token (a cut, a timeout, a
		// server error): kept counting, the back-offs of rate limits
		// hours apart, between streams each so ended, doubled up to
		// failover.retry_after_max_wait.
		a.t.answered()
	}
	if outcome == "complete" {
		a.t.p.streamComplete.Inc()
	} else {
		a.r.m.streams.WithLabelValues(a.Provider, outcome).Inc()
	}
	return err
}

// streamError is errors.As(err, *StreamError) without its cost at every
// stream's end: the variable errors.As fills escapes, one allocation per
// stream, though finish is given a *StreamError as it is or io.EOF.
func streamError(err error) *StreamError {
	if se, ok := err.(*StreamError); ok || err == nil || err == io.EOF {
		return se
	}
	var se *StreamError
	if errors.As(err, &se) {
		return se
	}
	return nil
}

// Close releases the connection and records the outcome; call it exactly
// once per Response Open returned.
func (a *Response) Close() {
	if a.closed {
		return
	}
	a.closed = true
	if (a.rd != nil || a.piped) && a.end == nil {
		// The caller stopped early (its client left or stopped reading):
		// not the provider's fault.
		a.end = errClosed
		a.r.m.streams.WithLabelValues(a.Provider, "closed_early").Inc()
		a.t.answered() // answering when its caller left
	}
	a.reportBreaker(errNeutral) // closed before its end: neither way
	if a.rd != nil && errors.Is(a.end, io.EOF) && !a.released {
		// Read what little is left (the chunked terminator) so the
		// connection can be reused, but never wait long for it.
		a.setPhase(phaseIdle, drainWait)
		_, _ = io.CopyN(io.Discard, a.body, drainMaxBytes)
	}
	a.release()
}

var errClosed = errors.New("failover: response closed")

// release stops the attempt's timers and frees its connection and buffers.
func (a *Response) release() {
	if a.released {
		return
	}
	a.released = true
	a.deadlines.stop()
	if a.body != nil {
		_ = a.body.Close()
	}
	a.ctx.cancel(errClosed)
	if a.rd != nil {
		a.rd.Release()
		a.rd = nil
	}
}
