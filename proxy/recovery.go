package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/sse"
)

// Outcomes of a stream that broke after its first byte, the outcome label
// of paygate_stream_recoveries_total.
const (
	recoveryRecovered   = "recovered"           // the client got the whole answer
	recoveryDiverged    = "diverged"            // the new answer did not match what was sent
	recoveryPartialCall = "partial_tool_call"   // the client had part of a call no answer repeats
	recoveryOpaque      = "unmatchable_content" // the client had content parts, audio or an image no answer can be matched against
	recoveryBudget      = "budget_spent"        // failover.recovery.max_attempts or window
	recoveryOff         = "off"                 // failover.recovery.max_attempts: -1
	recoveryNoProvider  = "no_provider"         // no other provider could take the round
	recoveryChoices     = "several_choices"     // n above 1: the choices' texts cannot be told apart
	recoveryClientGone  = "client_gone"         // the client hung up while the break was being recovered
	recoveryTooLong     = "too_long"            // the client had more than maxSentLog bytes of events, or maxRoundCalls tool calls, before the cut
)

// tooLongWhy says why a stream cut after more than maxSentLog bytes of
// events is not recovered: what the client has is not kept (sentLog).
const tooLongWhy = "the answer already sent is too long to be continued"

// tooManyCallsWhy says why a stream whose client was sent more than
// maxRoundCalls tool calls is not recovered (readSent).
const tooManyCallsWhy = "the answer already sent has too many tool calls to be continued"

// opaqueWhy says why a stream whose client received content parts, audio
// or an image is not recovered: a fresh answer would send them again (SPEC
// 5), and paygate cannot tell which of its parts the client already has.
const opaqueWhy = "the client already received content parts, audio or an image, which no new answer can be matched against"

// recoveries counts a turn's stream recoveries against failover.recovery
// (SPEC 5, after the first byte): a flapping provider cannot stretch a turn
// without bound. Each recovery round is bounded by failover's own
// max_round_time and the target's timeouts besides.
type recoveries struct {
	limit config.Recovery
	n     int
	first time.Time
}

// take spends one recovery at now, or says why none is left and the
// outcome to count.
func (r *recoveries) take(now time.Time) (why, outcome string) {
	if r.limit.MaxAttempts < 0 {
		return "stream recovery is off", recoveryOff
	}
	if r.n == 0 {
		r.first = now
	}
	switch {
	case r.n >= r.limit.MaxAttempts:
		return fmt.Sprintf("recovery budget spent (%d attempts)", r.limit.MaxAttempts), recoveryBudget
	case now.Sub(r.first) > r.limit.Window.D():
		return fmt.Sprintf("recovery budget spent (%s)", r.limit.Window.D()), recoveryBudget
	}
	r.n++
	return "", ""
}

// countRecovery records how a broken stream ended, by the cause of its
// first break.
func (s *Server) countRecovery(first *failover.StreamError, outcome string) {
	cause := "unknown"
	if first != nil {
		cause = first.Cause
	}
	s.metrics.recoveries.WithLabelValues(cause, outcome).Inc()
}

// clientLeft reports whether r's client hung up: its context is done, and
// not by the drain deadline (whose client is still there, and is told).
func clientLeft(r *http.Request) bool {
	return r.Context().Err() != nil && !shutDown(r)
}

// recoveryAbandoned counts and logs a recovery of first that ended because
// the client hung up, when it did (clientLeft): nothing failed for want of
// a provider, and there is no one to send an error to. It reports whether
// the stream is over for that reason.
func (s *Server) recoveryAbandoned(r *http.Request, first *failover.StreamError, err error) bool {
	if first == nil || !clientLeft(r) {
		return false
	}
	s.countRecovery(first, recoveryClientGone)
	s.log.Info("stream recovery ended: the client hung up", "request_id", reqInfo(r).id,
		"cause", first.Cause, "err", err)
	return true
}

// endUnrecovered ends a stream whose break could not be recovered: it counts
// the outcome and sends the client the error naming the first break.
func (s *Server) endUnrecovered(sw *sse.Writer, r *http.Request, first *failover.StreamError, outcome, why string) {
	s.countRecovery(first, outcome)
	s.endStreamWithError(sw, r, unrecovered(first, why))
}

// unrecovered is the error a client gets when a cut stream could not be
// recovered: it names the original cut (its provider and cause), never a
// later attempt's failure, and says why recovery stopped.
func unrecovered(first *failover.StreamError, why string) error {
	if first == nil {
		return fmt.Errorf("stream not recovered: %s", why)
	}
	return &unrecoveredError{first: first, why: why}
}

// unrecoveredError is unrecovered's error: the first cut (errors.As finds
// it) and why it was not recovered, which the client is told
// (endStreamWithError) beside the cut's fixed reason.
type unrecoveredError struct {
	first *failover.StreamError
	why   string
}

func (e *unrecoveredError) Error() string { return e.first.Error() + "; not recovered: " + e.why }
func (e *unrecoveredError) Unwrap() error { return e.first }

// refusedRecovery is a failed recovery round as a refused stream, when the
// provider asked to finish the answer refused the request itself (a content
// filter, failover.UpstreamError.Refused): the client gets that provider's
// reason, as endRefused sends it, not "not recovered". Nil otherwise.
func refusedRecovery(err error) *failover.StreamError {
	var ue *failover.UpstreamError
	if !errors.As(err, &ue) || !ue.Refused() {
		return nil
	}
	return &failover.StreamError{Provider: ue.Provider, Cause: failover.CauseClientError, Err: ue, Class: ue.Class,
		Status: ue.Status, Type: ue.Type, Code: ue.Code, Message: ue.Message, Param: ue.Param}
}
