package failover

import (
	"errors"
	"fmt"
	"time"
)

// Causes name why an attempt or a stream failed. They appear in StreamError,
// UpstreamError.Code, logs and metric labels, so they are stable strings.
const (
	CauseConnect           = "upstream_connect_error"      // dial, TLS or reset before headers
	CauseConnectTimeout    = "upstream_connect_timeout"    // dial or TLS handshake timed out
	CauseFirstByteTimeout  = "upstream_first_byte_timeout" // no headers in time
	CauseFirstTokenTimeout = "upstream_first_token_timeout"
	CauseIdleTimeout       = "upstream_idle_timeout"
	CauseTotalTimeout      = "upstream_total_timeout"
	CauseConnectionLost    = "upstream_connection_lost"
	CauseStreamError       = "upstream_stream_error" // an error object in the stream
	CauseMalformed         = "upstream_malformed_response"
	CauseEmptyStream       = "upstream_empty_stream"       // [DONE] before any token
	CauseResponseTooLarge  = "upstream_response_too_large" // a chat completion over Options.MaxResponseBytes, a JSON answer over MaxJSONResponseBytes
	CauseServerError       = "upstream_server_error"       // 5xx
	CauseRateLimited       = "upstream_rate_limited"       // 429, 503, 529, 498 (Groq)
	CauseInsufficientQuota = "upstream_insufficient_quota" // 429 insufficient_quota
	CauseContextLength     = "context_length_exceeded"
	CauseRequestTooLarge   = "upstream_request_too_large" // 413 that is not about the context
	CauseMisconfigured     = "upstream_misconfigured"     // 401, 403
	CauseModelNotFound     = "upstream_model_not_found"
	CauseClientError       = "upstream_client_error" // other 4xx: the client's fault
	CauseUnavailable       = "upstream_unavailable"  // breaker open or cool-down
	CauseRoundTime         = "upstream_round_timeout"
	CauseCanceled          = "canceled" // the caller's context ended
)

// Sentinels carried in StreamError.Err and attempt errors so callers can test
// with errors.Is.
var (
	ErrFirstByteTimeout  = errors.New("no response headers before the first_byte timeout")
	ErrFirstTokenTimeout = errors.New("no first token before the first_token timeout")
	ErrIdleTimeout       = errors.New("no event within the idle timeout")
	ErrTotalTimeout      = errors.New("response not complete within the total timeout")
	ErrConnectionLost    = errors.New("connection ended before the stream was complete")
	ErrUnknownModel      = errors.New("unknown model")
	ErrUnknownProvider   = errors.New("unknown provider")

	// errDoneBeforeFinish: the stream said [DONE] before any event with a
	// finish_reason; it is a lost connection in all but name.
	errDoneBeforeFinish = fmt.Errorf("[DONE] before any finish_reason: %w", ErrConnectionLost)
)

// StreamError ends a stream after its first event reached the caller: the
// round cannot fail over any more. The proxy asks another round for the rest
// (Request.ExcludeProviders naming Provider, Request.Continuation) or, when
// that cannot be done, sends the client an error event naming Cause.
//
// An error object the provider sent in the stream (Cause CauseStreamError)
// is classified as one before the first byte would be: Class is its cause
// and Status, Type, Code and Message its fields. A content filter (Class
// CauseClientError) is Refused: SPEC 5 retries it nowhere, so no other
// provider may be asked to finish the answer, and the provider's reason is
// what the client gets.
type StreamError struct {
	Provider string
	Cause    string
	Err      error

	// Class is the cause the in-stream error object stands for (a Cause
	// constant); "" when the stream ended otherwise.
	Class string
	// Status, Type, Code, Message and Param are that error object's: the
	// status its code stands for and the provider's own fields.
	Status              int
	Type, Code, Message string
	Param               string // "": none (null)

	// obj is the in-stream error object's failure (nil when the stream
	// ended otherwise), for the policy it stands for at the stream's end
	// (Response.finish), as before the first byte (Router.decide).
	obj *failure
}

// Refused reports a stream the provider ended by refusing the request
// itself (a content filter, a bad request): no provider would answer it
// differently, so it is not recovered elsewhere.
func (e *StreamError) Refused() bool { return e.Class == CauseClientError }

func (e *StreamError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("provider %s: %s", e.Provider, e.Cause)
	}
	return fmt.Sprintf("provider %s: %s: %v", e.Provider, e.Cause, e.Err)
}

func (e *StreamError) Unwrap() error { return e.Err }

// Reason says in fixed words why the stream ended, for the client: never
// Err's text, which for a lost connection is Go's read error naming
// paygate's and the provider's IP addresses and ports (Error, for the
// log, keeps it). An error object the provider sent is quoted (Status,
// Code, Message), as the provider's own reason.
func (e *StreamError) Reason() string {
	switch e.Cause {
	case CauseConnectionLost:
		if errors.Is(e.Err, errDoneBeforeFinish) {
			return "the provider ended the stream ([DONE]) before its finish_reason"
		}
		return "the connection to the provider was lost"
	case CauseStreamError:
		if e.Message == "" {
			return fmt.Sprintf("the provider sent an error (status %d, code %q)", e.Status, e.Code)
		}
		return fmt.Sprintf("the provider sent an error (status %d, code %q): %s", e.Status, e.Code, e.Message)
	case CauseIdleTimeout:
		return "the provider sent nothing within the idle timeout"
	case CauseTotalTimeout:
		return "the answer was not complete within the total timeout"
	case CauseRoundTime:
		return "the round's time (failover.max_round_time) was spent"
	case CauseFirstByteTimeout, CauseFirstTokenTimeout:
		return "the provider did not answer in time"
	case CauseMalformed:
		return "the provider's stream was malformed"
	case CauseResponseTooLarge:
		return "the provider's answer was too large"
	case CauseCanceled:
		return "the request was canceled"
	}
	return "the stream failed"
}

// UpstreamError is Open's error when no target answered acceptably. Its fields
// are what the client gets as OpenAI error JSON.
type UpstreamError struct {
	// Status is the HTTP status for the client: the provider's own 4xx for a
	// client error no other target would answer differently (content filter,
	// bad request, context length or 413 wherever it came in the round,
	// with no target that might take it skipped or refusing for a while:
	// lengthRefusal, unaskedSkip, waitingRefusal); 404 when every target was asked and
	// answered 404, or said the model does not exist with a 400 or 403
	// (allModelMissing; code model_not_found) (400 when none holds the Responses request's
	// previous_response_id); 429 when every attempt was rate limited with a
	// 429; 502, 503 or 504 otherwise.
	Status int
	// Type, Code, Message and Param are the OpenAI error fields. For a
	// provider's own 4xx they are the provider's; otherwise Code is a Cause,
	// Message names the cause per provider and Param is empty (null).
	Type, Code, Message, Param string
	// Attempts counts upstream attempts in the round.
	Attempts int
	// RetryAfter is how long the client had better wait, set (at least a
	// second) on every 429 and 503: the provider's Retry-After, else the
	// shortest cool-down, back-off or breaker cool-down left among the
	// round's providers.
	RetryAfter time.Duration
	// Tried lists each attempt, for accounting and logs.
	Tried []Attempt
	// Provider names the provider whose error the client gets
	// (X-Paygate-Provider): the one its status and message are from,
	// which is not always the one asked last (a refusal of the length
	// wins over a 500 after it; a 429's or 503's Retry-After is the
	// provider's whose wait is shortest, when the round asked it; a 429
	// or 503 over a refusal of the length whose waiting target the round
	// did not ask names the first it asked that refused for a while, else
	// the one that refused the length). "" when the round asked no one.
	Provider string
	// Err is the last attempt's underlying error, if any.
	Err error
	// Class is the cause of the failure that ended the round (a Cause
	// constant); "" when no attempt failed (every target skipped).
	Class string
	// ContentFilter: the round ended with a content filter's refusal
	// (Refused; an error that names one, or flagged input), which no
	// model is asked again (SPEC 5), where another refusal (a model that
	// takes no tools) may be the model's own.
	ContentFilter bool
	// MayHaveActed: the round was of a Request.AtMostOnce call (a batch, a
	// file upload) and its last provider may have acted on it (a 5xx, a
	// timeout, a connection lost once the request was sent), so it was
	// sent no further. The client must not send it again unchecked
	// either: the proxy answers it with x-should-retry: false, which the
	// OpenAI SDKs obey where they would retry a 5xx on their own.
	MayHaveActed bool
}

// Refused reports a round a provider ended by refusing the request itself
// (a content filter, a bad request): no target would answer it
// differently, and Type, Code and Message are that provider's reason. A
// stream recovery that ends so ends the client's stream with that reason.
func (e *UpstreamError) Refused() bool { return e.Class == CauseClientError }

func (e *UpstreamError) Error() string {
	return fmt.Sprintf("upstream %d %s: %s", e.Status, e.Code, e.Message)
}

func (e *UpstreamError) Unwrap() error { return e.Err }
