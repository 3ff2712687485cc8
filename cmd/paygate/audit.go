package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/embedded"
	redisstore "github.com/paygate/paygate/store/redis"
)

const auditUsage = `Usage:
  paygate audit verify [-config FILE] [-head SEQ:HASH] [-text [-trust-marks]]
      walk the audit chain; name the first changed, missing or moved record
      (exit 1). -head is a head published earlier (log line "audit head",
      metric paygate_audit_head_info{seq,hash}, GET /admin/api/audit/head):
      it catches records cut from the end.
      -text also checks every conversation text against its hash; a text
      missing although no audit.text_erased record of its client and user
      at or after a minute before its record's time is in the chain and
      audit.retain_text has not run out (within a minute of its end counts
      as run out) is reported as removed (exit 1). -trust-marks also
      accepts the store's erasure marks outside the chain (erasures by
      versions that did not record them; anyone who can write the store
      can set one).
  paygate audit export [-config FILE] [-from SEQ] [-text] [-o FILE]
      write the chain as JSON Lines (bodies exactly as hashed; -text adds
      the conversation texts still kept)
`

// cmdAudit dispatches `paygate audit verify|export`.
func cmdAudit(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, auditUsage)
		return 2
	}
	if msg, moved := flagsBeforeSubCommand("audit", args); moved {
		fmt.Fprintln(stderr, msg)
		return 2
	}
	switch args[0] {
	case "verify":
		return cmdAuditVerify(args[1:], stdout, stderr)
	case "export":
		return cmdAuditExport(args[1:], stdout, stderr)
	case "help", "-h", "--h", "-help", "--help":
		if args[0] == "help" && len(args) > 1 && !strings.HasPrefix(args[1], "-") {
			// `paygate audit help verify` is verify's flags, as
			// `paygate help audit verify` gives them: it printed
			// audit's general usage whatever was named.
			return cmdAudit([]string{args[1], "-h"}, stdout, stderr)
		}
		fmt.Fprint(stdout, auditUsage)
		return 0
	}
	fmt.Fprintf(stderr, "paygate audit: unknown command %q\n\n%s", args[0], auditUsage)
	return 2
}

func cmdAuditVerify(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	path := configFlag(fs)
	headFlag := fs.String("head", "", "a published head SEQ:HASH the chain must reach")
	texts := fs.Bool("text", false, "also check the kept conversation texts against their hashes")
	marks := fs.Bool("trust-marks", false, "with -text, also accept texts erased by an erasure mark outside the chain (earlier versions)")
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if !noArguments(fs, stderr) || emptyConfig(fs, *path, stderr) {
		return 2
	}
	if *marks && !*texts {
		// Ignored, it let "audit chain ok" read as if the texts were checked.
		fmt.Fprintln(stderr, "paygate audit verify: -trust-marks is about the conversation texts, which only -text checks: give both, or neither")
		return 2
	}
	var opts audit.VerifyOptions
	opts.Texts = *texts
	opts.TrustErasureMarks = *marks
	headGiven := false
	fs.Visit(func(f *flag.Flag) { headGiven = headGiven || f.Name == "head" })
	if headGiven {
		// Given empty, it was ignored and the chain said ok: a script's
		// --head "$HEAD" whose fetch of the head failed passed as checked.
		h, err := audit.ParseHead(*headFlag)
		if err != nil {
			fmt.Fprintln(stderr, "paygate audit verify:", err)
			return 2
		}
		opts.Head = &h
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	st, cfg, code := openAuditStore(*path, stderr)
	if st == nil {
		return code
	}
	defer st.Close()
	stderr = maskedWriter{stderr, logging.NewRedactor(cfg.Secrets())}
	opts.RetainText = cfg.Audit.RetainText.D()
	if opts.RetainText == 0 {
		opts.RetainText = -1 // retain_text: 0 kept no text
	}
	res, err := audit.Verify(ctx, st, opts)
	if err != nil {
		var b *audit.BrokenError
		switch {
		case errors.As(err, &b) && b.Text && b.Seq <= res.Records:
			// A conversation text found missing (or changed) after the
			// walk: the chain itself is whole; "N records before it"
			// said of record 1 that the records after it came before it.
			fmt.Fprintf(stderr, "paygate audit verify: %v (the chain itself verified: %d records, head %s)\n",
				err, res.Records, audit.FormatHead(res.Head))
		case errors.As(err, &b) && b.Seq <= res.Records:
			// The store's head, not matching its record: that record
			// was verified too, not only those before it.
			fmt.Fprintf(stderr, "paygate audit verify: %v (%d records verified)\n", err, res.Records)
		case errors.Is(err, audit.ErrBroken):
			fmt.Fprintf(stderr, "paygate audit verify: %v (%d records before it verified)\n", err, res.Records)
		default:
			fmt.Fprintln(stderr, "paygate audit verify:", err)
		}
		return 1
	}
	fmt.Fprintf(stdout, "audit chain ok: %d records, head %s\n", res.Records, audit.FormatHead(res.Head))
	if opts.Head != nil {
		fmt.Fprintf(stdout, "published head %s is on the chain\n", audit.FormatHead(*opts.Head))
	}
	if opts.Texts {
		fmt.Fprintf(stdout, "texts: %d match their hashes, %d erased or expired", res.TextsChecked, res.TextsGone)
		if res.TextsGoneByMark > 0 {
			fmt.Fprintf(stdout, " (%d of them on the store's erasure marks alone, outside the chain)", res.TextsGoneByMark)
		}
		if res.TextsPending > 0 {
			fmt.Fprintf(stdout, ", %d pending (their events, or their users' erasures' records, wait in the outbox)", res.TextsPending)
		}
		fmt.Fprintln(stdout)
	}
	return 0
}

func cmdAuditExport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("audit export", flag.ContinueOnError)
	path := configFlag(fs)
	from := fs.Uint64("from", 1, "first record to export")
	texts := fs.Bool("text", false, "include the conversation texts still kept")
	out := fs.String("o", "-", "output file (- for standard output)")
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if !noArguments(fs, stderr) || emptyConfig(fs, *path, stderr) {
		return 2
	}
	if *out == "" {
		// Taken as a file, the whole chain was read into a temporary
		// file that could not be renamed to "".
		fmt.Fprintln(stderr, "paygate audit export: -o is empty: give a file, or - for standard output")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	st, cfg, code := openAuditStore(*path, stderr)
	if st == nil {
		if *out != "-" {
			// As an export that fails later says: an earlier export
			// there is the one that stands.
			fmt.Fprintf(stderr, "paygate audit export: %s not written\n", *out)
		}
		return code
	}
	defer st.Close()
	stderr = maskedWriter{stderr, logging.NewRedactor(cfg.Secrets())}
	w := stdout
	var f *exportFile
	if *out != "-" && cfg.Store.Driver == "embedded" && sameFile(*out, cfg.Store.Path) {
		// Renamed over it, the export replaced the store (every order,
		// refund and secret, and the chain itself) with its JSON Lines,
		// and said "exported N records".
		fmt.Fprintf(stderr, "paygate audit export: -o %s is the store file itself (store.path): give another file\n", *out)
		return 2
	}
	if *out != "-" {
		var err error
		if f, err = createExportFile(*out); err != nil {
			fmt.Fprintln(stderr, "paygate audit export:", err)
			return 1
		}
		defer f.abort()
		w = f.f
	}
	n, err := audit.Export(ctx, st, w, audit.ExportOptions{From: *from, Texts: *texts})
	if err == nil && f != nil {
		err = f.commit()
	}
	if err != nil {
		msg := fmt.Sprintf("paygate audit export: %v (after %d records)", err, n)
		if f != nil && f.tmp != "" {
			msg += fmt.Sprintf("; %s not written", *out)
		}
		fmt.Fprintln(stderr, msg)
		return 1
	}
	if f != nil {
		fmt.Fprintf(stderr, "exported %d records to %s\n", n, *out)
	}
	return 0
}

// exportFile is where `audit export -o FILE` writes: a temporary file
// beside FILE, renamed over it once the whole export is written, so an
// export that fails (a hole in the chain, a store that stops answering,
// Ctrl-C) leaves FILE as it was, never an empty or cut JSONL file that
// reads as a complete chain in place of the last good export. A FILE that
// is no regular file (/dev/stdout, a pipe) is written as it is.
type exportFile struct {
	f    *os.File
	tmp  string // "" when f is FILE itself
	dest string
}

func createExportFile(dest string) (*exportFile, error) {
	// Written where FILE leads: renamed over a symlink, the export replaced
	// the link and left its target as it was; beside /dev/fd/N (what
	// /dev/stdout leads to) it could not be written, or, as root, replaced
	// /dev/stdout itself.
	p, err := exportTarget(dest)
	if err != nil {
		return nil, fmt.Errorf("cannot write %s: %w", dest, err)
	}
	fi, statErr := os.Stat(p)
	if descriptorPath(p) || statErr == nil && !fi.Mode().IsRegular() {
		// An open descriptor (a shell's redirect, a pipe) is appended
		// to, as a write to the descriptor itself would be.
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return nil, err
		}
		return &exportFile{f: f, dest: p}, nil
	}
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*.partial")
	if err != nil {
		// Named for FILE, not for the temporary file it failed at.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("cannot write %s: %w", dest, err)
	}
	e := &exportFile{f: f, tmp: f.Name(), dest: p}
	if statErr == nil {
		// FILE keeps its permissions: the temporary file, created
		// 0600, took an earlier export from its group's or others'
		// readers (a log shipper, an auditor's account).
		if err := f.Chmod(fi.Mode().Perm()); err != nil {
			e.abort()
			return nil, fmt.Errorf("cannot write %s: %w", dest, err)
		}
		// And its owner and group: run as root, the temporary file was
		// root's, and FILE's group (the auditors') lost it all the same.
		if err := keepOwner(f, fi); err != nil {
			e.abort()
			return nil, fmt.Errorf("cannot write %s keeping its owner and group: %w", dest, err)
		}
	}
	return e, nil
}

// sameFile reports whether the paths a and b name one existing file
// (through a link, or another spelling of its path).
func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

// exportTarget is the file dest leads to: its symlinks followed, up to a
// path of an open descriptor (descriptorPath), which is written as it is.
func exportTarget(dest string) (string, error) {
	p := dest
	for range 40 {
		if descriptorPath(p) {
			return p, nil
		}
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			return p, nil // a file not there yet is created there
		}
		t, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(t) {
			t = filepath.Join(filepath.Dir(p), t)
		}
		p = t
	}
	return "", errors.New("too many levels of symbolic links")
}

// descriptorPath reports whether p names an open descriptor (/dev/stdout,
// /dev/stderr, /dev/fd/N, anything in /proc): never a directory to write a
// temporary file in, and whose link leads, under a shell's redirect, to a
// regular file elsewhere. /dev/shm and the like are directories as any.
func descriptorPath(p string) bool {
	p, err := filepath.Abs(p)
	return err == nil && (p == "/dev/stdout" || p == "/dev/stderr" ||
		strings.HasPrefix(p, "/dev/fd/") || strings.HasPrefix(p, "/proc/"))
}

// commit syncs and closes the file and puts it in place.
func (e *exportFile) commit() error {
	if e.tmp == "" {
		return e.f.Close()
	}
	if err := e.f.Sync(); err != nil {
		return err
	}
	if err := e.f.Close(); err != nil {
		return err
	}
	if err := os.Rename(e.tmp, e.dest); err != nil {
		return err
	}
	e.tmp = ""
	return nil
}

// abort closes the file and removes what an unfinished export wrote.
func (e *exportFile) abort() {
	_ = e.f.Close()
	if e.tmp != "" {
		_ = os.Remove(e.tmp)
	}
}

// openAuditStore opens the configured store for reading the chain. The
// embedded file is opened read-only (verify and export change nothing, not
// a byte of the file) and must exist; while `paygate serve` holds it, the open
// fails after the lock timeout with a message saying so. Redis is read
// alike, and its key prefix must hold a deployment's data
// (openRedisForAudit). It returns the config too; on failure it returns a
// nil store and the exit code.
func openAuditStore(path string, stderr io.Writer) (store.Store, *config.Config, int) {
	return openToolStore("audit", "check the live head with GET /admin/api/audit/head", path, stderr)
}

// openToolStore is openAuditStore for the command `paygate tool`, which
// its errors name; live is what to do instead while a paygate holds the
// embedded file.
func openToolStore(tool, live, path string, stderr io.Writer) (store.Store, *config.Config, int) {
	cfg, err := loadConfig(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, nil, 1
	}
	// The store's warnings (and go-redis's own lines) through the redactor,
	// as serve's: a Redis error may carry a configured secret. So do the
	// Redis errors written below.
	red := logging.NewRedactor(cfg.Secrets())
	log := slog.New(logging.NewHandler(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}), red))
	if cfg.Store.Driver != "embedded" {
		st, code := openRedisForAudit(tool, cfg, path, log, red, stderr)
		return st, cfg, code
	}
	st, code := openEmbeddedForAudit(tool, live, cfg, log, stderr)
	return st, cfg, code
}

// openRedisForAudit opens the Redis store read-only, and refuses a key
// prefix (and database) where no deployment ever was: verify reported the
// empty chain of a mistyped key_prefix as "audit chain ok: 0 records",
// exit 0, and an auditor was told all was well of a place paygate never
// wrote. A deployment that made no money action yet has no chain but has
// its owner record (HoldsDeployment), and verifies as empty. Its errors
// reach stderr through red: a Redis reply may quote the password (a server
// with AUTH renamed away answers "unknown command 'auth', with args
// beginning with: '<password>'").
func openRedisForAudit(tool string, cfg *config.Config, path string, log *slog.Logger, red *logging.Redactor, stderr io.Writer) (store.Store, int) {
	o := redisOptions(cfg, log)
	// As a tool, not as the deployment the config's payments name (no
	// Owner): opened as that one, it recorded itself the owner of a prefix
	// no paygate had reached yet (the real deployment, of other payments,
	// was then refused its own store), and could not read the chain of a
	// deployment whose payments the config did not copy. Read-only: it
	// sets no epoch marker, replays no other process's cut writes (no
	// repair), and any write is refused, not made (redis.Options.ReadOnly).
	o.ReadOnly, o.RepairInterval = true, -1
	st, err := redisstore.Open(o)
	if err != nil {
		fmt.Fprintln(stderr, "paygate "+tool+": opening redis store:", red.String(err.Error()))
		return nil, 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ok, err := st.HoldsDeployment(ctx)
	if err == nil && !ok {
		r := cfg.Store.Redis
		where := fmt.Sprintf("%s db %d", strings.Join(r.Addrs, ","), r.DB)
		if r.Cluster || len(r.Addrs) > 1 && r.MasterName == "" {
			where = "cluster " + strings.Join(r.Addrs, ",")
		} else if r.MasterName != "" {
			where = fmt.Sprintf("master %q (sentinels %s) db %d", r.MasterName, strings.Join(r.Addrs, ","), r.DB)
		}
		err = fmt.Errorf("no paygate deployment has used Redis key prefix %q at %s: it holds no owner record and no audit chain. "+
			"Check store.redis.key_prefix and store.redis.db in %s (a deployment records itself there when it first starts)", r.KeyPrefix, where, path)
	}
	if err != nil {
		_ = st.Close()
		fmt.Fprintln(stderr, "paygate "+tool+":", red.String(err.Error()))
		return nil, 1
	}
	return st, 0
}

func openEmbeddedForAudit(tool, live string, cfg *config.Config, log *slog.Logger, stderr io.Writer) (store.Store, int) {
	p := cfg.Store.Path
	if _, err := os.Stat(p); err != nil {
		fmt.Fprintf(stderr, "paygate "+tool+": no store file at %s (store.path): %v\n", p, err)
		return nil, 1
	}
	// Read-only: verify and export leave the file as it was (an evidence
	// copy keeps its checksum; a read-only copy can be read). A file of an
	// earlier version lacks buckets only a writing open adds: it is opened
	// for writing then, as before, and the command says so.
	db, err := embedded.Open(p, embedded.Options{SweepInterval: -1, Logger: log, ReadOnly: true})
	if err != nil && !errors.Is(err, embedded.ErrLocked) {
		if fi, serr := os.Stat(p); serr == nil && fi.Size() == 0 {
			// Opened read-only, bbolt tried to write a new file's first
			// pages into it and failed with "bad file descriptor". Asked
			// after the open, not before: an empty file a paygate holds
			// locked is a serve starting on it, which bbolt has created
			// and not yet written, and is named as in use below.
			fmt.Fprintf(stderr, "paygate "+tool+": %s is empty: no paygate store was ever written there (store.path)\n", p)
			return nil, 1
		}
	}
	if errors.Is(err, embedded.ErrNotStore) {
		// Taken for an earlier version's file, it was opened for writing,
		// given paygate's buckets and verified as an empty chain.
		fmt.Fprintf(stderr, "paygate "+tool+": %v. Check store.path: another program's file, or a store whose audit chain was removed\n", err)
		return nil, 1
	}
	if errors.Is(err, embedded.ErrNeedsWrite) {
		fmt.Fprintf(stderr, "paygate "+tool+": %s was written by an earlier version; opening it for writing to add this version's buckets\n", p)
		db, err = embedded.Open(p, embedded.Options{SweepInterval: -1, Logger: log})
	}
	if errors.Is(err, embedded.ErrLocked) {
		fmt.Fprintf(stderr, "paygate "+tool+": %s is in use by a running paygate (the embedded store allows one process).\n"+
			"Stop it first, or %s.\n", p, live)
		return nil, 1
	}
	if err != nil {
		fmt.Fprintln(stderr, "paygate "+tool+":", err)
		return nil, 1
	}
	return db, 0
}

// auditing is the audit's part of a running paygate: the Worker that appends
// the outbox's audit events to the chain and the head publisher.
type auditing struct {
	st     store.Store
	log    *slog.Logger
	every  time.Duration
	worker *audit.Worker
	m      *audit.Metrics
	cancel context.CancelFunc
	done   sync.WaitGroup
	// acked is called after the worker acknowledged audit records (the
	// relay's Wake, when webhooks are on: an order's webhook queued behind
	// its audit record is due now; see wakeOnAcked).
	acked atomic.Pointer[func()]
}

func newAuditing(cfg *config.Config, st store.Store, reg prometheus.Registerer, log *slog.Logger) (*auditing, error) {
	m, err := audit.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	o := audit.WorkerOptions{Store: st, RetainText: cfg.Audit.RetainText.D(), Metrics: m, Logger: log}
	if cfg.Webhooks.URL == "" {
		// No relay runs here, but other replicas sharing the store may run
		// one: their webhook events are theirs, never claimed, dropped or
		// acknowledged here (this replica enqueues none). Only one left on
		// its order's queue long past any live relay's pass (by a run with
		// webhooks on, before they were turned off) is set aside into its
		// delivery queue, kept for a relay, so that it no longer holds back
		// its order's audit events.
		o.SetAside = webhook.SetAside(st, webhook.DefaultAbandonedAfter, nil)
	}
	au := &auditing{st: st, log: log, every: cfg.Audit.HeadEvery.D(), m: m}
	o.Acked = func() {
		if f := au.acked.Load(); f != nil {
			(*f)()
		}
	}
	w, err := audit.NewWorker(o)
	if err != nil {
		return nil, err
	}
	au.worker = w
	return au, nil
}

// wakeOnAcked makes the worker call f after each pass that acknowledged
// audit records: the relay's Wake, so that a webhook queued behind its
// order's audit record goes out as soon as the record is appended, not at
// the relay's next poll.
func (au *auditing) wakeOnAcked(f func()) { au.acked.Store(&f) }

// start runs the worker and the head publisher until stop.
func (au *auditing) start() {
	ctx, cancel := context.WithCancel(context.Background())
	au.cancel = cancel
	au.done.Add(2)
	go func() { defer au.done.Done(); au.worker.Run(ctx) }()
	go func() { defer au.done.Done(); audit.PublishHead(ctx, au.st, au.every, au.m, au.log) }()
}

// stop ends both and waits, appends what the outbox still holds, then
// publishes the head once more, before the store closes: the records
// appended since the last publication (up to audit.head_every of them)
// would otherwise be in no outside record, and a chain cut from the end
// while paygate is stopped would go unnoticed.
func (au *auditing) stop() {
	if au.cancel == nil {
		return // never started: nothing was appended
	}
	au.cancel()
	au.done.Wait()
	// The pass the stop cut short (its appends end with its context) left
	// the records of money actions committed before the shutdown in the
	// outbox: out of the chain and of the head published below until the
	// next start. One more pass appends them. Bounded, as the head's read:
	// a store that stopped answering must not hold the shutdown (closeBy
	// also closes such a store under it).
	dctx, dcancel := context.WithTimeout(context.Background(), finalHeadTimeout)
	if _, err := au.worker.Drain(dctx); err != nil {
		au.log.Warn("audit records left in the outbox at shutdown: they are appended at the next start", "err", err)
	}
	dcancel()
	ctx, cancel := context.WithTimeout(context.Background(), finalHeadTimeout)
	defer cancel()
	if err := audit.PublishHeadNow(ctx, au.st, au.m, au.log); err != nil {
		au.log.Warn("audit head unavailable at shutdown: the last records since the published head are in no outside record",
			"err", err)
	}
}

// finalHeadTimeout bounds the read of the head stop publishes.
const finalHeadTimeout = 2 * time.Second

// wake is payments.Options.Committed's audit part.
func (au *auditing) wake(payments.Transition) { au.worker.Wake() }

// proposed is payments.Options.Proposed's audit part. The refund.proposed
// record rode the proposal's own write (payments.Options.ProposalEvents:
// audit.ProposalEvents), so a proposal the user can confirm never lacks it;
// here the worker is only woken to append it.
func (au *auditing) proposed(context.Context, store.RefundProposal) { au.worker.Wake() }

// maskedWriter masks the config's secrets in what verify and export write to
// stderr once the store is open: a store error met mid-run (a reconnect's
// reply) may quote one, as the open's may (openRedisForAudit). Each
// message is one Fprint, so one Write.
type maskedWriter struct {
	w   io.Writer
	red *logging.Redactor
}

func (m maskedWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(m.w, m.red.String(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}
