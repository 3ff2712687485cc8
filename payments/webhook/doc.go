// Package webhook tells the merchant's backend what happened to its orders
// (SPEC 2.6): signed JSON events POSTed to webhooks.url, at least once, in
// order per order, retried with exponential backoff for at least 24 hours.
//
// An event is born inside the order transition that causes it: Events is the
// payments.Options.Events hook, so the event is written to the store's
// durable outbox in the same atomic step as the order change, and a crash
// right after the commit loses nothing. refund.proposed, which has no order
// transition, rides the proposal's own write the same way (ProposalEvents,
// the payments.Options.ProposalEvents hook), on the proposal's queue, and
// the Relay moves it to its order's delivery queue, after the order's
// earlier events (its other proposals' included) and before every event of
// the order made after it (mustFollow). The Relay then drains the outbox.
//
// The outbox is shared with other kinds (audit records) and keyed by order
// number, one head at a time per key. So that a merchant endpoint that is down
// for a day never holds back another consumer's events of the same order, the
// Relay first moves each webhook event from the order's queue (the intake) to
// a queue of its own, "webhook:<order_no>", and delivers from there: the head
// of that queue is retried while the events behind it wait, which keeps the
// per-order order.
//
// Several replicas may each run a Relay over one store. An event is leased in
// the store (store.Outbox.ClaimEvents) before a relay moves or POSTs it, so
// no other relay takes it until the outcome is recorded or the lease runs
// out: each event is POSTed once in all, and one whose replica died
// mid-delivery is sent again after the lease (one whose relay was stopped
// is given back, due at once).
//
// Receivers check X-Paygate-Signature with Verify (or the README's Node
// snippet) and deduplicate by the event id, which is the same on every retry.
//
// webhook imports payments (the Transition and the order object) and store;
// it must not import proxy, interceptors, failover or config.
package webhook
