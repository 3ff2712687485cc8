// Package interceptors rewrites what crosses paygate in both directions: the
// client's request on its way to a provider (privacy, usage accounting, payment
// tools, the payment-state message) and the provider's answer on its way
// back (capturing payment tool calls, resuming cut streams, summing usage
// over rounds, and removing an upstream's own `paygate` member).
//
// Requests are rewritten as raw JSON patches (gjson to read, sjson to write):
// decoding and re-encoding a body would drop or reorder fields paygate does not
// know, and providers' prompt caches key on exact bytes. Every change this
// package makes is listed in SPEC 3 step 3; everything else reaches the
// provider byte for byte.
//
// It may import payments (through small interfaces), sse and config; never
// proxy or failover.
package interceptors
