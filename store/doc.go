// Package store keeps paygate's durable state: orders, purchase claims, seen
// notification ids, the announcements a turn made of an order, refund
// proposals, per-user counters, running tallies (a conversation's LLM cost),
// parked tool exchanges, shared secrets, the outbox of events that must leave
// the process, and the audit chain.
//
// The package defines the contract (small role interfaces, the record types and
// the sentinel errors); the drivers live in sub-packages: store/embedded (bbolt,
// one file, one replica; the default) and store/redis (go-redis UniversalClient:
// single, sentinel or cluster; many replicas). Both drivers pass the one
// conformance suite in store/storetest, so callers code against the interfaces and
// never against a driver.
//
// # Semantics every driver keeps
//
//   - Order transitions are compare-and-set on the stored status
//     (Orders.UpdateOrder names the status it expects) and are atomic with the
//     events they enqueue: an order write and its outbox events commit together or
//     not at all.
//   - Every driver stamps Order.Version: 1 on create, +1 on every write.
//   - Expiry is logical: each TTL'd record carries its deadline and is judged
//     against the driver's clock on every read; physical deletion (Redis PEXPIRE,
//     the bbolt sweeper) happens later and only reclaims space. Refund proposals
//     that were used or expired stay as tombstones for at least TombstoneTTL so a
//     late confirmation is told ErrGone, not ErrNotFound.
//   - The outbox is durable and ordered per Event.Key: DueEvents and ClaimEvents
//     hand out at most the first pending event of each key, so webhooks of one
//     order leave in order. ClaimEvents also leases what it hands out (its
//     NextAt moves to the lease's end in the same step), so consumers on
//     several replicas do not each deliver it.
//   - The audit chain is gap-free: AppendAudit accepts only head.Seq+1 with the
//     head's hash, so concurrent appenders serialise by retrying on ErrConflict.
//     AppendAuditBatch appends records linked among themselves, the first
//     following the head, in one atomic step, all of them or none.
//   - A tally's add and take are each one atomic step (Tallies), so replicas
//     adding to one sum at once lose nothing.
//   - A store that cannot be reached reports errors wrapping ErrUnavailable, so the
//     proxy keeps chatting without payment state while payment tools fail closed.
//
// # Redis layout (store/redis)
//
// Every atomic step is one command or one Lua script whose keys share one hash
// tag, so the same code runs on Redis Cluster without CROSSSLOT errors:
//
//	PREFIX{o:NO}:*        an order record, its own outbox list (the outbox key
//	                      of events not tied to an order uses the same scheme)
//	                      and its refund record (RefundRecordKey; an earlier
//	                      version's is read from {x:KEY}, where a copy of
//	                      each is written for that version's replicas)
//	PREFIX{u:CLIENT:USER}:* the user's copies of their newest orders (those
//	                      LoadUserState reads), the copies' versions and
//	                      their index by creation (of every order), that of
//	                      the newest by last update, and the announcements
//	                      made of them (Announcements)
//	PREFIX{c:KEY}:*       a purchase claim and its generation counter
//	PREFIX{r:ID}          a refund proposal or its tombstone
//	PREFIX{n:ID}, {k:KEY}, {l:KEY}, {t:KEY}, {x:KEY}, {s:NAME}  notifications,
//	                      counters, leases, tallies, exchanges, secrets
//	PREFIX{t:KEY}:took:TOKEN  what one take of a tally took, kept a minute for
//	                      its re-send after a lost reply
//	PREFIX{idx}:*         cross-order indexes: orders by status and by time, keys
//	                      with pending outbox events, and the write-intent log
//	PREFIX{audit}:*       the audit chain, its head and the erasable text
//	PREFIX{meta:epoch}    the marker by which a replica notices that Redis lost
//	                      its data
//	PREFIX{gen:N}         one per primary: a counter every money write raises,
//	                      by which a replica notices that Redis went back to an
//	                      earlier state (a snapshot, a lagging replica)
//
// An order write spans three tags (order, user copy, indexes), so it runs in four
// steps: (1) record a write intent in {idx}, (2) the order script (record +
// outbox, the atomic money step), (3) the user copy, (4) the indexes, which also
// clears the intent. Steps 3 and 4 are idempotent and guarded by the order's
// version, so they may be replayed or reordered. A crash after step 1 leaves the
// intent behind; a background repair (and one at start-up) replays steps 3 and 4
// for intents older than a grace period, so nothing is lost, only delayed.
// LoadUserState therefore reads only the user tag: one Lua script, one round trip.
//
// store imports nothing of paygate.
package store
