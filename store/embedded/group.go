package embedded

import (
	"context"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// group commits the writes of a turn's hot path (the purchase claim, the
// day's order count, the rate-limit window, the order's record and its
// updates, the announcement claim) that wait for bbolt's one writer
// together: each write transaction holds the writer through its commit's
// two fsyncs, and under a flash sale's burst every turn's writes queued
// behind one another's disk flushes (200 concurrent buyers: half the turns
// per second of the same writes without the flushes). A write that finds
// none waiting commits alone at once, as before: the group is whatever
// queued while the previous commit held the writer, so no write waits for
// company.
//
// A write in a group runs in the group's transaction, after the writes
// queued before it, and returns only once that transaction is on disk.
// One whose function fails has its changes undone with the group's: the
// writes before it are run again and committed without it, it gets its
// error (it failed on exactly the state they leave), and the writes after
// it form the next group. A function given to batched may therefore run
// more than once, and must set every result it reports on each run.
type group struct {
	mu      sync.Mutex
	pending []*groupCall
	// leading: a goroutine is committing groups; a write that comes
	// meanwhile waits to be taken in the next one.
	leading bool
}

type groupCall struct {
	fn   func(*bolt.Tx) error
	done chan error
}

// batched is update for the writes group commits: fn must set every result
// it reports on each run (it may run more than once).
func (d *DB) batched(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	c := &groupCall{fn: fn, done: make(chan error, 1)}
	g := &d.group
	g.mu.Lock()
	g.pending = append(g.pending, c)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	if lead {
		d.lead()
	}
	return wrap(<-c.done)
}

// lead commits the writes pending, then hands the writes that came
// meanwhile to a goroutine of their own, so that the caller that led waits
// for its own write only.
func (d *DB) lead() {
	g := &d.group
	g.mu.Lock()
	calls := g.pending
	g.pending = nil
	g.mu.Unlock()
	d.commitGroup(calls)
	g.mu.Lock()
	more := len(g.pending) > 0
	g.leading = more
	g.mu.Unlock()
	if more {
		go d.lead()
	}
}

// commitGroup commits calls in one transaction, or, when one fails, those
// before it in one, it with its error, and those after it as a group again.
func (d *DB) commitGroup(calls []*groupCall) {
	for len(calls) > 0 {
		failed := len(calls)
		var fnErr error
		err := d.commitOnce(func(tx *bolt.Tx) error {
			for i, c := range calls {
				if fnErr = runCall(c, tx); fnErr != nil {
					failed = i
					return fnErr
				}
			}
			return nil
		})
		if failed == len(calls) {
			for _, c := range calls {
				c.done <- err
			}
			return
		}
		if failed > 0 {
			before := calls[:failed]
			err := d.commitOnce(func(tx *bolt.Tx) error {
				for _, c := range before {
					if err := runCall(c, tx); err != nil {
						return err
					}
				}
				return nil
			})
			for _, c := range before {
				c.done <- err
			}
		}
		calls[failed].done <- fnErr
		calls = calls[failed+1:]
	}
}

// commitOnce is commit for a group, a panic in it past the writes' own
// functions (bbolt's, in its commit; runCall takes theirs) its error, and
// the last write's outcome for Ping: unwinding the leader would leave the
// group marked as led, so the writes queued with it and every later one
// would wait for good, and a leader on a goroutine of its own would take
// the process down. bbolt rolls the transaction back as the panic passes.
func (d *DB) commitOnce(fn func(*bolt.Tx) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = d.noteWrite(fmt.Errorf("embedded: commit panicked: %v", p))
		}
	}()
	return d.commit(fn)
}

// runCall runs c's function in tx, a panic in it its error: the group's
// other writes, waiting for their outcome, would wait for good, and no
// later write would commit.
func runCall(c *groupCall, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("embedded: write panicked: %v", p)
		}
	}()
	return c.fn(tx)
}
