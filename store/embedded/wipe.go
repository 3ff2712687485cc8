package embedded

import (
	"context"
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
// clears begins, which makes every free page released, and until it ends.
func (d *DB) WipeFreePages(ctx context.Context) (int, error) {
	if err := ctxErr(ctx); err != nil {
		return 0, err
	}
	d.wipe.Lock()
	defer d.wipe.Unlock()
	n := 0
	err := wrap(d.db.Update(func(tx *bolt.Tx) error {
		f, err := os.OpenFile(d.db.Path(), os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("embedded: wipe free pages: %w", err)
		}
		defer f.Close()
		size := d.db.Info().PageSize
		zeros := make([]byte, wipeRun*size)
		first, run := 0, 0
		flush := func() error {
			if run == 0 {
				return nil
			}
			if _, err := f.WriteAt(zeros[:run*size], int64(first)*int64(size)); err != nil {
				return fmt.Errorf("embedded: wipe free pages: %w", err)
			}
			n += run
			run = 0
			return nil
		}
		// Pages 0 and 1 are the meta pages, never free.
		for id := 2; ; id++ {
			p, err := tx.Page(id)
			if err != nil {
				return fmt.Errorf("embedded: wipe free pages: %w", err)
			}
			if p == nil { // past the file's last page in use
				break
			}
			if p.Type != "free" || run == wipeRun || (run > 0 && first+run != id) {
				if err := flush(); err != nil {
					return err
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
			return err
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("embedded: wipe free pages: %w", err)
		}
		return nil
	}))
	return n, err
}
