// Package storetest is the one conformance suite every store driver passes: the
// semantics of store.Store (compare-and-set transitions, claims and generations,
// single-use refund proposals and tombstones, the per-key outbox, the gap-free
// audit chain, expiry against an injected clock) and the money invariants under
// concurrency. Driver tests call Run (and RunShared, Bench* where they apply).
//
// It imports only the store package of paygate.
package storetest
