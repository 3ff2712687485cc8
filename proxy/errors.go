package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/interceptors"
	"github.com/paygate/paygate/internal/jsonstr"
)

// apiError is an OpenAI-style error: the status and the body's fields.
type apiError struct {
	Status  int
	Type    string
	Code    string
	Param   string
	Message string
	// RetryAfter, when positive, is sent as a Retry-After header: every
	// target is rate limited or cooling down for about that long.
	RetryAfter time.Duration
	// NoRetry: a retry of the same request cannot mend it (a refund WeChat
	// Pay refused: the retry finds the confirmation used, and the bot is
	// told "already used" instead of why), or may do harm (a batch the
	// provider may have made already). Sent as x-should-retry: false,
	// which the OpenAI SDKs obey.
	NoRetry bool
	// Refund, when set, is the refund object (payments.RefundView) the
	// error concerns, sent as the error's "refund" member: where the
	// refund stands, its status as a confirm's answer gives it, for a bot
	// to branch on rather than parse the message. It is in the error
	// object, which the OpenAI SDKs hand the bot (Python's body, Node's
	// error), not beside it, which they drop.
	Refund json.RawMessage
	// Paygate, when set, is the paygate object (SPEC 2.3) of a turn whose
	// payment calls ran before it failed (turn.fail), sent as the error's
	// "paygate" member: the order a call made reaches the bot, payment
	// parameters and all, with the error that ends the turn. It is in the
	// error object as Refund is: beside it, where a chat.completion
	// carries paygate, the SDKs drop it (Node keeps err.error, Python's
	// e.body is the error object, go-openai's APIError reads its own
	// fields), and a bot saw it only by reading the raw response.
	Paygate json.RawMessage
}

// maxSDKWait is the longest Retry-After an SDK is left to wait out inside
// the bot's request. Longer, the answer also says x-should-retry: false:
// the OpenAI Node SDK (v6) sleeps out any Retry-After, so a provider
// cooling down 30 minutes (out of quota) kept the bot's user waiting an
// hour, over two retries that could not succeed; the Python SDK ignores a
// Retry-After over 60 s. The header stays, for a client that schedules.
const maxSDKWait = time.Minute

func (e *apiError) Error() string { return e.Message }

func badRequest(msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Message: msg}
}

// requestError is the 400 of a body the interceptors refused (err wraps
// interceptors.ErrBadRequest), its message prefix and err's text, and its
// param the member err names (interceptors.ParamOf), as OpenAI's errors
// name it: the SDKs hand it to the bot as the error's param.
func requestError(prefix string, err error) *apiError {
	e := badRequest(prefix + err.Error())
	e.Param = interceptors.ParamOf(err)
	e.Code = interceptors.CodeOf(err)
	return e
}

// errorJSON renders {"error":{…}} exactly as OpenAI does, so SDKs raise their
// usual typed errors. Messages carry client and upstream text (model names,
// paths, provider error bodies), so every string goes through the JSON
// encoder below: the body must parse whatever bytes they hold.
func errorJSON(e *apiError) []byte {
	b := make([]byte, 0, 128+len(e.Message)+len(e.Refund)+len(e.Paygate))
	b = append(b, `{"error":{"message":`...)
	b = jsonstr.Append(b, e.Message)
	b = append(b, `,"type":`...)
	b = jsonstr.Append(b, e.Type)
	b = append(b, `,"param":`...)
	b = appendNullable(b, e.Param)
	b = append(b, `,"code":`...)
	b = appendNullable(b, e.Code)
	if len(e.Refund) > 0 {
		b = append(b, `,"refund":`...)
		b = append(b, e.Refund...)
	}
	if len(e.Paygate) > 0 {
		b = append(b, `,"paygate":`...)
		b = append(b, e.Paygate...)
	}
	return append(b, "}}"...)
}

func appendNullable(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return jsonstr.Append(b, s)
}

// writeError sends e as the whole response.
func writeError(w http.ResponseWriter, e *apiError) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if e.RetryAfter > 0 || e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable {
		// A 429 or 503 always says when to come back (whole seconds, at
		// least 1): SDKs back off by it.
		h.Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(e.RetryAfter.Seconds())))))
	}
	if e.NoRetry || e.RetryAfter > maxSDKWait {
		h.Set("X-Should-Retry", "false")
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(errorJSON(e))
}

// ErrShuttingDown is the cause with which the server's requests still in
// flight are cancelled when the drain of a shutdown (server.shutdown_timeout)
// is nearly spent (cmd/paygate's serve). A request that ends on it is told
// so (shutDown), where one whose client left ends in silence: a stream
// with an error event, an answer not begun with a 503.
var ErrShuttingDown = errors.New("paygate is shutting down")

// CutReserve is the part of a drain of budget (server.shutdown_timeout)
// kept for the requests still in flight to end on being cancelled
// (ErrShuttingDown): a quarter of it, at most 250 ms. Once it is spent
// the connections still open are closed, so what such a request does
// before its answer (approvalCut's read) must fit in it.
func CutReserve(budget time.Duration) time.Duration {
	return min(250*time.Millisecond, budget/4)
}

// shutDown reports whether r's context was ended by ErrShuttingDown.
func shutDown(r *http.Request) bool {
	ctx := r.Context()
	return ctx.Err() != nil && errors.Is(context.Cause(ctx), ErrShuttingDown)
}

// shutdownError is the error of a request the drain deadline ended, with
// status for an answer not begun (the client may send it again at once:
// new connections reach another replica).
func shutdownError(status int, msg string) *apiError {
	return &apiError{Status: status, Type: "server_error", Code: "server_shutdown", Message: msg}
}

// drainEnded reports whether err is the cancel of a call the drain's
// deadline ended (shutDown; the Redis driver passes it on as it is): not
// a failure, and the client is told so (drainUnfinished, adminDrainEnded).
func drainEnded(r *http.Request, err error) bool {
	return errors.Is(err, context.Canceled) && shutDown(r)
}

// drainUnfinished is the 503 of a bot's request the drain's deadline ended
// before its answer began, which may be sent again at once.
func drainUnfinished() *apiError {
	return shutdownError(http.StatusServiceUnavailable,
		"paygate: the server is shutting down (server.shutdown_timeout passed) and did not finish this request; send it again")
}

// upstreamError is what the client gets for an error from a turn: toAPIError
// with the secrets masked (redacted).
func (s *Server) upstreamError(err error) *apiError {
	return s.redacted(toAPIError(err))
}

// redacted returns a copy of e whose strings have the known secrets masked:
// the config's (provider keys and key headers, client keys, tokens;
// config.Secrets) and anything a "Bearer" precedes, by the log's redactor.
// An error paygate passes on carries upstream text (a provider's error
// message, type and code, up to 512 bytes of a non-JSON error body (its
// secrets masked before that cut: failover.errorText), an
// in-stream error object, Go's error text of a failed attempt), and
// providers, their proxies and aggregators quote the request's
// Authorization header or key in it: that text must not hand the bot the
// provider's key. Every error built from upstream text goes through here
// before it is written (failTurn, the stream's error events); a provider's
// successful answers are never touched.
func (s *Server) redacted(e *apiError) *apiError {
	c := *e
	for _, f := range []*string{&c.Message, &c.Type, &c.Code, &c.Param} {
		*f = s.redact.String(*f)
	}
	return &c
}

// toAPIError maps any error from a turn to what the client should see,
// upstream text as it came: the client gets it through upstreamError.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var ue *failover.UpstreamError
	if errors.As(err, &ue) {
		t := ue.Type
		if t == "" {
			t = "upstream_error"
		}
		// The SDKs retry a 5xx on their own; told not to where a retry
		// does harm: a call the provider may have acted on, not to be
		// sent again unchecked (failover.UpstreamError.MayHaveActed), and
		// an answer over paygate's cap, which the same request would
		// only get, and be billed for, again.
		return &apiError{Status: ue.Status, Type: t, Code: ue.Code, Param: ue.Param, Message: ue.Message, RetryAfter: ue.RetryAfter,
			NoRetry: ue.MayHaveActed || ue.Class == failover.CauseResponseTooLarge}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &apiError{Status: http.StatusGatewayTimeout, Type: "upstream_error", Code: "timeout", Message: "paygate: the upstream did not answer in time"}
	}
	return &apiError{Status: http.StatusBadGateway, Type: "upstream_error", Message: "paygate: " + err.Error()}
}
