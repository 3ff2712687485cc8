// Package payments owns paygate's money: the catalog (prices as decimal
// strings in config, integer fen inside, never floats), the order state machine
// of SPEC 4, the Service that creates orders idempotently against WeChat Pay,
// the POST /wechatpay/notify handler, and the reconciler that queries, expires
// and repairs orders.
//
// Every order change goes through one compare-and-set transition in the store,
// checked against the allowed-transitions table, so a change happens exactly
// once however many notifications, queries and sweeps race for it. An order is
// committed in status `creating` before WeChat Pay is called, so a crash in
// between leaves a record the reconciler resolves by its number.
//
// Rules (rules.go) are checked before any WeChat Pay call: a per-user rate
// limit on payment tool calls, orders per user per day, and approval_above,
// which stores an order as approval_required for a manager (approval.go:
// Approve prepays at once, Reject ends it). Refunds (refunds.go) move no money
// when the model asks: request_refund records a single-use, expiring proposal
// bound to the client, the user, the order and the amount; only the user's
// confirmation sends it to WeChat Pay, under an out_refund_no derived from the
// proposal, with one refund in flight per order so refunds never add up to
// more than was paid.
//
// WeChat Pay itself is behind the Backend interface, implemented by
// payments/wechatpay.Client (the official SDK, pointed at the real API or at
// the in-process simulator in payments/wxsim).
//
// payments imports store (its interfaces) and payments/wechatpay; it must not
// import proxy, interceptors, failover or config.
package payments
