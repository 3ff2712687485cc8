package embedded

import (
	"context"
	"errors"
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
)

// wipeRun is how many free pages one write clears at most.
const wipeRun = 256

// WipeFreePages overwrites with zeros every page of the file that holds no
// live data, and reports how many. bbolt writes copy-on-write and never
// clears a page it frees, so a deleted value (an erased conversation text,
// the acknowledged outbox event that carried it, every earlier version of
// the pages that held them) stays readable in the file until the page is
// reused: an erasure that left it there would not remove the text from the
// disk. The audit's erasure (audit.Worker.Erase) calls it once the texts
// are deleted.
//
// A page freed by a write stays in use for the read transactions begun
// before that write ("pending"), and bbolt does not say which free pages
// are pending; so reads are held off (wipe) while the write transaction that
// clears begins, which, with none open, releases every pending page. Reads
// begun after it read the tree of the last commit, which holds no free
// page, so they run again at once: on a large file the zeroing and its
// fsync take a while, and every chat turn's read would wait for them
// (writes wait regardless, behind the write transaction).
func (d *DB) WipeFreePages(ctx context.Context) (int, error) {
	if err := ctxErr(ctx); err != nil {
		return 0, err
	}
	d.wipe.Lock()
	tx, err := d.db.Begin(true)
	d.wipe.Unlock()
	if err != nil {
		return 0, wrap(err)
	}
	defer func() { _ = tx.Rollback() }() // after Commit: ErrTxClosed, nothing done
	// A file of its own: bbolt's mapping is read-only.
	// Its writes, the zeros and their fsync, are the store's as its
	// commit is: one that fails (a disk gone read-only under the erasure)
	// is the last write's outcome for Ping, as a failed commit is (else
	// /readyz read ready until the next probe).
	f, err := os.OpenFile(d.db.Path(), os.O_WRONLY, 0)
	if err != nil {
		return 0, d.noteWrite(fmt.Errorf("embedded: wipe free pages: %w", err))
	}
	defer f.Close()
	if d.wipeHook != nil {
		d.wipeHook()
	}
	n, err := zeroFreePages(tx, f, d.db.Info().PageSize)
	if we := (*wipeWriteError)(nil); errors.As(err, &we) {
		return n, d.noteWrite(err)
	}
	if err != nil {
		return n, err
	}
	// A write of this version, as every other (commit): the next open,
	// when this is the last write before it, indexes nothing again. Put
	// after the zeroing, the mark's pages are allocated at the commit, and
	// the pages it frees hold what is live now, nothing erased.
	if err := markIndexesKept(tx); err != nil {
		return n, err
	}
	// Its commit's outcome is the last write's, as commit's is, for Ping.
	return n, wrap(d.noteWrite(tx.Commit()))
}

// zeroFreePages writes zeros over the pages tx's freelist holds, through
// f, the file opened for writing, and syncs it.
func zeroFreePages(tx *bolt.Tx, f *os.File, size int) (int, error) {
	zeros := make([]byte, wipeRun*size)
	n, first, run := 0, 0, 0
	flush := func() error {
		if run == 0 {
			return nil
		}
		if _, err := f.WriteAt(zeros[:run*size], int64(first)*int64(size)); err != nil {
			return &wipeWriteError{err}
		}
		n += run
		run = 0
		return nil
	}
	// Pages 0 and 1 are the meta pages, never free.
	for id := 2; ; id++ {
		p, err := tx.Page(id)
		if err != nil {
			return n, fmt.Errorf("embedded: wipe free pages: %w", err)
		}
		if p == nil { // past the file's last page in use
			break
		}
		if p.Type != "free" || run == wipeRun || (run > 0 && first+run != id) {
			if err := flush(); err != nil {
				return n, err
			}
		}
		if p.Type == "free" {
			if run == 0 {
				first = id
			}
			run++
		}
	}
	if err := flush(); err != nil {
		return n, err
	}
	if err := f.Sync(); err != nil {
		return n, &wipeWriteError{err}
	}
	return n, nil
}

// wipeWriteError is a write of zeroFreePages that failed (its zeros or
// their fsync), as against a page it could not read: the store's write,
// recorded for Ping (WipeFreePages).
type wipeWriteError struct{ err error }

func (e *wipeWriteError) Error() string { return "embedded: wipe free pages: " + e.err.Error() }
func (e *wipeWriteError) Unwrap() error { return e.err }
