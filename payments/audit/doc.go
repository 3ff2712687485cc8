// Package audit keeps paygate's tamper-evident record of money actions
// (SPEC 7): every order created, approved, rejected, paid, closed, expired,
// sent to review, and every refund proposed, cancelled or confirmed by the
// user, started, aborted or ended, and every operator's webhook resend that
// queued events (ResendEvents), becomes one record in a hash chain, with the client, the user, the amounts, the ids, and the
// conversation turn that led to it (its request messages, provider, upstream
// model and sampling parameters).
//
// The record format: a record's body is canonical JSON (sorted keys, no
// insignificant whitespace, no HTML escaping, integers as integers) holding
// its own seq and the previous record's hash; its hash is the hex SHA-256 of
// those exact bytes. Changing, removing or reordering a record therefore breaks
// the link to the record after it, and Verify names the first record that does
// not fit. A cut from the end leaves a consistent shorter chain; it is caught
// against a head published outside the store (the log line, the
// paygate_audit_head_info{seq,hash} gauge, GET /admin/api/audit/head) with
// VerifyOptions.Head.
//
// The conversation text is not in the chain: the record holds its SHA-256 and
// length, and the text is kept beside the chain (store.Audit.PutAuditText) for
// audit.retain_text, so it can expire or be erased per user without breaking
// verification.
//
// How a record is written: an order transition and its audit record live on
// different Redis Cluster hash tags, so the record rides the order's durable
// outbox. TransitionEvents (wired into payments.Options.Events) turns each
// transition into an event of kind KindAudit, enqueued in the same atomic write
// as the transition. The Worker drains those events, appends the record with a
// compare-and-set on the chain head (retrying a lost race), stores the text
// and acknowledges the event. A crash between append and acknowledgement is
// repaired on restart: each record names the event it came from and the
// Worker skips an event already in the chain, so every event is appended
// exactly once, whatever the number of replicas.
//
// audit imports payments (for Transition and Turn) and store; it must not
// import proxy, interceptors, failover or config, and payments must not import
// it.
package audit
