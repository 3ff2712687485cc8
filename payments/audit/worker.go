package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paygate/paygate/store"
)

// Store is what the Worker needs: the chain and the outbox it drains.
type Store interface {
	store.Audit
	store.Outbox
}

// Defaults of WorkerOptions.
const (
	DefaultPollInterval = time.Second
	DefaultClockSkew    = time.Minute
	// maxConflicts bounds the compare-and-set retries of one append.
	maxConflicts = 1000
	// keepSeen is how long appended event ids stay in the duplicate index;
	// older events reread the chain when they come.
	keepSeen = 10 * time.Minute
	// readPage is how many records one ReadAudit asks for.
	readPage = 500
	// maxBatch and maxBatchBytes bound the records one append carries
	// (store.Audit.AppendAuditBatch): the due audit events a pass found
	// go in batches of at most this many, and this many payload bytes (a
	// lone event larger goes alone). One due event is appended at once,
	// alone: nothing waits for a batch to fill.
	maxBatch      = 256
	maxBatchBytes = 1 << 20
	// settleAtOnce bounds the events of a batch whose texts and
	// acknowledgements are written at once (settleAll): on Redis each
	// holds a connection of the pool (go-redis's default, 10 per CPU)
	// meanwhile, which the turns share.
	settleAtOnce = 16
)

// WorkerOptions configures a Worker.
type WorkerOptions struct {
	Store Store // required
	// RetainText is how long the conversation text is kept beside the chain
	// (audit.retain_text); 0 keeps none (the chain still holds its hash).
	RetainText time.Duration
	// PollInterval is how often the outbox is polled for events other
	// replicas enqueued; Wake makes a pass at once. Default 1s.
	PollInterval time.Duration
	// ClockSkew bounds the clock difference between replicas; the duplicate
	// check looks this much further back in the chain, and a text said up
	// to this long after an erasure of its user is not kept (keepText).
	// Default 1m.
	ClockSkew time.Duration
	Metrics   *Metrics         // nil: unregistered
	Logger    *slog.Logger     // nil: discard
	Now       func() time.Time // nil: time.Now
	// SetAside, when set, is offered each due event of another kind. An
	// order's events are handed out one at a time, oldest first, so such an
	// event holds back the audit events behind it until its consumer takes
	// it, and one that nothing consumes (a webhook event left by a run with
	// webhooks on) would hold them back for good. SetAside may move the
	// event off its key without losing it and report true; false leaves it
	// to its consumer. It must never take an event a consumer elsewhere (a
	// relay on another replica) is about to handle. Nil leaves every other
	// kind alone.
	SetAside func(ctx context.Context, e store.Event) (bool, error)
	// Acked, when set, is called after a pass acknowledged audit events
	// (or set other kinds aside): the events queued behind them on their
	// keys (an order's merchant webhooks, of another consumer) are due to
	// their consumer now, which it should read at once rather than at its
	// next poll (cmd/ passes the webhook relay's Wake). It must not block.
	Acked func()
}

// Worker appends the audit events of the outbox to the chain. One Worker runs
// per process; any number of processes may share a store.
type Worker struct {
	st     Store
	retain time.Duration
	poll   time.Duration
	skew   time.Duration
	m      *Metrics
	log    *slog.Logger
	now    func() time.Time
	wake   chan struct{}
	aside  func(context.Context, store.Event) (bool, error)
	acked  func()

	// pass is held by the one Drain running (a 1-slot semaphore) and
	// guards seen. A channel rather than a mutex, so that a Drain waiting
	// for the running one gives up when its context ends: Run's Drain
	// holds it for as long as audit traffic keeps its passes busy, and an
	// erasure must still answer (Erase).
	pass chan struct{}
	seen seenIndex
	// wipeOwed is set when a pass acknowledges an event whose text the
	// store refused for an erasure of its user (or by Erase): the event's
	// freed pages still hold the text, and Drain clears the file's free
	// pages (freePageWiper) as it ends.
	wipeOwed atomic.Bool

	// retainedAt is when the last pass applied the retention to the texts
	// kept (retainTexts), retainWarned when it last logged a failure to;
	// guarded by retaining, which retainTexts only tries for: that pass
	// reads every text kept at the first call (tens of seconds over
	// 100,000), outside pass, so that the chain does not wait for it.
	retaining    sync.Mutex
	retainedAt   time.Time
	retainWarned time.Time

	// afterAppend, when set (tests), runs after a record is appended and
	// before its text is stored and its event acknowledged; an error stops
	// there, as a crash would.
	afterAppend func(store.Event, uint64) error
}

// NewWorker validates o and returns a Worker; Run starts it.
func NewWorker(o WorkerOptions) (*Worker, error) {
	if o.Store == nil {
		return nil, errors.New("audit: Store is required")
	}
	w := &Worker{
		st: o.Store, retain: o.RetainText, poll: o.PollInterval, skew: o.ClockSkew,
		m: o.Metrics, log: o.Logger, now: o.Now, wake: make(chan struct{}, 1), aside: o.SetAside, acked: o.Acked,
		pass: make(chan struct{}, 1),
	}
	if w.poll <= 0 {
		w.poll = DefaultPollInterval
	}
	if w.skew <= 0 {
		w.skew = DefaultClockSkew
	}
	if w.m == nil {
		w.m = newMetrics()
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if w.now == nil {
		w.now = time.Now
	}
	w.seen.ids = map[string]uint64{}
	return w, nil
}

// Wake asks for a pass now, e.g. from payments.Options.Committed. It never
// blocks.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run drains the outbox until ctx ends: at once, on Wake and every
// PollInterval.
func (w *Worker) Run(ctx context.Context) {
	t := time.NewTicker(w.poll)
	defer t.Stop()
	// A pass the stop cut short owes the clearing of the pages its
	// acknowledgements freed (wipeOwed) and could not do it with its
	// context over; the flag does not outlive the process, so it is done
	// here, before the store closes, or an erased text would stay in the
	// file. It holds the pass, as every clearing that takes the flag does,
	// so that an erasure's Drain that runs ends after it (Erase).
	defer func() {
		w.pass <- struct{}{}
		defer func() { <-w.pass }()
		w.wipeIfOwed(context.WithoutCancel(ctx))
	}()
	// A store that stays down is logged once a minute, and again at once
	// after the clock stepped back past the last warning.
	var warned time.Time
	for {
		if _, err := w.Drain(ctx); err != nil && ctx.Err() == nil {
			if now := w.now(); now.Sub(warned) >= time.Minute || now.Before(warned) {
				warned = now
				w.log.WarnContext(ctx, "audit outbox pass failed; records wait in the outbox", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-t.C:
		}
	}
}

// Drain appends every due audit event and reports how many it appended or
// found already appended. It returns when a pass finds nothing more to do.
// An event that fails is rescheduled with backoff and does not stop the
// others. One Drain runs at a time; another waits for it until ctx ends.
func (w *Worker) Drain(ctx context.Context) (int, error) {
	select {
	case w.pass <- struct{}{}:
	case <-ctx.Done():
		return 0, fmt.Errorf("audit: wait for the running pass: %w", ctx.Err())
	}
	// Deferred first, so run after the pass is let go: applying the
	// retention may read every text kept, and the next pass (a money
	// action's record, an erasure's) does not wait for it.
	defer w.retainTexts(ctx)
	defer func() { <-w.pass }()
	defer w.wipeIfOwed(ctx)
	total := 0
	for {
		due, err := w.due(ctx)
		if err != nil {
			return total, fmt.Errorf("audit: due events: %w", err)
		}
		done, moved := 0, 0
		var firstErr error
		for i := 0; i < len(due); {
			e := due[i]
			if e.Kind == KindAudit {
				// The audit events due together, appended in batches
				// (processRun); one alone goes at once.
				run := auditRun(due[i:])
				i += len(run)
				for _, err := range w.processRun(ctx, run) {
					if err != nil {
						if ctx.Err() != nil {
							return total + done, ctx.Err()
						}
						firstErr = cmp(firstErr, err)
						continue
					}
					done++
				}
				continue
			}
			i++
			ok, err := w.aside(ctx, e) // read only with SetAside (due)
			if err != nil {
				firstErr = cmp(firstErr, fmt.Errorf("audit: set aside %s event %s: %w", e.Kind, e.ID, err))
				continue
			}
			if ok {
				w.log.Warn("outbox event nothing here consumes set aside, kept for its consumer; it held back its key's audit events",
					"kind", e.Kind, "outbox_key", e.Key, "event_id", e.ID, "created_at", e.CreatedAt)
				moved++ // what its key held back may be due now
			}
		}
		total += done
		if done == 0 && moved == 0 {
			return total, firstErr
		}
		if w.acked != nil {
			w.acked()
		}
	}
}

// due reads the events of one pass. Without SetAside that is the due audit
// events alone: heads of other kinds are their consumers', and however many
// of them are due (a relay behind, delivery queues no relay drains) they
// hide none of these. With SetAside every due head is read, so that each one
// of another kind is offered to it. When that read is full and holds heads
// of other kinds, more may be due beyond it, and among them heads SetAside
// would take (a webhook left on an order's own queue, with that order's
// audit events behind it) of the same kind as those it leaves where they
// are (delivery queues): no read by kind tells them apart, so every due
// head is read then, uncapped (never-due dead letters are not). The common
// pass is one read either way.
func (w *Worker) due(ctx context.Context) ([]store.Event, error) {
	now := w.now()
	if w.aside == nil {
		return w.st.DueEvents(ctx, now, store.MaxListLimit, KindAudit)
	}
	due, err := w.st.DueEvents(ctx, now, store.MaxListLimit)
	if err != nil || len(due) < store.MaxListLimit || !slices.ContainsFunc(due, func(e store.Event) bool { return e.Kind != KindAudit }) {
		return due, err
	}
	return w.st.DueEvents(ctx, now, math.MaxInt32)
}

func cmp(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// process appends e (unless the chain already has it), keeps its text and
// acknowledges it. A failure reschedules e. An event whose sampling
// parameters cannot be read back or sealed is recorded without them
// (withoutParams). One that still cannot be read is no payload paygate wrote
// (the params are a payload's only free-form part): it is not set aside,
// which would leave a money action without its record, but kept at the head
// of its queue, retried with backoff, its error in the outbox's last_error
// and the audit worker's log.
func (w *Worker) process(ctx context.Context, e store.Event) error {
	seq, err := w.apply(ctx, e)
	return w.settle(ctx, e, seq, err)
}

// settle ends e's processing after its append (record seq) and text as
// apply or processRun left them: err reschedules e, else e is
// acknowledged.
func (w *Worker) settle(ctx context.Context, e store.Event, seq uint64, err error) error {
	if err != nil && ctx.Err() != nil {
		// Stopped mid-append (serve's shutdown, Erase's wait over): the
		// store refused the stopped call, nothing failed. The event stays
		// due as it was, for the next pass or process, which reads the
		// chain first (an append that went through is found there).
		// Counted and rescheduled, it raised the error count the README
		// alerts on and logged a failure at every such stop.
		return err
	}
	if err != nil {
		w.m.records.WithLabelValues("error").Inc()
		w.reschedule(ctx, e, err)
		return err
	}
	if err := w.st.AckEvent(ctx, e.Key, e.ID); err != nil {
		// Still pending: the next pass finds it in the chain and acks it.
		return fmt.Errorf("audit: ack event %s (record %d): %w", e.ID, seq, err)
	}
	return nil
}

// apply appends e's record unless the chain has it, then stores its text.
func (w *Worker) apply(ctx context.Context, e store.Event) (uint64, error) {
	p, err := decodePayload(e.Payload)
	if err != nil {
		if p, err = withoutParams(e.Payload, err); err != nil {
			return 0, err
		}
		w.log.WarnContext(ctx, "audit event's sampling parameters unreadable; recorded without them", "event_id", e.ID,
			"order_no", e.Key, "params", p.Action.Params["unencodable"])
	}
	for range maxConflicts {
		head, err := w.headCovered(ctx, e.CreatedAt.Add(-w.skew))
		if err != nil {
			return 0, err
		}
		if seq, ok := w.seen.ids[e.ID]; ok {
			if err := w.confirmFound(ctx); err != nil {
				return seq, err
			}
			return seq, w.duplicate(ctx, e, seq, p)
		}
		r := Record{EventID: e.ID, AppendedAt: w.now(), Action: p.Action}
		if len(p.Text) > 0 {
			r.TextSHA256, r.TextBytes = TextHash(p.Text), len(p.Text)
		}
		rec, err := w.seal(ctx, head, r, e, &p)
		if err != nil {
			return 0, err
		}
		err = w.st.AppendAudit(ctx, rec)
		if errors.Is(err, store.ErrConflict) {
			w.m.conflicts.Inc()
			continue
		}
		if err != nil {
			// It may have been applied (a replica wait that timed out): the
			// next attempt reads the chain first.
			return 0, fmt.Errorf("audit: append record %d: %w", rec.Seq, err)
		}
		w.appended(rec, r)
		return rec.Seq, w.afterAppended(ctx, e, rec.Seq, p)
	}
	return 0, fmt.Errorf("audit: append kept losing races: %w", store.ErrConflict)
}

// headCovered reads the head and brings the duplicate index up to it,
// covering every record appended after since.
func (w *Worker) headCovered(ctx context.Context, since time.Time) (store.AuditHead, error) {
	head, err := w.st.AuditHead(ctx)
	if err != nil {
		return head, fmt.Errorf("audit: read head: %w", err)
	}
	readTo, err := w.seen.cover(ctx, w.st, head, since)
	if readTo != 0 {
		w.m.cuts.Inc()
		// Records this worker read in the chain are past its head now:
		// cut from the end (or the head moved back). Said at once, an
		// outside record of the cut, whatever is appended after it, and
		// before err: the index is reset to the cut head by now, so a
		// later pass no longer sees the cut, and a read that failed
		// after it (a timeout, Erase's wait ending) dropped the alarm.
		w.log.ErrorContext(ctx, "audit chain cut: its head is behind records read in it; run paygate audit verify --head with a head published before",
			"alert", true, "head_seq", head.Seq, "read_to_seq", readTo)
	}
	return head, err
}

// confirmFound is nil once the records found in the chain are on as many
// of the store's replicas as a money write must reach
// (store.Replicated.ConfirmAudit; at once on a store without replicas to
// wait for). An event found there may have been appended by a call
// reported failed, its replica wait timed out (this worker's own, the
// batch's it then processes one event at a time, or another replica's,
// which reschedules it): acknowledged while the record is on the primary
// alone, the event is gone for good, and a failover that loses the record
// leaves the money action with none and nothing to append one from. So it
// is rescheduled until a replica has the chain, as a notification found
// applied is answered success only then.
func (w *Worker) confirmFound(ctx context.Context) error {
	r, ok := w.st.(store.Replicated)
	if !ok {
		return nil
	}
	if err := r.ConfirmAudit(ctx); err != nil {
		return fmt.Errorf("audit: record found in the chain, not confirmed on the store's replicas: %w", err)
	}
	return nil
}

// duplicate is the processing of e, found in the chain at seq: its text is
// kept (a crash may have come between the append and the text).
func (w *Worker) duplicate(ctx context.Context, e store.Event, seq uint64, p payload) error {
	w.m.records.WithLabelValues("duplicate").Inc()
	w.log.InfoContext(ctx, "audit event already in the chain; acknowledging", "event_id", e.ID, "seq", seq)
	return w.keepText(ctx, seq, e.CreatedAt, p)
}

// seal seals r after head. A number the canonical form cannot carry (seed
// 1e400), as earlier versions enqueued it, is recorded without the params
// (p's and r's made so).
func (w *Worker) seal(ctx context.Context, head store.AuditHead, r Record, e store.Event, p *payload) (store.AuditRecord, error) {
	rec, err := Seal(head, r)
	if err != nil && p.Action.Params != nil {
		w.log.WarnContext(ctx, "audit event's sampling parameters unsealable; recorded without them", "event_id", e.ID,
			"order_no", e.Key, "err", err)
		p.Action.Params = unencodable(err)
		r.Action = p.Action
		rec, err = Seal(head, r)
	}
	return rec, err
}

// appended notes rec (of r) appended: in the duplicate index, the metrics
// and the head gauge.
func (w *Worker) appended(rec store.AuditRecord, r Record) {
	w.seen.add(rec.Seq, r.EventID, r.AppendedAt)
	w.m.records.WithLabelValues("appended").Inc()
	w.m.setHead(store.AuditHead{Seq: rec.Seq, Hash: rec.Hash})
}

// afterAppended keeps the text of e, appended as record seq.
func (w *Worker) afterAppended(ctx context.Context, e store.Event, seq uint64, p payload) error {
	if w.afterAppend != nil {
		if err := w.afterAppend(e, seq); err != nil {
			return err
		}
	}
	return w.keepText(ctx, seq, e.CreatedAt, p)
}

// auditRun returns the audit events at the start of due (every one of
// them is, up to the first of another kind) that one batch carries: at
// most maxBatch, and maxBatchBytes of payload unless the first alone is
// more.
func auditRun(due []store.Event) []store.Event {
	n, size := 0, 0
	for _, e := range due {
		if e.Kind != KindAudit || n == maxBatch || (n > 0 && size+len(e.Payload) > maxBatchBytes) {
			break
		}
		n, size = n+1, size+len(e.Payload)
	}
	return due[:n]
}

// settleAll keeps the texts of items, appended (or found in the chain),
// and acknowledges their events, up to settleAtOnce at a time: they are
// the heads of as many outbox keys, each its own store write or two, and
// one after another they were most of a batch's time (on the embedded
// store, writes waiting together are committed together, with one fsync;
// on Redis their round trips overlap). Each one's outcome goes to
// errs[item.i]. found, when not nil, is why the items found in the chain
// are not confirmed on the store's replicas (confirmFound): they are
// rescheduled with it, their texts not kept.
func (w *Worker) settleAll(ctx context.Context, items []batchItem, found error, errs []error) {
	sem := make(chan struct{}, settleAtOnce)
	var wg sync.WaitGroup
	for _, it := range items {
		if ctx.Err() != nil {
			errs[it.i] = ctx.Err()
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var err error
			if it.dup {
				if err = found; err == nil {
					err = w.duplicate(ctx, it.e, it.seq, it.p)
				}
			} else {
				err = w.afterAppended(ctx, it.e, it.seq, it.p)
			}
			errs[it.i] = w.settle(ctx, it.e, it.seq, err)
		}()
	}
	wg.Wait()
}

// batchItem is one event of a batch processRun appends.
type batchItem struct {
	i   int // in run
	e   store.Event
	p   payload
	r   Record
	seq uint64 // its record's, once appended or found in the chain
	dup bool   // found in the chain
}

// processRun processes the audit events of run, each as process would,
// and returns each one's outcome (nil: appended or found in the chain,
// its text kept and the event acknowledged). One event goes alone,
// through process. More go in one store.Audit.AppendAuditBatch, one
// write for all their records (the embedded store's transaction and its
// fsync are most of an append's time), sealed one after another from the
// head read; a lost race reads the head again and seals them again. An
// event whose payload does not decode as it was written, or whose record
// cannot be sealed as it is, goes alone after the batch (process says
// why). A batch the store refuses for anything but a lost race (the store
// down, a record stored beyond the head) is processed again one event at
// a time: an append of it that went through is found in the chain there,
// and each event is rescheduled with its own error, as before batches.
func (w *Worker) processRun(ctx context.Context, run []store.Event) []error {
	errs := make([]error, len(run))
	if len(run) == 1 {
		errs[0] = w.process(ctx, run[0])
		return errs
	}
	items := make([]batchItem, 0, len(run))
	var alone []int
	since := run[0].CreatedAt
	for i, e := range run {
		p, err := decodePayload(e.Payload)
		if err != nil {
			alone = append(alone, i)
			continue
		}
		items = append(items, batchItem{i: i, e: e, p: p})
		if e.CreatedAt.Before(since) {
			since = e.CreatedAt
		}
	}
	if len(items) < 2 {
		for _, it := range items {
			alone = append(alone, it.i)
		}
		items = nil
	}
	var appendErr error
attempts:
	for range maxConflicts {
		if len(items) == 0 {
			break
		}
		head, err := w.headCovered(ctx, since.Add(-w.skew))
		if err != nil {
			appendErr = err
			break
		}
		var recs []store.AuditRecord
		for k := range items {
			it := &items[k]
			if seq, ok := w.seen.ids[it.e.ID]; ok {
				it.seq, it.dup = seq, true
				continue
			}
			it.dup = false
			it.r = Record{EventID: it.e.ID, AppendedAt: w.now(), Action: it.p.Action}
			if len(it.p.Text) > 0 {
				it.r.TextSHA256, it.r.TextBytes = TextHash(it.p.Text), len(it.p.Text)
			}
			rec, err := Seal(head, it.r)
			if err != nil {
				// process seals it without its params, or says why not;
				// the others are sealed again without it.
				alone = append(alone, it.i)
				items = slices.Delete(items, k, k+1)
				continue attempts
			}
			it.seq = rec.Seq
			recs = append(recs, rec)
			head = store.AuditHead{Seq: rec.Seq, Hash: rec.Hash}
		}
		switch len(recs) {
		case 0: // every one found in the chain
		case 1:
			err = w.st.AppendAudit(ctx, recs[0])
		default:
			err = w.st.AppendAuditBatch(ctx, recs)
		}
		if errors.Is(err, store.ErrConflict) {
			w.m.conflicts.Inc()
			continue
		}
		if err != nil {
			// It may have been applied (a replica wait that timed out):
			// each event, processed alone, reads the chain first.
			appendErr = fmt.Errorf("audit: append records %d..%d: %w", recs[0].Seq, recs[len(recs)-1].Seq, err)
			break
		}
		k := 0
		for j := range items {
			if !items[j].dup {
				w.appended(recs[k], items[j].r)
				k++
			}
		}
		var found error
		if slices.ContainsFunc(items, func(it batchItem) bool { return it.dup }) {
			found = w.confirmFound(ctx)
		}
		w.settleAll(ctx, items, found, errs)
		items = nil
		break
	}
	if len(items) > 0 {
		if ctx.Err() != nil {
			for _, it := range items {
				errs[it.i] = ctx.Err()
			}
		} else {
			if appendErr == nil {
				appendErr = fmt.Errorf("audit: append kept losing races: %w", store.ErrConflict)
			}
			w.log.WarnContext(ctx, "audit batch not appended; appending its records one at a time", "records", len(items), "err", appendErr)
			for _, it := range items {
				alone = append(alone, it.i)
			}
		}
	}
	slices.Sort(alone)
	for _, i := range alone {
		if ctx.Err() != nil {
			errs[i] = ctx.Err()
			continue
		}
		errs[i] = w.process(ctx, run[i])
	}
	return errs
}

// retainEvery is how often a pass applies audit.retain_text to the texts
// already kept (store.AuditTextRetention); the first pass does at once.
const retainEvery = time.Minute

// retainTexts applies the retention in force to the texts the store
// already keeps, at the first pass and once a minute after: a text's
// expiry is fixed when it is written, so a retain_text shortened between
// restarts (4320h to 720h, for a privacy law; or to 0) left the texts
// kept under the longer one until it ended, months of conversation text
// kept against the config. Texts whose record's time is retain or more
// ago are deleted (verify counts them gone with their retention), the
// others' expiry is brought forward; none is made later. It runs after
// the pass is let go, one at a time (retaining): the chain does not wait
// on it. A failure is tried again at the next pass, logged once a minute.
func (w *Worker) retainTexts(ctx context.Context) {
	rs, ok := w.st.(store.AuditTextRetention)
	if !ok || ctx.Err() != nil || !w.retaining.TryLock() {
		return // another Drain applies it
	}
	defer w.retaining.Unlock()
	now := w.now()
	if !w.retainedAt.IsZero() && now.Sub(w.retainedAt) < retainEvery && now.After(w.retainedAt) {
		return
	}
	n, err := rs.RetainAuditTexts(ctx, w.retain)
	if err != nil {
		if ctx.Err() == nil && (now.Sub(w.retainWarned) >= time.Minute || !now.After(w.retainWarned)) {
			w.retainWarned = now // a store that stays down is logged once a minute, not at every poll
			w.log.WarnContext(ctx, "audit texts: audit.retain_text was not applied to the texts kept; tried again at the next pass", "err", err)
		}
		return
	}
	w.retainedAt = now
	if n > 0 {
		w.log.InfoContext(ctx, "audit texts: deleted the texts kept longer than audit.retain_text from their turn", "deleted", n, "retain_text", w.retain.String())
	}
}

// keepText stores p's text for what is left of audit.retain_text, counted
// from when it was said (the event's creation), not from when the record was
// appended: an event that waited in the outbox does not extend its text's life.
//
// The store refuses a text said at or before the last erasure of its user,
// judged on the erasing replica's clock, but said is on the enqueuing
// replica's, which may run up to ClockSkew ahead: a text said there just
// before an erasure would look said after it and survive it. The store is
// therefore told the earliest the text may have been said on the erasing
// replica's clock, said less ClockSkew. A text said within ClockSkew after
// an erasure of its user is refused too: the safe side for privacy, a text
// lost rather than one kept against an erasure; Verify accepts it as erased
// (VerifyOptions.ClockSkew). The embedded store has one clock, but is
// judged alike, so that the drivers keep the same texts.
func (w *Worker) keepText(ctx context.Context, seq uint64, said time.Time, p payload) error {
	if len(p.Text) == 0 {
		return nil
	}
	if ttl := w.retain - w.now().Sub(said); ttl > 0 {
		if err := w.st.PutAuditText(ctx, seq, p.Action.Client, p.Action.User, p.Text, said.Add(-w.skew), ttl); err != nil {
			return fmt.Errorf("audit: keep text of record %d: %w", seq, err)
		}
	}
	if _, ok := w.st.(freePageWiper); ok {
		// Refused (or past its retention) after an erasure that ran while
		// the event waited (behind its order's webhook, in a retry's
		// backoff, or past Erase's wait): its acknowledgement frees a page
		// holding the text, which the erasure's own clearing came too
		// early for.
		at, err := w.st.AuditErasedAt(ctx, p.Action.Client, p.Action.User)
		if err != nil || (!at.IsZero() && !said.Add(-w.skew).After(at)) {
			w.wipeOwed.Store(true)
		}
	}
	return nil
}

// wipeIfOwed clears the store file's free pages when an erased text may be
// left in them (wipeOwed), after the pass's acknowledgements.
func (w *Worker) wipeIfOwed(ctx context.Context) {
	if _, ok := w.st.(freePageWiper); !ok || !w.wipeOwed.Swap(false) {
		return
	}
	if !w.wipe(ctx) {
		w.wipeOwed.Store(true) // the next pass tries again
	}
}

// wipe clears the store file's free pages (freePageWiper) and reports
// whether it did.
func (w *Worker) wipe(ctx context.Context) bool {
	wp, ok := w.st.(freePageWiper)
	if !ok {
		return true
	}
	if _, err := wp.WipeFreePages(ctx); err != nil {
		if ctx.Err() == nil { // else stopping, or Erase's wait over: Erase clears them itself
			w.log.WarnContext(ctx, "audit: the store file's free pages could not be cleared; "+
				"copies of erased texts may remain in them until reused", "err", err)
		}
		return false
	}
	return true
}

// reschedule retries e later: 1s, doubling, at most 64s apart.
func (w *Worker) reschedule(ctx context.Context, e store.Event, cause error) {
	delay := time.Second << min(e.Attempts, 6)
	w.log.ErrorContext(ctx, "audit record not appended; will retry", "event_id", e.ID, "order_no", e.Key,
		"attempts", e.Attempts+1, "retry_in", delay.String(), "err", cause)
	if err := w.st.RetryEvent(ctx, e.Key, e.ID, w.now().Add(delay), e.Attempts+1, cause.Error()); err != nil && !errors.Is(err, store.ErrNotFound) {
		w.log.WarnContext(ctx, "audit event could not be rescheduled", "event_id", e.ID, "err", err)
	}
}

// seenIndex remembers which outbox event each recent record came from, so an
// event still pending after its append (a crash before the ack, a replica
// that appended it first) is not appended twice. It covers the records
// lo+1..hi of the chain, read once each.
type seenIndex struct {
	lo, hi  uint64
	entries []seenEntry // records lo+1..hi in order
	ids     map[string]uint64
}

type seenEntry struct {
	seq uint64
	id  string
	at  time.Time
}

func (s *seenIndex) add(seq uint64, id string, at time.Time) {
	if seq != s.hi+1 {
		return // the index is behind; the next cover reads the gap
	}
	s.entries = append(s.entries, seenEntry{seq, id, at})
	s.hi = seq
	if id != "" {
		s.ids[id] = seq
	}
}

func (s *seenIndex) reset(at uint64) {
	s.lo, s.hi, s.entries, s.ids = at, at, nil, map[string]uint64{}
}

// cover makes the index hold every record up to head and, backwards, every
// record appended after since (so any record of an event created after since
// is in it). It returns the last record it had read when head is behind it,
// else 0: a record is readable only once the head has reached it (an
// append moves both in one step), so a head read later that is behind
// records read before was moved back, the records after it cut from the
// end (or they were never appended).
func (s *seenIndex) cover(ctx context.Context, st store.Audit, head store.AuditHead, since time.Time) (uint64, error) {
	var cut uint64
	if head.Seq < s.hi {
		cut = s.hi
	}
	if head.Seq < s.hi || (s.hi == 0 && s.lo == 0 && head.Seq > 0 && len(s.entries) == 0) {
		s.reset(head.Seq) // first use, or the chain was cut or replaced
	}
	for s.hi < head.Seq {
		recs, err := st.ReadAudit(ctx, s.hi+1, readPage)
		if err != nil {
			return cut, fmt.Errorf("audit: read chain: %w", err)
		}
		if len(recs) == 0 || recs[0].Seq != s.hi+1 {
			return cut, fmt.Errorf("audit: record %d missing from the chain", s.hi+1)
		}
		for _, r := range recs {
			if r.Seq != s.hi+1 {
				break
			}
			id, at := eventOf(r)
			s.add(r.Seq, id, at)
		}
	}
	for s.lo > 0 && (len(s.entries) == 0 || !s.entries[0].at.Before(since)) {
		from := uint64(1)
		if s.lo > readPage {
			from = s.lo - readPage + 1
		}
		recs, err := st.ReadAudit(ctx, from, int(s.lo-from+1))
		if err != nil {
			return cut, fmt.Errorf("audit: read chain: %w", err)
		}
		if uint64(len(recs)) != s.lo-from+1 {
			return cut, fmt.Errorf("audit: records %d..%d missing from the chain", from, s.lo)
		}
		front := make([]seenEntry, 0, len(recs)+len(s.entries))
		for _, r := range recs {
			id, at := eventOf(r)
			front = append(front, seenEntry{r.Seq, id, at})
			if id != "" {
				s.ids[id] = r.Seq
			}
		}
		s.entries = append(front, s.entries...)
		s.lo = from - 1
	}
	s.prune(since)
	return cut, nil
}

// prune forgets entries older than keepSeen before since, keeping the newest
// of them as the boundary that proves coverage.
func (s *seenIndex) prune(since time.Time) {
	cut := since.Add(-keepSeen)
	i := 0
	for i+1 < len(s.entries) && s.entries[i+1].at.Before(cut) {
		if s.ids[s.entries[i].id] == s.entries[i].seq {
			delete(s.ids, s.entries[i].id)
		}
		i++
	}
	if i > 0 {
		s.lo = s.entries[i-1].seq
		s.entries = append([]seenEntry(nil), s.entries[i:]...)
	}
}

// eventOf reads the event id and append time of a stored record; a record
// that does not decode has neither (Verify reports it).
func eventOf(r store.AuditRecord) (string, time.Time) {
	rec, err := Decode(r.Body)
	if err != nil {
		return "", time.Time{}
	}
	return rec.EventID, rec.AppendedAt
}
