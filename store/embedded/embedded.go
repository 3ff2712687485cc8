package embedded

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/paygate/paygate/store"
)

// ErrLocked is returned by Open when another process holds the file. It wraps
// store.ErrUnavailable.
var ErrLocked = fmt.Errorf("database file is locked by another process: %w", store.ErrUnavailable)

// Defaults for Options.
const (
	DefaultLockTimeout   = time.Second
	DefaultSweepInterval = time.Minute
)

// Options configures Open. The zero value is usable.
type Options struct {
	// LockTimeout is how long Open waits for the file lock; default
	// DefaultLockTimeout.
	LockTimeout time.Duration
	// SweepInterval is how often expired records are deleted; default
	// DefaultSweepInterval. Negative disables the sweeper (tests call Sweep).
	SweepInterval time.Duration
	// Now is the clock every expiry is judged against; default time.Now.
	Now func() time.Time
	// Logger receives sweeper failures; default discards.
	Logger *slog.Logger
	// ReadOnly opens the file for reading alone (`paygate audit verify`
	// and `export`), leaving it byte for byte as it was: an auditor's
	// evidence copy keeps its checksum, and a read-only copy can be read.
	// No write is made, not even the open's own (buckets, indexes, outbox
	// leases), so a file missing a bucket of this version is refused with
	// ErrNeedsWrite; every write fails. The sweeper does not run.
	ReadOnly bool
	// Owner names the deployment whose records the file holds (cmd/: the
	// payments backend and merchant, "wechatpay:1900000109"), as the Redis
	// store's Options.Owner does for its prefix. The first writing Open
	// with an Owner records it; one with another is refused
	// (ErrOtherOwner): its reconciler would query its own merchant for the
	// other's orders, expiring those it does not find (paid at the other
	// merchant, their notifications signed and encrypted with the other's
	// keys) and sending their refunds where they were never paid. "": a
	// tool, which neither records nor is refused one.
	Owner string
	// NoSync leaves out the fsync after each write: a write survives a
	// crash of the process, not of the machine. Only for tests that
	// write thousands of records whose durability they do not test
	// (7 ms a write under -race on a loaded CI host); paygate never sets it.
	NoSync bool
}

// ErrOtherOwner is returned by Open when the file belongs to another
// deployment (Options.Owner).
var ErrOtherOwner = errors.New("the store file belongs to another payments backend or merchant")

// ErrNeedsWrite is returned by a ReadOnly Open of a file written by an
// earlier version, which lacks buckets this version adds on its first
// (writing) open.
var ErrNeedsWrite = errors.New("the file was written by an earlier version and must be opened for writing once")

// ErrNotStore is returned by a ReadOnly Open of a bbolt file without the
// audit chain's buckets, which every version's file has held since the
// first: another program's file, not an earlier version's, and never
// opened for writing to add this version's buckets to it.
var ErrNotStore = errors.New("no paygate store: every paygate store file holds the audit chain's buckets")

// firstBuckets are buckets every version's file has held: a file lacking
// one is no paygate store (ErrNotStore).
var firstBuckets = [][]byte{bAudit, bAuditMeta}

// Bucket names.
var (
	bOrders       = []byte("orders")
	bUserOrders   = []byte("user_orders")   // enc(client) enc(user) ts no -> nil
	bUserUpdated  = []byte("user_updated")  // enc(client) enc(user) ts(updated) no -> nil
	bStatusOrders = []byte("status_orders") // enc(status) ts no -> nil
	bAllOrders    = []byte("all_orders")    // ts no -> nil
	bClaims       = []byte("claims")
	bClaimGens    = []byte("claim_gens")
	bNotes        = []byte("notifications")
	bRefunds      = []byte("refunds")
	bUserRefunds  = []byte("user_refunds") // enc(client) enc(user) id -> expiring (the proposal's ExpiresAt)
	bCounters     = []byte("counters")
	bAnnounced    = []byte("announced") // enc(client) enc(user) enc(no) kind -> expiring
	bExchanges    = []byte("exchanges")
	bSecrets      = []byte("secrets")
	bOutbox       = []byte("outbox") // enc(key) seq -> event
	bAudit        = []byte("audit")  // seq -> record
	bAuditMeta    = []byte("audit_meta")
	bAuditText    = []byte("audit_text") // seq -> text record
	// Texts and erasure marks are per client and user (an OpenID is per
	// app). The user-only buckets are those of earlier versions: their
	// index entries are matched to a client through the chain record,
	// their marks apply to every client of the user; nothing new is
	// written there.
	bAuditTextCU  = []byte("audit_text_client_user") // enc(client) enc(user) seq -> nil
	bAuditErasedC = []byte("audit_erased_client")    // enc(client) enc(user) -> unix nanos of the last erasure
	bAuditTextUsr = []byte("audit_text_user")        // enc(user) seq -> nil (earlier versions)
	bAuditErased  = []byte("audit_erased")           // enc(user) -> unix nanos (earlier versions)
	// bAuditTextUntil lists the texts by expiry, so that the sweep reads
	// the texts whose retention ran out, not every text kept. It is not
	// in allBuckets: only a writer sweeps, and a read-only open of a file
	// an earlier version wrote needs none.
	bAuditTextUntil = []byte("audit_text_until") // u64(until) seq -> nil
	// bClientOrders and bClientStatus list a client's orders, and those of
	// one status, for the admin API's ?client= (ListOrders). Neither is in
	// allBuckets: a read-only open of a file an earlier version wrote
	// lists through bAllOrders and bStatusOrders as that version did.
	bClientOrders = []byte("client_orders")        // enc(client) ts no -> nil
	bClientStatus = []byte("client_status_orders") // enc(client) enc(status) ts no -> nil
	// bExpiry lists the records of the buckets whose records expire
	// (expiring) by their Until, so that the sweep reads the records that
	// expired, not every record kept. Not in allBuckets, as
	// bAuditTextUntil.
	bExpiry = []byte("expiry") // u64(until) id(bucket) key -> nil
	// bIndexesKept holds the id of the last write transaction made by a
	// version that keeps the four indexes above (each of this version's
	// writes sets it): a file whose last write was another's, an earlier
	// version's after a rollback, holds records those indexes lack (a
	// text, a claim, an order made or paid meanwhile), and its open
	// indexes them again. Not in allBuckets, as bAuditTextUntil.
	bIndexesKept = []byte("indexes_kept") // "tx" -> u64(transaction id)
	// bOwner holds the deployment the file belongs to (Options.Owner).
	// Not in allBuckets: written by the first Open that names an owner.
	bOwner = []byte("owner") // "owner" -> Options.Owner
)

var keptKey = []byte("tx")

// retainedKey, in bIndexesKept, is keptKey of the versions that apply
// audit.retain_text to the texts kept (retainKey, RetainAuditTexts). The
// version before them marks keptKey in every write too, but writes its
// texts under its own config's retention and leaves retainKey as it was:
// after a rollback to it (under 4320h) and back (720h), keptKey said the
// file was this version's, retainKey said 720h was applied, and the texts
// said meanwhile were kept 4320h.
var retainedKey = []byte("retain_tx")

// markIndexesKept records in tx that its writes kept the indexes, and
// kept the texts under the retention retainKey records.
func markIndexesKept(tx *bolt.Tx) error {
	b := tx.Bucket(bIndexesKept)
	if err := b.Put(keptKey, u64(uint64(tx.ID()))); err != nil {
		return err
	}
	return b.Put(retainedKey, u64(uint64(tx.ID())))
}

// retainKept reports whether the last write before tx (a write
// transaction) was one of a version that keeps retainKey (retainedKey).
func retainKept(tx *bolt.Tx) bool {
	b := tx.Bucket(bIndexesKept)
	if b == nil {
		return false
	}
	v := b.Get(retainedKey)
	return len(v) == 8 && binary.BigEndian.Uint64(v) == uint64(tx.ID()-1)
}

// indexesKept reports whether the last write before tx (a write
// transaction) was one that kept the indexes (markIndexesKept).
func indexesKept(tx *bolt.Tx) bool {
	b := tx.Bucket(bIndexesKept)
	if b == nil {
		return false
	}
	v := b.Get(keptKey)
	return len(v) == 8 && binary.BigEndian.Uint64(v) == uint64(tx.ID()-1)
}

// expiring lists the buckets whose records expire, each one's place its id
// in bExpiry's keys (1 for the first); an id is never reused.
var expiringBuckets = [][]byte{bClaims, bClaimGens, bNotes, bRefunds, bUserRefunds, bCounters, bExchanges, bAnnounced}

// expiryIDs is each of expiringBuckets' id, by name.
var expiryIDs = func() map[string]byte {
	m := make(map[string]byte, len(expiringBuckets))
	for i, b := range expiringBuckets {
		m[string(b)] = byte(i + 1)
	}
	return m
}()

// expiryKey is the entry in bExpiry of record key of the bucket of id id,
// expiring at until (unix nanos, none before 1970).
func expiryKey(until int64, id byte, key []byte) []byte {
	k := make([]byte, 0, 9+len(key))
	k = binary.BigEndian.AppendUint64(k, uint64(max(until, 0)))
	return append(append(k, id), key...)
}

// indexExpiry lists every record of expiringBuckets in bExpiry, once, for
// a file an earlier version wrote without it. A record that does not
// decode is left out.
func indexExpiry(tx *bolt.Tx) error {
	ix := tx.Bucket(bExpiry)
	for i, name := range expiringBuckets {
		err := tx.Bucket(name).ForEach(func(k, v []byte) error {
			var r expiring
			if unmarshal(v, &r) != nil {
				return nil
			}
			return ix.Put(expiryKey(r.Until, byte(i+1), k), nil)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

var allBuckets = [][]byte{
	bOrders, bUserOrders, bUserUpdated, bStatusOrders, bAllOrders, bClaims, bClaimGens,
	bNotes, bRefunds, bCounters, bExchanges, bSecrets, bOutbox, bOutboxDue, bOutboxDueOf, bAudit, bAuditMeta,
	bAuditText, bAuditTextCU, bAuditErasedC, bAuditTextUsr, bAuditErased, bAnnounced, bUserRefunds, bOutboxLeases,
}

// DB is the bbolt store. It implements store.Store.
type DB struct {
	db *bolt.DB
	// users may have an order (userfilter.go); nil: always read.
	users *userFilter
	now   func() time.Time
	log   *slog.Logger
	stop  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
	// wipe is held for reading while a read transaction begins and runs,
	// for writing by WipeFreePages while its write transaction begins,
	// which must be with none open.
	wipe sync.RWMutex
	// wipeHook, when set (by tests), is called by WipeFreePages inside its
	// write transaction, before it clears a page.
	wipeHook func()
	// sweepHook, when set (by tests), is called before each of the sweep's
	// write transactions, outside any transaction, with how many deletions
	// that transaction will at most make.
	sweepHook func(deletions int)
	// listHook, when set (by tests), is called with each order ListOrders
	// reads, listed or not.
	listHook func(orderNo []byte)
	// commitHook, when set (by tests), is called after each write
	// transaction of a store write commits.
	commitHook func()
	// readOnly: opened with Options.ReadOnly; Ping makes no write probe.
	readOnly bool
	// lastWrite is the outcome of the last write transaction that reached
	// its commit (a store write, the sweep's, Ping's probe), for Ping.
	lastWrite atomic.Pointer[writeOutcome]
	// probing is held by the Ping that writes its probe: the others answer
	// with the outcome they find meanwhile.
	probing sync.Mutex
	// probeSince is when (the DB's clock) the probe in flight began, nil
	// without one: a probe waiting writeStall is a hung write. It is kept
	// as the clock's reading, monotonic reading included, so a step of the
	// host's wall clock neither makes a wait of a second an hour's nor
	// hides a hung write.
	probeSince atomic.Pointer[time.Time]
	// group commits the hot path's writes that queue for the writer
	// together (batched).
	group group
}

// writeOutcome is a write transaction's commit: when (the DB's clock) and
// its error, nil for a commit that reached the disk.
type writeOutcome struct {
	at  time.Time
	err error
}

var _ store.Store = (*DB)(nil)

// Open opens (creating if needed) the store file at path.
func Open(path string, opts Options) (*DB, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if opts.SweepInterval == 0 {
		opts.SweepInterval = DefaultSweepInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("embedded: create directory: %w", err)
		}
	}
	bdb, users, err := openFile(path, opts.LockTimeout, opts.ReadOnly)
	if err != nil {
		return nil, err
	}
	if users == nil {
		opts.Logger.Warn("embedded store: a user index key does not parse; every turn reads the user's orders")
	}
	bdb.NoSync = opts.NoSync
	d := &DB{db: bdb, users: users, now: opts.Now, log: opts.Logger, stop: make(chan struct{}), readOnly: opts.ReadOnly}
	d.lastWrite.Store(&writeOutcome{at: opts.Now()}) // the open's own write (initFile) went through
	if opts.Owner != "" && !opts.ReadOnly {
		if err := d.claimOwner(opts.Owner); err != nil {
			_ = d.Close()
			return nil, fmt.Errorf("embedded: %s: %w", path, err)
		}
	}
	if opts.SweepInterval > 0 && !opts.ReadOnly {
		d.wg.Add(1)
		go d.sweepLoop(opts.SweepInterval)
	}
	return d, nil
}

// claimOwner records owner as the file's (Options.Owner) when it has none,
// and is ErrOtherOwner, naming both, when another one is. The file's own
// owner is read, not written again; the record is written as every store
// write is (commit: it marks the indexes kept). A write of its own that
// did not was the file's last after a start that wrote nothing else, and
// the next start took the file for an earlier version's and indexed every
// order, text and expiring record again (initFile).
func (d *DB) claimOwner(owner string) error {
	var was []byte
	err := d.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bOwner); b != nil {
			was = bytes.Clone(b.Get(bOwner))
		}
		return nil
	})
	if err != nil {
		return err
	}
	other := func(was []byte) error {
		return fmt.Errorf("%w: it holds the orders of %q, this deployment is %q", ErrOtherOwner, was, owner)
	}
	if was != nil {
		if string(was) != owner {
			return other(was)
		}
		return nil
	}
	return d.commit(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bOwner)
		if err != nil {
			return err
		}
		if was := b.Get(bOwner); was != nil && string(was) != owner {
			return other(was)
		}
		return b.Put(bOwner, []byte(owner))
	})
}

// Owner is the deployment the file belongs to (Options.Owner), as the
// first writing Open with an Owner recorded it; "" when none did.
func (d *DB) Owner(ctx context.Context) (string, error) {
	var owner string
	err := d.view(ctx, func(tx *bolt.Tx) error {
		if b := tx.Bucket(bOwner); b != nil {
			owner = string(b.Get(bOwner))
		}
		return nil
	})
	return owner, err
}

// ErrCorrupt is returned by Open when the file's pages cannot be read.
var ErrCorrupt = errors.New("database file is corrupt")

// openFile opens the bolt file, creates the buckets and loads the user
// index. bbolt panics, rather than returning an error, on some damaged pages
// (a zeroed freelist: "invalid freelist page"), and it does so while holding
// the file lock and a mapping of the file, on a *bolt.DB it never returns.
// The panic is recovered here into ErrCorrupt naming the file and what to
// do, so `paygate serve` exits with a message instead of a stack trace; the
// lock is released by hand on the file bbolt opened (captured through
// Options.OpenFile), so the restored file can be opened again in this
// process. The read-only mapping of the damaged file is left to the
// process's exit: bbolt gives no way to reach it.
func openFile(path string, lockTimeout time.Duration, readOnly bool) (bdb *bolt.DB, users *userFilter, err error) {
	var file atomic.Pointer[os.File] // the first file bbolt opens: the store's own
	bopts := &bolt.Options{
		Timeout:  lockTimeout,
		ReadOnly: readOnly,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			if err == nil {
				file.CompareAndSwap(nil, f)
			}
			return f, err
		},
	}
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		if f := file.Load(); f != nil {
			releaseFile(f)
		}
		bdb, users = nil, nil
		err = fmt.Errorf("embedded: open %s: %w (bbolt: %v); stop paygate, restore the file from a backup "+
			"(or move it aside to start empty) and start again; `bbolt check %s` reports the damaged pages", path, ErrCorrupt, p, path)
	}()
	bdb, err = bolt.Open(path, 0o600, bopts)
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, nil, fmt.Errorf("embedded: open %s (waited %s): %w", path, lockTimeout, ErrLocked)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("embedded: open %s: %w", path, err)
	}
	if readOnly {
		err = bdb.View(func(tx *bolt.Tx) error {
			for _, b := range firstBuckets {
				if tx.Bucket(b) == nil {
					return fmt.Errorf("embedded: open %s read-only: no bucket %q: %w", path, b, ErrNotStore)
				}
			}
			for _, b := range allBuckets {
				if tx.Bucket(b) == nil {
					return fmt.Errorf("embedded: open %s read-only: no bucket %q: %w", path, b, ErrNeedsWrite)
				}
			}
			return nil
		})
		if err != nil {
			_ = bdb.Close()
			return nil, nil, err
		}
	} else {
		err = bdb.Update(initFile)
	}
	if err != nil {
		_ = bdb.Close()
		return nil, nil, fmt.Errorf("embedded: create buckets: %w", err)
	}
	users, err = loadUserFilter(bdb)
	if err != nil {
		_ = bdb.Close()
		return nil, nil, fmt.Errorf("embedded: read the user index: %w", err)
	}
	return bdb, users, nil
}

// initFile is the open's write: the buckets, the indexes of earlier
// versions' files, the outbox leases of the process that last held it.
func initFile(tx *bolt.Tx) error {
	unrecorded := tx.Bucket(bOutboxLeases) == nil // written by a version that kept no record of leases
	// The indexes of texts and records by expiry are filled again when
	// another version wrote last: an entry a record has already is put
	// again, one of a record rewritten or deleted since is left to the
	// sweep, which reads the record it names. The client index is built
	// anew, as an order's status may have changed meanwhile, and so is the
	// index of orders by their last write (versions before it wrote orders
	// without it): an order paid meanwhile has an entry of its earlier
	// write alone, which LoadUserState skips as stale.
	kept := indexesKept(tx)
	retained := kept && retainKept(tx)
	backfill := !kept || tx.Bucket(bUserUpdated) == nil
	if backfill {
		if err := tx.DeleteBucket(bUserUpdated); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
	}
	untilIndexed := kept && tx.Bucket(bAuditTextUntil) != nil
	clientIndexed := kept && tx.Bucket(bClientOrders) != nil && tx.Bucket(bClientStatus) != nil
	expiryIndexed := kept && tx.Bucket(bExpiry) != nil
	if !clientIndexed {
		for _, b := range [][]byte{bClientOrders, bClientStatus} {
			if err := tx.DeleteBucket(b); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
				return err
			}
		}
	}
	for _, b := range append(allBuckets, bAuditTextUntil, bClientOrders, bClientStatus, bExpiry, bIndexesKept) {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	if !retained {
		// Another version wrote last (the version before included, which
		// keeps the indexes but not retainKey), its texts under a
		// retention of its own: the next RetainAuditTexts reads them all
		// again.
		if err := tx.Bucket(bAuditMeta).Delete(retainKey); err != nil {
			return err
		}
	}
	if !untilIndexed {
		if err := indexTextsUntil(tx); err != nil {
			return err
		}
	}
	if !clientIndexed {
		if err := indexClientOrders(tx); err != nil {
			return err
		}
	}
	if !expiryIndexed {
		if err := indexExpiry(tx); err != nil {
			return err
		}
	}
	if backfill {
		if err := indexUserUpdated(tx); err != nil {
			return err
		}
	}
	if err := indexDue(tx); err != nil {
		return err
	}
	if unrecorded {
		if err := releaseUnrecordedLeases(tx, time.Now()); err != nil {
			return err
		}
	}
	if err := releaseLeases(tx); err != nil {
		return err
	}
	return markIndexesKept(tx)
}

// Path is the file the store lives in.
func (d *DB) Path() string { return d.db.Path() }

// Local implements store.Local: a bbolt reader waits at most for a writer
// of this process growing the file.
func (d *DB) Local() bool { return true }

// writeProbeEvery is how long Ping trusts the outcome of the last write
// before it writes a probe of its own: a bound on the probes' fsyncs (a
// load balancer's readiness checks come every few seconds, from each of
// them), and on how long a disk that filled up while no write came goes
// unnoticed.
const writeProbeEvery = 10 * time.Second

// writeStall is how long Ping's probe may wait behind a write (for the
// writer lock, or the disk) before Ping reports the writes failing: a
// disk that stopped answering holds a write, and every write after it,
// for good, while reads go on. Long enough for the longest legitimate
// write, the wipe of an erasure's free pages on a large file; a payment
// held that long has failed its bot already.
const writeStall = 30 * time.Second

// Ping reports whether the file is open and takes writes. A read alone
// answered for a full disk or a filesystem gone read-only, where reads go
// on and every write fails: the replica read ready while it could record
// no order, no claim, no notification. So Ping also reports the last
// write's outcome, store.ErrWritesFail when it failed; when no write was
// made for writeProbeEvery, it makes one, a write transaction of nothing
// but the indexes' mark (bbolt commits it with a new freelist and meta
// page, synced), so that a disk
// that failed while idle is seen, and one fixed while the load balancer
// sent nothing is seen to be back. A write that fits the pages bbolt
// freed succeeds on a full disk, so Ping also reports the writes failing
// while the disk has less than a page free (statfs, on Linux).
func (d *DB) Ping(ctx context.Context) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	// Reads are held off while a wipe waits for the writer lock
	// (WipeFreePages), for good behind a write that hangs: Ping, which
	// has no way out of the wait, skips its read then (the probe below
	// tells a hung write), rather than hold /readyz and every /metrics
	// scrape past their deadline.
	if d.wipe.TryRLock() {
		err := wrap(d.db.View(func(*bolt.Tx) error { return nil }))
		d.wipe.RUnlock()
		if err != nil {
			return err
		}
	} else {
		select {
		case <-d.stop:
			return fmt.Errorf("embedded: %s: %w: closed", d.db.Path(), store.ErrUnavailable)
		default:
		}
	}
	if d.readOnly {
		return nil
	}
	w := d.lastWrite.Load()
	if d.now().Sub(w.at) >= writeProbeEvery && d.probing.TryLock() {
		// The probe waits for the writer lock, which a long write (the
		// wipe of an erasure's free pages) may hold for seconds: it runs
		// on, and Ping answers with what it knows when ctx ends first.
		began := d.now()
		d.probeSince.Store(&began)
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer d.probing.Unlock()
			defer d.probeSince.Store(nil)
			if d.now().Sub(d.lastWrite.Load().at) >= writeProbeEvery {
				_ = d.commit(func(*bolt.Tx) error { return nil })
			}
		}()
		select {
		case <-done:
		case <-ctx.Done():
		}
		w = d.lastWrite.Load()
	}
	if w.err != nil {
		return fmt.Errorf("embedded: %s: the last write failed: %w: %w", d.db.Path(), store.ErrWritesFail, w.err)
	}
	// The last outcome known is a success, but a probe still waiting
	// writeStall says the writes hang (a disk that stopped answering):
	// reads alone go on.
	if since := d.probeSince.Load(); since != nil {
		if waited := d.now().Sub(*since); waited >= writeStall {
			return fmt.Errorf("embedded: %s: a write probe has waited %s behind a write: %w", d.db.Path(), waited.Round(time.Second), store.ErrWritesFail)
		}
	}
	// A success on a full disk: bbolt wrote in the pages it freed, as an
	// idle replica's probe, and many a write after one that failed, do.
	// The next write that needs a new page fails, so a disk without a
	// page free is the writes failing, as the filesystem tells it: the
	// file's, which a bind mount of the file alone puts elsewhere than
	// its directory's.
	if free, ok := freeBytes(d.db.Path()); ok && free < uint64(d.db.Info().PageSize) {
		return fmt.Errorf("embedded: %s: the disk has %d bytes free, not a page: %w", d.db.Path(), free, store.ErrWritesFail)
	}
	return nil
}

// commit runs fn in a write transaction and records, for Ping, the
// outcome of a commit it reached: an error of fn's own (a store sentinel,
// a bad record) says nothing of the disk, and is not recorded. A change
// between failing and succeeding is logged once, at warn. A commit that
// failed on the disk (a full disk, a filesystem gone read-only) is the
// store's writes failing, store.ErrWritesFail, as a Redis refusing writes
// is: payments are then temporarily unavailable, not failed.
func (d *DB) commit(fn func(*bolt.Tx) error) error {
	var fnErr error
	err := d.db.Update(func(tx *bolt.Tx) error {
		if fnErr = fn(tx); fnErr != nil {
			return fnErr
		}
		return markIndexesKept(tx)
	})
	if fnErr != nil {
		return err
	}
	if d.commitHook != nil {
		d.commitHook()
	}
	if err := d.noteWrite(err); err != nil {
		if errors.Is(err, berrors.ErrDatabaseNotOpen) {
			return err // wrap's: closed, not the disk
		}
		return fmt.Errorf("embedded: %s: %w: %w", d.db.Path(), store.ErrWritesFail, err)
	}
	return nil
}

// noteWrite records, for Ping, err as the outcome of a write transaction's
// commit (commit's, or WipeFreePages's), and returns it. A commit refused
// because the file is closed says nothing of the disk, and is not
// recorded.
func (d *DB) noteWrite(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return err
	}
	prev := d.lastWrite.Swap(&writeOutcome{at: d.now(), err: err})
	switch {
	case err != nil && prev.err == nil:
		d.log.Warn("embedded store: a write failed; /readyz answers not ready until a write succeeds (a full disk, a read-only filesystem?)", "path", d.db.Path(), "err", err)
	case err == nil && prev.err != nil:
		d.log.Warn("embedded store: writes succeed again", "path", d.db.Path())
	}
	return err
}

// Close stops the sweeper and closes the file.
func (d *DB) Close() error {
	var err error
	d.once.Do(func() {
		close(d.stop)
		d.wg.Wait()
		err = d.db.Close()
	})
	return err
}

func (d *DB) sweepLoop(every time.Duration) {
	defer d.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			if _, err := d.sweep(); err != nil {
				d.log.Warn("store sweep failed", "err", err)
			}
		}
	}
}

// Sweep deletes records whose retention has passed (expired claims, seen
// notification ids, counters, announcement marks, exchanges, audit texts,
// expired proposals' entries in the user's index; refund tombstones after
// store.TombstoneTTL) and reports how many. It runs
// in the background; it is exported for operators and tests.
func (d *DB) Sweep(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return d.sweep()
}

// sweepBatch bounds the deletions of one sweep write transaction, and the
// index entries one sweep read transaction reads. The sweep used to hold
// one write transaction over every bucket: with a few hundred thousand
// notification ids, every money write (SeenNotification, CreateOrder)
// waited a second or more behind it, every minute. Reading in read
// transactions (which never block writers) and deleting in small write
// transactions lets writes interleave; bounding the read transactions too
// keeps one from pinning old pages, or blocking a write that must grow the
// file's mapping, for long.
const sweepBatch = 1000

func (d *DB) sweep() (int, error) {
	now := d.now().UnixNano()
	n, err := d.sweepExpiring(now)
	if err != nil {
		return n, err
	}
	k, err := d.sweepTexts(now)
	return n + k, err
}

// sweepExpiring deletes the records of expiringBuckets whose Until is at
// or before now, found through bExpiry (sweepIndex): a sweep reads the
// records that expired, never those kept.
func (d *DB) sweepExpiring(now int64) (int, error) {
	return d.sweepIndex(bExpiry, 9, now, func(tx *bolt.Tx, k []byte) (bool, error) {
		id := int(k[8])
		if id < 1 || id > len(expiringBuckets) {
			return false, nil
		}
		b := tx.Bucket(expiringBuckets[id-1])
		v := b.Get(k[9:])
		if v == nil {
			return false, nil
		}
		var r expiring
		if err := unmarshal(v, &r); err != nil {
			d.undecodable(expiringBuckets[id-1], k[9:], err)
			return false, nil
		}
		if r.Until > now {
			return false, nil // written again since, to expire later: its entry is another
		}
		return true, b.Delete(k[9:])
	})
}

// sweepTexts deletes the conversation texts whose Until is at or before
// now, with their entries in the user indexes, found through
// bAuditTextUntil (sweepIndex). A scan of every text, each decoded whole,
// cost a busy merchant gigabytes a minute.
func (d *DB) sweepTexts(now int64) (int, error) {
	return d.sweepIndex(bAuditTextUntil, 16, now, func(tx *bolt.Tx, k []byte) (bool, error) {
		if len(k) != 16 {
			return false, nil
		}
		texts, seq := tx.Bucket(bAuditText), k[8:]
		v := texts.Get(seq)
		if v == nil {
			return false, nil // erased
		}
		var r textRec
		if err := unmarshal(v, &r); err != nil {
			d.undecodable(bAuditText, seq, err)
			return false, nil
		}
		if r.Until > now {
			return false, nil // written again since, to expire later
		}
		return true, deleteText(tx, seq, r)
	})
}

// undecodable logs a record of bucket the sweep cannot decode, which it
// leaves in the file: its expiry unknown, it is not deleted (an operator
// may want to read it). It used to stop the sweep, every minute, at that
// record, and with it every deletion after it, the conversation texts'
// included. Its index entry is deleted with the others due, so a record
// is logged once, not every minute. Its key is named record_key: paygate's
// log masks an attribute named "key" whatever it holds (a name kept for
// secrets), and the line said where the record was as "[REDACTED]".
func (d *DB) undecodable(bucket, key []byte, err error) {
	d.log.Error("embedded store: the sweep skips a record that does not decode and leaves it in the file, never to expire (record_key in hex)",
		"bucket", string(bucket), "record_key", hex.EncodeToString(key), "err", err)
}

// sweepIndex walks index, whose keys start with a record's Until (8 bytes,
// big-endian unix nanos), from the earliest: a read transaction takes up
// to sweepBatch of the entries due at now, a write transaction of their
// own deletes each entry and calls drop with it, which deletes the record
// it names when that record is still due (a record written again since
// has an entry of its later Until; one deleted since has none) and says
// whether it did. A key shorter than minLen is no entry and is deleted
// unread. Writes interleave with the sweep's transactions; it reports how
// many records drop deleted.
func (d *DB) sweepIndex(index []byte, minLen int, now int64, drop func(tx *bolt.Tx, k []byte) (bool, error)) (int, error) {
	n := 0
	for {
		var due [][]byte
		d.wipe.RLock()
		err := d.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(index).Cursor()
			for k, _ := c.First(); k != nil && len(due) < sweepBatch; k, _ = c.Next() {
				if len(k) >= minLen && int64(binary.BigEndian.Uint64(k)) > now {
					break
				}
				due = append(due, bytes.Clone(k))
			}
			return nil
		})
		d.wipe.RUnlock()
		if err != nil {
			return n, wrap(err)
		}
		if len(due) == 0 {
			return n, nil
		}
		if d.sweepHook != nil {
			d.sweepHook(len(due))
		}
		err = d.commit(func(tx *bolt.Tx) error {
			ix := tx.Bucket(index)
			for _, k := range due {
				if len(k) >= minLen {
					deleted, err := drop(tx, k)
					if err != nil {
						return err
					}
					if deleted {
						n++
					}
				}
				if err := ix.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return n, wrap(err)
		}
		if len(due) < sweepBatch {
			return n, nil
		}
	}
}

// expiring is the common header of every TTL'd record: Until is when the
// sweeper may delete it (logical expiry is judged per record type).
type expiring struct {
	Until int64 `json:"until"`
}

func (d *DB) view(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	d.wipe.RLock()
	defer d.wipe.RUnlock()
	return wrap(d.db.View(fn))
}

func (d *DB) update(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	return wrap(d.commit(fn))
}

func ctxErr(ctx context.Context) error {
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// wrap turns "the database is closed" into store.ErrUnavailable; other errors
// pass unchanged (store sentinels returned from inside transactions included).
func wrap(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// enc encodes one component of a composite key so that prefixes are
// unambiguous: uvarint length, then the bytes.
// enc is s prefixed with its length as a uvarint, so that keys built from
// several strings never collide and sort by their first part.
func enc(s string) []byte { return appendEnc(make([]byte, 0, binary.MaxVarintLen64+len(s)), s) }

func appendEnc(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func join(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// lastNano is the latest time nanoseconds since 1970 hold in an int64 (in
// 2262).
var lastNano = time.Unix(0, math.MaxInt64)

// ts encodes a time so that byte order is time order: times before 1970
// clamp to 1970, and times past lastNano to it. UnixNano wraps past 2262,
// so a list's ?before=9999-12-31T23:59:59Z (an operator's "no upper
// bound") sought a key below every order and listed none, where the Redis
// store, whose index counts microseconds, listed them all.
func ts(t time.Time) []byte {
	switch {
	case t.Before(time.Unix(0, 0)):
		return u64(0)
	case t.After(lastNano):
		return u64(math.MaxInt64)
	}
	return u64(uint64(t.UnixNano()))
}

// prefixEnd is the smallest key greater than every key starting with p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
