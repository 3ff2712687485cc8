// Package embedded is the default store driver: one bbolt file, one replica.
//
// Every write is one bbolt read-write transaction, fsynced on commit, so an
// acknowledged write survives a crash (tested by SIGKILLing a writer). The file is
// opened with a lock timeout: a second process (an `audit verify` next to a
// running server) gets ErrLocked instead of hanging. TTLs are enforced on read
// against the driver's clock and swept by a background goroutine that stops on
// Close.
//
// It imports only the store package of paygate.
package embedded
