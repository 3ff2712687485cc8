package failover

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/jsonscan"
	"github.com/paygate/paygate/sse"
)

// classifyHTTP turns a non-2xx upstream answer into a failure: the cause
// decides the policy, the provider's error fields are kept for the client.
func classifyHTTP(status int, h http.Header, body []byte, now time.Time) *failure {
	f := &failure{status: status, httpStatus: status}
	if status >= 300 && status < 400 {
		// A redirect's body is a page for browsers; what it says is where
		// the provider's base_url should have pointed.
		f.redirect = true
		f.errMsg = redirectMessage(status, h.Get("Location")) + ": check its base_url (http or https, a trailing slash)"
	} else if status == http.StatusBadRequest && plainToTLS(body) {
		// The provider's port speaks TLS and its base_url says http://:
		// its page (Go's server, nginx's) says so, nothing of the bot's
		// request, which it never read.
		f.toTLS = true
		f.errMsg = "answered that it serves https on that port (HTTP 400): check its base_url (https://, not http://)"
	} else {
		readErrorFields(f, body)
		bodyWait(f, h, body, now)
	}
	// A header's delay wins over the body's (readErrorValue's RetryInfo,
	// rateLimitReset).
	if d, ok := parseRetryAfter(h, now); ok {
		f.retryAfter, f.hasRetry, f.targetLimit = d, true, false
	}
	if status == http.StatusTooManyRequests && f.relayed {
		// The limit of the one upstream serving this target's model
		// (OpenRouter's "Provider returned error"), whose other models
		// other upstreams serve: the target waits, not its provider.
		f.targetLimit = f.hasRetry
	}
	f.cause = causeOf(f)
	return f
}

// bodyWait reads the wait of f, a 429 (or an error object that stands for
// one) with none yet, from its body: OpenRouter's copy of the limit's
// headers (rateLimitReset), else OpenAI's words or its spent x-ratelimit-*
// headers h (spentLimitReset; nil for an error in a 200's body or an
// event, which has none). Such a wait is the target's (targetLimit).
func bodyWait(f *failure, h http.Header, body []byte, now time.Time) {
	if f.status != http.StatusTooManyRequests || f.hasRetry {
		return
	}
	f.retryAfter, f.hasRetry = rateLimitReset(body, now, f.relayed)
	f.freeLimit = f.hasRetry && !f.relayed && freeModelsLimit(f.errMsg)
	if !f.hasRetry {
		f.retryAfter, f.hasRetry = spentLimitReset(h, f.errMsg)
	}
	f.targetLimit = f.hasRetry
}

// eventWait is f, the failure of an error object data holds (nil: none)
// in a 2xx answer's body or an event, with the wait its body names
// (bodyWait), as on a 429's status line: once the model has started,
// OpenRouter answers 200 and sends its errors so, its relayed limits
// too, their wait in metadata.headers. Without it the target was asked
// again after paygate's half-second back-off, refused again, and asked
// each round after.
func (r *Router) eventWait(f *failure, data []byte) *failure {
	if f != nil && f.cause == CauseRateLimited {
		bodyWait(f, nil, data, r.opts.Now())
	}
	return f
}

// plainToTLS reports the answer a TLS port gives a request sent to it in
// plain HTTP: Go's TLS server (and so Caddy and every Go provider) "Client
// sent an HTTP request to an HTTPS server.", nginx and the load balancers
// built on it a page titled "400 The plain HTTP request was sent to HTTPS
// port". The page is the whole body: a JSON error quoting those words
// quotes the bot's own (OpenAI's "Invalid value: '…'"), which is the
// bot's bad request, not the provider's port.
func plainToTLS(body []byte) bool {
	b := bytes.TrimSpace(body)
	return string(b) == "Client sent an HTTP request to an HTTPS server." ||
		bytes.HasPrefix(b, []byte("<")) && bytes.Contains(b, []byte("<title>400 The plain HTTP request was sent to HTTPS port</title>"))
}

// redirectMessage says where a provider's redirect pointed: on the chat
// path, which paygate builds, that its base_url is not the URL it serves at
// (http for https, a missing or extra trailing slash or path part); on a
// forwarded path, that the bot's path was redirected (attempt). The
// Location is shown without its query and fragment, which may carry a
// signature or a key, and cut short.
func redirectMessage(status int, location string) string {
	to := "another URL"
	if location != "" {
		loc, _, _ := strings.Cut(location, "?")
		loc, _, _ = strings.Cut(loc, "#")
		to = string(cutAtRune([]byte(loc), maxPlainErrorText))
	}
	return fmt.Sprintf("answered a redirect (HTTP %d) to %s", status, to)
}

// readErrorFields fills the OpenAI error fields from an error body, which
// may be {"error": {...}}, {"error": "text"} or anything else.
func readErrorFields(f *failure, body []byte) {
	s := unsafeString(body)
	if i := skipSpace(body, 0); i < len(body) && body[i] == '[' {
		// Gemini wraps its error in an array: [{"error": {...}}].
		if first := gjson.Get(s, "0"); first.IsObject() {
			s = first.Raw
		}
	}
	e := gjson.Get(s, "error")
	switch {
	case e.IsObject():
		readErrorValue(f, e)
	case e.Type == gjson.String:
		f.errMsg = e.String()
	default:
		if m := gjson.Get(s, "message"); m.Type == gjson.String {
			f.errMsg = m.String()
		} else if d := m.Get("detail"); m.IsObject() && d.IsArray() {
			f.errMsg = validationDetail(d) // Mistral's 422
		} else if d := gjson.Get(s, "detail"); d.IsArray() {
			f.errMsg = validationDetail(d) // FastAPI's (vLLM's 422)
		} else if len(body) > 0 && !validJSON(unsafeString(body)) {
			// Whole (at most maxErrorBody): the attempt cuts it to
			// maxPlainErrorText once its secrets are masked (errorText).
			f.errMsg = string(body)
			f.plain = true
		}
	}
}

// maxValidationErrors caps how many of a validation error's entries
// validationDetail names.
const maxValidationErrors = 3

// validationDetail renders pydantic's list of what a request's schema
// refused, the "detail" of Mistral's 422 ({"object": "error", "message":
// {"detail": [{"type": "extra_forbidden", "loc": ["body",
// "max_completion_tokens"], "msg": "Extra inputs are not permitted"}]}})
// and of a FastAPI server's (vLLM), as "max_completion_tokens: Extra
// inputs are not permitted", entries joined by "; ", at most
// maxValidationErrors of them. The bot got "refused the request (HTTP
// 422)" and could not tell which member to drop (drop_fields) or fix. A
// detail that is text (FastAPI's bare {"detail": "Not Found"}) says less
// than paygate's own words, and is not read.
func validationDetail(d gjson.Result) string {
	var out []string
	d.ForEach(func(_, e gjson.Result) bool {
		var loc []string
		e.Get("loc").ForEach(func(_, l gjson.Result) bool {
			if len(loc) > 0 || l.String() != "body" {
				loc = append(loc, l.String())
			}
			return true
		})
		msg := e.Get("msg").String()
		if msg == "" {
			return true
		}
		if len(loc) > 0 {
			msg = strings.Join(loc, ".") + ": " + msg
		}
		out = append(out, msg)
		return len(out) < maxValidationErrors
	})
	return strings.Join(out, "; ")
}

// readErrorValue fills the error fields from an error object. OpenRouter's
// moderation refusal (403, "Your chosen model requires moderation and your
// input was flagged", https://openrouter.ai/docs/api-reference/errors)
// names the flagged input in error.metadata (reasons, flagged_input).
func readErrorValue(f *failure, e gjson.Result) {
	if e.Type == gjson.String {
		f.errMsg = e.String()
		return
	}
	f.errType = e.Get("type").String()
	f.errCode = e.Get("code").String()
	f.errMsg = e.Get("message").String()
	if p := e.Get("param"); p.Type == gjson.String {
		f.errParam = p.Str // SDKs expose it as err.param; bots branch on it
	}
	if md := e.Get("metadata"); md.IsObject() {
		// patterns: the prompt-injection patterns its guardrail found
		// (guardrailBlocked); error_type: OpenRouter's typed code of a
		// provider's error, content_policy_violation for a content
		// filter's, whose code is only its status (a 400), and refusal
		// for a model's refusal its provider sent as an error (a 403,
		// openRouterRefusal).
		et := md.Get("error_type").Str
		f.flagged = md.Get("reasons").Exists() || md.Get("flagged_input").Exists() || md.Get("patterns").Exists() ||
			isContentFilter(et) || et == openRouterRefusal
		// provider_name: OpenRouter relays the error of the upstream
		// provider it names (null for its own).
		f.relayed = md.Get("provider_name").Str != ""
		// OpenRouter's 402s for its in-flight spending budget name their
		// case here, not in the code or the words (budgetInFlight).
		f.budget = md.Get("reason").Str
		// limit_source: the spending limit that refused (its key's, a
		// guardrail's or a workspace's budget, the credits).
		f.spendLimit = md.Get("limit_source").Str != ""
		if f.errMsg == openRouterRelayed {
			relayedReason(f, md.Get("raw"))
		}
	}
	e.Get("details").ForEach(func(_, d gjson.Result) bool {
		if d.Get(`@type`).Str == "type.googleapis.com/google.rpc.RetryInfo" {
			// Gemini (its OpenAI-compatible endpoint too) says how long to
			// wait here, sending no Retry-After: read like one, so the
			// provider cools down as long as it asked rather than being
			// retried on paygate's own back-off, too soon.
			f.retryAfter, f.hasRetry = parseRetryDelay(d.Get("retryDelay").Str)
			return true
		}
		// Google's google.rpc.ErrorInfo names why in reason.
		f.badKey = d.Get("reason").Str == "API_KEY_INVALID"
		return !f.badKey
	})
}

// rateLimitReset reads how long a spent rate limit has left from the copy
// of its headers OpenRouter puts in a 429's error.metadata.headers (its
// free models' per-minute and per-day limits; no Retry-After comes):
// X-RateLimit-Reset, in Unix milliseconds, when X-RateLimit-Remaining
// is 0. The wait is capped at maxRetryAfter, as Retry-After is. Those
// limits count OpenRouter's ":free" models only, all of the account's
// together (freeModelsLimit): the wait is that of every ":free" target of
// the provider (failure.freeLimit), not the provider's; its limit on one
// ":free" model in high demand is that target's alone. Without them, when
// relayed (failure.relayed), a Retry-After there is the wait: the one
// OpenRouter copies from the upstream provider of the target's model,
// whose limit it relays, which it may send in the body alone.
func rateLimitReset(body []byte, now time.Time, relayed bool) (time.Duration, bool) {
	h := gjson.GetBytes(body, "error.metadata.headers")
	if !h.IsObject() {
		return 0, false
	}
	var remaining, reset, retryAfter gjson.Result
	h.ForEach(func(k, v gjson.Result) bool {
		switch {
		case strings.EqualFold(k.Str, "X-RateLimit-Remaining"):
			remaining = v
		case strings.EqualFold(k.Str, "X-RateLimit-Reset"):
			reset = v
		case strings.EqualFold(k.Str, "Retry-After"):
			retryAfter = v
		}
		return true
	})
	if strings.TrimSpace(remaining.String()) == "0" {
		if ms, err := strconv.ParseInt(strings.TrimSpace(reset.String()), 10, 64); err == nil && ms > 0 {
			return min(max(time.UnixMilli(ms).Sub(now), 0), maxRetryAfter), true
		}
	}
	if relayed && retryAfter.Exists() {
		return parseRetryAfter(http.Header{"Retry-After": {retryAfter.String()}}, now)
	}
	return 0, false
}

// freeModelsLimit reports OpenRouter's own words for the account's
// free-model limits, which every ":free" model counts toward: "Rate limit
// exceeded: free-models-per-min." and "…: free-models-per-day. Add 10
// credits …". Only the start counts, as for billingMessage. Its limit on
// one ":free" model in high demand comes in the same form (its reset in
// metadata.headers, provider_name null) and is that model's alone: "Rate
// limit exceeded: limit_rpm/qwen/…/…. High demand for qwen/qwen3-coder:free
// on OpenRouter - limited to 8 requests per minute." Taken for the
// account's, one busy free model put every other ":free" model of the
// provider out of every round until its reset.
func freeModelsLimit(msg string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(msg)), "rate limit exceeded: free-models-per-")
}

// spentLimitReset reads how long a rate limit keeps this request out
// from OpenAI's 429 rate_limit_exceeded without a Retry-After: the wait
// its message names ("… Please try again in 1.2s.", tryAgainIn), which
// it says whether or not a limit's headers are spent: a tokens-per-minute
// limit refuses a request larger than what is left ("Limit 30000, Used
// 29500, Requested 1100"), x-ratelimit-remaining-tokens 500, and some of
// its 429s carry no x-ratelimit-* header at all. Read as a 429 without a
// wait, the target was asked again after paygate's own back-off (half a
// second for OpenAI's 18 s), refused again, and the bot told to come back
// in a second. Else its x-ratelimit-* headers:
// x-ratelimit-reset-requests when x-ratelimit-remaining-requests is 0,
// x-ratelimit-reset-tokens when x-ratelimit-remaining-tokens is 0 (the
// longer when both are), each a Go duration ("6m0s", "1.5s", "120ms";
// https://platform.openai.com/docs/guides/rate-limits#rate-limits-in-headers).
// A reset is when the limit is back to its full initial state, and
// requests and tokens come back continuously: this request may pass long
// before, and the reset is an upper bound, cut to maxSpentLimitWait.
// Cooled for a six-minute reset, a target that would have served in
// seconds was out of every round for six minutes, and a bot with no
// other target was told to wait that long. The wait is
// capped at maxRetryAfter, as Retry-After is. OpenAI's limits are each
// model's: the wait is the target's (failure.targetLimit), not the
// provider's. Without the message's wait, a limit not spent says nothing
// of this refusal.
func spentLimitReset(h http.Header, msg string) (time.Duration, bool) {
	if d, ok := tryAgainIn(msg); ok {
		return min(d, maxRetryAfter), true
	}
	var wait time.Duration
	found := false
	for _, kind := range [...]string{"requests", "tokens"} {
		if strings.TrimSpace(h.Get("X-Ratelimit-Remaining-"+kind)) != "0" {
			continue
		}
		d, err := time.ParseDuration(strings.TrimSpace(h.Get("X-Ratelimit-Reset-" + kind)))
		if err != nil || d < 0 {
			continue
		}
		wait, found = max(wait, d), true
	}
	if !found {
		return 0, false
	}
	return min(wait, maxSpentLimitWait), true
}

// maxSpentLimitWait bounds the wait read from a spent limit's full reset
// (spentLimitReset) when OpenAI's message names none: a minute, the window
// of its per-minute limits, in which a spent one is whole again. Past it,
// a target still limited costs one quick 429 a minute; cooled for a longer
// reset, it could stand idle while it would have served.
const maxSpentLimitWait = time.Minute

// tryAgainIn reads the wait OpenAI's rate-limit message names for the
// request it refused, "… Please try again in 1.2s." (a Go duration:
// "6ms", "20s", "6m0s"); anything else is no wait.
func tryAgainIn(msg string) (time.Duration, bool) {
	// Lowered, a message may be longer or shorter than msg (non-ASCII
	// letters): the wait is cut from the lowered text the phrase was
	// found in, which ParseDuration's units read as well.
	const phrase = "try again in "
	lower := strings.ToLower(msg)
	i := strings.Index(lower, phrase)
	if i < 0 {
		return 0, false
	}
	rest := lower[i+len(phrase):]
	if j := strings.IndexAny(rest, " \t\n,;"); j >= 0 {
		rest = rest[:j]
	}
	d, err := time.ParseDuration(strings.TrimSuffix(rest, "."))
	if err != nil || d < 0 {
		return 0, false
	}
	return d, true
}

// openRouterRefusal is OpenRouter's typed code (error.metadata.error_type)
// of a refusal the model's provider reported as an error rather than as
// output, sent with HTTP 403 (its canonical error types,
// https://openrouter.ai/docs/client-sdks/python/components/apierrortype):
// the model declined this conversation, as a content filter does. Read as
// a 403 alone, one refused conversation took OpenRouter out of every
// round for the misconfigured cool-down, for every bot and model, and was
// sent on to the next target.
const openRouterRefusal = "refusal"

// openRouterRelayed is OpenRouter's message for an error its upstream
// provider answered, whose own body it puts in error.metadata.raw.
const openRouterRelayed = "Provider returned error"

// relayedReason makes the reason of an error OpenRouter relayed as
// openRouterRelayed its upstream's own (metadata.raw): the message of the
// error JSON raw holds as a string, or raw's text (plain: masked and cut
// as a body that is not JSON is). Only the message is taken: the status
// and code stay OpenRouter's, but for a code or type that says context
// length (context_length_exceeded), which becomes the code: Groq says
// such a refusal only there ("Please reduce the length of the messages
// or completion."). The class follows the reason: a
// context-length refusal so relayed ended the round as the bot's bad
// request, and the bot got "Provider returned error" and nothing it
// could act on.
func relayedReason(f *failure, raw gjson.Result) {
	if raw.Type != gjson.String || strings.TrimSpace(raw.Str) == "" {
		return
	}
	if !validJSON(raw.Str) {
		f.errMsg, f.plain = raw.Str, true
		return
	}
	inner := &failure{}
	readErrorFields(inner, []byte(raw.Str))
	if inner.errMsg != "" {
		f.errMsg = inner.errMsg
	}
	for _, c := range [...]string{inner.errCode, inner.errType} {
		if strings.Contains(strings.ToLower(c), "context_length") {
			f.errCode = c
			break
		}
	}
}

// parseRetryDelay reads google.rpc.RetryInfo's retryDelay, a protobuf
// Duration in JSON: decimal seconds with an "s" ("53s", "2.463586755s"),
// capped at maxRetryAfter as Retry-After is; anything else is no answer.
func parseRetryDelay(v string) (time.Duration, bool) {
	n, ok := strings.CutSuffix(v, "s")
	if !ok {
		return 0, false
	}
	return delay(n, time.Second)
}

// maxPlainErrorText caps how much of a non-JSON error body (an HTML error
// page, a proxy's text) is kept as the client's error message, its secrets
// masked before the cut (errorText).
const maxPlainErrorText = 512

// cutAtRune returns at most n bytes of b, moved back to a rune boundary so a
// multi-byte character is never split into invalid UTF-8. Bytes that were
// not UTF-8 to begin with are cut at n.
func cutAtRune(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	for i := n; i >= 0 && i > n-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:n]) {
				return b[:i] // the rune starting at i runs past n
			}
			break
		}
	}
	return b[:n]
}

// errorObject reports a failure when data (a JSON body or SSE event) carries
// an error object: a top-level one, whose status comes from its code, else
// its type, else 500 (SPEC 5); an object that is itself the error
// (topLevelError); or, with neither, a choice-level one (see choiceError).
func errorObject(data []byte) *failure {
	// `rror"` also ends the value "error" of finish_reason, "type" and
	// "object": one scan rules out every kind for the common chunk.
	if !mayHoldError(data) {
		if bytes.Contains(data, keyResourceFinish) {
			return choiceError(unsafeString(data))
		}
		return nil
	}
	return errorObjectFound(data)
}

// mayHoldError reports whether data may hold the string "error", a key or
// a value: it holds keyErrorTail, or a \u escape of one of the word's
// bytes ("err\u006fr", which gjson reads as error).
func mayHoldError(data []byte) bool {
	return bytes.Contains(data, keyErrorTail) || jsonscan.ErrorKey.Escapes(data)
}

// errorObjectFound is errorObject of data that may hold an error
// (mayHoldError).
func errorObjectFound(data []byte) *failure {
	s := unsafeString(data)
	e, later := jsonscan.SetMember(s, "error")
	if !e.Exists() || e.Type == gjson.Null || e.Type == gjson.False || emptyError(e) && answerMembers(s) {
		if r := gjson.GetMany(s, "type", "object"); r[0].Str == "error" || r[1].Str == "error" {
			return topLevelError(s)
		}
		return choiceError(s)
	}
	f := &failure{}
	if later {
		readErrorValue(f, e)
	} else {
		readErrorFields(f, data)
	}
	f.status = objectStatus(e, f)
	f.cause = causeOf(f)
	return f
}

// emptyError reports an "error" member that says nothing: {}, "" or [].
// Beside a member that makes the object an answer (answerMembers) it is no
// error (some relays put one on every answer and chunk); alone it still is
// one.
func emptyError(e gjson.Result) bool {
	switch {
	case e.Type == gjson.String:
		return e.Str == ""
	case e.IsObject() || e.IsArray():
		return strings.TrimSpace(e.Raw[1:len(e.Raw)-1]) == ""
	}
	return false
}

// answerMembers reports an object with a member that makes it a chat
// completion or chunk: its choices (even empty: the include_usage chunk
// after the finish, Azure's first chunk), its usage, Azure's
// prompt_filter_results, its id, or an object that is not "error". A relay
// that puts "error":{} on every chunk puts it on those too, and taking them
// for errors ended a stream at its usage chunk (the bot's usage and the
// ledger's tokens lost) or refused Azure's answer before its first byte.
func answerMembers(s string) bool {
	r := gjson.GetMany(s, "choices", "usage", "prompt_filter_results", "id", "object")
	return r[0].Exists() || r[1].Exists() || r[2].Exists() || r[3].Exists() || r[4].Exists() && r[4].Str != "error"
}

// eventError is errorObject for a stream's event: an event named "error"
// is an error whatever its data holds (topLevelError when it has no error
// object). Without the name, a provider's error event with its fields at
// the top level ({"message": …} after "event: error") was relayed to the
// bot as a chunk, unmasked, and the stream then ended as a lost
// connection.
func eventError(ev sse.Event) *failure {
	if string(ev.Name) != "error" {
		return errorObject(ev.Data)
	}
	if f := errorObject(ev.Data); f != nil {
		return f
	}
	return topLevelError(unsafeString(ev.Data))
}

// eventErrorMarked is eventError of an event whose data scanEvent found
// valid and marked m: the marks stand for errorObject's scans.
func eventErrorMarked(ev sse.Event, m eventMarks) *failure {
	if string(ev.Name) == "error" {
		return eventError(ev)
	}
	if m&(markErrorTail|markErrorEscape) == 0 {
		if m&markResourceFinish != 0 {
			return choiceError(unsafeString(ev.Data))
		}
		return nil
	}
	return errorObjectFound(ev.Data)
}

// topLevelError is the failure of an object that is itself the error, its
// message, type and code at the top level rather than in an "error"
// member: vLLM's and other OpenAI-compatible servers' {"object": "error",
// "message", "type", "code": 400} (sent with 200 by some relays, and as a
// stream's event), an event {"type": "error", "message", "code"}, or the
// data of an event named "error". A type "error" names no kind of error
// and is not kept; the status is the code's, or what the code or type
// stand for (objectStatus).
func topLevelError(s string) *failure {
	top := gjson.Parse(s)
	f := &failure{}
	readErrorValue(f, top)
	if f.errType == "error" {
		f.errType = ""
	}
	if f.errMsg == "" {
		f.errMsg = "the provider sent an error without a message"
	}
	f.status = objectStatus(top, f)
	f.cause = causeOf(f)
	return f
}

// answerError reports a failure when data, the whole body of a 2xx JSON
// answer to a request on path, is an error rather than the answer. On the
// chat path that is any error object (errorObject). On a forwarded path an
// "error" member is often part of what the answer describes: OpenAI's
// failed background Response ("object":"response", "status":"failed",
// "error":{code, message}) and failed fine-tuning job come with 200 when a
// bot polls them, and taking them for the provider's failure retried each
// poll, answered 502 and counted it against the provider's breaker for
// every bot. There the body is an error only as an error envelope: an
// "error" (not null) and no "object" or "id" naming a resource (an
// "object" "error" names none: vLLM's error, topLevelError), as
// OpenRouter sends one with 200 once the model has started
// ({"error":{code, message}, "user_id"}); a resource is the answer, its
// choices' errors aside (choiceError: OpenRouter's legacy completions).
func answerError(path string, data []byte) *failure {
	if isChatPath(path) {
		return errorObject(data)
	}
	if !mayHoldError(data) {
		// errorObject's own first test: the body once, not twice. A
		// legacy completion DeepSeek could not finish (its FIM) has no
		// `rror"`, as on the chat path.
		if bytes.Contains(data, keyResourceFinish) {
			return choiceError(unsafeString(data))
		}
		return nil
	}
	s := unsafeString(data)
	if r := gjson.GetMany(s, "object", "id"); r[0].Exists() && r[0].Str != "error" || r[1].Exists() {
		return choiceError(s)
	}
	return errorObject(data)
}

// objectStatus is the HTTP status an error object stands for: its numeric
// code or status (OpenRouter), or a code that is an HTTP error status
// written as a string (LiteLLM's proxy: {"code": "429"}), else by its code
// or type (statusOfCode).
func objectStatus(e gjson.Result, f *failure) int {
	if code := e.Get("code"); code.Type == gjson.Number && code.Int() >= 400 && code.Int() <= 599 {
		return int(code.Int())
	} else if st := e.Get("status"); st.Type == gjson.Number && st.Int() >= 400 && st.Int() <= 599 {
		return int(st.Int())
	} else if n, ok := statusString(code); ok {
		return n
	}
	return statusOfCode(f.errCode, f.errType)
}

// statusString reads a code that is an HTTP error status as a string of
// three digits, 400 to 599. Other numbers in a string are business codes
// (Zhipu's 1301, 1113), read by their meaning (statusOfCode).
func statusString(code gjson.Result) (int, bool) {
	s := code.Str
	if code.Type != gjson.String || len(s) != 3 {
		return 0, false
	}
	n := 0
	for i := 0; i < 3; i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, n >= 400 && n <= 599
}

// resourceFinish is DeepSeek's finish_reason for an answer its inference
// system had no resources to finish.
const resourceFinish = "insufficient_system_resource"

// choiceError reports a failure a provider put on a choice instead of the
// top level: OpenRouter ends a choice whose provider failed with
// finish_reason "error" (native_finish_reason the provider's own reason),
// in a stream without any error object, and in a non-stream 200 gives the
// choice an "error" {code, message}
// (https://openrouter.ai/docs/api-reference/errors); Zhipu ends one whose
// inference failed with finish_reason "network_error"; DeepSeek ends one its
// servers could not finish with finish_reason
// "insufficient_system_resource". Each is an error answer, not a finished
// one: its status is the choice error's code (or what its code or type
// stand for), else 502 (503 for DeepSeek's: overloaded).
func choiceError(s string) *failure {
	var f *failure
	gjson.Get(s, "choices").ForEach(func(_, c gjson.Result) bool {
		// The set one a client reads, after a relay's null one too
		// (SetMember), as at the top level.
		if e, _ := jsonscan.SetMember(c.Raw, "error"); e.Exists() && e.Type != gjson.Null && e.Type != gjson.False {
			f = &failure{}
			readErrorValue(f, e)
			f.status = http.StatusBadGateway
			if e.IsObject() && (f.errCode != "" || f.errType != "") {
				f.status = objectStatus(e, f)
			}
		} else if fr := c.Get("finish_reason"); fr.Type == gjson.String && (fr.Str == "error" || fr.Str == "network_error") {
			f = &failure{status: http.StatusBadGateway, errMsg: "the provider ended the answer with finish_reason " + strconv.Quote(fr.Str)}
		} else if fr.Type == gjson.String && fr.Str == resourceFinish {
			// DeepSeek's inference system ran out of resources and cut
			// the answer (https://api-docs.deepseek.com/api/create-chat-completion):
			// overloaded, as its 503 says, not finished.
			f = &failure{status: http.StatusServiceUnavailable, errMsg: "the provider ended the answer with finish_reason \"" + resourceFinish + "\""}
		} else {
			return true
		}
		if f.errMsg == "" {
			f.errMsg = "the provider reported an error on the choice"
		}
		if nfr := c.Get("native_finish_reason"); nfr.Type == gjson.String && nfr.Str != "" && nfr.Str != "error" {
			f.errMsg += " (native_finish_reason " + nfr.Str + ")"
		}
		f.cause = causeOf(f)
		return false
	})
	return f
}

// statusOfCode maps an error object's code or type to the HTTP status it
// stands for; unknown: 500.
func statusOfCode(code, typ string) int {
	for _, s := range [...]string{code, typ} {
		switch {
		case s == "":
			continue
		case isBilling(s):
			return http.StatusTooManyRequests
		case isContentFilter(s):
			return http.StatusBadRequest
		}
		if isThrottleCode(s) {
			return http.StatusTooManyRequests
		}
		s = strings.ToLower(s)
		switch {
		case strings.Contains(s, "overloaded"):
			return 529
		case strings.Contains(s, "context_length"):
			return http.StatusBadRequest
		case strings.Contains(s, "invalid_api_key"), strings.Contains(s, "authentication"), strings.Contains(s, "unauthorized"):
			return http.StatusUnauthorized
		case strings.Contains(s, "permission"), strings.Contains(s, "forbidden"):
			return http.StatusForbidden
		case strings.Contains(s, "model_not_found"), strings.Contains(s, "not_found"),
			strings.Contains(s, "model_not_exist"), strings.Contains(s, "invalid_model"):
			return http.StatusNotFound
		case strings.Contains(s, "timeout"):
			return http.StatusGatewayTimeout
		case strings.Contains(s, "unavailable"):
			return http.StatusServiceUnavailable
		case strings.Contains(s, "invalid_request"), strings.Contains(s, "bad_request"):
			return http.StatusBadRequest
		}
	}
	return http.StatusInternalServerError
}

// isThrottleCode reports an error code or type that names a rate limit,
// however its words are separated: OpenAI's rate_limit_exceeded,
// Volcengine Ark's (Doubao's) RateLimitExceeded.EndpointRPMExceeded,
// ModelAccountTpmRateLimitExceeded and type TooManyRequests, DashScope's
// (Qwen's) Throttling, Throttling.RateQuota and Throttling.BurstRate and
// their compatible-mode codes limit_requests and limit_burst_rate
// (https://www.alibabacloud.com/help/en/model-studio/error-code). Each
// comes with HTTP 429; in an error event or a 200's body only its words
// say so, and read as an unknown error (a 500) the throttled provider was
// asked again within a quarter second and counted against its breaker.
func isThrottleCode(s string) bool {
	n := strings.ToLower(wordSeparators.Replace(s))
	return strings.Contains(n, "ratelimit") || strings.Contains(n, "toomanyrequests") ||
		strings.HasPrefix(n, "throttling") || n == "limitrequests" || n == "limitburstrate"
}

// causeOf names the failure class of f's status with its error fields.
func causeOf(f *failure) string {
	status := f.status
	lc := strings.ToLower(f.errCode + " " + f.errType)
	switch {
	case status >= 300 && status < 400:
		// A redirect: the provider serves elsewhere than its base_url
		// says (http for https, a trailing slash). paygate follows none
		// (a POST's body and the provider's key must not go where a
		// redirect points) and the bot must never get a 3xx without its
		// Location: the provider is misconfigured, as after 401/403.
		return CauseMisconfigured
	case f.toTLS:
		// An https provider behind an http:// base_url: misconfigured,
		// as after a redirect, until an operator fixes the base_url.
		return CauseMisconfigured
	case status == http.StatusProxyAuthRequired:
		// Only a proxy says 407: the one paygate's HTTP_PROXY names,
		// which wants credentials it was not given (or refused them), on
		// the way to a provider reached over plain http (over https it
		// answers CONNECT: errProxyAuth, read alike). Nothing the bot
		// sent: taken for the bot's error, the round ended without asking the next
		// target and the bot got the proxy's 407 and its HTML page, which
		// its own HTTP client reads as its proxy's. The provider stays
		// out of reach until an operator fixes the proxy setting.
		return CauseMisconfigured
	case status >= 100 && status < 200:
		// Interim answers never get here (the transport reads past
		// them) but an unasked 101 Switching Protocols does: no answer
		// a client could be given, so a malformed one.
		return CauseMalformed
	case status == http.StatusTooManyRequests && relaySaturatedMessage(f.errMsg):
		// A relay's saturated group, whatever code of its channel's it
		// kept (relaySaturated): before the codes are read, since a
		// Zhipu channel's account code (1112, locked) read as paygate's
		// took the relay out for the misconfigured cool-down as a
		// channel's insufficient_quota did for the quota one.
		return CauseRateLimited
	case (isBilling(f.errCode) || isBilling(f.errType)) && throttleMessage(f.errMsg):
		// DashScope's compatible mode says a model's tokens-per-minute
		// limit (Throttling.AllocationQuota) with OpenAI's billing code,
		// insufficient_quota: a throttle that clears within the minute,
		// not an account out of money. As billing it put a Qwen provider
		// out of service for the quota cool-down (half an hour).
		return CauseRateLimited
	case status == http.StatusPaymentRequired && f.budget == budgetInFlight:
		// OpenRouter's in-flight spending budget is full: the estimated
		// cost of the requests running or just settled, not the balance,
		// which is positive. It clears as they settle, and its Retry-After
		// says when (https://openrouter.ai/docs/api-reference/limits):
		// a rate limit on the account's spending, as a 429 is on its
		// requests. As billing, one burst of concurrent requests put the
		// provider out of service for the quota cool-down (30 minutes).
		f.status = http.StatusTooManyRequests
		return CauseRateLimited
	case isFreeTierSpent(f.errCode) || isFreeTierSpent(f.errType):
		// DashScope's free quota of this target's model used up, its
		// account set to use free quotas only: the model's money, each
		// model's quota its own. As a refused key (a 403), every Qwen
		// model was out of every round for the misconfigured cool-down.
		f.modelQuota = true
		return CauseInsufficientQuota
	case isBilling(f.errCode), isBilling(f.errType), status == http.StatusPaymentRequired:
		// The provider account's money, whatever the status it comes with:
		// OpenAI's 429 insufficient_quota, DashScope's 400 Arrearage
		// (https://www.alibabacloud.com/help/en/model-studio/error-code);
		// 402 is how OpenRouter ("Insufficient credits") and DeepSeek
		// ("Insufficient Balance") say the account is out of money.
		f.requestCost = status == http.StatusPaymentRequired && (affordsFewer(f.errMsg) || f.budget == budgetOverWhole)
		return CauseInsufficientQuota
	case status == http.StatusBadRequest && billingMessage(f.errMsg):
		// Anthropic says an account out of credit only in words, with a
		// 400 invalid_request_error: taken for the bot's bad request, it
		// ended the round with the provider's billing text while the next
		// target stood unasked. Words may be the bot's own, quoted back,
		// so they move this round on without cooling the provider down
		// for every bot (decide), as a bad key said in words does.
		f.billingInWords = true
		return CauseInsufficientQuota
	case (status == http.StatusUnauthorized || status == http.StatusForbidden) && (keyLimitMessage(f.errMsg) || f.spendLimit):
		// OpenRouter's key past the credit limit set on it, a one-api
		// or new-api relay key whose quota is used up: the money the
		// key may spend, not a bad key. As a 401 or 403 it told the
		// operator the provider refused its key, who would replace a
		// valid one, and the bot got upstream_misconfigured.
		return CauseInsufficientQuota
	case status >= 400 && status < 500 && isZhipuAccountCode(f.errCode):
		// Zhipu's account inactive, unknown or locked, sent with a 429
		// that no wait fixes: as after a 401, the provider is
		// misconfigured until an operator acts, and the next target
		// answers. As a rate limit it was retried every round, and a
		// 429 never opens the breaker.
		return CauseMisconfigured
	case status >= 400 && status < 500 && f.contentFilter():
		// A content filter refuses this input, whatever the status
		// (OpenRouter's moderation is a 403): no other provider is asked
		// and the provider is not at fault (SPEC 5).
		return CauseClientError
	case status == http.StatusTooManyRequests && overTokenLimit(f.errMsg):
		// OpenAI's 429 for a request larger than the target's
		// tokens-per-minute limit: no wait mends it (Groq says it with a
		// 413). As a rate limit it cooled the whole provider down for
		// every bot and was asked again in vain, and a bot with no other
		// target got a 429 its SDK retried for ever. It is this request's
		// size at this target: a 413, the next target at once.
		f.status = http.StatusRequestEntityTooLarge
		return CauseRequestTooLarge
	case status == http.StatusTooManyRequests, status == http.StatusServiceUnavailable, status == 529, status == groqFlexCapacity:
		return CauseRateLimited
	case status == http.StatusRequestTimeout, status >= 500:
		return CauseServerError
	case status == http.StatusForbidden && isModelNotFound(f):
		// OpenAI refuses a project key one model it is not allowed with a
		// 403 model_not_found ("Project `proj_…` does not have access to
		// model `gpt-4o`"): the target's model, as a 404 is, not a wrong
		// key. As a misconfigured provider it was out of every round, its
		// other models with it, for the cool-down.
		return CauseModelNotFound
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return CauseMisconfigured
	case status == http.StatusBadRequest && isBadKey(f):
		// Gemini's OpenAI-compatible endpoint refuses a bad key with a
		// 400 INVALID_ARGUMENT, reason API_KEY_INVALID, not a 401. The
		// key is paygate's, never the bot's: as after a 401, the provider
		// is misconfigured and the next target answers, and the bot is
		// not told about a key it never sent.
		return CauseMisconfigured
	case status == http.StatusBadRequest && badKeyMessage(f.errMsg):
		// xAI says a bad key only in words ({"code":"Client specified an
		// invalid argument","error":"Incorrect API key provided: xa***yz.
		// …"}). Words may be the bot's own, quoted back, so they move
		// this round on without cooling the provider down for every bot
		// (decide), and the bot is not told about a key it never sent.
		f.keyInWords = true
		return CauseMisconfigured
	case status == http.StatusNotFound:
		return CauseModelNotFound
	case strings.Contains(lc, "context_length"),
		(status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge) && isContextLength(f.errMsg):
		return CauseContextLength
	case status == http.StatusRequestEntityTooLarge:
		// The body's size, refused by the provider or the nginx or CDN in
		// front of it (a multi-MB image): not the model's context. Another
		// provider may take more.
		return CauseRequestTooLarge
	case status == http.StatusBadRequest && isModelNotFound(f):
		// The target's upstream model name is wrong (a typo, a retired
		// slug): the next target may serve the model, as after a 404.
		return CauseModelNotFound
	case status == http.StatusBadRequest && isPreviousResponseNotFound(f):
		// A stored Responses conversation lives on the provider that
		// answered its last turn, which failover may have made any
		// target: this one does not have it, the next may. Not the
		// bot's error until every target was asked (allNotFound).
		f.previousNotFound = true
		return CauseModelNotFound
	default:
		return CauseClientError
	}
}

// isModelNotFound reports an error that says the requested model does not
// exist, which many providers send as a 400: by its code or type
// (model_not_found, ModelNotFound, model_not_exist, Mistral's
// invalid_model) or by its message: OpenAI-compatible servers' "The model
// `x` does not exist or you do not have access to it", DeepSeek's "Model
// Not Exist", SiliconFlow's "Model does not exist", OpenRouter's "x is not
// a valid model ID", Mistral's "Invalid model: x" (whose type,
// invalid_model, is at the top level, where no error object is read),
// or Zhipu's business code 1211 ("模型不存在，请检查模型代码", the model
// does not exist; https://docs.bigmodel.cn/cn/api/api-code). The
// message must name the model before saying it
// does not exist, so that "the tool does not exist for this model" is no
// match; context-length and content-filter refusals are classified before
// it (causeOf).
func isModelNotFound(f *failure) bool {
	if f.errCode == zhipuUnknownModelCode {
		return true
	}
	for _, s := range [...]string{f.errCode, f.errType} {
		if s == "" {
			continue
		}
		s = strings.ToLower(wordSeparators.Replace(s))
		if strings.Contains(s, "modelnotfound") || strings.Contains(s, "modelnotexist") || strings.Contains(s, "invalidmodel") {
			return true
		}
	}
	m := strings.ToLower(f.errMsg)
	if strings.Contains(m, "not a valid model") || strings.HasPrefix(m, "invalid model:") {
		return true
	}
	i := strings.Index(m, "model")
	return i >= 0 && strings.Contains(m[i:], "not exist")
}

// zhipuUnknownModelCode is Zhipu's "model does not exist" business code.
const zhipuUnknownModelCode = "1211"

// isPreviousResponseNotFound reports OpenAI's refusal of a Responses
// request whose previous_response_id the provider does not hold: code
// previous_response_not_found, or, without it, an error on the param
// previous_response_id that says "not found" ("Previous response with id
// 'resp_…' not found."). An id refused as malformed is the bot's error.
func isPreviousResponseNotFound(f *failure) bool {
	return f.errCode == "previous_response_not_found" ||
		f.errParam == "previous_response_id" && strings.Contains(strings.ToLower(f.errMsg), "not found")
}

// isBadKey reports an error that says the provider's API key is not
// valid, by its structured members only: Google's details reason
// API_KEY_INVALID (readErrorValue), or a code or type invalid_api_key (or
// api_key_invalid) however separated.
func isBadKey(f *failure) bool {
	if f.badKey {
		return true
	}
	for _, s := range [...]string{f.errCode, f.errType} {
		if s == "" {
			continue
		}
		s = strings.ToLower(wordSeparators.Replace(s))
		if strings.Contains(s, "invalidapikey") || strings.Contains(s, "apikeyinvalid") {
			return true
		}
	}
	// Never the message: a 400's message may quote the bot's own input
	// ("Invalid value: 'Invalid API key'" for a role so named), and a bot
	// could then cool every provider down for every bot.
	return false
}

// badKeyMessage reports an error message that begins by saying the API key
// is wrong, as OpenAI's, xAI's and Google's do ("Incorrect API key
// provided: …", "Invalid API key…", "API key not valid…"). Only the start
// counts: a message that quotes a bot's value ("Invalid value: 'Invalid API
// key'") is about the bot's request.
func badKeyMessage(msg string) bool {
	m := strings.ToLower(strings.TrimSpace(msg))
	for _, p := range [...]string{"incorrect api key", "invalid api key", "api key not valid"} {
		if strings.HasPrefix(m, p) {
			return true
		}
	}
	return false
}

// billingMessage reports an error message that begins by saying the
// provider account is out of credit, as Anthropic's 400 does ("Your credit
// balance is too low to access the Anthropic API. Please go to Plans &
// Billing to upgrade or purchase credits."). Only the start counts, as for
// badKeyMessage: a message that quotes a bot's value is about the bot's
// request.
func billingMessage(msg string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(msg)), "your credit balance is too low")
}

// OpenRouter's metadata.reason on a 402 of its in-flight spending budget
// (https://openrouter.ai/docs/api-reference/limits#in-flight-spending-budget),
// which holds the estimated cost of the account's paid requests running or
// just settled, a share of its balance: budgetInFlight, the requests
// before this one fill it (limit_source openrouter_in_flight_budget; a
// Retry-After says when they will have settled); budgetOverWhole, this
// request's estimate alone is larger than the whole budget (limit_source
// openrouter_credits), which a smaller request is not, as affordsFewer.
const (
	budgetInFlight  = "in_flight_budget_exhausted"
	budgetOverWhole = "weight_exceeds_budget"
)

// affordsFewer reports OpenRouter's 402 for a request that costs more
// than the credit left buys, which a smaller one would not: "This request
// requires more credits, or fewer max_tokens. You requested up to 65536
// tokens, but can only afford 3919. …" (OpenRouter reserves the
// request's max_tokens, or the model's output cap when none is sent).
// Some tokens affordable: the credit is low, not gone, and the same
// account serves a request with a lower max_tokens or a cheaper model.
// "can only afford 0" is the account out of money.
func affordsFewer(msg string) bool {
	_, rest, ok := strings.Cut(strings.ToLower(msg), "can only afford ")
	if !ok {
		return false
	}
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	n, err := strconv.ParseInt(rest[:i], 10, 64)
	return err == nil && n > 0
}

// overTokenLimit reports a rate limit's message that begins by saying
// the request alone is larger than a tokens-per-minute limit, as OpenAI's
// does ("Request too large for gpt-4o in organization org-… on tokens per
// min (TPM): Limit 30000, Requested 36278. The input or output tokens must
// be reduced in order to run successfully."; Groq's, sent with a 413,
// says "tokens per minute"). Only the start counts, as for billingMessage:
// a limit reached by the requests before ("Rate limit reached for …")
// passes with a wait, and stays a rate limit.
func overTokenLimit(msg string) bool {
	m := strings.ToLower(strings.TrimSpace(msg))
	return strings.HasPrefix(m, "request too large for") && strings.Contains(m, "tokens per min")
}

// keyLimitMessage reports a 401's or 403's message that begins by saying
// the key's spending limit is reached, as OpenRouter's does for a key
// past the credit limit set on it ("Key limit exceeded (monthly limit).
// Manage it using https://openrouter.ai/settings/keys") and for its
// workspace's budget spent ("Workspace monthly budget of $500.00
// exceeded. Contact your workspace admin.",
// https://openrouter.ai/docs/guides/features/workspaces/workspace-budgets),
// and one-api's and new-api's for a relay key whose quota is used up
// ("该令牌额度已用尽", "this key's quota is used up", with no code). Only
// the start counts, as for billingMessage; a 401's or 403's message that
// begins so is the provider's own (OpenRouter's moderation refusal begins
// with its own words too). OpenRouter's other budgets (a guardrail's)
// name their limit_source in the error's metadata (failure.spendLimit).
func keyLimitMessage(msg string) bool {
	m := strings.ToLower(strings.TrimSpace(msg))
	if strings.HasPrefix(m, "workspace ") {
		sentence, _, _ := strings.Cut(m, ". ")
		return strings.Contains(sentence, " budget of ") && strings.HasSuffix(strings.TrimSuffix(sentence, "."), " exceeded")
	}
	return strings.HasPrefix(m, "key limit exceeded") || strings.HasPrefix(m, "该令牌额度已用尽")
}

// throttleMessage reports a billing-coded error whose message says it is
// DashScope's (Model Studio's) throttle: "Allocated quota exceeded, please
// increase your quota limit.", or OpenAI's billing words followed by a
// link to the page of its token limits ("…/model-studio/error-code#token-limit",
// https://help.aliyun.com/zh/model-studio/error-code). Its free tier used
// up ("Free allocated quota exceeded") is no throttle.
func throttleMessage(msg string) bool {
	m := strings.ToLower(strings.TrimSpace(msg))
	return strings.HasPrefix(m, "allocated quota exceeded") || strings.Contains(m, "error-code#token-limit")
}

// relaySaturatedMessage reports one-api's and new-api's (and one-hub's)
// "当前分组上游负载已饱和，请稍后再试" (the group's upstream load is
// saturated, try again later), or its other wordings (relaySaturated),
// at the message's start: the words such a relay writes over the
// message of every 429 it sends on from the last of its channels it tried,
// keeping that channel's type and code (controller/relay.go), so a
// channel's insufficient_quota (one of the relay's upstream accounts out
// of money, while others serve) or a Zhipu channel's account code comes
// with them. The relay account paygate's key spends is refused otherwise,
// with a 403 insufficient_user_quota in its own words ("用户额度不足"),
// never these. As billing, a relay saturated for seconds was out of every
// round for the quota cool-down.
func relaySaturatedMessage(msg string) bool {
	m := strings.TrimSpace(msg)
	return slices.ContainsFunc(relaySaturated, func(w string) bool {
		return len(m) >= len(w) && strings.EqualFold(m[:len(w)], w)
	})
}

// relaySaturated are the words that begin one-api's and new-api's message
// for a 429 of their upstream channels (relaySaturatedMessage), as their
// sources write them: one-api's and new-api's; one-api's first, without
// 上游 ("当前分组负载已饱和，请稍后再试，或升级账户以提升服务质量。",
// songquanpeng/one-api controller/relay.go, and its README's FAQ);
// new-api's English ("The upstream load for the current group is
// saturated. Please try again later or switch to another group.",
// controller's relayGroupUpstreamSaturatedMessage); one-api's English
// ("The current group load is saturated, please try again later", its
// README's FAQ, and the forks that write it over the channel's error,
// its type and code kept) and the forks' with "upstream" ("The current
// group upstream load is saturated, please try again later."). A request
// id is added after them, never before.
var relaySaturated = []string{
	"当前分组上游负载已饱和",
	"当前分组负载已饱和",
	"The upstream load for the current group is saturated",
	"The current group load is saturated",
	"The current group upstream load is saturated",
}

// wordSeparators removes what separates the words of a code or type, so
// that model_not_found, model-not-found and ModelNotFound compare alike.
var wordSeparators = strings.NewReplacer("_", "", "-", "", ".", "", " ", "")

// contentFilter reports a failure whose error names a content filter (see
// isContentFilter) or flagged input: the provider refuses what it was
// asked, not the way it was asked.
func (f *failure) contentFilter() bool {
	return f.flagged || isContentFilter(f.errCode) || isContentFilter(f.errType) || guardrailBlocked(f.errMsg)
}

// guardrailBlocked reports a message that begins as OpenRouter's 403 for
// an input its guardrails block before any model sees it
// (https://openrouter.ai/docs/guides/features/guardrails): a
// sensitive-info or custom content filter ("Request blocked by content
// filter: Social Security number", its label after the colon) or the
// prompt-injection detector ("Request blocked: prompt injection patterns
// detected", the patterns in its metadata). Read as a refused key (a
// 403), an end user who typed a card number or "ignore previous
// instructions" put OpenRouter out of service for every bot for the
// misconfigured cool-down, and the very input the guardrail is there to
// stop went to the next target. Only the start counts, as for
// billingMessage: it is OpenRouter's words, not the bot's.
func guardrailBlocked(msg string) bool {
	m := strings.ToLower(strings.TrimSpace(msg))
	return strings.HasPrefix(m, "request blocked by content filter") || strings.HasPrefix(m, "request blocked: prompt injection")
}

// isBilling reports an error code or type that says the provider account
// is out of money or past its spending cap: OpenAI's insufficient_quota,
// billing_*, credit_balance_exhausted and *_spend_limit_exceeded /
// *_usage_limit_exceeded codes (all sent with 429, none a rate), DashScope's
// Arrearage, Volcengine Ark's AccountOverdueError, insufficient_balance,
// Moonshot's (Kimi's) exceeded_current_quota_error (a 429 for an account
// suspended or out of balance; https://platform.moonshot.cn/docs/api/chat),
// one-api's and new-api's insufficient_user_quota,
// insufficient_token_quota and pre_consume_token_quota_failed (a relay's
// account or key out of quota, with a 403 that read alone says a bad key),
// and Zhipu's business codes 1113 ("account in arrears"), 1304 (the API's
// calls for today used up), 1308 (the plan's usage cap reached until a
// reset hours away), 1309 (its GLM Coding Plan expired) and 1310 (its
// weekly or monthly cap spent), each with HTTP 429
// (https://docs.bigmodel.cn/cn/api/api-code). A rate limit would retry the
// provider after a short back-off on every round; billing cools it down
// until an operator acts.
func isBilling(s string) bool {
	switch s {
	case zhipuArrearsCode, "1304", "1308", "1309", "1310":
		return true
	}
	s = strings.ToLower(s)
	return strings.Contains(s, "insufficient_quota") || strings.Contains(s, "insufficient_balance") ||
		strings.Contains(s, "arrearage") || strings.Contains(s, "billing") || strings.Contains(s, "overdue") ||
		strings.Contains(s, "credit_balance") || strings.Contains(s, "spend_limit") ||
		strings.Contains(s, "usage_limit_exceeded") || strings.Contains(s, "exceeded_current_quota") ||
		strings.Contains(s, "insufficient_user_quota") || strings.Contains(s, "insufficient_token_quota") ||
		strings.Contains(s, "pre_consume_token_quota")
}

// isFreeTierSpent reports DashScope's (Model Studio's) code and type for a
// model whose free quota is used up while the account may use free quotas
// only, AllocationQuota.FreeTierOnly, sent with HTTP 403 ("The free tier
// of the model has been exhausted…"): each model has a free quota of its
// own (https://www.alibabacloud.com/help/en/model-studio/new-free-quota),
// so it is this target's, until an operator turns the mode off.
func isFreeTierSpent(s string) bool {
	return strings.EqualFold(s, "AllocationQuota.FreeTierOnly")
}

// zhipuArrearsCode is Zhipu's "account in arrears" business code.
const zhipuArrearsCode = "1113"

// isZhipuAccountCode reports Zhipu's business codes for an account that
// cannot be used until someone acts (https://docs.bigmodel.cn/cn/api/api-code):
// 1110 inactive, 1111 does not exist, 1112 locked, 1121 locked for a
// violation. Its 1120 ("cannot reach your account, retry later") passes.
func isZhipuAccountCode(code string) bool {
	switch code {
	case "1110", "1111", "1112", "1121":
		return true
	}
	return false
}

// isContentFilter reports an error code or type that names a content
// filter: content_filter, content_policy, moderation, and the words
// inspection, inappropriate, sensitive or safety, which DashScope's
// data_inspection_failed / DataInspectionFailed ("Input or output data may
// contain inappropriate content") and other providers' moderation codes use.
// Whole words only (split at '_', '-', '.', spaces and lower-to-upper case
// changes), so that "insensitive" or "unsafety_margin" is no match. Zhipu
// (BigModel, Z.AI) names its filter by number: business code 1301, "System
// detected potentially unsafe or sensitive content in input or generation"
// (https://docs.z.ai/api-reference/api-code), sent as {"error": {"code":
// "1301", "message": ...}} in an HTTP 400 or an SSE error event.
func isContentFilter(s string) bool {
	if s == zhipuSensitiveCode {
		return true
	}
	prev := ""
	found := false
	eachWord(s, func(w string) bool {
		switch {
		case w == "inspection", w == "inappropriate", w == "sensitive", w == "safety",
			w == "moderation", w == "moderated",
			(w == "filter" || w == "filtered" || w == "policy") && prev == "content":
			found = true
			return false
		}
		prev = w
		return true
	})
	return found
}

// zhipuSensitiveCode is Zhipu's content-filter error code (isContentFilter).
const zhipuSensitiveCode = "1301"

// eachWord calls fn with each word of s, lower-cased, until fn returns
// false. Words end at anything but a letter or digit and where a lower-case
// letter is followed by an upper-case one (DataInspectionFailed).
func eachWord(s string, fn func(w string) bool) {
	var buf [32]byte
	w := buf[:0]
	flush := func() bool {
		if len(w) == 0 {
			return true
		}
		ok := fn(string(w))
		w = w[:0]
		return ok
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			if i > 0 && s[i-1] >= 'a' && s[i-1] <= 'z' && !flush() {
				return
			}
			w = append(w, c+'a'-'A')
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			w = append(w, c)
		default:
			if !flush() {
				return
			}
		}
	}
	flush()
}

// isContextLength reports a provider's context-length refusal by its
// message, for providers without a context_length code: OpenAI's "maximum
// context length", Anthropic's "prompt is too long", DashScope's "Range of
// input length should be [1, N]"
// (https://www.alibabacloud.com/help/en/model-studio/error-code), Kimi's
// "exceeded model token limit", Gemini's "The input token count (N)
// exceeds the maximum number of tokens allowed (M)", Zhipu's (Z.AI's)
// "Prompt exceeds max length".
func isContextLength(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "context length") || strings.Contains(m, "context_length") ||
		strings.Contains(m, "context window") || strings.Contains(m, "prompt is too long") ||
		strings.Contains(m, "range of input length should be") ||
		strings.Contains(m, "exceeded model token limit") || strings.Contains(m, "prompt exceeds max length") ||
		strings.Contains(m, "input token count") && strings.Contains(m, "exceeds") ||
		// Not a max_tokens (output) limit, which a larger context does not fix.
		strings.Contains(m, "exceeds the maximum number of tokens") &&
			!strings.Contains(m, "max_tokens") && !strings.Contains(m, "output")
}

// maxRetryAfter caps a provider's Retry-After. A larger value (or one that
// would overflow a Duration into a negative wait, retried at once) means
// "a long time": the provider cools down this long.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads Retry-After (delay-seconds or an HTTP date, RFC 9110
// 10.2.3) or the retry-after-ms some providers send, capped at maxRetryAfter;
// a negative or non-finite number is no answer.
func parseRetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if d, ok := delay(strings.TrimSpace(v), time.Millisecond); ok {
			return d, true
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if _, err := strconv.ParseFloat(v, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		return delay(v, time.Second)
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter), true
	}
	return 0, false
}

// delay reads a delay of v units, capped at maxRetryAfter; a
// negative or non-finite number is no answer. A number past a float64's
// range (RFC 9110's delay-seconds is digits of any length) is a long
// time: read as no answer, a 429 saying "not for ages" was retried on
// the same target after a short back-off.
func delay(v string, unit time.Duration) (time.Duration, bool) {
	n, err := strconv.ParseFloat(v, 64)
	if errors.Is(err, strconv.ErrRange) && n > 0 {
		return maxRetryAfter, true
	}
	if err != nil || n < 0 || math.IsNaN(n) || math.IsInf(n, 0) {
		return 0, false
	}
	if n >= float64(maxRetryAfter/unit) {
		return maxRetryAfter, true
	}
	return time.Duration(n * float64(unit)), true
}

// The per-event scans look for a key without its opening quote: a quote is
// the commonest byte in JSON, so bytes.Index, which skips ahead by the
// needle's first byte, stalls on one; from a letter it skips far (a third
// of the time per event for finish_reason).
var (
	keyErrorTail = []byte(`rror"`) // of "error"; a superset of its matches
	// keyResourceFinish: DeepSeek's finish_reason for an answer cut for
	// want of resources (choiceError), a value with no `rror"`.
	keyResourceFinish = []byte(`"` + resourceFinish + `"`)
	keyFinishTail     = []byte(finishTail) // of "finish_reason"; hasFinish checks the quote before
)

// finishTail is keyFinishTail as a constant, which scanEvent's walk
// compares with a key's end in two loads, where the variable cost a call
// to memequal for every key that ends in "n".
const finishTail = `finish_reason"`

// tokenBearing reports whether a chunk carries something the client must see
// as progress: content, reasoning, a refusal, a tool call, audio or a
// finish. A role-only first chunk does not. It is asked of the events
// before the first token only, not of every chunk: of a stream's role event
// and its first token, on the way to the client's first chunk.
func tokenBearing(s string) bool {
	choices := gjson.Get(s, "choices")
	found := false
	choices.ForEach(func(_, c gjson.Result) bool {
		found = choiceBearing(c)
		return !found
	})
	return found
}

// choiceBearing is tokenBearing of one choice. A choice object is walked
// once, and its delta once, each member read at its first occurrence as
// gjson's Get reads a name: one Get per name walked the choice up to eleven
// times (a role event, which has none of them, to its end each time), about
// 10,000 instructions of the first-token wait's two events.
func choiceBearing(c gjson.Result) bool {
	if !c.IsObject() {
		return choiceBearingByName(c)
	}
	var seen uint8 // finish_reason, text, delta
	var d gjson.Result
	found := false
	c.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "finish_reason":
			if seen&1 == 0 {
				seen |= 1
				found = v.Type == gjson.String && v.Str != ""
			}
		case "text": // legacy completions
			if seen&2 == 0 {
				seen |= 2
				found = v.Type == gjson.String && v.Str != ""
			}
		case "delta":
			if seen&4 == 0 {
				seen |= 4
				d = v
			}
		}
		return !found
	})
	if found || !d.Exists() {
		return found
	}
	if !d.IsObject() {
		return deltaBearingByName(d)
	}
	var dseen uint8
	d.ForEach(func(k, v gjson.Result) bool {
		var bit uint8
		switch k.Str {
		case "content":
			bit = 1
		case "reasoning_content":
			bit = 2
		case "reasoning":
			bit = 4
		case "refusal":
			bit = 8
		case "tool_calls":
			bit = 16
		case "function_call":
			bit = 32
		case "audio":
			bit = 64
		case "images":
			bit = 128
		default:
			return true
		}
		if dseen&bit != 0 {
			return true
		}
		dseen |= bit
		found = deltaMemberBearing(k.Str, v)
		return !found
	})
	return found
}

// deltaMemberBearing reports whether v, the delta's member name, is progress.
func deltaMemberBearing(name string, v gjson.Result) bool {
	switch name {
	case "content":
		// Content parts: Mistral's reasoning models stream their thinking
		// as "content":[{"type":"thinking",…}], which counts as reasoning
		// does (SPEC 5).
		return v.Type == gjson.String && v.Str != "" || v.IsArray() && len(v.Array()) > 0
	case "reasoning_content", "reasoning", "refusal":
		return v.Type == gjson.String && v.Str != ""
	case "tool_calls", "images":
		// images: an image model's picture (OpenRouter's and Vercel's
		// Gemini image models, modalities ["image"]) streamed as a data
		// URL in a chunk with content "", before any text or none: the
		// answer begun. Held as no token, a picture over maxHeld failed
		// over as malformed, generated and billed again.
		return v.IsArray() && len(v.Array()) > 0
	case "function_call":
		return v.IsObject()
	case "audio":
		// Audio output (modalities ["text","audio"]: gpt-4o-audio-preview)
		// streams the answer in delta.audio, its transcript and its data,
		// with content null: it is the answer begun, or the stream was
		// held and failed over as having no first token.
		if !v.IsObject() {
			return false
		}
		if r := v.Get("transcript"); r.Type == gjson.String && r.Str != "" {
			return true
		}
		r := v.Get("data")
		return r.Type == gjson.String && r.Str != ""
	}
	return false
}

// choiceBearingByName is choiceBearing by one Get per name, for a choice
// that is not an object.
func choiceBearingByName(c gjson.Result) bool {
	if fr := c.Get("finish_reason"); fr.Type == gjson.String && fr.Str != "" {
		return true
	}
	if t := c.Get("text"); t.Type == gjson.String && t.Str != "" {
		return true
	}
	return deltaBearingByName(c.Get("delta"))
}

// deltaBearingByName is choiceBearing's reading of a delta by one Get per
// name, for a delta that is not an object.
func deltaBearingByName(d gjson.Result) bool {
	for _, k := range [...]string{"content", "reasoning_content", "reasoning", "refusal", "tool_calls", "function_call", "audio", "images"} {
		if deltaMemberBearing(k, d.Get(k)) {
			return true
		}
	}
	return false
}

// hasFinish reports whether an event carries a non-null finish_reason,
// scanning the bytes instead of parsing: in valid JSON a quoted
// "finish_reason" followed by a colon can only be a key, because quotes
// inside string values are escaped. The per-event path has it from
// scanEvent (markFinish), on its validating pass; this scan is what that
// mark is held to (TestScanEventMatches).
func hasFinish(data []byte) bool {
	for {
		i := bytes.Index(data, keyFinishTail)
		if i < 0 {
			return false
		}
		quoted := i > 0 && data[i-1] == '"'
		data = data[i+len(keyFinishTail):]
		if !quoted {
			continue
		}
		j := skipSpace(data, 0)
		if j >= len(data) || data[j] != ':' {
			continue
		}
		j = skipSpace(data, j+1)
		if j+1 < len(data) && data[j] == '"' && data[j+1] != '"' {
			return true
		}
	}
}

func skipSpace(b []byte, i int) int {
	// A byte past ' ' is no space: the one test the common case, a
	// member's quote, a colon or a value, needs (scanEvent's and
	// scanAnswer's walks call this four times a member).
	for i < len(b) {
		if c := b[i]; c > ' ' || c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			break
		}
		i++
	}
	return i
}

// groqFlexCapacity is Groq's own status for its flex service tier at
// capacity (error capacity_exceeded; "try again later",
// https://console.groq.com/docs/flex-processing): an overload, as 503 and
// 529 are, so the next target answers. As a 4xx it was the bot's error,
// and the round ended with the targets after it unasked.
const groqFlexCapacity = 498
