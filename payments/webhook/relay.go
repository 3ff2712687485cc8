package webhook

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/egress"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/store"
)

// Delivery outcomes (metric labels and log values).
const (
	OutcomeDelivered = "delivered"
	OutcomeFailed    = "failed"
	OutcomeGivenUp   = "given_up"
)

// Defaults of Options. With them the first retry comes 5 s after the first
// failure, the delay doubles up to an hour, and an event is given up after
// its 34th failed attempt: the one that falls at least 24 h after its first
// when every retry is on time, later when one was not (a pause, a relay
// that was down).
const (
	DefaultTimeout       = 10 * time.Second
	DefaultRetryBase     = 5 * time.Second
	DefaultMaxDelay      = time.Hour
	DefaultRetryFor      = 24 * time.Hour
	DefaultPollInterval  = time.Second
	DefaultStatsInterval = 15 * time.Second
	DefaultConcurrency   = 8
	DefaultBatch         = 500
	// DefaultLeaseMargin is what the default Lease adds to Timeout.
	DefaultLeaseMargin = 20 * time.Second
)

// settleTimeout bounds the store writes that record one attempt's outcome
// (see settle).
const settleTimeout = 5 * time.Second

// Store is what the Relay uses: the outbox it drains, and the orders that
// refund proposals are about.
type Store interface {
	store.Outbox
	GetOrder(ctx context.Context, orderNo string) (*store.Order, error)
}

// Options configures a Relay. cmd/ maps webhooks.* onto it.
type Options struct {
	Store  Store  // required
	URL    string // webhooks.url; required
	Secret string // webhooks.secret; required

	// HTTPClient sends the POSTs; nil: a client that does not follow
	// redirects (a 3xx is a failed delivery: the merchant fixes its URL)
	// and keeps a kept-alive connection to the merchant per worker
	// (Concurrency).
	HTTPClient *http.Client
	// Timeout bounds one POST (default 10s).
	Timeout time.Duration
	// RetryBase is the delay after the first failure (default 5s); each
	// further failure doubles it, up to MaxDelay (default 1h). An event is
	// given up (logged as an alert, counted, kept as a dead letter for the
	// admin API) after MaxAttempts failed attempts: as many as reach
	// RetryFor (default 24h) after the first when every retry is on time.
	// A retry that came late (a Retry-After, a relay down for a while)
	// leaves the count as it was, so the event is tried for longer, never
	// fewer times. A 429 or 503 whose
	// Retry-After names a later time than the delay (at most MaxDelay on)
	// is retried then, and no event is sent to the endpoint before it.
	RetryBase time.Duration
	MaxDelay  time.Duration
	RetryFor  time.Duration
	// PollInterval is how often the outbox is read for due retries and for
	// events committed by other replicas (default 1s); Wake reads it at once.
	PollInterval time.Duration
	// StatsInterval is how often the backlog gauges are refreshed from the
	// outbox (default 15s).
	StatsInterval time.Duration
	// Concurrency caps simultaneous POSTs (default 8); events of one order
	// are always sent one at a time.
	Concurrency int
	// Batch caps the events read per outbox poll (default 500).
	Batch int
	// Lease is how long an event the relay took from the outbox stays
	// invisible to every relay (of any replica) while this one handles it
	// (default Timeout + 20s; at least Timeout + 10s, so that it outlasts a
	// POST and the store writes after it). An event whose relay dies, or is
	// stopped, before it recorded the outcome is sent again once its lease
	// runs out.
	Lease time.Duration

	// Moved, when set, is called after an event was moved off its order's
	// queue (acknowledged there): the events queued behind it on that
	// queue (the order's audit records, of another consumer) are due to
	// their consumer now, which it should read at once rather than at its
	// next poll (cmd/ passes the audit worker's Wake). It must not block.
	Moved func()

	// Observe, when set, is called after each attempt's outcome was written
	// to the store (tests wait on it; it must not block).
	Observe func(Result)

	// ResendEvents, when set, returns the record of an operator's resend
	// (Resend) that queued events: the audit event (audit.ResendEvents),
	// keyed by the order's number. ctx is the resend's (the admin request's
	// id, its payments.Actor); queued are the events, in the order they
	// leave, and forced whether the resend was. The record is queued in the
	// same atomic step as those events, after them
	// (store.Outbox.EnqueueEventsOnce): none is queued without it, and a
	// resend that queues nothing has none.
	ResendEvents func(ctx context.Context, o *store.Order, queued []store.Event, forced bool) []store.Event

	Registerer prometheus.Registerer // nil: a private registry
	Logger     *slog.Logger          // nil: discard
	Now        func() time.Time      // nil: time.Now
}

// Result is one delivery attempt's outcome, as passed to Options.Observe.
type Result struct {
	EventID string
	Type    string
	OrderNo string
	Attempt int    // 1 for the first
	Outcome string // OutcomeDelivered, OutcomeFailed or OutcomeGivenUp
	Status  int    // the merchant's HTTP status; 0 when none came
	Err     error  // why it failed; nil when delivered
}

// Relay delivers the webhook events of the store's outbox to the merchant:
// at least once, in order per order, signed, with exponential backoff. It is
// safe for concurrent use. Several replicas may each run one over a shared
// store: each event it sends or moves is first leased in the store
// (store.Outbox.ClaimEvents), so no other relay takes it before the outcome
// is recorded or the lease runs out, and an event is POSTed once in all. A
// receiver gets an event twice only after a relay died or stalled past its
// lease (never an event before the one committed ahead of it for the same
// order had a 2xx or was given up as a dead letter), which the id lets it discard.
type Relay struct {
	opts        Options
	store       Store
	client      *http.Client
	log         *slog.Logger
	red         *logging.Redactor // the URL's credentials and the secret (urlSecrets)
	now         func() time.Time
	m           *metrics
	maxAttempts int

	wake chan struct{}
	done chan struct{}
	sem  chan struct{}

	mu       sync.Mutex
	inflight map[string]string // outbox key being handled -> the event's id
	// next holds an event claimed while this relay was still handling the
	// one ahead of it on the same key (acknowledged, not yet let go of): it
	// is leased to this relay, so that key's worker handles it next.
	next map[string]store.Event
	// reclaimed holds a claim of the very event its key's worker is
	// handling (take): the lease ran out under a stalled worker, or the
	// worker recorded a retry due at once and the claim came before it let
	// go of the key. handled tells the two apart.
	reclaimed     map[string]store.Event
	delivered     int64
	failed        int64
	lastDelivered time.Time
	lastPollErr   time.Time
	// pausedUntil is when the merchant's endpoint, which answered a 429 or
	// 503 with a Retry-After, said it takes POSTs again (zero: it never
	// did; an operator's Resume makes it the time it ended the wait);
	// pausedBy says which answer (throttle).
	pausedUntil time.Time
	pausedBy    string
	// resumes counts the operator's Resume calls: a worker that read the
	// pause before one holds its event back after it (holdBack).
	resumes uint64
}

// New validates opts, registers the metrics and returns a Relay; Run starts
// it.
func New(opts Options) (*Relay, error) {
	if opts.Store == nil {
		return nil, errors.New("webhook: Store is required")
	}
	u, err := url.Parse(opts.URL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("webhook: URL %q is not an http(s) URL", redactURL(opts.URL))
	}
	if opts.Secret == "" {
		return nil, errors.New("webhook: Secret is required (receivers verify the signature)")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.Timeout, DefaultTimeout)
	def(&opts.RetryBase, DefaultRetryBase)
	def(&opts.MaxDelay, DefaultMaxDelay)
	def(&opts.RetryFor, DefaultRetryFor)
	def(&opts.PollInterval, DefaultPollInterval)
	def(&opts.StatsInterval, DefaultStatsInterval)
	def(&opts.Lease, opts.Timeout+DefaultLeaseMargin)
	opts.Lease = max(opts.Lease, opts.Timeout+2*settleTimeout)
	if opts.MaxDelay < opts.RetryBase {
		opts.MaxDelay = opts.RetryBase
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Batch <= 0 {
		opts.Batch = DefaultBatch
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	r := &Relay{
		opts: opts, store: opts.Store, client: opts.HTTPClient, log: opts.Logger, now: opts.Now, m: m,
		red:  logging.NewRedactor(append(urlSecrets(opts.URL), opts.Secret)),
		wake: make(chan struct{}, 1), done: make(chan struct{}, 1), sem: make(chan struct{}, opts.Concurrency),
		inflight: map[string]string{},
		next:     map[string]store.Event{},

		reclaimed: map[string]store.Event{},
	}
	if r.client == nil {
		r.client = &http.Client{Transport: keepAliveTransport(opts.Concurrency),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	r.maxAttempts = r.attemptsFor(opts.RetryFor)
	return r, nil
}

// keepAliveTransport is the default client's transport: Go's default one
// (its proxy from the environment, dial and TLS timeouts, HTTP/2; a
// proxy's refusal named as one, egress.ProxyRefusal), keeping
// up to conc idle connections to the merchant, one per worker, where the
// default keeps 2 per host: a backlog going out conc POSTs at a time then
// closed all but 2 of its connections after each round and dialled them
// again (a TCP and TLS handshake per POST, a socket left in TIME_WAIT).
// nil, Go's default, when that is not an *http.Transport.
func keepAliveTransport(conc int) http.RoundTripper {
	def, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return nil
	}
	tr := def.Clone()
	tr.MaxIdleConnsPerHost = max(conc, tr.MaxIdleConnsPerHost)
	tr.OnProxyConnectResponse = egress.ProxyRefusal
	return tr
}

// Delay is the wait after the n-th failed attempt (n >= 1): RetryBase
// doubled n-1 times, at most MaxDelay.
func (r *Relay) Delay(n int) time.Duration {
	d := r.opts.RetryBase
	for i := 1; i < n && d < r.opts.MaxDelay; i++ {
		d *= 2
	}
	return min(d, r.opts.MaxDelay)
}

// attemptsFor is the number of the first attempt made at least span after
// the first one, were every retry on time.
func (r *Relay) attemptsFor(span time.Duration) int {
	var sum time.Duration
	n := 1
	for sum < span {
		sum += r.Delay(n)
		n++
	}
	return n
}

// MaxAttempts is how many attempts an event gets before it is given up.
func (r *Relay) MaxAttempts() int { return r.maxAttempts }

// Wake makes Run read the outbox now, e.g. right after a transition
// committed an event (payments.Options.Committed). It never blocks.
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends, then waits for the POSTs in flight to stop.
// An event whose POST was cut by the shutdown stays pending, its attempt not
// counted, and its lease is given back (unlease): any replica, or this one
// after a restart, sends it again at once. Only a relay that dies without
// stopping leaves its events to come due when their leases run out.
func (r *Relay) Run(ctx context.Context) {
	poll := time.NewTicker(r.opts.PollInterval)
	defer poll.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	r.refresh(ctx)
	// The gauges are refreshed on their own, so that they keep moving while
	// dispatch waits for a free worker behind a slow merchant, which is
	// when an operator's alert needs them.
	wg.Go(func() {
		stats := time.NewTicker(r.opts.StatsInterval)
		defer stats.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-stats.C:
				r.refresh(ctx)
			}
		}
	})
	for {
		r.dispatch(ctx, &wg)
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-r.done:
		case <-poll.C:
		}
	}
}

// RunOnce claims the due webhook events of the outbox once, handles them
// (moving intake events to their order's delivery queue, posting the heads
// of delivery queues) and waits for them. Tests drive the Relay with it
// under an injected clock; Run is the same step in a loop.
func (r *Relay) RunOnce(ctx context.Context) int {
	var wg sync.WaitGroup
	n := r.dispatch(ctx, &wg)
	wg.Wait()
	return n
}

// dispatch claims the due webhook events (leasing them in the store) and
// starts a worker for each, and reports how many it started. An event
// claimed while its key's worker is still finishing the one ahead of it is
// left to that worker. One dispatch runs at a time (Run's loop, or RunOnce in
// tests).
func (r *Relay) dispatch(ctx context.Context, wg *sync.WaitGroup) int {
	// Claim only what a worker can start on now: a lease runs from the
	// claim, so an event that waited for a free worker behind slow POSTs
	// could see its lease run out and be claimed and POSTed by another
	// replica as well. dispatch is the only one to take slots, so the slots
	// free now stay free for the events claimed. With every worker busy it
	// waits for one (Run refreshes the gauges meanwhile, on its own).
	select {
	case r.sem <- struct{}{}: // one slot, held until the claim is handed out
	case <-ctx.Done():
		return 0
	}
	held := true
	defer func() {
		if held {
			<-r.sem
		}
	}()
	limit := min(r.opts.Batch, cap(r.sem)-len(r.sem)+1)
	due, err := r.store.ClaimEvents(ctx, Kind, r.now(), r.opts.Lease, limit)
	if err != nil {
		if ctx.Err() == nil {
			r.pollFailed(ctx, err)
		}
		return 0
	}
	n := 0
	for i, ev := range due {
		// A dead letter is never due; were one handed out all the same (a
		// clock years off), it still waits for an operator's resend.
		if strings.HasPrefix(ev.Key, DeadPrefix) || !r.take(ev) {
			continue
		}
		if held {
			held = false // this event takes the slot held for the claim
		} else {
			select {
			case r.sem <- struct{}{}:
			case <-ctx.Done():
				// Stopping: this event and the rest of the claim,
				// leased and handed to no worker, are given back, as a
				// worker gives back its own.
				r.unlease(ctx, ev)
				r.release(ev.Key)
				for _, rest := range due[i+1:] {
					if !strings.HasPrefix(rest.Key, DeadPrefix) && r.take(rest) {
						r.unlease(ctx, rest)
						r.release(rest.Key)
					}
				}
				return n
			}
		}
		n++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-r.sem }()
			for ok := true; ok; ev, ok = r.handled(ctx, ev.Key) {
				if ctx.Err() != nil {
					r.unlease(ctx, ev)
					r.release(ev.Key)
					return
				}
				r.handle(ctx, ev)
			}
		}()
	}
	return n
}

// handle moves an intake event, or delivers the head of a delivery queue.
func (r *Relay) handle(ctx context.Context, ev store.Event) {
	if strings.HasPrefix(ev.Key, QueuePrefix) {
		r.deliver(ctx, ev)
	} else {
		r.move(ctx, ev)
	}
}

// pollFailed logs an unreadable outbox at most once a minute.
func (r *Relay) pollFailed(ctx context.Context, err error) {
	r.mu.Lock()
	quiet := r.now().Sub(r.lastPollErr) < time.Minute
	if !quiet {
		r.lastPollErr = r.now()
	}
	r.mu.Unlock()
	if !quiet {
		r.log.WarnContext(ctx, "webhook relay cannot read the outbox; events wait in the store", "err", err)
	}
}

// take marks ev's key as being handled by the caller. When the key is
// busy with an earlier event, ev (the head claimed after that one was
// settled) is kept for the busy key's worker, and take reports false. A
// claim of the very event being handled is kept aside for that worker too
// (reclaimed), which records its outcome first and then handles the claim
// only if it still holds the event's lease (handled).
func (r *Relay) take(ev store.Event) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id, busy := r.inflight[ev.Key]; busy {
		if id != ev.ID {
			r.next[ev.Key] = ev
		} else {
			r.reclaimed[ev.Key] = ev
		}
		return false
	}
	r.inflight[ev.Key] = ev.ID
	return true
}

// handled is called by key's worker after it settled its event: it returns
// the event claimed meanwhile for the key, to handle next, or lets go of the
// key (in the same step, so that no claim is left behind for a worker that
// is gone). A claim of the settled event itself made meanwhile (reclaimed)
// is handled next when it still holds the event's lease: it came after the
// worker recorded a retry that was due at once. Dropped, that lease held
// the retry back until it ran out (Timeout + 20 s), past the first retry
// the merchant is promised within 10 s. A claim the worker's own record
// came after (its lease ran out under a stalled worker) is dropped, as
// that record, an acknowledgement above all, stands. The key is let go of
// only in the step that finds no claim aside: one made while a dropped
// claim's lease was read (its event's retry come due meanwhile) is checked
// in turn, not left behind with its lease for a worker that is gone.
func (r *Relay) handled(ctx context.Context, key string) (store.Event, bool) {
	r.mu.Lock()
	for {
		again, reclaimed := r.reclaimed[key]
		if !reclaimed {
			break
		}
		delete(r.reclaimed, key)
		r.mu.Unlock()
		if r.stillLeased(ctx, again) {
			return again, true // the key stays this worker's: inflight names again already
		}
		r.mu.Lock()
	}
	ev, ok := r.next[key]
	if ok {
		delete(r.next, key)
		r.inflight[key] = ev.ID
	} else {
		delete(r.inflight, key)
	}
	r.mu.Unlock()
	if !ok {
		r.signalDone()
	}
	return ev, ok
}

// stillLeased reports whether claim, a claim of the event its key's worker
// then settled, still holds that event's lease: the event is its key's
// head with the claim's NextAt (its lease's end), nothing written since.
// Acknowledged, retried after the claim, or unreadable: false, and the
// claim is dropped (an unreadable one waits out its lease, as before).
func (r *Relay) stillLeased(ctx context.Context, claim store.Event) bool {
	sctx, cancel := settle(ctx)
	defer cancel()
	heads, err := r.store.OutboxHeads(sctx, claim.Key)
	if err != nil {
		return false
	}
	for _, h := range heads {
		if h.Key == claim.Key {
			return h.ID == claim.ID && h.NextAt.Equal(claim.NextAt)
		}
	}
	return false
}

// release lets go of key unhandled (the relay is stopping): the events
// claimed for it come due again when their leases run out.
func (r *Relay) release(key string) {
	r.mu.Lock()
	delete(r.inflight, key)
	delete(r.next, key)
	delete(r.reclaimed, key)
	r.mu.Unlock()
	r.signalDone()
}

// unlease gives back the lease of ev, claimed and not settled by a relay
// that is stopping: it is due again now, its attempts and last error as
// they were, so that another replica, or the next process after a restart
// (a deploy's SIGTERM), sends it at once. Left leased, it waited out its
// lease (Timeout + 20 s: 30 s by default), past the first retry the
// merchant is promised within 10 s. Not found: it was settled meanwhile.
// Claimed by another relay once ev's lease ran out (a stalled POST): that
// relay holds it, and nothing is given back (retryClaimed).
func (r *Relay) unlease(ctx context.Context, ev store.Event) {
	sctx, cancel := settle(ctx)
	defer cancel()
	switch err := r.retryClaimed(sctx, ev, r.now(), ev.Attempts, ev.LastError); {
	case errors.Is(err, store.ErrConflict):
		r.log.InfoContext(ctx, "webhook event's lease not given back at stop: it ran out, and another relay claimed the event",
			"event_id", ev.ID, "order_no", strings.TrimPrefix(ev.Key, QueuePrefix))
	case err != nil && !errors.Is(err, store.ErrNotFound):
		r.log.WarnContext(ctx, "webhook event's lease not given back at stop; it is sent again once the lease runs out",
			"event_id", ev.ID, "order_no", strings.TrimPrefix(ev.Key, QueuePrefix), "err", err)
	}
}

// retryClaimed records a retry of ev (RetryEvent's next, attempts and
// lastErr) only while ev's claim still holds its lease (the NextAt the
// claim returned): written after the lease ran out under a stalled POST
// and another relay claimed the event, it replaced that relay's lease, and
// a third claimed and POSTed the event while the second's POST was still
// in flight. Then it returns store.ErrConflict and writes nothing. A claim
// by this relay's own poll (kept aside for ev's worker: reclaimed) holds
// the lease for this worker, and the retry is written under it.
func (r *Relay) retryClaimed(ctx context.Context, ev store.Event, next time.Time, attempts int, lastErr string) error {
	err := r.store.RetryClaimedEvent(ctx, ev.Key, ev.ID, ev.NextAt, next, attempts, lastErr)
	if !errors.Is(err, store.ErrConflict) {
		return err
	}
	r.mu.Lock()
	again, ok := r.reclaimed[ev.Key]
	r.mu.Unlock()
	if !ok || again.ID != ev.ID {
		return err
	}
	return r.store.RetryClaimedEvent(ctx, ev.Key, ev.ID, again.NextAt, next, attempts, lastErr)
}

// signalDone makes Run claim again: a key was let go of.
func (r *Relay) signalDone() {
	select {
	case r.done <- struct{}{}:
	default:
	}
}

// settle runs a store write that must happen even when the relay is being
// stopped right after a POST answered.
func settle(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
}

// move transfers an intake event from its order's queue to the order's
// delivery queue: appended there first (unless a copy of the same id is
// queued there already), then acknowledged here, and the order of the
// order's events is kept. A crash in between leaves the event to be moved
// again once its lease runs out: never lost, and not queued twice while its
// copy waits (sent twice only if the copy was delivered meanwhile).
//
// It takes off ev itself (AckEventAt: its id and CreatedAt), not a copy a
// resend queued on the order's queue since under its id: resends setting
// the event back (setBack) may take the original off here and the copy off
// the delivery queue between the two steps, and queue their own copy
// (stamped when queued). Taken off by id alone, that copy was gone as well,
// and the event was neither queued nor listed.
func (r *Relay) move(ctx context.Context, ev store.Event) {
	cp := queued(ev)
	qctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	if r.behindItsOrder(qctx, ev) {
		return
	}
	if _, err := r.store.EnqueueEventsOnce(qctx, []store.Event{cp}); err != nil {
		if ctx.Err() == nil {
			r.log.WarnContext(ctx, "webhook event not queued for delivery; retrying once its lease runs out",
				"event_id", ev.ID, "order_no", ev.Key, "err", err)
		} else {
			r.unlease(ctx, ev) // stopping: moved at once by whoever runs next
		}
		return
	}
	sctx, cancel := settle(ctx)
	defer cancel()
	if err := r.store.AckEventAt(sctx, ev.Key, ev.ID, ev.CreatedAt); err != nil {
		r.log.WarnContext(ctx, "webhook intake event not acknowledged; it is moved again once its lease runs out",
			"event_id", ev.ID, "order_no", ev.Key, "err", err)
		return
	}
	if r.opts.Moved != nil {
		r.opts.Moved()
	}
}

// behindItsOrder reports whether intake event ev must wait for another
// queue's events (mustFollow); then (or when the other queue could not be
// read) ev's lease is given back, due again after a poll, as no failure.
func (r *Relay) behindItsOrder(ctx context.Context, ev store.Event) bool {
	other, wait, err := mustFollow(ctx, r.store, ev)
	if !wait && err == nil {
		return false
	}
	if err != nil && ctx.Err() == nil {
		r.log.WarnContext(ctx, "webhook event held back: the events it must follow could not be read", "event_id", ev.ID, "err", err)
	}
	sctx, cancel := settle(ctx)
	defer cancel()
	if err := r.store.RetryEvent(sctx, ev.Key, ev.ID, r.now().Add(r.opts.PollInterval), ev.Attempts, ev.LastError); err != nil && !errors.Is(err, store.ErrNotFound) {
		r.log.WarnContext(ctx, "webhook event waiting for earlier events of its order; its lease is kept until it runs out",
			"event_id", ev.ID, "order_no", orderOf(ev), "waits_for", other, "err", err)
	}
	return true
}

// deliver POSTs the head of an order's delivery queue and records the
// outcome: acknowledged on a 2xx, rescheduled with backoff otherwise, given
// up loudly after MaxAttempts and kept as a dead letter.
func (r *Relay) deliver(ctx context.Context, ev store.Event) {
	typ := gjson.GetBytes(ev.Payload, "type").Str
	orderNo := strings.TrimPrefix(ev.Key, QueuePrefix)
	attempt := ev.Attempts + 1
	if until, resumes := r.pauseState(); until.After(r.now()) {
		r.holdBack(ctx, ev, orderNo, until, resumes)
		return
	}
	start := time.Now()
	status, asked, perr := r.post(ctx, ev, typ)
	r.m.duration.Observe(time.Since(start).Seconds())
	if perr != nil && ctx.Err() != nil {
		// Stopping: a failure may be the stop's own doing (the POST cut
		// short), so the attempt does not count; the event stays pending,
		// due at once (unlease). A 2xx is recorded below all the same
		// (settle): the merchant processed the event, and sending it
		// again after the restart would be a duplicate.
		r.unlease(ctx, ev)
		return
	}
	sctx, cancel := settle(ctx)
	defer cancel()
	log := r.log.With("event_id", ev.ID, "type", typ, "order_no", orderNo, "attempt", attempt)
	now := r.now()
	next := now.Add(r.Delay(attempt))
	if perr != nil && asked.After(now) {
		// The merchant named when to come back: not before, however
		// short the schedule's delay (MaxDelay caps what it may ask).
		if limit := now.Add(r.opts.MaxDelay); asked.After(limit) {
			asked = limit
		}
		if asked.After(next) {
			next = asked
		}
		r.throttle(ctx, status, asked)
	}
	if perr == nil {
		if err := r.store.AckEvent(sctx, ev.Key, ev.ID); err != nil {
			log.WarnContext(ctx, "webhook delivered but not acknowledged in the store; it will be sent again", "err", err)
		}
		r.count(OutcomeDelivered, typ)
		log.InfoContext(ctx, "webhook delivered", "status", status)
		r.observe(Result{EventID: ev.ID, Type: typ, OrderNo: orderNo, Attempt: attempt, Outcome: OutcomeDelivered, Status: status})
		return
	}
	if attempt >= r.maxAttempts {
		switch err := r.bury(sctx, ev, orderNo, attempt, perr.Error()); {
		case errors.Is(err, errSettled):
			// Another relay's POST of it got a 2xx after this one's lease ran
			// out: delivered, not given up.
			log.WarnContext(ctx, "webhook delivery failed, but another relay delivered it meanwhile", "err", perr.Error())
			r.count(OutcomeFailed, typ)
			r.observe(Result{EventID: ev.ID, Type: typ, OrderNo: orderNo, Attempt: attempt, Outcome: OutcomeFailed, Status: status, Err: perr})
			return
		case errors.Is(err, errClaimedElsewhere):
			// Its lease ran out under this POST and another relay holds
			// the event now: that relay delivers it, or gives it up.
			log.InfoContext(ctx, "webhook delivery failed at its last attempt after its lease ran out, and another relay claimed it meanwhile; that relay records its outcome", "err", perr.Error())
			r.count(OutcomeFailed, typ)
			r.observe(Result{EventID: ev.ID, Type: typ, OrderNo: orderNo, Attempt: attempt, Outcome: OutcomeFailed, Status: status, Err: perr})
			return
		case errors.Is(err, errSetBack):
			// An operator's resend queued it again during the burial:
			// sent again, not given up.
			log.WarnContext(ctx, "webhook delivery failed; a resend queued it again meanwhile, so it is not given up", "err", perr.Error())
			r.count(OutcomeFailed, typ)
			r.observe(Result{EventID: ev.ID, Type: typ, OrderNo: orderNo, Attempt: attempt, Outcome: OutcomeFailed, Status: status, Err: perr})
			return
		case err != nil:
			// Not given up yet: it is tried, and buried, again once its
			// lease runs out, and that burial counts and alerts. Counted
			// here too, one event read as two give-ups (or a give-up and
			// a delivery) and paged the operator twice.
			log.WarnContext(ctx, "given-up webhook not moved to the dead letters; it will be tried again", "err", err)
			r.count(OutcomeFailed, typ)
			r.observe(Result{EventID: ev.ID, Type: typ, OrderNo: orderNo, Attempt: attempt, Outcome: OutcomeFailed, Status: status, Err: perr})
			return
		}
		log.ErrorContext(ctx, "ALERT: merchant webhook given up after retrying; the merchant never acknowledged it; "+
			"kept as a dead letter (GET /admin/api/webhooks) until the order is sent again",
			"alert", true, "first_created_at", ev.CreatedAt, "err", perr.Error())
		r.count(OutcomeGivenUp, typ)
		r.observe(Result{EventID: ev.ID, Type: typ, OrderNo: orderNo, Attempt: attempt, Outcome: OutcomeGivenUp, Status: status, Err: perr})
		return
	}
	r.count(OutcomeFailed, typ)
	switch err := r.retryClaimed(sctx, ev, next, attempt, perr.Error()); {
	case errors.Is(err, store.ErrNotFound):
		// Nothing is left to retry: "will retry" below was untrue.
		log.InfoContext(ctx, "webhook delivery failed, but it was acknowledged meanwhile (delivered by another relay)", "err", perr.Error())
	case errors.Is(err, store.ErrConflict):
		log.InfoContext(ctx, "webhook delivery failed after its lease ran out, and another relay claimed it meanwhile; that relay records its outcome", "err", perr.Error())
	case err != nil:
		log.WarnContext(ctx, "webhook delivery failed, and its retry not recorded; it is sent again once its lease runs out",
			"err", err, "delivery_err", perr.Error())
	case asked.After(now):
		log.WarnContext(ctx, "webhook delivery throttled by the merchant (Retry-After); will retry at next_at",
			"status", status, "next_at", next, "err", perr.Error())
	default:
		log.WarnContext(ctx, "webhook delivery failed; will retry", "next_at", next, "err", perr.Error())
	}
	r.observe(Result{EventID: ev.ID, Type: typ, OrderNo: orderNo, Attempt: attempt, Outcome: OutcomeFailed, Status: status, Err: perr})
}

func (r *Relay) observe(res Result) {
	if r.opts.Observe != nil {
		r.opts.Observe(res)
	}
}

func (r *Relay) count(outcome, typ string) {
	r.m.deliveries.WithLabelValues(typ, outcome).Inc()
	r.mu.Lock()
	defer r.mu.Unlock()
	switch outcome {
	case OutcomeDelivered:
		r.delivered++
		r.lastDelivered = r.now()
	case OutcomeFailed:
		r.failed++
	}
}

// post sends one signed delivery; any answer but a 2xx is an error. asked
// is the time a 429 or 503 named in its Retry-After (retryAfter), zero
// when none did.
func (r *Relay) post(ctx context.Context, ev store.Event, typ string) (status int, asked time.Time, err error) {
	pctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodPost, r.opts.URL, bytes.NewReader(ev.Payload))
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("webhook request: %w", withoutURL(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "paygate-webhook/1")
	// The id and type headers are for the merchant's logs and proxies; only
	// the body is signed, so receivers act on the body's (README).
	req.Header.Set("X-Paygate-Event-Id", ev.ID)
	req.Header.Set("X-Paygate-Event-Type", typ)
	// An Idempotency-Key entry with no value marks the POST as one Go's
	// transport may send again at once on a fresh connection when the
	// receiver closed the kept-alive one it went out on (Node closes idle
	// ones after 5 s, the transport keeps them 90 s): without it, a POST
	// that crossed the close was a failed attempt, retried RetryBase
	// later. With no value the header is not sent: a merchant whose
	// generic idempotency middleware stores the first answer under the
	// key would replay a first 500 to every retry of the day, and the
	// receiver dedupes on the body's id anyway.
	// The replay is for that crossing only, which fails within a round
	// trip of the write: a receiver that held the POST longer and then
	// hung up without answering (its own timeout ran out while it worked
	// on the event) may have acted on it, and is retried after the
	// backoff like any failure. Replayed, it got the event again at once,
	// its first handler possibly still running, in one attempt. The
	// client asks the body again for a 307 or 308 too, before the redirect
	// it does not follow: an answer begun is no hang-up (the transport
	// sends nothing again once one has), and refused, the redirect's
	// failure said the endpoint hung up, not where it pointed.
	req.Header["Idempotency-Key"] = nil
	var answered atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(pctx, &httptrace.ClientTrace{
		GotFirstResponseByte: func() { answered.Store(true) },
	}))
	sent := r.now()
	rewind := req.GetBody
	req.GetBody = func() (io.ReadCloser, error) {
		if held := r.now().Sub(sent); held > replayWithin && !answered.Load() {
			return nil, fmt.Errorf("the connection failed with no answer after the endpoint held the POST %s; not sent again at once, as it may have been acted on", held.Round(time.Millisecond))
		}
		return rewind()
	}
	req.Header.Set(SignatureHeader, Sign(r.opts.Secret, sent, ev.Payload))
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("post: %w", r.masked(withoutURL(err)))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		snippet := r.answerText(resp.Body)
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
			return resp.StatusCode, time.Time{}, fmt.Errorf("status %d: %s: %s", resp.StatusCode, r.redirectText(resp), snippet)
		}
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			asked = retryAfter(resp.Header.Get("Retry-After"), r.now())
		}
		if !asked.IsZero() {
			return resp.StatusCode, asked, fmt.Errorf("status %d, Retry-After %s: %s", resp.StatusCode, asked.UTC().Format(time.RFC3339), snippet)
		}
		return resp.StatusCode, time.Time{}, fmt.Errorf("status %d: %s", resp.StatusCode, snippet)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, time.Time{}, nil
}

// replayWithin is how soon after a POST went out on a kept-alive
// connection a hang-up without an answer is taken for the receiver's close
// of that idle connection crossing it (post), which Go's transport sends
// again at once: a close in flight arrives within a round trip.
const replayWithin = time.Second

// retryAfter is the time a Retry-After value names (RFC 9110 10.2.3:
// whole seconds from now, or an HTTP date), on now's clock; zero when v is
// empty, does not parse, or names no time after now: the schedule's delay
// stands then. A number of seconds too large for a Duration is a year on,
// which the caller caps.
func retryAfter(v string, now time.Time) time.Time {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}
	}
	if v[0] >= '0' && v[0] <= '9' {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) || n == 0 {
			return time.Time{}
		}
		const year = 365 * 24 * time.Hour
		return now.Add(min(time.Duration(min(n, uint64(year/time.Second)))*time.Second, year))
	}
	t, err := http.ParseTime(v)
	if err != nil || !t.After(now) {
		return time.Time{}
	}
	return t
}

// throttle makes the whole endpoint wait until until (on the relay's
// clock), which the merchant asked for with a 429 or 503 and its
// Retry-After: the endpoint is one backend, so its limit or outage holds
// for every order, and events of other orders sent meanwhile would only be
// refused too, each an attempt spent. Until then deliver holds every event
// back (holdBack). A later Retry-After extends the wait, never shortens it.
func (r *Relay) throttle(ctx context.Context, status int, until time.Time) {
	by := fmt.Sprintf("status %d with Retry-After", status)
	r.m.throttled.WithLabelValues(strconv.Itoa(status)).Inc()
	r.mu.Lock()
	longer := until.After(r.pausedUntil)
	if longer {
		r.pausedUntil, r.pausedBy = until, by
	}
	r.mu.Unlock()
	if !longer {
		return
	}
	r.m.pausedUntil.Set(float64(until.Unix()))
	r.log.WarnContext(ctx, "merchant webhook endpoint asked paygate to wait (Retry-After): no webhook is sent to it until then",
		"status", status, "paused_until", until, "paused_for", until.Sub(r.now()).Round(time.Second).String())
}

// paused is the time until which the endpoint asked to be left alone
// (throttle); zero, or past, when it is not.
func (r *Relay) paused() time.Time {
	until, _ := r.pauseState()
	return until
}

// pauseState is paused and how many times an operator ended a pause
// (Resume) by then.
func (r *Relay) pauseState() (time.Time, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pausedUntil, r.resumes
}

// Resumed is what Resume did.
type Resumed struct {
	// PausedUntil is the end of the pause Resume ended: the time the
	// merchant's Retry-After named. Zero when this process was not paused.
	PausedUntil time.Time
	// Released counts the events held by a pause (of any replica, before
	// any restart) that Resume made due now.
	Released int
}

// Resume ends the pause of the merchant's endpoint (throttle) at once, on
// an operator's word: a CDN's or a maintenance page's Retry-After: 3600
// sent during a blip held every order's events for an hour, and a restart
// did not help, the held events' next times being in the store. It ends
// this process's pause (each replica keeps its own) and makes the events
// a pause held due now (pausedHold), in the shared store: held back, the
// throttled one, on any replica. An event waiting for its own retry (the
// schedule's delay after a failure the pause did not move) keeps its time.
// An event held by another replica's pause that it claims again is held
// again by it while that replica's pause lasts.
func (r *Relay) Resume(ctx context.Context) (Resumed, error) {
	now := r.now()
	var res Resumed
	r.mu.Lock()
	// Before the heads are read: a hold written after this is undone by
	// its worker (holdBack), one written before is read here.
	r.resumes++
	if r.pausedUntil.After(now) {
		res.PausedUntil = r.pausedUntil
		r.pausedUntil = now
		r.pausedBy += "; ended by an operator"
	}
	r.mu.Unlock()
	if !res.PausedUntil.IsZero() {
		r.m.pausedUntil.Set(float64(now.Unix()))
	}
	heads, err := r.store.OutboxHeads(ctx, QueuePrefix)
	if err != nil {
		return res, fmt.Errorf("outbox heads: %w", err)
	}
	for _, h := range heads {
		if h.Kind != Kind || !r.pausedHold(h, now) {
			continue
		}
		moved, err := r.store.RescheduleEvent(ctx, h.Key, h.ID, h.NextAt, now)
		if err != nil {
			r.Wake()
			return res, fmt.Errorf("event %s of order %s not made due: %w", h.ID, strings.TrimPrefix(h.Key, QueuePrefix), err)
		}
		if moved {
			res.Released++
		}
	}
	r.Wake()
	return res, nil
}

// pausedHold reports whether delivery head h waits for a pause's end
// rather than its own time: its next time is later than the schedule's
// delay after its last failure (any time at all when it never failed:
// holdBack), or the throttled event's own Retry-After. A head whose next
// time comes within a lease from now is left alone: it may be a lease (a
// claim's next time is its lease's end), whose event a relay is sending
// or holding back, and a pause ends within that time anyway.
func (r *Relay) pausedHold(h store.Event, now time.Time) bool {
	if !h.NextAt.After(now.Add(r.opts.Lease)) {
		return false
	}
	if h.Attempts == 0 {
		return true
	}
	// The store stamps FailedAt after the relay computed the next time:
	// a second's slack for the two clocks.
	return h.NextAt.After(h.FailedAt.Add(r.Delay(h.Attempts) + time.Second))
}

// holdBack reschedules ev, not sent, for until, when the throttled
// endpoint takes POSTs again: no attempt is counted, nor a failure
// recorded. Not found: it was settled meanwhile. resumes is the count of
// operator's resumes when the pause was read: one since (Resume ran while
// ev was leased, and left it to this worker) makes the hold due at once
// again, or ev waited for the pause the operator ended.
func (r *Relay) holdBack(ctx context.Context, ev store.Event, orderNo string, until time.Time, resumes uint64) {
	sctx, cancel := settle(ctx)
	defer cancel()
	if err := r.store.RetryEvent(sctx, ev.Key, ev.ID, until, ev.Attempts, ev.LastError); err != nil && !errors.Is(err, store.ErrNotFound) {
		r.log.WarnContext(ctx, "webhook held back while the merchant's endpoint asked to wait, but not rescheduled; it comes due again once its lease runs out",
			"event_id", ev.ID, "order_no", orderNo, "err", err)
		return
	}
	if _, since := r.pauseState(); since != resumes {
		if _, err := r.store.RescheduleEvent(sctx, ev.Key, ev.ID, until, r.now()); err != nil {
			r.log.WarnContext(ctx, "webhook held back as an operator ended the merchant's pause, and not made due again; it waits until the pause's old end",
				"event_id", ev.ID, "order_no", orderNo, "next_at", until, "err", err)
		}
		r.Wake()
		return
	}
	r.log.DebugContext(ctx, "webhook held back: the merchant's endpoint asked to wait (Retry-After)", "event_id", ev.ID, "order_no", orderNo, "next_at", until)
}

// redirectText says, for a merchant's 3xx, that the redirect was not
// followed and where it pointed, so that its developer can set webhooks.url
// to that (an http URL whose server moves it to https, a framework adding a
// trailing slash): a redirect's body is often empty, and "status 308:"
// alone said neither. The target is shown as redactURL shows the webhook
// URL (its query values and password masked: a token may sit there, or be
// carried over from webhooks.url by a relative Location), then with the
// webhook URL's credentials masked wherever they are (redactText: a
// gateway moving ?token=T to /hooks/T put the token in the path, which
// redactURL keeps), cut to answerMax bytes. Redirects are never followed:
// the signed body, and whatever the merchant's URL authenticates with,
// would go to a host nobody configured.
func (r *Relay) redirectText(resp *http.Response) string {
	loc, err := resp.Location()
	if err != nil {
		return "a redirect with no Location, not followed"
	}
	// A path written with escapes url.URL keeps as they came (every byte
	// of the token as %XX) is shown as Go writes it, where the token is
	// plain or escaped as redactText knows it, when it holds a secret: one
	// without keeps its escapes (a%2Fb is not a/b to every router).
	if r.red.String(loc.Path) != loc.Path {
		loc.RawPath = ""
	}
	to := r.redactText(redactURL(loc.String()))
	if len(to) > answerMax {
		n := answerMax
		for n > 0 && !utf8.RuneStart(to[n]) {
			n--
		}
		to = to[:n] + "…"
	}
	return "redirect to " + to + " not followed (paygate follows none: set webhooks.url to the endpoint that answers)"
}

// answerMax bounds the part of a refusing merchant's answer kept in its
// error.
const answerMax = 256

// answerText is the start of a refusing merchant's answer as its error
// keeps it (logged, last_error, GET /admin/api/webhooks): its secrets
// masked (redactText), then cut to answerMax bytes, at a rune boundary
// and before any secret. A merchant's page may quote the request's URL
// (a framework's debug 404, a gateway's "no route for …"), token and
// all; masking replaces whole values only, so an answer cut first and
// masked after kept the part of a token before the cut, and the whole
// token in last_error, which the log's redactor never sees. More than
// answerMax bytes are read, so that masking shortens the text before it
// is cut; a read cut short is cut again before any secret it splits.
func (r *Relay) answerText(body io.Reader) string {
	limit := 4*answerMax + r.red.Longest()
	raw, _ := io.ReadAll(io.LimitReader(body, int64(limit)))
	if len(raw) == limit {
		// More may follow: a secret that runs past the read is split,
		// and masking would not see it. Cut reads the last Longest()-1
		// bytes to find one starting before them.
		raw = raw[:r.red.Cut(raw, len(raw)-max(r.red.Longest()-1, 0))]
	}
	b := []byte(r.redactText(string(raw)))
	n := answerMax
	if n < len(b) {
		for n > 0 && !utf8.RuneStart(b[n]) {
			n--
		}
	}
	return strings.TrimSpace(string(b[:r.red.Cut(b, n)]))
}

// withoutURL is err without the URL net/http names in it: a *url.Error's
// text quotes the whole URL, query string and all, where some merchants'
// endpoints (serverless functions, webhook gateways) take a token, and a
// failed POST's error is logged, kept in the outbox (last_error) and served
// by GET /admin/api/webhooks. What remains is the cause ("dial tcp …:
// connection refused"), after the operation the caller names ("post: ").
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// masked is err with its text as redactText shows it, unwrapping to err:
// the cause net/http gives may quote what the merchant sent (a Location
// it could not parse, whole), a token carried over from the webhook URL
// and all.
func (r *Relay) masked(err error) error {
	if t := r.redactText(err.Error()); t != err.Error() {
		return maskedError{err, t}
	}
	return err
}

type maskedError struct {
	err  error
	text string
}

func (e maskedError) Error() string { return e.text }
func (e maskedError) Unwrap() error { return e.err }

// urlMask replaces what redactURL hides; url.URL.Redacted's mask, so the
// URL stays one.
const urlMask = "xxxxx"

// redactURL is the URL as logs, errors and the admin API show it: every
// query value masked, its key kept (a token is often there, and which key
// the endpoint reads is worth seeing), a part without "=" masked whole, the
// user info's password masked, and a user name without a password too (it
// is then the credential, as in https://sk_live_…:@host/).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			u.User = url.UserPassword(u.User.Username(), urlMask)
		} else if u.User.Username() != "" {
			u.User = url.User(urlMask)
		}
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, p := range parts {
			if k, v, ok := strings.Cut(p, "="); !ok && p != "" {
				parts[i] = urlMask
			} else if v != "" {
				parts[i] = k + "=" + urlMask
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	if u.Fragment != "" {
		u.Fragment, u.RawFragment = urlMask, ""
	}
	return u.String()
}

// redactText is s with the webhook URL in its redacted form (the
// last_error of an event recorded before errors left the URL out), then
// the URL's credentials (urlSecrets) and the webhook secret masked
// wherever they appear, encoded too (logging.Redactor): a merchant's
// answer that quotes the request URL, or its query alone, and a
// last_error recorded before the answer was masked.
func (r *Relay) redactText(s string) string {
	if s == "" {
		return s
	}
	if strings.Contains(s, r.opts.URL) {
		s = strings.ReplaceAll(s, r.opts.URL, redactURL(r.opts.URL))
	}
	return r.red.String(s)
}

// urlSecrets are the parts of webhook URL raw that redactURL hides, as
// written in the URL and decoded: its query values (a part without "="
// whole), its password, or its user name when it has none, and the user
// info as the Basic Authorization header carries it. Every query
// value is one, not only those named like a credential (config's
// urlCredentials, for providers' URLs): a merchant's endpoint names its
// token as it likes (Azure Functions' code=). The logging.Redactor that
// masks them ignores values too short to mask.
func urlSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	var out []string
	add := func(written string, decode func(string) (string, error)) {
		out = append(out, written)
		if v, err := decode(written); err == nil && v != written {
			out = append(out, v)
		}
	}
	if u.User != nil {
		written := u.User.String() // user[:password], escaped
		name, pw, _ := strings.Cut(written, ":")
		if pw != "" {
			add(pw, url.PathUnescape)
		} else if name != "" {
			add(name, url.PathUnescape)
		}
		// And as net/http sends it, the Authorization header's Basic
		// credentials, which a refusing answer may quote ("Authorization:
		// Basic …"): base64 is no encoding the Redactor tries.
		p, _ := u.User.Password()
		out = append(out, base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+p)))
	}
	for _, p := range strings.Split(u.RawQuery, "&") {
		if k, v, ok := strings.Cut(p, "="); ok {
			if v != "" {
				add(v, url.QueryUnescape)
			}
		} else if k != "" {
			add(k, url.QueryUnescape)
		}
	}
	return out
}

// Head is the first undelivered webhook of one order.
type Head struct {
	EventID   string    `json:"event_id"`
	Type      string    `json:"type"`
	OrderNo   string    `json:"order_no"`
	Attempts  int       `json:"attempts"`
	CreatedAt time.Time `json:"created_at"`
	NextAt    time.Time `json:"next_at,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	FailedAt  time.Time `json:"failed_at,omitzero"`
}

// Stats is the webhook delivery state, for GET /admin/api/webhooks. Its
// times are in UTC, as every time of the admin and user APIs, whatever the
// zone of the host's clock (a host in New York listed them at -05:00).
type Stats struct {
	Enabled bool   `json:"enabled"` // always true: DisabledHandler answers when off
	URL     string `json:"url"`     // query values and password masked (redactURL)
	// Delivered and Failed count this process's attempts since it started
	// (the metrics hold the same).
	Delivered int64 `json:"delivered"`
	Failed    int64 `json:"failed"`
	// GivenUp counts the dead letters: events given up (by any replica, before
	// any restart) whose order was not sent again since. It is read from the
	// store, so it survives a restart, unlike the given_up metric.
	GivenUp         int64     `json:"given_up"`
	LastDeliveredAt time.Time `json:"last_delivered_at,omitzero"`
	// PendingOrders counts orders with an undelivered webhook; Retrying
	// those whose next one failed at least once; Oldest is the creation of
	// the oldest undelivered one.
	PendingOrders int       `json:"pending_orders"`
	Retrying      int       `json:"retrying"`
	Oldest        time.Time `json:"oldest_pending_at,omitzero"`
	// OutboxPending counts every event the store's outbox keeps, of any kind
	// (webhooks, dead letters and audit records).
	OutboxPending int `json:"outbox_pending_events"`
	// Heads are the orders' first undelivered webhooks, oldest first (the
	// first store.MaxListLimit of PendingOrders).
	Heads []Head `json:"heads"`
	// DeadLetters are the webhooks given up, oldest first (the first
	// store.MaxListLimit of GivenUp): the orders whose merchant may never
	// have learnt of a change (an order.paid: goods not delivered). Resend
	// clears an order's.
	DeadLetters []DeadLetter `json:"dead_letters"`
	// PausedUntil is when the merchant's endpoint, which answered a 429
	// or 503 with a Retry-After, takes POSTs again (at most MaxDelay on):
	// until then this process sends it none. PausedBy names that answer.
	// Absent when it never asked (since this process started); kept,
	// past, after the wait ended (when an operator ended it, Resume: the
	// time it did, PausedBy saying so).
	PausedUntil time.Time `json:"paused_until,omitzero"`
	PausedBy    string    `json:"paused_by,omitempty"`
	// The retry schedule in force.
	FirstRetry  string `json:"first_retry"`
	MaxDelay    string `json:"max_delay"`
	RetryFor    string `json:"retry_for"`
	MaxAttempts int    `json:"max_attempts"`
}

// Stats reads the outbox and reports the delivery state; it also refreshes
// the backlog gauges.
func (r *Relay) Stats(ctx context.Context) (Stats, error) {
	// The dead letters are read once, below, with OutboxHeads: the
	// summary of the rest leaves them unread (each was read twice).
	ob, _, err := r.store.OutboxStatsApart(ctx, DeadPrefix)
	if err != nil {
		return Stats{}, fmt.Errorf("outbox stats: %w", err)
	}
	st := Stats{
		Enabled: true, URL: redactURL(r.opts.URL), OutboxPending: ob.Pending, Heads: []Head{}, DeadLetters: []DeadLetter{},
		FirstRetry: r.opts.RetryBase.String(), MaxDelay: r.opts.MaxDelay.String(),
		RetryFor: r.opts.RetryFor.String(), MaxAttempts: r.maxAttempts,
	}
	r.mu.Lock()
	st.Delivered, st.Failed, st.LastDeliveredAt = r.delivered, r.failed, r.lastDelivered.UTC()
	st.PausedUntil, st.PausedBy = r.pausedUntil.UTC(), r.pausedBy
	r.mu.Unlock()
	// Every dead letter is read, not only those OutboxStats's capped list
	// holds: after a long outage they can outnumber it, and each is an
	// order whose merchant may not know it was paid.
	dead, err := r.store.OutboxHeads(ctx, DeadPrefix)
	if err != nil {
		return Stats{}, fmt.Errorf("outbox dead letters: %w", err)
	}
	// Each dead letter is alone on its key (deadKey): one event each.
	st.OutboxPending += len(dead)
	for _, h := range dead {
		if h.Kind != Kind {
			continue
		}
		st.GivenUp++
		if no, _ := deadOrder(h.Key, h.ID); len(st.DeadLetters) < store.MaxListLimit {
			dl := deadLetter(no, h)
			dl.LastError = r.redactText(dl.LastError)
			st.DeadLetters = append(st.DeadLetters, dl)
		}
	}
	// OutboxStatsApart lists at most store.MaxListLimit heads: past that
	// (a merchant outage of more than a thousand orders) every head but
	// the dead letters, read above, is read, so
	// that the count and the oldest an operator's alert reads are of all.
	heads := ob.Heads
	if len(heads) >= store.MaxListLimit {
		if heads, _, err = r.store.OutboxHeadsApart(ctx, DeadPrefix); err != nil {
			return Stats{}, fmt.Errorf("outbox heads: %w", err)
		}
	}
	st.PendingOrders, st.Retrying, st.Oldest = r.backlog(heads, &st.Heads)
	r.setGauges(st.PendingOrders, st.GivenUp, st.Retrying, st.Oldest)
	return st, nil
}

// backlog counts the orders with an undelivered webhook among heads, those
// retrying and the creation of the oldest, appending the first
// store.MaxListLimit orders' heads to list when list is not nil.
func (r *Relay) backlog(heads []store.Event, list *[]Head) (pending, retrying int, oldest time.Time) {
	orders := map[string]bool{}
	for _, h := range heads {
		if _, isDead := deadOrder(h.Key, h.ID); isDead || h.Kind != Kind {
			continue
		}
		no := orderOf(h)
		if orders[no] {
			continue // an intake head behind a delivery queue of the same order
		}
		orders[no] = true
		if list != nil && len(*list) < store.MaxListLimit {
			*list = append(*list, Head{
				EventID: h.ID, Type: gjson.GetBytes(h.Payload, "type").Str, OrderNo: no, Attempts: h.Attempts,
				CreatedAt: h.CreatedAt.UTC(), NextAt: h.NextAt.UTC(), LastError: r.redactText(h.LastError), FailedAt: h.FailedAt.UTC(),
			})
		}
		if h.Attempts > 0 {
			retrying++
		}
		if oldest.IsZero() || h.CreatedAt.Before(oldest) {
			oldest = h.CreatedAt.UTC()
		}
	}
	return len(orders), retrying, oldest
}

func (r *Relay) setGauges(pending int, dead int64, retrying int, oldest time.Time) {
	r.m.pending.Set(float64(pending))
	r.m.dead.Set(float64(dead))
	r.m.retrying.Set(float64(retrying))
	age := 0.0
	if !oldest.IsZero() {
		age = max(r.now().Sub(oldest).Seconds(), 0)
	}
	r.m.oldest.Set(age)
}

// refresh sets the backlog gauges, every StatsInterval. Unlike Stats (the
// admin view, which lists the dead letters), it reads no dead letter, only
// counts them (OutboxHeadsApart): each refresh read every one, twice, and
// every other head once more (513 ms at 30,000 dead letters, every 15 s).
// The count is of the dead-letter keys: one per event given up, all of
// kind webhook, as Stats counts them.
func (r *Relay) refresh(ctx context.Context) {
	heads, dead, err := r.store.OutboxHeadsApart(ctx, DeadPrefix)
	if err != nil {
		if ctx.Err() == nil {
			r.pollFailed(ctx, fmt.Errorf("outbox heads: %w", err))
		}
		return
	}
	pending, retrying, oldest := r.backlog(heads, nil)
	r.setGauges(pending, int64(dead), retrying, oldest)
}

// Handler serves the delivery state as JSON (GET /admin/api/webhooks). It
// does no authentication: mount it behind the admin token check. Failures
// answer in the admin API's error shape, {"error":"…"}, as its other routes
// do, so the console and an operator's scripts read them alike. It takes no
// query parameter and refuses one (400), as the other admin routes do: a
// script's ?order_no=PG… (is that order's event still pending?), ignored,
// got every order's heads and dead letters answered as if filtered by it.
func (r *Relay) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if refuseQuery(w, req) {
			return
		}
		st, err := r.Stats(req.Context())
		if clientGone(req, err) {
			goneAnswer(w)
			return
		}
		if err != nil {
			r.log.WarnContext(req.Context(), "webhook delivery state not served: the outbox cannot be read", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": unavailableText(err, "the store's outbox cannot be read; try again")})
			return
		}
		b, err := json.Marshal(st)
		if err != nil {
			r.log.ErrorContext(req.Context(), "webhook delivery state not served: it cannot be encoded", "err", err)
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "the webhook delivery state cannot be encoded"})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		b = append(b, '\n')
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b)
	})
}

// clientGone reports whether err ended req's call because its client (an
// operator's console tab or script) went away: the store drivers pass the
// request's cancel on as it is (Redis), and nothing failed. A request the
// server cancels as it shuts down has its own cause, and is still told to
// try again.
func clientGone(req *http.Request, err error) bool {
	ctx := req.Context()
	return errors.Is(err, context.Canceled) && ctx.Err() != nil && errors.Is(context.Cause(ctx), context.Canceled)
}

// goneAnswer answers a request whose client went away (clientGone) 499,
// as the admin API's other routes do: for the metrics only, nobody reads
// it.
func goneAnswer(w http.ResponseWriter) {
	writeJSON(w, 499, map[string]string{"error": "the client closed the request"})
}

// refuseQuery answers a 400 naming the request's query parameter, if it
// has one, and reports whether it did: GET /admin/api/webhooks takes none,
// whether webhooks are on or off, so that no filter is answered as if
// applied.
func refuseQuery(w http.ResponseWriter, req *http.Request) bool {
	q, ok := readQuery(w, req)
	if !ok {
		return true
	}
	for k := range q {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unknown query parameter " + strconv.Quote(k) + "; " + req.URL.Path + " takes none"})
		return true
	}
	return false
}

// readQuery parses req's query, or answers a 400 and reports false when
// it does not parse (a ";", a bad escape): URL.Query drops what it cannot
// read, so ?force=true&dry_run=1; read as ?force=true alone and forced a
// new event.
func readQuery(w http.ResponseWriter, req *http.Request) (url.Values, bool) {
	q, err := url.ParseQuery(req.URL.RawQuery)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the query does not parse: " + err.Error()})
		return nil, false
	}
	return q, true
}

// DisabledHandler answers GET /admin/api/webhooks when webhooks.url is empty.
func DisabledHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if refuseQuery(w, req) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"enabled":false}`+"\n")
	})
}

// unavailableText is the admin API's words for a store that failed with
// err: store.DataLostAdvice when it lost its data (it answers, and refuses
// every command until the replicas restart, so "try again" would only be
// refused again), else retry, the words of a passing failure.
func unavailableText(err error, retry string) string {
	if errors.Is(err, store.ErrDataLost) {
		return store.DataLostAdvice
	}
	return retry
}
