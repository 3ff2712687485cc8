// Package accounting prices each upstream round (tokens × the configured
// price per million tokens), keeps what a conversation has cost so far, and
// turns that into the figure an operator of a selling bot cares about: the
// LLM cost per completed transaction — the cost of the turns of sessions that
// ended in a paid order, divided by the paid orders.
//
// Money here is LLM spend in the providers' billing currency, held as
// integer pico-units (10⁻¹² of a unit: a price per million tokens in
// millionths times a token count) so no float ever accumulates. Session
// costs live in the store, so every replica adds to the same conversation;
// the running totals and the hourly series behind GET /admin/api/stats are
// per replica (Prometheus sums the counters across replicas).
//
// It imports only config of paygate; the store is reached through
// SessionStore.
package accounting
