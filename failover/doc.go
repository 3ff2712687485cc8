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
// idle-gap and total timeouts, cheaply enough for every chunk of every answer.
//
// failover imports sse and config of paygate, nothing else: never payments,
// store or interceptors. It writes no client-facing bytes; proxy turns its
// errors into OpenAI error JSON.
package failover
