// Package failover sends one round of a request to an upstream LLM provider,
// choosing among the targets configured for a public model and moving to the
// next target by the cause of each failure, before any byte of the answer has
// reached the client (SPEC 5).
//
// A Router owns the targets, their selection strategy, the per-provider state
// (circuit breaker, cool-downs, latency) and the upstream HTTP transport. Open
// runs one round and returns a Response only once the provider answered
// acceptably: for a stream, once its first token-bearing event was read and is
// not an error. Response.Next then yields the stream's events, enforcing the
// idle-gap and total timeouts, cheaply enough for every chunk of every answer
// (no JSON decoding, no allocation per event).
//
// Policy, per failed attempt (round.go decide):
//   - connect error or reset before headers: the same target once more at
//     once, then the next; a connect timeout: the next at once. A reused
//     keep-alive connection that the server closed as the request went out
//     (h1.ErrReusedConnLost) is retried the same way but is not a breaker
//     failure;
//   - 500, 502, 504 (and a first SSE event that is an unknown error, an empty
//     stream, a malformed answer, among them a non-stream 2xx chat
//     completion or JSON answer that is not a JSON object): the same target
//     once more after a short jittered pause, then the next;
//   - 429, 503, 529 with a Retry-After (a 429 without one: the wait its
//     message names for this request, "Please try again in 1.5s", whether
//     or not its x-ratelimit-* headers say a limit is spent, else a spent
//     limit's full reset cut to a minute, either of which cools the
//     target alone): the provider cools down that long,
//     so that other rounds skip it (or wait, when it is all they have);
//     up to failover.retry_after_max_wait the round that got it waits it
//     out and retries the same target; longer: the round moves on;
//     without one: a jittered back-off that
//     doubles per consecutive refusal, during which other rounds skip the
//     provider, one retry, then the next;
//   - 429 insufficient_quota: the provider cools down for
//     Options.QuotaCooldown (or until ResetProvider), but for OpenRouter's
//     402 that the credit left buys fewer tokens than the request asks,
//     or that its estimate exceeds the whole in-flight spending budget,
//     and for DashScope's 403 that one model's free quota is spent
//     (this round only: the next target), and OpenRouter's 402 for an in-flight
//     budget the requests before fill, a 429 (its Retry-After); 401/403
//     likewise for
//     Options.MisconfiguredCooldown (but a 403 of a content filter or a
//     model's refusal, OpenRouter's moderation, guardrails and
//     error_type refusal, is the other 4xx below), and so does a redirect (3xx: the
//     base_url is not where the provider serves, http for https or a
//     trailing slash), which paygate never follows nor passes on: with no
//     target left the client gets a 502 naming where it pointed. An
//     unasked 101 is a malformed answer, and so is a chat completion's
//     2xx without a JSON object (a 204 among them);
//   - no headers before first_byte (a stream), or (a non-stream request)
//     before its share of the round's time while a later target could
//     answer, else before total; no token before first_token: the next
//     target at once. A connect timeout, or a stream's first_byte, tells
//     of the provider, not of its model, unless the provider sent another
//     request's head meanwhile: its other targets are passed over for the
//     rest of the round (round.silent);
//   - 400 context length, 413 (the body's size, or a 429 saying the
//     request alone is over a tokens-per-minute limit), 404, a 400 or 403
//     that says the model does not exist (model_not_found and the like;
//     OpenAI's 403 for a project key not allowed the model): the next
//     target;
//     other 4xx: the round ends and the provider's own error reaches the
//     client. A context length or 413 reaches the client as the
//     provider's own too (a 413 as request_too_large unless the provider
//     named a code other than a rate limit's, never as context length)
//     when no target took the request, wherever the refusal came in the
//     round: ahead of a later target's model not found, 5xx or silence,
//     not of a failure that ends the round (a cancel, another 4xx, an
//     answer too large, the round's time) nor when the attempt budget
//     left a target unasked; except when a target the round skipped
//     (cooling down, breaker open) or that refused with a rate limit, out
//     of quota or paygate's key, and whose upstream model did not refuse the context
//     length itself, may take it: then a 429 or 503 with that wait's
//     Retry-After. A 404
//     moves on on every path, as the next provider may serve a model or a
//     path this one does not; when every target was asked and answered
//     404, the last one's 404 reaches the client (an unknown file, batch
//     or model: the SDK's NotFoundError), not a 502 it would retry, and
//     so does a 404 model_not_found when each said with a 400 or 403
//     that the model does not exist;
//   - a non-stream chat completion over Options.MaxResponseBytes, or a
//     JSON passthrough answer over Options.MaxJSONResponseBytes: the round
//     ends (upstream_response_too_large); the size is the request's doing,
//     so it is neither retried nor a breaker failure.
//
// When no target answered, the round's last failure names the client's
// status (UpstreamError), but for the refusals above that the client can
// act on: a refusal of the request's length (400 or 413) wherever it came
// in the round (unless the round then ran out of attempts or time, or
// ended on another refusal, a cancel, an answer too large or a call the
// provider may have acted on), or a model
// every target said does not exist (404); the
// provider named (UpstreamError.Provider, the X-Paygate-Provider header)
// is the one whose error the client gets. A rate limit is a 429 rate_limit_exceeded when
// every attempt was a 429 (an overload or an account out of quota stays a
// 503), and a 429 or 503 always carries a RetryAfter.
//
// A 2xx answer on any other path (a passthrough) that is not JSON (a
// file's content, speech, JSON Lines, an event stream) is the round's
// answer from its first bytes on (an event stream's first event), like a
// stream from its first token: Open returns it Piped, and Response.Read
// delivers the body as it arrives, without a size cap; a body cut after
// them is the caller's to end, not another attempt. A JSON answer (application/json, +json: embeddings,
// a file's or a batch's object) is read whole, up to
// Options.MaxJSONResponseBytes, as a chat completion is: an error envelope
// (not a resource whose "error" member says why it failed), an empty body
// or a CDN's page sent with a 2xx still fails over, and the proxy drops a
// forged "paygate" member from the whole object. A body read
// whole whose connection ends before its framing does (the last chunk
// missing, bytes short of the Content-Length) is complete when what came
// is one valid JSON object, a chat completion's with its choices, as a
// stream cut after its finish reason is; cut inside the JSON, it is a lost
// connection.
//
// Every attempt, retries included, counts toward failover.max_attempts. A
// same-target retry is skipped (the next target at once) when the attempts
// left are no more than the later targets the round could still ask (not
// cooling down, breaker not open), so that a retry never costs a later
// target its only chance.
//
// Timeouts per attempt, from the moment the request is sent: first_byte
// bounds a stream's wait for headers, first_token its wait for the first
// token-bearing event, idle each gap between events (or body reads), total
// the whole response. connect bounds dialing and the TLS handshake. A
// non-stream answer's headers often come only with the whole answer, so
// its wait for them is bounded by total, not first_byte, and, while a
// later target could still be asked, by an even share of the round's time
// left; the round's last chance is not bounded by the round's time
// (Router.nonStreamWait says why). A forwarded call's event stream, whose
// head is awaited so, waits first_token for its first event from its
// head on. The round's time
// (failover.max_round_time) bounds every other attempt until the answer is
// there: a stream's first token, a non-stream answer's 2xx head; from then
// on only the attempt's own timeouts do.
//
// failover imports sse, config and its own failover/h1 of paygate, nothing else: never payments,
// store or interceptors. It writes no client-facing bytes; proxy turns its
// errors into OpenAI error JSON.
package failover
