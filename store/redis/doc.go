// Package redis is the store driver for many replicas: a go-redis v9
// UniversalClient (single server, sentinel or cluster) built from Options.
//
// Every atomic step is one command or one Lua script whose keys share one hash
// tag, so the same code runs unchanged on Redis Cluster (the tests run the
// whole conformance suite on a three-node cluster). The key layout and the
// four-step order write (intent, order script, user copy, indexes) are
// described in the store package documentation; in short:
//
//   - the money step (order record + its outbox events, a claim, a refund
//     consumption, an audit link, a notification id, an announcement claim)
//     is always a single script on a single tag, so it is all-or-nothing;
//   - the copies that make LoadUserState one round trip (the user's newest
//     orders under {u:CLIENT:USER}, all indexed by creation and, the newest
//     store.UserStateOrders, and those updated within a minute of the
//     newest, by last update) and the cross-order
//     indexes under {idx} are
//     written after it, guarded by the order's version, and replayed by Repair
//     from a write-intent log when a crash interrupts them (one note per
//     writer, removed only once the order is synced from state at least as
//     new as that writer's write, so a writer that loses its compare-and-set
//     cannot erase the note of one that committed and died);
//   - DueEvents and ClaimEvents find keys with pending events through {idx}:ob
//     and read each head from its own tag, healing index entries that
//     disagree; ClaimEvents leases each head in that tag's own script, so a
//     claim is atomic per event, not per batch. The index does not know the
//     heads' kinds, so a read of some kinds pages on through the due range
//     past heads of others rather than stopping at one window.
//
// Once the epoch marker shows that Redis lost its data, or a generation
// counter that every money write raises shows that it went back to an
// earlier state (a restart from an older snapshot or an AOF without its last
// writes, a failover to a lagging replica), every command is refused with
// store.ErrUnavailable until the process is restarted. Both are checked
// every Options.EpochInterval and by Ping, and by each money write
// (generation.go, runWrite); the counters in a cluster on every primary.
//
// Expiry is logical (judged against Options.Now inside the scripts); Redis
// PEXPIRE only reclaims the space later. With Options.WaitReplicas, money
// writes pipeline WAIT behind their script on the owning primary and report
// store.ErrUnavailable when not replicated in time, so callers fail closed.
//
// Repair takes an intent for abandoned once it is RepairGrace old by the
// clock of the Redis server holding {idx}, and the script of its write
// refuses to write once the intent is RepairGrace/2 old by its own server's
// clock, so a writer that stalls between the two (retrying through a
// failover, a paused process) writes under a fresh intent instead of
// committing behind a repair that already took its note. The replicas'
// clocks play no part; the Redis servers' clocks must agree within
// RepairGrace/2, and every replica must use the same RepairGrace.
//
// It imports only the store package of paygate.
package redis
