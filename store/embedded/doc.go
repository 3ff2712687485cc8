// Package embedded is the default store driver: one bbolt file, one replica.
//
// Every write is one bbolt read-write transaction, fsynced on commit, so an
// acknowledged write survives a crash (tested by SIGKILLing a writer). The file is
// opened with a lock timeout: a second process (an `audit verify` next to a
// running server) gets ErrLocked instead of hanging. TTLs are enforced on read
// against the driver's clock and swept by a background goroutine that stops on
// Close.
//
// LoadUserState, read on every turn of a known user, first asks an
// in-memory Bloom filter of the users who ever ordered (userfilter.go,
// 1 MiB, rebuilt from the file at Open): most users never ordered, and for
// them no read transaction is opened. Besides the user's newest created
// orders it reads their newest updated ones, from a second user index
// (user_updated) keyed by each order's last write, which every order write
// moves in its own transaction; a file whose last write was not this
// version's (one without that index, after a rollback) gets it anew, from
// the orders, at its Open.
//
// The outbox keeps, beside its queues, a due index (outbox_due): one entry
// per queue for its head, by kind and due time, moved by every write that
// changes a head. ClaimEvents, a write transaction every relay poll makes,
// reads the entries of its kind that are due and no other, so heads that
// are not due (a merchant outage's backoff, dead letters) do not hold up
// the writes behind it. The index is checked against the queues at every
// Open and rebuilt when they disagree (a file from a version without it).
//
// It imports only the store package of paygate.
package embedded
