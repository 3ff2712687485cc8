package failover

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/tidwall/gjson"
)

// Pauses of the retry policy (SPEC 5). Each is jittered by Options.Jitter.
const (
	// serverErrorPause precedes the one same-target retry after a 500, 502
	// or 504: long enough for a transient fault, short for the client.
	serverErrorPause = 250 * time.Millisecond
	// throttleBase is the first back-off after a rate limit without
	// Retry-After; it doubles per consecutive one, up to
	// failover.retry_after_max_wait. With at most two attempts per back-off
	// a provider sees no more than a few attempts a second from one round.
	throttleBase = 500 * time.Millisecond
	// maxRetryAfterWaits bounds same-target retries after short Retry-Afters.
	maxRetryAfterWaits = 2
	// sendSpacing is the least time between two sends to a provider that
	// rounds waited for after its rate-limit cool-down (provider.claimSend):
	// at most four a second, where every round waiting the cool-down out
	// used to send at the instant it ended.
	sendSpacing = 250 * time.Millisecond
)

// round is the state of one Open call.
type round struct {
	ctx      context.Context
	req      *Request
	model    *model
	end      time.Time // Router clock: the round's time budget ends
	attempts int
	tried    []Attempt
	fails    []*failure
	skipped  []skip
	// unasked: the attempt budget (failover.max_attempts) ended the
	// round before every target was asked.
	unasked bool
	// notes are what the client's error must say beyond the causes: where
	// a provider's redirect pointed.
	notes []string
	// stream: the lowest-latency strategy orders the round, and takes its
	// attempts' timeout penalties, by time to first token (streamKind).
	stream bool
	// elsewhere: the round asks other models' providers for a stored
	// object every target of the first model answered 404 for
	// (openElsewhere), where a refusal of the call is this provider's,
	// not the request's fault.
	elsewhere bool
	// silent are the providers that let an attempt of this round go
	// without an answer (silentFailure), and sent no other request's head
	// meanwhile: their other targets are passed over for the rest of the
	// round.
	silent []*provider
}

// silentFailure reports a failure that tells of the provider, not of the
// target's model: its endpoint did not answer at all (the connection was
// not made in time, or a stream's head did not come before first_byte).
// SPEC 5 moves on from such a provider at once, since asking it again
// only doubles the wait, and asked for another of its models it is as
// silent: with two targets on one provider, the defaults' two 30 s waits
// spent the round's 60 s before the next provider was asked. A
// non-stream answer's head comes with the whole answer, so its wait tells
// of the model; so does a head without a token (first_token).
func silentFailure(req *Request, f *failure) bool {
	return f.cause == CauseConnectTimeout || f.cause == CauseFirstByteTimeout && req.Stream
}

// movesOn reports a target of rest the round may still ask: one not of a
// provider silent earlier in the round, whose targets it passes over. A
// failed or skipped target with none after it moved to none, and counts no
// failover: a model served by one provider under two upstream models, the
// provider silent, counted a move a round to a target never asked.
func (rd *round) movesOn(rest []*target) bool {
	return slices.ContainsFunc(rest, func(t *target) bool { return !slices.Contains(rd.silent, t.p) })
}

// causeSilent is the skip cause of a target whose provider was silent
// earlier in the round (silentFailure).
const causeSilent = "no answer from the provider this round"

// skip is a target passed over without an attempt (cool-down, breaker, or
// its provider silent earlier in the round).
type skip struct {
	t        *target
	until    time.Time // zero: breaker, end unknown
	cause    string
	failover string // its cause on the failover metric (countSkips)
	limited  bool   // cooling down after a 429 (allRateLimited)
	next     bool   // a later target the round may ask followed it in its order (movesOn)
}

// Open runs one round: it tries the model's targets by strategy and per
// cause (SPEC 5) until one answers acceptably, and returns its Response,
// which the caller must Close. Nothing of a failed attempt reaches the
// caller. When no target answers, the error is an *UpstreamError; when ctx
// ends first, that error wraps ctx's cause.
func (r *Router) Open(ctx context.Context, req *Request) (*Response, error) {
	m, err := r.lookup(req.Model)
	if err != nil {
		return nil, err
	}
	rd := &round{ctx: ctx, req: req, model: m, end: r.opts.Now().Add(r.fo.MaxRoundTime.D()), stream: streamKind(m, req)}
	order := r.orderLeaving(m, req.SameUpstreamModel, rd.stream, req.Affinity, req)
	if len(req.ExcludeProviders) > 0 {
		// A copy: order may be the model's own list (order).
		order = slices.DeleteFunc(slices.Clone(order), func(t *target) bool { return slices.Contains(req.ExcludeProviders, t.p.name) })
	}
	var excluded []*target
	if len(req.ExcludeTargets) > 0 {
		kept := slices.DeleteFunc(slices.Clone(order), func(t *target) bool {
			return slices.Contains(req.ExcludeTargets, TargetName{Provider: t.p.name, Model: t.model})
		})
		if len(kept) > 0 {
			// With none left the round asks them all the same: the
			// client gets their own reason, not a 503 for no target.
			excluded = slices.DeleteFunc(slices.Clone(order), func(t *target) bool { return slices.Contains(kept, t) })
			order = kept
		}
	}
	resp, err := r.runRound(ctx, rd, order)
	if err != nil && len(excluded) > 0 && (allNotFound(rd) || allModelMissing(rd)) {
		// Every other target said the model does not exist: the targets
		// left out serve it, and the round is as one with none left.
		// They are asked after all, so that the client gets their own
		// refusal of the length (or their answer), not a 404 saying that
		// no target serves the model, on which a bot stops asking for it.
		if last := rd.fails[len(rd.fails)-1]; last.t != nil && rd.attempts < r.fo.MaxAttempts && rd.movesOn(excluded) {
			// The move to them is a failover from the target asked
			// last, which tryTarget, with no target after it in
			// order, did not count.
			r.m.failovers.WithLabelValues(m.name, last.t.p.name, last.cause).Inc()
		}
		resp, err = r.runRound(ctx, rd, excluded)
	}
	r.countSkips(rd, resp)
	if err != nil && namesStoredObject(req) && allNotFound(rd) {
		return r.openElsewhere(ctx, req, m, rd, order, err)
	}
	return resp, err
}

// openElsewhere asks, after every target of the first model answered 404
// to a call that names a stored object (namesStoredObject), one target of
// each provider the round did not ask, in config order: the object was
// made by the provider of the model its creation named (a Response, a
// fine-tuning job), or of a target the round leaves out
// (Request.SameUpstreamModel), which the first model's targets never
// reach. A 404 costs a provider nothing (decide), and a provider that
// did not store the object acts on none. The bot gets the last 404 when
// every one said so, the first round's 404, firstErr, when one refused
// the call otherwise (a key refused the path: it made nothing there), and
// the round's error when one failed or was passed over: it may hold the
// object, and nothing proves it missing.
func (r *Router) openElsewhere(ctx context.Context, req *Request, m *model, first *round, asked []*target, firstErr error) (*Response, error) {
	var order []*target
	for _, om := range r.models {
		for _, t := range om.targets {
			if slices.ContainsFunc(asked, func(a *target) bool { return a.p == t.p }) ||
				slices.ContainsFunc(order, func(o *target) bool { return o.p == t.p }) ||
				slices.Contains(req.ExcludeProviders, t.p.name) {
				continue
			}
			order = append(order, t)
		}
	}
	if len(order) == 0 {
		return nil, firstErr
	}
	rd := &round{ctx: ctx, req: req, model: m, end: r.opts.Now().Add(r.fo.MaxRoundTime.D()), stream: streamKind(m, req), elsewhere: true}
	resp, err := r.runRound(ctx, rd, order)
	r.countSkips(rd, resp)
	// The caller's count of attempts (X-Paygate-Attempts, the audit's
	// list) spans both rounds.
	var ue *UpstreamError
	if resp != nil {
		resp.Attempts, resp.Tried = first.attempts+resp.Attempts, slices.Concat(first.tried, resp.Tried)
	} else if errors.As(err, &ue) {
		ue.Attempts, ue.Tried = first.attempts+ue.Attempts, slices.Concat(first.tried, ue.Tried)
	}
	switch {
	case err == nil, allNotFound(rd):
		return resp, err
	case len(rd.skipped) > 0 || rd.unasked || slices.ContainsFunc(rd.fails, func(f *failure) bool { return !notHere(f) }):
		// Passed over, out of budget or failing: it may hold the
		// object, and its failure says so.
		return nil, err
	}
	// The first round's 404, with both rounds' attempts: the second's
	// were made, and are counted and accounted as its own are.
	var fe *UpstreamError
	if ue != nil && errors.As(firstErr, &fe) {
		fe.Attempts, fe.Tried = ue.Attempts, ue.Tried
	}
	return nil, firstErr
}

// notHere reports a failure that says the provider does not hold what
// was asked: a 404, a key refused the path (pathRefused: it made nothing
// there either), or another refusal of the request (a 400 for an id
// format of another provider's).
func notHere(f *failure) bool {
	return f.cause == CauseModelNotFound && f.status == http.StatusNotFound || f.pathRefused || f.cause == CauseClientError
}

// namesStoredObject reports a forwarded call that names no model and a
// stored object in its path, below a collection: /files/{id},
// /responses/{id}/cancel, /vector_stores/{id}/files. A GET, HEAD, DELETE
// or OPTIONS below the first segment names one (a list such as
// /fine_tuning/jobs may be taken for one: it changes nothing); a POST,
// PUT or PATCH, which may create, names one with a third segment or a
// second that holds a digit, as the ids of OpenAI's objects do
// (vs_abc123), and no collection's name does (/threads/runs,
// /realtime/client_secrets). Such a call's 404 may come from a provider
// that never made the object.
func namesStoredObject(req *Request) bool {
	if req.Model != "" || req.Stream || isChatPath(req.Path) {
		return false
	}
	p, _, _ := strings.Cut(req.Path, "?")
	segs := strings.Split(strings.Trim(p, "/"), "/")
	if len(segs) < 2 {
		return false
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodDelete, http.MethodOptions:
		return true
	}
	return len(segs) > 2 || strings.ContainsAny(segs[1], "0123456789")
}

// runRound is Open's round over order.
func (r *Router) runRound(ctx context.Context, rd *round, order []*target) (*Response, error) {
	for i, t := range order {
		resp, stop := r.tryTarget(rd, t, false, order[i+1:])
		if resp != nil {
			return resp, nil
		}
		if stop {
			return nil, r.roundError(rd)
		}
	}
	// Every target failed or was cooling down. A cool-down that ends soon
	// (a back-off, a short Retry-After) is waited out rather than failing the
	// round: a single-provider model then rides out a rate limit.
	slices.SortFunc(rd.skipped, func(a, b skip) int { return a.until.Compare(b.until) })
	for _, s := range rd.skipped {
		if s.until.IsZero() || slices.Contains(rd.silent, s.t.p) {
			continue
		}
		ok, err := r.waitOut(rd, s.t)
		if err != nil {
			rd.fails = append(rd.fails, &failure{cause: CauseCanceled, canceled: true, unsent: true, err: err})
			return nil, r.roundError(rd)
		}
		if !ok {
			continue
		}
		resp, stop := r.tryTarget(rd, s.t, true, nil)
		if resp != nil {
			return resp, nil
		}
		if stop {
			break
		}
	}
	return nil, r.roundError(rd)
}

// waitOut waits until rd may send to t, its provider (or t alone: a limit
// on t's model) cooling down after a rate limit: until the cool-down's
// end, and then its turn among the rounds waiting
// for the same provider (provider.claimSend), so that they send spaced
// sendSpacing apart rather than all at the instant the cool-down ends,
// against a provider that has just said "too many requests". After the
// wait the cool-down is checked again: another round's new 429 meanwhile
// began a new one, and the round waits for that, or gives up. It reports
// false, having sent nothing, when its turn would come after
// failover.retry_after_max_wait from now or past the round's time: the
// round then ends with the 429 a cooling provider stands for.
func (r *Router) waitOut(rd *round, t *target) (bool, error) {
	p := t.p
	now := r.opts.Now()
	limit := r.sendLimit(rd, now)
	for {
		until, _, cooling := p.cooling(now)
		if !cooling {
			until = now
		}
		if tu, cooling := t.cooling(now); cooling && tu.After(until) {
			until = tu
		}
		slot, ok := p.claimSend(now, until, limit)
		if !ok {
			return false, nil
		}
		if err := r.opts.Sleep(rd.ctx, slot.Sub(now)); err != nil {
			p.releaseSend(slot)
			return false, err
		}
		now = r.opts.Now()
		_, _, cooling = p.cooling(now)
		if _, targetCooling := t.cooling(now); !cooling && !targetCooling {
			return true, nil
		}
	}
}

// spacedRetry is the wait of a round's retry of p after a rate limit:
// wait, or longer when other rounds have already been given the turns
// after it (provider.claimSend), and the turn, to give back if the round
// stops waiting. ok is false when the turn would come after
// failover.retry_after_max_wait or past the round's time.
func (r *Router) spacedRetry(rd *round, p *provider, wait time.Duration) (time.Duration, time.Time, bool) {
	now := r.opts.Now()
	slot, ok := p.claimSend(now, now.Add(wait), r.sendLimit(rd, now))
	return slot.Sub(now), slot, ok
}

// sendLimit is the latest send turn a round waits for from now:
// failover.retry_after_max_wait on, and before the round's time ends.
func (r *Router) sendLimit(rd *round, now time.Time) time.Time {
	limit := now.Add(r.fo.RetryAfterMaxWait.D())
	if end := rd.end.Add(-1); end.Before(limit) {
		limit = end
	}
	return limit
}

// tryTarget makes the attempts the policy allows on t; rest are the round's
// targets after t. It returns the answer, or stop when the round must end
// (a client error, the attempt or time budget spent, the caller gone).
func (r *Router) tryTarget(rd *round, t *target, waited bool, rest []*target) (*Response, bool) {
	p := t.p
	body, err := t.patch(rd.req.Body, rd.req.Model != "")
	if err != nil {
		rd.fails = append(rd.fails, &failure{cause: CauseClientError, status: http.StatusBadRequest, unsent: true,
			errType: "invalid_request_error", errMsg: "request body is not a JSON object", err: err})
		return nil, true
	}
	if body, err = t.placeSystem(body, rd.req.System); err != nil {
		rd.fails = append(rd.fails, &failure{cause: CauseClientError, status: http.StatusBadRequest, unsent: true,
			errType: "invalid_request_error", errMsg: "request body's system message cannot be moved first", err: err})
		return nil, true
	}
	// Only the chat conversation paygate sends is adapted: a forwarded
	// body (SPEC 2.2: nothing touched but its model and user) is read by
	// gjson from its first brace, so a form uploading a fine-tuning file
	// had the first example of its JSONL rewritten.
	if isChatPath(rd.req.Path) {
		if body, err = t.adaptMessages(body, rd.req.ToolsTail); err != nil {
			rd.fails = append(rd.fails, &failure{cause: CauseClientError, status: http.StatusBadRequest, unsent: true,
				errType: "invalid_request_error", errMsg: "request body's messages cannot be adapted to the provider", err: err})
			return nil, true
		}
	}
	send, err := t.continueBody(body, rd.req.Continuation)
	if err != nil {
		rd.fails = append(rd.fails, &failure{cause: CauseClientError, status: http.StatusBadRequest, unsent: true,
			errType: "invalid_request_error", errMsg: "request body has no messages array", err: err})
		return nil, true
	}
	continued := send != nil
	if !continued {
		send = body
	}
	retries, raWaits := 0, 0
	// spent is what the round spent on t before the attempt to come: its
	// failed attempts and the waits before their retries, which the
	// bot waits through too. The lowest-latency strategy counts it in
	// the answer's sample: a target that refused each request with a 429
	// and "Retry-After: 3", then answered at once, measured its answer
	// alone and kept the lead over one answering in 300ms.
	var spent time.Duration
	for {
		if rd.ctx.Err() != nil {
			rd.fails = append(rd.fails, &failure{cause: CauseCanceled, canceled: true, unsent: true, err: context.Cause(rd.ctx)})
			return nil, true
		}
		if rd.attempts >= r.fo.MaxAttempts {
			// Only before t's first attempt, or its fresh one after a
			// refused continuation: a retry is decided only with an
			// attempt left for it (the untried check below), so the
			// budget ended the round before t was asked.
			rd.unasked = true
			return nil, true
		}
		now := r.opts.Now()
		left := rd.end.Sub(now)
		if left <= 0 {
			// Nothing was sent: an AtMostOnce call an earlier attempt
			// may have run ended the round there (mayHaveRun).
			rd.fails = append(rd.fails, &failure{cause: CauseRoundTime, status: http.StatusGatewayTimeout, unsent: true})
			return nil, true
		}
		if retries == 0 && !waited {
			if slices.Contains(rd.silent, p) {
				rd.skipped = append(rd.skipped, skip{t: t, cause: causeSilent, failover: failoverSilent, next: rd.movesOn(rest)})
				return nil, false
			}
			if until, why, cooling := p.cooling(now); cooling {
				rd.skipped = append(rd.skipped, skip{t: t, until: until, cause: why.cause, limited: why.limited, failover: failoverCooling, next: rd.movesOn(rest)})
				return nil, false
			}
			if until, cooling := t.cooling(now); cooling {
				rd.skipped = append(rd.skipped, skip{t: t, until: until, cause: CauseRateLimited, limited: true, failover: failoverCooling, next: rd.movesOn(rest)})
				return nil, false
			}
		}
		done, gen, err := p.allow(rd.ctx)
		if err != nil {
			cause := "breaker open"
			if errors.Is(err, gobreaker.ErrTooManyRequests) {
				cause = "breaker probe in flight"
			}
			rd.skipped = append(rd.skipped, skip{t: t, cause: cause, failover: failoverBreaker, next: rd.movesOn(rest)})
			return nil, false
		}
		// Half-open, the breaker lets one attempt through: this one, its
		// probe. (The state changed inside allow, and no other outcome can
		// change it before this attempt's.)
		probe := gobreaker.State(p.state.Load()) == gobreaker.StateHalfOpen
		rd.attempts++
		roundLeft, headWait := left, time.Duration(0)
		if !rd.req.Stream {
			roundLeft, headWait = r.nonStreamWait(rd, left, rest)
		}
		started := time.Now()
		resp, f := r.countedAttempt(rd, t, send, roundLeft, headWait, spent, done)
		at := Attempt{Provider: p.name, Model: t.model, Duration: time.Since(started)}
		if f == nil {
			// A piped answer, like a stream, is not whole yet: the
			// provider may still cut it.
			open := resp.stream || resp.piped
			switch {
			case open && !probe:
				resp.breakerDone = done // the outcome is known at the answer's end
			case resp.stream || resp.events:
				// A stream that probes a recovered provider reports its
				// success at its first event after the first token,
				// closing the breaker: other rounds come back to the
				// provider then, not when the probe's answer ends minutes
				// later. Not at the first token: a provider that stalls
				// after it (an overloaded server) drew every round of
				// the probe's idle wait, each stalling in turn. Should the
				// stream break later, the probe failed after all and the
				// breaker opens again (Response.probe). A piped event
				// stream (a streamed Responses call) is held to its first
				// event only: it flows at the provider's next bytes.
				resp.breakerDone, resp.probe, resp.probeGen = done, true, gen
			default:
				// A non-stream answer is whole; a piped answer that is no
				// event stream (a file, speech) closes the breaker at its
				// head and first bytes.
				p.report(rd.ctx, done, nil)
				resp.probe, resp.probeGen = open, gen
			}
			if !open {
				// A stream's, or a piped answer's, is an answer at its
				// end (Response.finish): one a rate limit then broke
				// continues the back-off's doubling.
				t.answered()
			}
			at.Status = resp.StatusCode
			if len(rd.tried) == 0 {
				// Answered at once: the one attempt is kept in the
				// Response, capped so that an append copies it out.
				resp.tried0[0] = at
				rd.tried = resp.tried0[:1:1]
			} else {
				rd.tried = append(rd.tried, at)
			}
			p.okAttempts.Inc()
			resp.roundAt.Store(0) // the round's time no longer bounds the answer
			resp.Attempts, resp.Tried, resp.Continued = rd.attempts, rd.tried, continued
			return resp, false
		}
		at.Status, at.Cause, at.Usage = f.httpStatus, f.cause, f.usage
		rd.tried = append(rd.tried, at)
		spent += at.Duration
		r.m.attempts.WithLabelValues(p.name, f.cause).Inc()
		if continued && f.cause == CauseClientError && !f.contentFilter() {
			// The target refused the continuation (a prefill it does not
			// support): ask it again for a fresh answer, which the caller
			// matches against what was sent. The refusal is not the round's
			// failure, so it never reaches the client. A content filter
			// refuses the answer, not the prefill: asked again it would
			// refuse again (SPEC 5: retried nowhere), so it ends the round
			// below with the provider's reason.
			p.report(rd.ctx, done, errNeutral)
			r.log.WarnContext(rd.ctx, "upstream refused the continuation request: asking for a fresh answer", "model", rd.model.name,
				"provider", p.name, "target", t.model, "status", f.httpStatus, "code", f.errCode)
			send, continued = body, false
			continue
		}
		f.t = t
		rd.fails = append(rd.fails, f)
		if silentFailure(rd.req, f) && !p.headSince(started) && !slices.Contains(rd.silent, p) {
			// A head the provider sent meanwhile (another model's,
			// another round's) says its endpoint answers: the silence
			// is this target's model's, as behind a gateway that sends
			// its head with its upstream's, and its other targets stay.
			rd.silent = append(rd.silent, p)
		}
		if generation(rd.req) && failedOwn(f) {
			t.failedAt(latencyKind(rd.stream), r.opts.Now())
		}

		d := r.decide(rd, t, f, retries, raWaits)
		if rd.req.AtMostOnce && d.next != stepStop && f.mayHaveRun() {
			// Sent again, here or to the next target, the request
			// would be acted on twice (Request.AtMostOnce): the round
			// ends with this failure, and the client is told why
			// nothing else was tried. This departs from SPEC 5's
			// "same failover" for forwarded paths: a duplicate batch
			// or fine-tuning job, billed on two accounts, is worse
			// than an error the bot can check and act on.
			d.next, d.wait = stepStop, 0
			rd.notes = append(rd.notes, fmt.Sprintf("%s %s is sent at most once: provider %s may have acted on it, "+
				"so it was not sent again; check before sending it again", methodOf(rd.req), pathOnly(rd.req.Path), p.name))
		}
		var turn time.Time // the retry's send turn after a rate limit, if it took one
		if d.next == stepRetry && r.fo.MaxAttempts-rd.attempts <= r.untried(rd, rest) {
			// The attempts left are no more than the targets not yet
			// asked: a retry here would leave one of them unasked, and a
			// healthy later target is a better bet than a failing one.
			d.next, d.wait = stepNext, 0
		}
		if d.next == stepRetry && f.cause == CauseRateLimited {
			// The retry takes its turn among the rounds waiting for the
			// provider's cool-down to end (waitOut); with none left in
			// time, the next target.
			if w, slot, ok := r.spacedRetry(rd, p, d.wait); ok {
				d.wait, turn = w, slot
			} else {
				d.next, d.wait = stepNext, 0
			}
		}
		p.report(rd.ctx, done, d.breaker)
		if d.latencyPenalty && generation(rd.req) {
			t.observe(r.opts.Now(), rd.stream, 2*at.Duration)
		}
		if !f.canceled {
			r.log.WarnContext(rd.ctx, "upstream attempt failed", "model", rd.model.name, "provider", p.name, "target", t.model,
				"attempt", rd.attempts, "cause", f.cause, "status", f.httpStatus, "code", f.errCode,
				"duration", at.Duration, "next", d.next.String(), "err", f.err, "message", r.loggedReason(f))
		}
		switch d.next {
		case stepRetry:
			if d.wait > 0 {
				if err := r.opts.Sleep(rd.ctx, d.wait); err != nil {
					if !turn.IsZero() {
						p.releaseSend(turn)
					}
					rd.fails = append(rd.fails, &failure{cause: CauseCanceled, canceled: true, unsent: true, err: err})
					return nil, true
				}
				spent += d.wait
			}
			retries++
			if d.retryAfter {
				raWaits++
			}
		case stepNext:
			if rd.attempts < r.fo.MaxAttempts && rd.movesOn(rest) {
				// A move to a later target; from the round's last
				// there is none: the round ends with its error, and a
				// single-provider outage counted failovers that never
				// happened (as a last target skipped is none, countSkips).
				// Nor is there when every later target is of a provider
				// silent in the round, passed over unasked, or when
				// this was the round's last attempt (max_attempts): the
				// next target is not asked.
				r.m.failovers.WithLabelValues(rd.model.name, p.name, f.cause).Inc()
			}
			return nil, false
		default:
			return nil, true
		}
	}
}

// loggedReason is the provider's reason for f as the log gives it (an
// attempt's line, a stream's error event's, the errors they wrap): masked
// and cut to maxPlainErrorText as a client's error is (errorText), so
// that a round that failed over to an answer still says why the provider
// it left failed (an HTTP status alone has no err), and an error event's
// message (up to 32 MiB, maybe quoting the user) is no line of its size.
// A refused provider key's is left out: some providers echo part of the
// key.
func (r *Router) loggedReason(f *failure) string {
	if f.cause == CauseMisconfigured || f.errMsg == "" {
		return ""
	}
	return r.errText.cut(f.errMsg, maxPlainErrorText)
}

// countSkips counts a failover from each target the round left unasked
// (its breaker open, its provider cooling down), once, when the round moved
// on from it: to a later target, or to another that answered (resp). A
// cool-down the round waited out on the target it skipped, and a model's
// only target skipped, are no move to another target.
func (r *Router) countSkips(rd *round, resp *Response) {
	for i, s := range rd.skipped {
		if resp != nil && s.t == resp.t || !s.next && resp == nil ||
			slices.ContainsFunc(rd.skipped[:i], func(o skip) bool { return o.t == s.t }) {
			continue
		}
		r.m.failovers.WithLabelValues(rd.model.name, s.t.p.name, s.failover).Inc()
	}
}

// nonStreamWait bounds a non-stream attempt's wait for its head, which
// many providers send only with the whole answer (OpenAI), after as long
// as the model takes to write it. It returns the round's time left to
// bound the attempt by (0: none) and the attempt's own limit on its wait
// for the head (0: none but timeouts.total).
//
// The round's last chance (no later target it could ask, or no attempt
// left for one) waits up to timeouts.total, not bounded by the round's
// time: there is nothing to fail over to, and a long answer, which the
// round's time (60 s by default) would cut at every request, is then
// still delivered. An attempt with a later target to fall back on waits
// at most an even share of the round's time left among itself and the
// targets the round could still ask (30 s of the default 60 s with one
// fallback, as long as a stream's first_byte), so that a silent provider
// (a black hole, a stuck load balancer) is failed over within the round
// rather than costing every request the round's whole time and a 504.
// Its end is a first-byte timeout: the next target at once and a failure
// for the breaker, which opens after failover.breaker.failures such
// rounds and spares the next ones the wait. It cuts an answer longer
// than the share too, one that would have come: a model whose
// non-streamed answers take longer with a fallback needs a longer
// failover.max_round_time (or streaming, whose first token comes soon).
// Its first_byte is not the bound (a stream's is): it would cut every
// long answer, and then the fallback's, each billed.
func (r *Router) nonStreamWait(rd *round, left time.Duration, rest []*target) (roundLeft, headWait time.Duration) {
	later := min(r.untried(rd, rest), r.fo.MaxAttempts-rd.attempts)
	if later <= 0 || rd.req.AtMostOnce {
		// An AtMostOnce request is never sent again once written, so
		// whatever targets follow, this attempt is its last chance:
		// cut at a share of the round, a slow creation went on at the
		// provider while the client got a 504 (and, before AtMostOnce,
		// the next target made a second one).
		return 0, 0
	}
	return left, left / time.Duration(later+1)
}

// untried counts the targets of rest that the round could still ask: not
// cooling down, without a breaker still in its open period, and not of a
// provider silent earlier in the round (round.silent). The
// mirrored breaker state moves from open to half-open only when someone
// asks the breaker, so a fallback whose cool-down has passed while no
// round touched it still reads open: counted out by that, a silent
// primary's non-stream attempt waited timeouts.total instead of its share
// of the round (nonStreamWait), and a failing primary's retry spent the
// last attempt before the recovered fallback's probe. breakerLeft says
// whether the open period is over, without the breaker's lock.
func (r *Router) untried(rd *round, rest []*target) int {
	n := 0
	now := r.opts.Now()
	for _, t := range rest {
		if _, _, cooling := t.p.cooling(now); cooling || t.p.breakerLeft() > 0 || slices.Contains(rd.silent, t.p) {
			continue
		}
		if _, cooling := t.cooling(now); cooling {
			continue
		}
		n++
	}
	return n
}

type step int

const (
	stepRetry step = iota // the same target again, after wait
	stepNext              // the next target at once
	stepStop              // end the round
)

func (s step) String() string {
	switch s {
	case stepRetry:
		return "retry"
	case stepNext:
		return "next"
	default:
		return "stop"
	}
}

// decision is the policy's answer to one failed attempt.
type decision struct {
	next           step
	wait           time.Duration
	retryAfter     bool  // the wait honours a Retry-After
	breaker        error // nil: success, errProviderFailure or errNeutral
	latencyPenalty bool
}

// decide applies SPEC 5's per-cause policy to a failure before any byte
// reached the client. It also puts the provider in cool-down where the cause
// says so.
func (r *Router) decide(rd *round, t *target, f *failure, retries, raWaits int) decision {
	p := t.p
	now := r.opts.Now()
	left := rd.end.Sub(now)
	fits := func(d time.Duration) bool { return d < left }
	switch f.cause {
	case CauseCanceled:
		return decision{next: stepStop, breaker: errNeutral}
	case CauseRoundTime:
		return decision{next: stepStop, breaker: errNeutral}

	case CauseConnect:
		// Nothing was answered: one immediate retry (a stale pooled
		// connection, a transient reset), then the next target. A reused
		// connection the server closed as the request went out says
		// nothing of the provider's health: the breaker does not count it.
		if n := tlsNote(p.name, f.err); n != "" && !slices.Contains(rd.notes, n) {
			// A TLS failure says what to fix, which the cause alone
			// (the same as for a refused port) does not.
			rd.notes = append(rd.notes, n)
		}
		brk := errProviderFailure
		if f.reusedLost {
			brk = errNeutral
		}
		if retries == 0 {
			return decision{next: stepRetry, breaker: brk}
		}
		return decision{next: stepNext, breaker: brk}

	case CauseServerError, CauseEmptyStream, CauseMalformed, CauseConnectionLost:
		if retries == 0 {
			if w := r.opts.Jitter(serverErrorPause); fits(w) {
				return decision{next: stepRetry, wait: w, breaker: errProviderFailure}
			}
		}
		return decision{next: stepNext, breaker: errProviderFailure}

	case CauseRateLimited:
		brk := rateLimitOutcome(f.httpStatus, f.status)
		w := r.coolRateLimited(t, f, now)
		if f.hasRetry {
			// This round's own retry after the wait is not skipped for
			// the cool-down: the cool-down check is only for a target's
			// first attempt.
			if w <= r.fo.RetryAfterMaxWait.D() && raWaits < maxRetryAfterWaits && fits(w) {
				return decision{next: stepRetry, wait: w, retryAfter: true, breaker: brk}
			}
			return decision{next: stepNext, breaker: brk}
		}
		if retries == 0 && fits(w) {
			return decision{next: stepRetry, wait: w, breaker: brk}
		}
		return decision{next: stepNext, breaker: brk}

	case CauseInsufficientQuota:
		if f.billingInWords {
			// Said in words only, which may be the bot's own: the next
			// target, and nothing held against the provider.
			r.log.WarnContext(rd.ctx, "upstream said in words that the provider account is out of credit: next target, no cool-down",
				"provider", p.name, "status", f.httpStatus, "message", r.loggedReason(f))
			return decision{next: stepNext, breaker: errNeutral}
		}
		if f.modelQuota {
			// The quota of this target's model alone: the next target,
			// and the provider stays in service for its other models.
			r.log.WarnContext(rd.ctx, "upstream quota of the target's model used up: next target, no cool-down",
				"provider", p.name, "target", t.model, "status", f.httpStatus, "message", r.loggedReason(f))
			return decision{next: stepNext, breaker: errNeutral}
		}
		if f.requestCost {
			// The credit left does not cover this request's max_tokens,
			// and covers a smaller request: the next target, and the
			// provider stays in service for every other bot. The bot is
			// told what would pass, in paygate's words: the class alone
			// reads as the account out of money.
			if n := "provider " + p.name + "'s credit left does not cover the tokens this request may use: " +
				"ask for fewer (max_tokens) or another model"; !slices.Contains(rd.notes, n) {
				rd.notes = append(rd.notes, n)
			}
			r.log.WarnContext(rd.ctx, "upstream credit too low for this request's size: next target, no cool-down",
				"provider", p.name, "status", f.httpStatus, "message", r.loggedReason(f))
			return decision{next: stepNext, breaker: errNeutral}
		}
		r.outOfQuota(rd.ctx, p, now, r.loggedReason(f))
		return decision{next: stepNext, breaker: errNeutral}

	case CauseMisconfigured:
		if f.pathRefused {
			// The key may lack only this endpoint's permission: the next
			// target, and nothing held against the provider.
			r.log.WarnContext(rd.ctx, "upstream refused the provider key on a forwarded path: next target, no cool-down",
				"provider", p.name, "status", f.httpStatus, "path", rd.req.Path)
			return decision{next: stepNext, breaker: errNeutral}
		}
		if f.keyInWords {
			// Said in words only, which may be the bot's own: the next
			// target, and nothing held against the provider.
			r.log.WarnContext(rd.ctx, "upstream said in words that the provider key is wrong: next target, no cool-down",
				"provider", p.name, "status", f.httpStatus)
			return decision{next: stepNext, breaker: errNeutral}
		}
		p.coolDown(now.Add(r.opts.MisconfiguredCooldown), coolReason{cause: CauseMisconfigured})
		if f.redirect {
			// Asked again, it redirects again until an operator fixes
			// the base_url. The client's error says where it pointed.
			if n := "provider " + p.name + " " + f.errMsg; !slices.Contains(rd.notes, n) {
				rd.notes = append(rd.notes, n)
			}
			r.log.ErrorContext(rd.ctx, "upstream answered a redirect: provider marked misconfigured",
				"provider", p.name, "status", f.httpStatus, "message", f.errMsg, "cooldown", r.opts.MisconfiguredCooldown)
			return decision{next: stepNext, breaker: errNeutral}
		}
		if f.toTLS {
			// Asked again over plain http, it refuses again until an
			// operator fixes the base_url's scheme; the client's error
			// says so.
			if n := "provider " + p.name + " " + f.errMsg; !slices.Contains(rd.notes, n) {
				rd.notes = append(rd.notes, n)
			}
			r.log.ErrorContext(rd.ctx, "upstream serves https where its base_url says http://: provider marked misconfigured",
				"provider", p.name, "status", f.httpStatus, "cooldown", r.opts.MisconfiguredCooldown)
			return decision{next: stepNext, breaker: errNeutral}
		}
		if f.httpStatus == http.StatusProxyAuthRequired {
			// The proxy's page says nothing of the provider's key.
			r.log.ErrorContext(rd.ctx, "the proxy to the provider asked for credentials (HTTP 407): check the user and password in HTTPS_PROXY (HTTP_PROXY for a provider over http); provider marked misconfigured",
				"provider", p.name, "status", f.httpStatus, "cooldown", r.opts.MisconfiguredCooldown)
			return decision{next: stepNext, breaker: errNeutral}
		}
		// The provider's message is not logged: some echo part of the key.
		r.log.ErrorContext(rd.ctx, "upstream refused the provider key: provider marked misconfigured",
			"provider", p.name, "status", f.httpStatus, "code", f.errCode, "cooldown", r.opts.MisconfiguredCooldown)
		return decision{next: stepNext, breaker: errNeutral}

	case CauseModelNotFound:
		return decision{next: stepNext, breaker: errNeutral}

	case CauseContextLength, CauseRequestTooLarge:
		// The provider is healthy; this target is too small. Never again
		// this round; a later target may have a larger context, or take
		// a larger body.
		return decision{next: stepNext, breaker: nil}

	case CauseClientError:
		if rd.elsewhere && !f.contentFilter() {
			// A provider that never made the object may refuse its id
			// (OpenAI's 400 "Expected an ID that begins with 'resp'"
			// for another provider's): the provider after it may hold
			// it. Stopped here, the bot got a 404 for an object that
			// exists (openElsewhere, notHere).
			return decision{next: stepNext, breaker: nil}
		}
		// The request is at fault: no target would answer differently.
		return decision{next: stepStop, breaker: nil}

	case CauseResponseTooLarge:
		// The provider answered; the answer's size follows from the
		// request (n, max_tokens), and another attempt, as large and
		// billed again, would fare no better.
		return decision{next: stepStop, breaker: nil}

	case CauseConnectTimeout, CauseFirstByteTimeout, CauseFirstTokenTimeout, CauseIdleTimeout, CauseTotalTimeout:
		// Retrying a silent provider only doubles the wait.
		return decision{next: stepNext, breaker: errProviderFailure, latencyPenalty: true}
	}
	return decision{next: stepNext, breaker: errProviderFailure}
}

// tlsNote says why a provider's TLS failed, for the client's error: its
// certificate refused (with x509's reason: an unknown authority, another
// host's name, expired), or an answer that is not TLS at all (a plain
// http server behind an https:// base_url); "" for any other error. The
// reasons name hosts and dates, never a key. A failure of the https://
// proxy's own TLS (dialProxyTLS) names the proxy, whose certificate or
// scheme it is, not the provider, which was never reached.
func tlsNote(provider string, err error) string {
	var cve *tls.CertificateVerificationError
	var rhe tls.RecordHeaderError
	if pe := (*proxyTLSError)(nil); errors.As(err, &pe) {
		if errors.As(pe.err, &cve) && cve.Err != nil {
			return "the egress proxy's TLS certificate was not accepted: " + cve.Err.Error()
		}
		if errors.As(pe.err, &rhe) {
			return "the egress proxy did not answer in TLS: check the scheme of HTTPS_PROXY (HTTP_PROXY for a provider over http)"
		}
		return ""
	}
	if errors.As(err, &cve) && cve.Err != nil {
		return "provider " + provider + "'s TLS certificate was not accepted: " + cve.Err.Error()
	}
	if errors.As(err, &rhe) {
		return "provider " + provider + " did not answer in TLS at its https:// base_url: check its base_url (http or https)"
	}
	return ""
}

// rateLimitOutcome is a rate limit's breaker outcome: 429 says "too fast",
// not "broken" (neutral); 503 and 529 say overloaded (a failure).
func rateLimitOutcome(httpStatus, status int) error {
	if httpStatus != http.StatusTooManyRequests && status != http.StatusTooManyRequests {
		return errProviderFailure
	}
	return errNeutral
}

// coolRateLimited cools down what the rate limit f, met on t, limits,
// and returns the wait: the provider, t alone or p's ":free" targets. The
// same rate limit cools the same whether it came before the first byte
// (decide) or as an error event after it (Response.finish).
//
// With a wait the provider asked for (f.hasRetry), the provider asked every
// round for the pause, not just this one: it cools down that long, short or
// long, and other rounds skip it meanwhile (or wait it out, when it is all
// they have) rather than each sending at its own pace. Without one, a
// back-off of paygate's.
func (r *Router) coolRateLimited(t *target, f *failure, now time.Time) time.Duration {
	p := t.p
	if f.hasRetry {
		switch {
		case f.targetLimit && f.freeLimit && isFreeVariant(t.model):
			// OpenRouter's free-model limit, which every ":free"
			// model of the account counts toward: each of the
			// provider's ":free" targets waits, its paid ones not.
			r.coolFreeTargets(p, now.Add(f.retryAfter))
		case f.targetLimit:
			// A limit on this target's model alone (OpenAI's
			// per-model limits, one OpenRouter relays from a
			// model's upstream): the provider's other models are
			// not limited, and stay in every round.
			t.coolDown(now.Add(f.retryAfter))
		default:
			p.coolDown(now.Add(f.retryAfter), coolReason{CauseRateLimited, f.status == http.StatusTooManyRequests})
		}
		return f.retryAfter
	}
	if f.relayed && f.status == http.StatusTooManyRequests {
		// The limit of the upstream serving this target's model
		// alone (failure.relayed): the target backs off, not its
		// provider, whose other models other upstreams serve.
		return r.backOffTarget(t, now)
	}
	return r.backOff(p, now, f.status == http.StatusTooManyRequests)
}

// backOff cools p down after a rate limit without Retry-After, for
// throttleBase doubled per consecutive one up to
// failover.retry_after_max_wait, jittered, so other rounds leave the
// provider alone meanwhile. It returns the back-off.
func (r *Router) backOff(p *provider, now time.Time, limited bool) time.Duration {
	n := p.throttles.Add(1)
	backoff := throttleBase << min(n-1, 10)
	backoff = min(backoff, r.fo.RetryAfterMaxWait.D())
	w := r.opts.Jitter(backoff)
	p.coolDown(now.Add(w), coolReason{CauseRateLimited, limited})
	return w
}

// answered ends the doubling of the rate-limit back-offs of t and its
// provider (backOff, backOffTarget): an answer came. A stream's counts at
// its end, whatever ended it, or when its caller leaves before it: one
// that began and was then broken by a rate limit is none, or a provider
// that breaks each of its streams so was backed off half a second each
// time, every round after it asking it again.
func (t *target) answered() {
	// Read first: an answer is the common case, and a store of a zero
	// already there would still take the shared line from every other
	// round's core.
	if t.p.throttles.Load() != 0 {
		t.p.throttles.Store(0)
	}
	if t.throttles.Load() != 0 {
		t.throttles.Store(0)
	}
}

// backOffTarget is backOff for a rate limit on t's model alone: t cools
// down, its provider does not. The back-off doubles with t's own
// consecutive rate limits, which t's answer ends: counted with its
// provider's, they lengthened the provider's next back-off, which every
// other model's round waits out, and any other model's answer started
// t's over at the shortest.
func (r *Router) backOffTarget(t *target, now time.Time) time.Duration {
	n := t.throttles.Add(1)
	w := r.opts.Jitter(min(throttleBase<<min(n-1, 10), r.fo.RetryAfterMaxWait.D()))
	t.coolDown(now.Add(w))
	return w
}

// isFreeVariant reports an OpenRouter model id of its free variant
// (https://openrouter.ai/docs/guides/routing/model-variants/free), whose
// requests all count toward the account's free-model limits.
func isFreeVariant(model string) bool {
	return strings.HasSuffix(model, ":free")
}

// coolFreeTargets cools down, until until, every target of p whose model
// is a free variant (isFreeVariant), of every public model: OpenRouter's
// free-model limits, 20 requests a minute and 50 or 1000 a day, are the
// account's, not each model's. Cooled alone, the target that met one
// was followed in the same round by the provider's next ":free" target,
// refused for the same limit, and every round after did the same while
// it lasted; its paid models are not limited and stay in every round.
func (r *Router) coolFreeTargets(p *provider, until time.Time) {
	for _, m := range r.models {
		for _, t := range m.targets {
			if t.p == p && isFreeVariant(t.model) {
				t.coolDown(until)
			}
		}
	}
}

// accountOutOfMoney reports an insufficient-quota failure that puts its
// provider out of service (outOfQuota): the account's money, not this
// request's size (requestCost), one model's quota (modelQuota) or words
// alone (billingInWords), which move the round on and cool nothing.
func (f *failure) accountOutOfMoney() bool {
	return f.cause == CauseInsufficientQuota && !f.billingInWords && !f.requestCost && !f.modelQuota
}

// outOfQuota puts p out of service for Options.QuotaCooldown (or until an
// operator resets it): its account is out of money. The line is logged with
// ctx, the round's, so that it carries the request's id, and msg, the
// provider's reason as the log gives it (loggedReason).
func (r *Router) outOfQuota(ctx context.Context, p *provider, now time.Time, msg string) {
	p.coolDown(now.Add(r.opts.QuotaCooldown), coolReason{cause: CauseInsufficientQuota})
	r.log.ErrorContext(ctx, "upstream out of quota: provider out of service until reset or cool-down end",
		"provider", p.name, "cooldown", r.opts.QuotaCooldown, "message", msg)
}

// streamKind reports whether the lowest-latency strategy orders req by
// the targets' time to first token: a chat stream, or a forwarded call
// that asks for an event stream ("stream": true: the Responses API, a
// legacy completion), whose first event is its first token (pipeEvents
// measures it so). Ordered as a whole answer, such a call was measured
// against the non-stream requests' answers of many seconds, and its first
// event's milliseconds, folded in among them, changed the lead of both
// kinds by what each target had served last. Only the lowest-latency
// strategy reads a forwarded body for it.
func streamKind(m *model, req *Request) bool {
	if req.Stream || m.strategy != StrategyLowestLatency || isChatPath(req.Path) || !isJSONType(req.ContentType) {
		return req.Stream
	}
	return gjson.GetBytes(req.Body, "stream").Type == gjson.True
}

// order returns the round's targets by the model's strategy; stream says
// which latency the lowest-latency strategy compares, and affinity names
// the conversation whose weighted draw is its own (affinityDraws).
func (r *Router) order(m *model, sameUpstream, stream bool, affinity Affinity) []*target {
	return r.orderLeaving(m, sameUpstream, stream, affinity, nil)
}

// orderLeaving is order for a round of req, nil for none, whose excluded
// targets (leftOut) lowest-latency does not key.
func (r *Router) orderLeaving(m *model, sameUpstream, stream bool, affinity Affinity, req *Request) []*target {
	if !sameUpstream && m.strategy == StrategyPriority {
		// Config order: the model's own list, no copy per round. It is
		// shared: a round that changes its order works on a copy (Open);
		// the full slice expression makes an append copy too.
		return m.targets[:len(m.targets):len(m.targets)]
	}
	ts := make([]*target, 0, len(m.targets))
	for _, t := range m.targets {
		if sameUpstream && t.model != m.targets[0].model {
			continue
		}
		ts = append(ts, t)
	}
	switch m.strategy {
	case StrategyWeighted:
		rnd := r.opts.Rand
		if affinity != (Affinity{}) {
			rnd = affinityDraws(m.name, affinity)
		}
		weightedShuffle(ts, rnd)
	case StrategyLowestLatency:
		// Each key is read once: reading it may claim a stale target's
		// re-measure for this round (claimRemeasure).
		now := r.opts.Now()
		// A call that is no generation (a batch poll, a file list)
		// measures nothing: it does not take a stale target's one
		// re-measure from the generations (claimRemeasure).
		claim := req == nil || generation(req)
		var buf [8]keyedTarget
		kt := buf[:0]
		for _, t := range ts {
			// A target the round leaves out (Open) is not keyed: its
			// key would claim a re-measure no attempt of this round
			// makes, and keep every other round from it meanwhile. Asked
			// at all (every other excluded too), it comes last.
			key := time.Duration(math.MaxInt64)
			if !leftOut(req, t) {
				key = t.latencyKey(now, stream, claim)
			}
			kt = append(kt, keyedTarget{t, key})
		}
		slices.SortStableFunc(kt, func(a, b keyedTarget) int { return cmp.Compare(a.key, b.key) })
		for i := range kt {
			ts[i] = kt[i].t
		}
	}
	return ts
}

// leftOut reports a target req (nil: none) excludes (Request.ExcludeProviders,
// Request.ExcludeTargets).
func leftOut(req *Request, t *target) bool {
	return req != nil && (slices.Contains(req.ExcludeProviders, t.p.name) ||
		slices.Contains(req.ExcludeTargets, TargetName{Provider: t.p.name, Model: t.model}))
}

// keyedTarget is a target and its lowest-latency sort key.
type keyedTarget struct {
	t   *target
	key time.Duration
}

// affinityDraws are the weighted strategy's draws for one conversation of
// model: numbers in [0, 1) from a generator seeded by the two, the same
// in every round, turn, replica and restart, and as spread over
// conversations as random draws. Providers cache a conversation's prompt
// prefix per account and model, and bill the cached part at a fraction:
// drawn anew for each request, a conversation's turns (and a payment
// turn's rounds) went to one target and the other alike, each reaching a
// provider that had not seen its last turn.
func affinityDraws(model string, a Affinity) func() float64 {
	h := sha256.Sum256([]byte(model + "\x00" + a.Client + "\x00" + a.User + "\x00" + a.Session))
	g := rand.New(rand.NewPCG(binary.LittleEndian.Uint64(h[:8]), binary.LittleEndian.Uint64(h[8:16])))
	return g.Float64
}

// weightedShuffle orders ts by drawing without replacement, each draw in
// proportion to weight.
func weightedShuffle(ts []*target, rnd func() float64) {
	for i := 0; i < len(ts)-1; i++ {
		total := 0
		for _, t := range ts[i:] {
			total += t.weight
		}
		x := rnd() * float64(total)
		j := i
		for ; j < len(ts)-1; j++ {
			x -= float64(ts[j].weight)
			if x < 0 {
				break
			}
		}
		ts[i], ts[j] = ts[j], ts[i]
	}
}

// roundError builds what the client gets when no target answered.
func (r *Router) roundError(rd *round) *UpstreamError {
	ue := &UpstreamError{Attempts: rd.attempts, Tried: rd.tried}
	if n := len(rd.tried); n > 0 {
		ue.Provider = rd.tried[n-1].Provider
	}
	var last *failure
	if n := len(rd.fails); n > 0 {
		last = rd.fails[n-1]
		ue.Provider = last.provider(rd)
		ue.Err, ue.Class = last.err, last.cause
		// The round stops at the first such failure, so only its last
		// one can be; a cancel counts when it cut an attempt the
		// provider had (the drain deadline's), not one between attempts
		// (unsent).
		ue.MayHaveActed = rd.req.AtMostOnce && last.mayHaveRun()
	}
	length := lengthRefusal(rd, last, ue.MayHaveActed)
	switch {
	case last != nil && last.canceled:
		ue.Status, ue.Type, ue.Code = 499, "canceled", CauseCanceled
		ue.Message = "the request was canceled"
		return ue
	case length != nil && unaskedSkip(rd), length != nil && waitingRefusal(rd):
		// The target that refused the length was not the round's last
		// chance: a target it skipped (cooling down, breaker open), or
		// one that refused with a rate limit, out of quota or paygate's
		// key (cooling down since: waitingRefusal), a larger
		// context as often as not, is only unavailable for a while. Its
		// own 400 told a bot its conversation is too long, and the bot
		// cut it or gave up, where the model that fits it is only
		// unavailable for a while: the client gets that target's 429 or
		// 503 and its Retry-After, as when the round asked no one.
		ue.Err, ue.Class, ue.Provider = length.err, length.cause, length.provider(rd)
		if i := slices.IndexFunc(rd.fails, func(f *failure) bool { return waitsFor(rd, f) }); i >= 0 {
			// The status is the waiting target's.
			ue.Provider = rd.fails[i].provider(rd)
		}
		ue.Type, ue.Status, ue.Code = "upstream_error", http.StatusServiceUnavailable, CauseUnavailable
		if (!unaskedSkip(rd) || allCoolingFromRateLimits(rd)) && (!waitingRefusal(rd) || waitingRateLimited(rd)) {
			ue.Status, ue.Code = http.StatusTooManyRequests, CodeRateLimitExceeded
		}
		ue.RetryAfter = r.retryAfter(rd, ue)
		ue.Message = describe(rd) + ". A target unavailable for a while may take a request this long: send it again after the Retry-After"
		return ue
	case last != nil && last.cause == CauseClientError, length != nil:
		// The provider's own reason reaches the client: a refusal of
		// the request ends the round, and a refusal of its length is
		// what the client can act on once no other target took it,
		// wherever it came in the round (lengthRefusal).
		if length != nil {
			last = length
			ue.Err, ue.Class, ue.Provider = last.err, last.cause, last.provider(rd)
		}
		ue.Status, ue.ContentFilter = last.status, last.cause == CauseClientError && last.contentFilter()
		ue.Type, ue.Code, ue.Message, ue.Param = last.errType, last.errCode, last.errMsg, last.errParam
		if ue.Type == "" {
			ue.Type = "invalid_request_error"
		}
		if last.cause == CauseContextLength && ue.Code == "" {
			ue.Code = CauseContextLength
		}
		if last.cause == CauseRequestTooLarge {
			if ue.Code == "" || isThrottleCode(ue.Code) || ue.Code == "429" {
				// A 429 over a tokens-per-minute limit (overTokenLimit)
				// comes coded as a rate limit (OpenAI's
				// rate_limit_exceeded, LiteLLM's "429"): passed on, a bot
				// that reads the code sent the same request again after
				// a back-off, refused again for ever.
				ue.Code = CodeRequestTooLarge
			}
			if last.plain {
				// An nginx or CDN page says nothing an SDK can show.
				ue.Message = ""
			}
			if ue.Message == "" {
				ue.Message = fmt.Sprintf("provider %s refused the request as too large (HTTP 413): send a smaller body "+
					"(fewer or smaller images or files)", last.provider(rd))
			}
		}
		if ue.Message == "" {
			ue.Message = fmt.Sprintf("provider %s refused the request (HTTP %d)", last.provider(rd), last.status)
		}
		return ue
	case last != nil && last.pathRefused:
		// The provider refused its key on the bot's path, which may be
		// a permission the key lacks: a 403 the SDKs raise as
		// PermissionDeniedError (a 401 would tell the bot its own key is
		// wrong). The provider's text is not passed on: a wrong key's
		// echoes part of the key.
		ue.Status, ue.Type, ue.Code = http.StatusForbidden, "invalid_request_error", CodeUpstreamForbidden
		ue.Message = fmt.Sprintf("provider %s refused paygate's key for this path (HTTP %d): the key lacks the endpoint's "+
			"permission, or is wrong; the operator can check the provider's key", ue.Provider, last.httpStatus)
		return ue
	case last != nil && (allNotFound(rd) || allModelMissing(rd)):
		// Every target was asked and none has it: the model, or the file,
		// batch or other object the path names, does not exist. The
		// client gets the 404 its SDK raises as NotFoundError and does
		// not retry, with the provider's reason, as for a client error.
		ue.Status = http.StatusNotFound
		if last.previousNotFound {
			// OpenAI's own status for it, which the SDKs raise as
			// BadRequestError.
			ue.Status = http.StatusBadRequest
		}
		ue.Type, ue.Code, ue.Message, ue.Param = last.errType, last.errCode, last.errMsg, last.errParam
		if ue.Type == "" {
			ue.Type = "invalid_request_error"
		}
		if last.status != http.StatusNotFound && !last.previousNotFound {
			// A 400 or 403 that said so, sent on as a 404: with
			// OpenAI's code for the model it names.
			ue.Code = CodeModelNotFound
		}
		if last.status == http.StatusForbidden {
			// Not the provider's text: OpenAI's names paygate's project
			// ("Project `proj_…` does not have access to model …").
			ue.Message = fmt.Sprintf("provider %s does not give paygate's key access to the model (HTTP 403), nor does any other "+
				"target serve it; the operator can check the key's models", ue.Provider)
		}
		if ue.Message == "" {
			ue.Message = fmt.Sprintf("provider %s: not found (HTTP %d)", ue.Provider, last.status)
		}
		return ue
	}
	ue.Type = "upstream_error"
	switch {
	case last != nil && last.cause == CauseResponseTooLarge:
		ue.Status, ue.Code = http.StatusBadGateway, CauseResponseTooLarge
		if isChatPath(rd.req.Path) {
			ue.Message = fmt.Sprintf("the answer of provider %s is larger than the %d bytes paygate relays for a non-stream chat completion: "+
				"ask for less (n, max_tokens) or stream it", ue.Provider, r.opts.MaxResponseBytes)
		} else {
			ue.Message = fmt.Sprintf("the JSON answer of provider %s is larger than the %d bytes paygate relays for one: "+
				"ask for less (fewer inputs, a smaller page)", ue.Provider, r.opts.MaxJSONResponseBytes)
		}
		return ue
	case last == nil:
		ue.Status, ue.Code = http.StatusServiceUnavailable, CauseUnavailable
		if allCoolingFromRateLimits(rd) {
			// The same rate limit the round before answered as a 429:
			// still one, while the provider cools down for it.
			ue.Status, ue.Code = http.StatusTooManyRequests, CodeRateLimitExceeded
		}
		ue.RetryAfter, _ = r.clientRetryAfter(rd)
	default:
		ue.Code = last.cause
		switch last.cause {
		case CauseConnectTimeout, CauseFirstByteTimeout, CauseFirstTokenTimeout, CauseIdleTimeout, CauseTotalTimeout, CauseRoundTime:
			ue.Status = http.StatusGatewayTimeout
		case CauseRateLimited, CauseInsufficientQuota:
			ue.Status = http.StatusServiceUnavailable
			if allRateLimited(rd) {
				// The SDKs type a rate limit by its status
				// (RateLimitError) and back off by Retry-After; an
				// overload (503, 529) or an account out of money stays
				// a 503.
				ue.Status, ue.Code = http.StatusTooManyRequests, CodeRateLimitExceeded
			}
			ue.RetryAfter = r.retryAfter(rd, ue)
		default:
			ue.Status = http.StatusBadGateway
		}
	}
	ue.Message = describe(rd)
	return ue
}

// CodeRequestTooLarge is the code of the 413 a client gets when the last
// provider refused the request's size without an error code of its own.
const CodeRequestTooLarge = "request_too_large"

// CodeModelNotFound is the code of the 404 a client gets when every target
// said the model does not exist, one of them with a 400 or 403
// (allModelMissing), as OpenAI's own 404 for an unknown model says it.
const CodeModelNotFound = "model_not_found"

// CodeUpstreamForbidden is the code of the 403 a client gets when the last
// provider refused its key on a forwarded path (failure.pathRefused).
const CodeUpstreamForbidden = "upstream_forbidden"

// CodeRateLimitExceeded is the code of the 429 a client gets when every
// attempt of the round was rate limited, as OpenAI's own 429 says it.
const CodeRateLimitExceeded = "rate_limit_exceeded"

// lengthRefusal is the refusal of the request's length (a context length,
// a 413) that names the round's status: the last one, wherever it came in
// the round. A target that failed after it without a wait to tell (a
// 500, a provider silent, a model it does not serve) did not take the
// request either, and a bot told only of that retried a conversation the
// refusing model will refuse again, where it could have cut it (README:
// the provider's 400 "once no other target takes it"). None when the
// round ended on a failure that names its status itself (a cancel, a
// refusal of the request, an answer too large, a call sent at most once
// that the provider may have acted on, the round's time spent) or left a
// target unasked for its attempt budget.
func lengthRefusal(rd *round, last *failure, mayHaveActed bool) *failure {
	var f *failure
	for _, g := range slices.Backward(rd.fails) {
		if g.cause == CauseContextLength || g.cause == CauseRequestTooLarge {
			f = g
			break
		}
	}
	if f == nil {
		return nil
	}
	if f != last && (last.canceled || last.cause == CauseClientError || last.cause == CauseResponseTooLarge ||
		last.cause == CauseRoundTime || mayHaveActed || rd.unasked) {
		return nil
	}
	return f
}

// waitingRefusal reports a target the round asked that refused with a
// rate limit, as out of quota or paygate's key (cooling down for it:
// decide), and so is unavailable for a while as one the round skipped
// cooling down is (unaskedSkip), that might take the length refused: not
// one whose upstream model refused the round for its context length, nor
// one that said so in words alone, of credit for this request's size or
// of a key on a forwarded path (no cool-down).
func waitingRefusal(rd *round) bool {
	return slices.ContainsFunc(rd.fails, func(f *failure) bool { return waitsFor(rd, f) })
}

// waitingRateLimited reports that each of the round's waitingRefusal
// targets refused with a 429 rate limit.
func waitingRateLimited(rd *round) bool {
	return !slices.ContainsFunc(rd.fails, func(f *failure) bool {
		return waitsFor(rd, f) && (f.cause != CauseRateLimited || f.status != http.StatusTooManyRequests)
	})
}

func waitsFor(rd *round, f *failure) bool {
	switch {
	case f.t == nil:
		return false
	case f.cause == CauseRateLimited:
	case f.accountOutOfMoney():
	case f.cause == CauseMisconfigured && !f.keyInWords && !f.pathRefused:
	default:
		return false
	}
	return !slices.ContainsFunc(rd.tried, func(a Attempt) bool { return a.Model == f.t.model && a.Cause == CauseContextLength })
}

// provider names the provider of f's attempt: its target's, else the
// round's last attempt's ("" before any: a cancel between attempts).
func (f *failure) provider(rd *round) string {
	if f.t != nil {
		return f.t.p.name
	}
	if len(rd.tried) == 0 {
		return ""
	}
	return rd.tried[len(rd.tried)-1].Provider
}

// retryAfter is clientRetryAfter's wait for ue, a 429 or 503, whose
// Provider it makes the provider whose wait that is when the round asked
// it: the wait is what the client acts on, and the provider asked last
// may have asked for an hour where the client is told ten seconds.
func (r *Router) retryAfter(rd *round, ue *UpstreamError) time.Duration {
	d, p := r.clientRetryAfter(rd)
	if p != "" && slices.ContainsFunc(rd.tried, func(a Attempt) bool { return a.Provider == p }) {
		ue.Provider = p
	}
	return d
}

// allRateLimited reports a round whose every attempt was refused with a 429
// rate limit (or an error object that stands for one): not an overload
// (503, 529), not an account out of money (insufficient_quota).
func allRateLimited(rd *round) bool {
	if len(rd.fails) == 0 {
		return false
	}
	for _, f := range rd.fails {
		if f.cause != CauseRateLimited || f.status != http.StatusTooManyRequests {
			return false
		}
	}
	return true
}

// unaskedSkip reports a target the round skipped (cooling down, breaker
// open) and never asked, not even after waiting its cool-down out, that
// might take the length refused: not one whose upstream model refused the
// round for its context length on another provider. The same model has
// the same context wherever it is served (OpenAI's and Azure's gpt-4o, the
// commonest failover), and counted, it turned every too-long conversation
// into a 429 or 503 for as long as the fallback was out (half an hour out
// of quota): the bot retried in vain and never cut it. A 413 is the
// provider's body limit, not the model's: any unasked target counts.
//
// A target passed over because its provider was silent earlier in the
// round (causeSilent) does not count either: the round did ask that
// provider, which did not answer, as when the silent target was its only
// one, whose timeout leaves the refusal after it the round's answer. Such
// a skip has no wait to tell the client: counted, it turned the refusal
// into a 503 with a 1 s Retry-After, and each retry waited out
// first_byte to end the same way.
func unaskedSkip(rd *round) bool {
	for _, s := range rd.skipped {
		if s.cause == causeSilent {
			continue
		}
		if !slices.ContainsFunc(rd.tried, func(a Attempt) bool {
			return a.Model == s.t.model && (a.Provider == s.t.p.name || a.Cause == CauseContextLength)
		}) {
			return true
		}
	}
	return false
}

// allCoolingFromRateLimits reports a round that asked no one because every
// target was cooling down after a 429.
func allCoolingFromRateLimits(rd *round) bool {
	if len(rd.skipped) == 0 {
		return false
	}
	for _, s := range rd.skipped {
		if !s.limited {
			return false
		}
	}
	return true
}

// clientRetryAfter is the Retry-After of a 429 or 503 the round ends with:
// the shortest wait among the round's providers, since a retry that soon
// finds one of them willing again, and none sooner. A provider's wait is
// the longer of its cool-down left and its open breaker's cool-down left;
// a Retry-After it sent is in its cool-down (decide puts every
// Retry-After there), as is a back-off. It used to be the last provider's Retry-After whenever it sent
// one: a asking for 10 s and b, asked last, for an hour told the client an
// hour. At least a second, the least a Retry-After says in whole seconds.
// It returns the provider whose wait that is too ("" for none).
//
// Every provider the round asked that refused it with a rate limit counts,
// even with no wait left: one that said "Retry-After: 0" (or an HTTP-date
// already past, common with a second's resolution and a little clock
// skew), or whose back-off ran out while the round went on, takes requests
// again at once, and the client is told the 1 s floor, not another
// provider's hour. A provider that failed otherwise (a 500, a timeout) and
// is not cooling down counts for nothing: it asked for no wait, nor is it
// known to be willing.
func (r *Router) clientRetryAfter(rd *round) (time.Duration, string) {
	now := r.opts.Now()
	var wait time.Duration
	var of string
	found := false
	for _, p := range r.providers {
		limited := slices.ContainsFunc(rd.tried, func(a Attempt) bool {
			return a.Provider == p.name && a.Cause == CauseRateLimited
		})
		if !limited && !slices.ContainsFunc(rd.tried, func(a Attempt) bool { return a.Provider == p.name }) &&
			!slices.ContainsFunc(rd.skipped, func(s skip) bool { return s.t.p == p }) {
			continue
		}
		d := p.breakerLeft()
		if until, _, cooling := p.cooling(now); cooling {
			d = max(d, until.Sub(now))
		}
		// A limit on the model of a target of p's (its free models'): p
		// takes this round's request when the soonest of its targets
		// the round passed over or was refused by with a rate limit
		// takes it, at once from one without a limit of its own. The
		// longest told the bot to wait for a free model's daily reset
		// while p's paid target behind it asked for seconds. A target
		// that refused otherwise (the conversation's length) counts for
		// nothing, as a provider does.
		targetLeft, seen := time.Duration(0), false
		for _, t := range rd.model.targets {
			if t.p != p || !slices.ContainsFunc(rd.skipped, func(s skip) bool { return s.t == t }) &&
				!slices.ContainsFunc(rd.tried, func(a Attempt) bool {
					return a.Provider == p.name && a.Model == t.model && a.Cause == CauseRateLimited
				}) {
				continue
			}
			left := time.Duration(0)
			if until, cooling := t.cooling(now); cooling {
				left = until.Sub(now)
			}
			if !seen || left < targetLeft {
				targetLeft, seen = left, true
			}
		}
		d = max(d, targetLeft)
		if d <= 0 && !limited {
			continue
		}
		if !found || d < wait {
			wait, of, found = d, p.name, true
		}
	}
	return max(wait, time.Second), of
}

// allNotFound reports a round whose every attempt was answered 404 (or an
// error object that stands for one, or a 400 previous_response_not_found)
// and that asked every target: a target
// cooling down or with its breaker open, or one the round's budget ran out
// before (failover.max_attempts; the round's time leaves its own failure),
// might have had what the others had not, so such a round is no proof
// that nothing exists.
func allNotFound(rd *round) bool {
	if len(rd.fails) == 0 || len(rd.skipped) > 0 || rd.unasked {
		return false
	}
	for _, f := range rd.fails {
		if f.cause != CauseModelNotFound || f.status != http.StatusNotFound && !f.previousNotFound {
			return false
		}
	}
	return true
}

// allModelMissing reports a round that asked every target (as
// allNotFound) and was told by each that the model does not exist: a 404,
// or a 400 or 403 that says so (OpenAI's 403 model_not_found for a
// project key not allowed the model, DeepSeek's 400 "Model Not Exist";
// causeOf), none a Responses conversation's (previousNotFound) or a
// forwarded path's refused key (pathRefused, whose round ends 403). No
// target serves the model, as when each answered 404: the client gets
// the 404 model_not_found its SDK raises as NotFoundError, where a 502
// had it retry a model no target serves.
func allModelMissing(rd *round) bool {
	if len(rd.fails) == 0 || len(rd.skipped) > 0 || rd.unasked {
		return false
	}
	for _, f := range rd.fails {
		if f.cause != CauseModelNotFound || f.previousNotFound || f.pathRefused {
			return false
		}
	}
	return true
}

// describe names each provider tried or skipped with its causes, e.g.
// "no provider answered: a: upstream_server_error (HTTP 500) x2; b:
// upstream_first_byte_timeout", then the round's notes (a redirect's
// target).
func describe(rd *round) string {
	var b strings.Builder
	b.WriteString("no provider answered")
	sep := ": "
	for i := 0; i < len(rd.tried); {
		j := i + 1
		for j < len(rd.tried) && rd.tried[j].Provider == rd.tried[i].Provider &&
			rd.tried[j].Cause == rd.tried[i].Cause && rd.tried[j].Status == rd.tried[i].Status {
			j++
		}
		at := rd.tried[i]
		b.WriteString(sep)
		sep = "; "
		fmt.Fprintf(&b, "%s: %s", at.Provider, at.Cause)
		if at.Status != 0 {
			fmt.Fprintf(&b, " (HTTP %d)", at.Status)
		}
		if j-i > 1 {
			fmt.Fprintf(&b, " x%d", j-i)
		}
		i = j
	}
	for _, s := range rd.skipped {
		b.WriteString(sep)
		sep = "; "
		fmt.Fprintf(&b, "%s: skipped (%s)", s.t.p.name, s.cause)
	}
	if rd.unasked {
		b.WriteString(sep)
		b.WriteString("failover.max_attempts spent before every target was asked")
	}
	for _, n := range rd.notes {
		b.WriteString(". ")
		b.WriteString(n)
	}
	return b.String()
}

// countedAttempt is r.attempt, counted in the target's sort key
// (target.waited) while it is out when the model is lowest-latency. The
// count ends in a defer: an attempt that panics (its handler recovers it)
// left it up, and the target's key grew with the clock from then on, so it
// sorted behind every other target until paygate restarted. So does the
// breaker's turn the attempt holds (done, from provider.allow), given back
// as neither way when the attempt panics: a half-open breaker's probe that
// panicked kept its one turn, and the provider stayed "breaker probe in
// flight" for every round until an operator reset it.
func (r *Router) countedAttempt(rd *round, t *target, send []byte, roundLeft, headWait, spent time.Duration, done func(error)) (*Response, *failure) {
	k, counted, returned := 0, false, false
	if rd.model.strategy == StrategyLowestLatency && generation(rd.req) {
		k, counted = latencyKind(rd.stream), true
		t.beginWait(k, r.opts.Now())
	}
	defer func() {
		if counted {
			t.endWait(k)
		}
		if !returned {
			t.p.report(rd.ctx, done, errNeutral)
		}
	}()
	resp, f := r.attempt(rd.ctx, t, rd.req, send, roundLeft, headWait, spent)
	returned = true
	return resp, f
}
