package failover

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/paygate/paygate/config"
)

// provider is one upstream's live state, shared by every round that targets
// it: its circuit breaker, its cool-down and its transport. Its fields are
// atomics, guarded by their mutexes (the breaker, the header and URL
// caches, the send turns) or immutable after New, so it must not be
// copied; the Router holds it by pointer.
type provider struct {
	_ noCopy

	name   string
	cfg    config.Provider
	base   string
	rt     http.RoundTripper
	header http.Header // Authorization and the configured extra headers

	// headers caches requestHeader's answers by content type and accept.
	headersMu sync.RWMutex
	headers   map[headerKey]http.Header
	// urls caches the parsed URL of each path requested of the provider.
	urlsMu  sync.RWMutex
	urls    map[string]*url.URL
	drop    []string // drop_fields as escaped sjson paths
	breaker *gobreaker.TwoStepCircuitBreaker[struct{}]
	// breakerMu serializes the calls into breaker (allow, report,
	// probeFailed, breakerState) and its replacement (reset). allow, report
	// and probeFailed set logCtx to their caller's context for their span:
	// a transition the breaker makes inside one is logged with that
	// context, so that the line carries the request id of the attempt that
	// opened or closed the breaker.
	breakerMu sync.Mutex
	logCtx    context.Context

	// coolUntil is the Router-clock instant before which the provider is
	// not tried (instant, from epoch).
	coolUntil instant
	epoch     time.Time // the Router's (Router.epoch)
	coolWhy   atomic.Pointer[coolReason]
	// throttles counts consecutive rate limits without Retry-After, so the
	// back-off grows while the provider keeps refusing.
	throttles atomic.Int32
	// turns are the send turns handed to rounds waiting for the provider
	// after a rate limit (claimSend).
	turns sendTurns
	// state mirrors the breaker's state without taking its lock.
	state atomic.Int32
	// openedAt is when the breaker last opened, on the real clock as the
	// breaker's own cool-down is (instant, from headBase), for the
	// client's Retry-After.
	openedAt instant
	cooldown time.Duration // the breaker's
	failures uint32        // the breaker's: failover.breaker.failures
	// breakerGen counts the breakers the provider has held (a reset swaps
	// in a fresh one), under breakerMu: a probe's late failure
	// (probeFailed) is its breaker's, not a later one's.
	breakerGen uint32
	// realNow reads the real clock the breaker runs on (nil: time.Now);
	// tests step it.
	realNow func() time.Time
	// tripNow makes the breaker open at the next failure it counts,
	// whatever the count: probeFailed's.
	tripNow atomic.Bool
	// lastHead is when an attempt of any round last got the provider's
	// response head (ns since headBase, monotonic; 0: none yet; noteHead,
	// headSince): a provider that answered while an attempt waited in
	// vain is not silent (round.silent).
	lastHead atomic.Int64

	// The provider's metric series on every answer, resolved once: a label
	// lookup hashes the labels and takes the vector's lock on each call.
	okAttempts     prometheus.Counter
	ttfb, ttft     prometheus.Observer
	streamComplete prometheus.Counter
}

// noCopy makes go vet's copylocks check flag copies of a provider.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}

// Breaker outcomes that are not plain success: errNeutral neither trips nor
// heals the breaker (a client cancel, a rate limit handled by cool-down);
// errProviderFailure counts toward opening it.
var (
	errNeutral         = errors.New("neutral outcome")
	errProviderFailure = errors.New("provider failure")
)

func newProvider(r *Router, pc config.Provider, rt http.RoundTripper) *provider {
	p := &provider{
		name:   pc.Name,
		cfg:    pc,
		base:   trimBase(pc.BaseURL),
		epoch:  r.epoch,
		rt:     rt,
		header: http.Header{},

		okAttempts:     r.m.attempts.WithLabelValues(pc.Name, "ok"),
		ttfb:           r.m.ttfb.WithLabelValues(pc.Name),
		ttft:           r.m.ttft.WithLabelValues(pc.Name),
		streamComplete: r.m.streams.WithLabelValues(pc.Name, "complete"),
	}
	for k, v := range pc.Headers {
		p.header.Set(k, v)
	}
	if pc.APIKey != "" {
		p.header.Set("Authorization", "Bearer "+pc.APIKey)
	}
	for _, f := range pc.DropFields {
		p.drop = append(p.drop, escapePath(f))
	}
	// gobreaker counts in a uint32: a count past it (written to mean
	// "practically never") is one it never reaches, not its low 32 bits
	// (2^32 read as 0 opened the breaker at the first failure).
	failures := uint32(min(int64(r.fo.Breaker.Failures), math.MaxUint32))
	p.cooldown = r.fo.Breaker.Cooldown.D()
	p.breaker = p.newBreaker(r, failures)
	r.m.breakerState(pc.Name, gobreaker.StateClosed)
	p.failures = failures
	return p
}

// newBreaker is a closed breaker for the provider. A transition of a
// breaker the provider no longer holds (an attempt let out before a reset
// replaced it, reporting after) is ignored: the state, the metric and the
// log are the current breaker's.
func (p *provider) newBreaker(r *Router, failures uint32) *gobreaker.TwoStepCircuitBreaker[struct{}] {
	var cb *gobreaker.TwoStepCircuitBreaker[struct{}]
	cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        p.name,
		MaxRequests: 1, // one probe after the cool-down
		Timeout:     p.cooldown,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures || p.tripNow.Load() },
		IsExcluded:  func(err error) bool { return errors.Is(err, errNeutral) },
		OnStateChange: func(name string, from, to gobreaker.State) {
			if p.breaker != cb { // breakerMu is held, as below
				return
			}
			if to == gobreaker.StateOpen {
				p.openedAt.set(headBase, p.now())
			}
			p.state.Store(int32(to))
			r.m.breakerState(name, to)
			ctx := p.logCtx // breakerMu is held: OnStateChange runs inside a call into the breaker
			if ctx == nil {
				ctx = context.Background()
			}
			r.log.WarnContext(ctx, "upstream breaker", "provider", name, "from", from.String(), "to", to.String())
		},
	})
	return cb
}

// escapePath makes a top-level field name a literal sjson path.
func escapePath(f string) string {
	var b strings.Builder
	for _, c := range f {
		switch c {
		case '.', '*', '?', '|', '#', '@', '\\', '!', '=', '<', '>', '%':
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// coolReason is why a provider cools down: the cause, and for a rate
// limit whether it was a 429 (an overload, 503 or 529, shares the cause).
type coolReason struct {
	cause   string
	limited bool // a 429: the round that finds it cooling is a 429 too
}

// cooling reports until when the provider is in cool-down, and why.
func (p *provider) cooling(now time.Time) (time.Time, coolReason, bool) {
	u, ok := p.coolUntil.until(p.epoch, now)
	if !ok {
		return time.Time{}, coolReason{}, false
	}
	why := coolReason{cause: CauseUnavailable}
	if c := p.coolWhy.Load(); c != nil {
		why = *c
	}
	return u, why, true
}

// coolDown keeps the provider out of rounds until until; a longer cool-down
// already in place wins.
func (p *provider) coolDown(until time.Time, why coolReason) {
	if p.coolUntil.raise(p.epoch, until) {
		p.coolWhy.Store(&why)
	}
}

// sendTurns are the send turns handed out for one provider, Router-clock
// instants kept as ns from its epoch (instant: with the real clock, on the
// monotonic one, so that a step of the host's wall clock while rounds wait
// neither bunches their turns nor leaves old ones in the line), sorted; a
// turn leaves when it is past or given back. They are as many as the
// rounds waiting at once.
type sendTurns struct {
	mu    sync.Mutex
	taken []int64
}

// claimSend hands a round waiting for the provider after a rate limit its
// turn to send: at from at the earliest, and sendSpacing away from every
// other turn handed out, so that the waiting rounds reach the provider a
// few a second, not all at once. A turn a round gave back (its bot left)
// is free again. A turn after limit is not handed out (ok false) and takes
// no place in the line. The turn is read on now's clock (now plus what is
// left until it).
func (p *provider) claimSend(now, from, limit time.Time) (time.Time, bool) {
	ts := &p.turns
	ts.mu.Lock()
	defer ts.mu.Unlock()
	spacing := int64(sendSpacing)
	nowAt := int64(now.Sub(p.epoch))
	past := nowAt - spacing // can no longer space a turn from now on
	keep := ts.taken[:0]
	for _, x := range ts.taken {
		if x > past {
			keep = append(keep, x)
		}
	}
	ts.taken = keep
	slot, at := int64(from.Sub(p.epoch)), len(ts.taken)
	for i, x := range ts.taken {
		if x+spacing <= slot {
			continue // well before
		}
		if x-spacing >= slot {
			at = i // fits in the gap before x
			break
		}
		slot = x + spacing
	}
	if slot > int64(limit.Sub(p.epoch)) {
		return time.Time{}, false
	}
	ts.taken = slices.Insert(ts.taken, at, slot)
	return now.Add(time.Duration(slot - nowAt)), true
}

// releaseSend gives back a turn claimSend handed out whose round will not
// send (its caller left while it waited), so that it does not push the
// rounds after it back, or out past their limit.
func (p *provider) releaseSend(slot time.Time) {
	ts := &p.turns
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if i := slices.Index(ts.taken, int64(slot.Sub(p.epoch))); i >= 0 {
		ts.taken = slices.Delete(ts.taken, i, i+1)
	}
}

// breakerLeft is how long the open breaker stays open before it lets a
// probe through; 0 when it is not open.
func (p *provider) breakerLeft() time.Duration {
	if gobreaker.State(p.state.Load()) != gobreaker.StateOpen {
		return 0
	}
	age, _ := p.openedAt.since(headBase, p.now())
	return max(p.cooldown-age, 0)
}

// now reads the real clock (realNow).
func (p *provider) now() time.Time {
	if p.realNow != nil {
		return p.realNow()
	}
	return time.Now()
}

// reset ends a cool-down and closes the breaker, its count of failures in
// a row started anew (an operator fixed the key, the base_url or the
// billing). An attempt let out before reports to the breaker it was let
// out by, which the provider no longer holds (newBreaker).
func (p *provider) reset(r *Router) {
	p.coolUntil.clear()
	p.throttles.Store(0)
	p.breakerMu.Lock()
	defer p.breakerMu.Unlock()
	from := p.breaker.State()
	p.breaker = p.newBreaker(r, p.failures)
	p.breakerGen++
	if from != gobreaker.StateClosed {
		p.state.Store(int32(gobreaker.StateClosed))
		r.m.breakerState(p.name, gobreaker.StateClosed)
		r.log.Warn("upstream breaker", "provider", p.name, "from", from.String(), "to", gobreaker.StateClosed.String(), "by", "reset")
	}
}

// atomicDuration is a time.Duration updated without locks.
type atomicDuration struct{ v atomic.Int64 }

func (a *atomicDuration) Load() time.Duration   { return time.Duration(a.v.Load()) }
func (a *atomicDuration) Store(d time.Duration) { a.v.Store(int64(d)) }

// observe folds a sample into an exponentially weighted average (α = 1/4).
func (a *atomicDuration) observe(d time.Duration) {
	for {
		old := a.v.Load()
		next := int64(d)
		if old != 0 {
			next = old + (int64(d)-old)/4
		}
		if a.v.CompareAndSwap(old, next) {
			return
		}
	}
}

// allow asks the breaker whether an attempt of ctx's may go out now; the
// returned func records its outcome, given to report exactly once; gen is
// the breaker's (breakerGen), for probeFailed.
func (p *provider) allow(ctx context.Context) (done func(error), gen uint32, err error) {
	p.breakerMu.Lock()
	defer p.breakerMu.Unlock()
	p.logCtx = ctx
	defer func() { p.logCtx = nil }()
	done, err = p.breaker.Allow()
	return done, p.breakerGen, err
}

// report gives an attempt's outcome err to the breaker through done, allow's
// func, for ctx's attempt.
func (p *provider) report(ctx context.Context, done func(error), err error) {
	p.breakerMu.Lock()
	defer p.breakerMu.Unlock()
	p.logCtx = ctx
	defer func() { p.logCtx = nil }()
	done(err)
}

// breakerState is the breaker's state, read as a call into it (which may
// move it from open to half-open).
func (p *provider) breakerState() gobreaker.State {
	p.breakerMu.Lock()
	defer p.breakerMu.Unlock()
	return p.breaker.State()
}

// probeFailed opens the breaker again after a half-open probe whose stream
// closed the breaker at its first token and then broke: the probe failed
// after all. gobreaker opens a closed breaker only on a failure that
// ReadyToTrip accepts, so one is reported with tripNow set. When the
// breaker is not closed any more (another failure opened it, a new probe
// is out), that state stands, and so does a breaker a reset swapped in
// since gen's let the probe out: the operator's reset answers for it.
func (p *provider) probeFailed(ctx context.Context, gen uint32) {
	if gobreaker.State(p.state.Load()) != gobreaker.StateClosed {
		return
	}
	p.breakerMu.Lock()
	defer p.breakerMu.Unlock()
	if p.breakerGen != gen {
		return
	}
	p.logCtx = ctx
	defer func() { p.logCtx = nil }()
	done, err := p.breaker.Allow()
	if err != nil {
		return
	}
	if p.breaker.Counts().TotalSuccesses > 0 {
		// Other rounds have been answered since the probe closed the
		// breaker: the provider is serving, and this late break is one
		// failure among them, not a failed probe.
		done(errProviderFailure)
		return
	}
	p.tripNow.Store(true)
	done(errProviderFailure)
	p.tripNow.Store(false)
}

type headerKey struct{ contentType, accept string }

// requestHeader is the header of a request to this provider: its own
// headers, the request's Content-Type and Accept, and a User-Agent. Callers
// get one shared map per combination, built once: transports only read a
// request's header, and a clone per attempt was 5% of a request's
// allocations. The combinations are few (JSON, and JSON or SSE accepted),
// so the cache stays small; past 64 entries a header is built per call.
func (p *provider) requestHeader(contentType, accept string) http.Header {
	k := headerKey{contentType, accept}
	p.headersMu.RLock()
	h, ok := p.headers[k]
	p.headersMu.RUnlock()
	if ok {
		return h
	}
	h = p.header.Clone()
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	if accept != "" {
		h.Set("Accept", accept)
	}
	if h.Get("User-Agent") == "" {
		h.Set("User-Agent", "paygate")
	}
	p.headersMu.Lock()
	if p.headers == nil {
		p.headers = map[headerKey]http.Header{}
	}
	if len(p.headers) < 64 {
		p.headers[k] = h
	}
	p.headersMu.Unlock()
	return h
}

// newRequest is http.NewRequestWithContext for a request to p, without
// parsing p's URL on every attempt (2% of a non-stream request under load):
// each path's URL is parsed once and shared by the requests, which a
// RoundTripper must not modify.
func (p *provider) newRequest(ctx context.Context, method, path string, body []byte, header http.Header) (*http.Request, error) {
	u, err := p.urlFor(path)
	if err != nil {
		return nil, err
	}
	// The request and its body share one allocation. WithContext of an
	// empty request is the one way to set the context; inlined, its copy
	// stays on the stack. The fields follow.
	o := new(outRequest)
	o.req = *noRequest.WithContext(ctx)
	req := &o.req
	req.Method, req.URL, req.Header, req.Host = method, u, header, u.Host
	req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.1", 1, 1
	switch {
	case len(body) > 0:
		b := &o.body
		b.b = body
		b.Reset(body)
		req.ContentLength = int64(len(body))
		req.Body = b
		req.GetBody = b.again
	case body != nil:
		req.Body = http.NoBody
		req.GetBody = noBody
	}
	return req, nil
}

var noRequest = new(http.Request)

// outRequest is an upstream request with its body in memory.
type outRequest struct {
	req  http.Request
	body memBody
}

func noBody() (io.ReadCloser, error) { return http.NoBody, nil }

// memBody is a request body in memory, with what GetBody needs to read it
// again: a reader and the bytes in one allocation where io.NopCloser,
// bytes.NewReader and a closure took three.
type memBody struct {
	bytes.Reader
	b []byte
}

func newMemBody(b []byte) *memBody {
	m := &memBody{b: b}
	m.Reset(b)
	return m
}

func (m *memBody) Close() error { return nil }

// again is GetBody's: a fresh reader of the same bytes.
func (m *memBody) again() (io.ReadCloser, error) { return newMemBody(m.b), nil }

// urlFor returns the URL of p's base and path, cached for up to 64 paths
// (passthrough paths carry query strings; past that, each is built).
//
// path is already escaped, as the client sent it, and is never decoded
// into the URL's structure: it is appended to the base's escaped path as
// RawPath, so a %2F, %3F, %23 or %25 in it reaches the provider as those
// bytes, not as a separator, a query, a fragment or a bad escape. Its query
// is everything after the first '?', kept as sent, after the base_url's own
// query (mergeQuery). A path that net/url could not send byte for byte (a
// bad escape, a character it would escape again) is an error rather than a
// different path.
func (p *provider) urlFor(path string) (*url.URL, error) {
	p.urlsMu.RLock()
	u, ok := p.urls[path]
	p.urlsMu.RUnlock()
	if ok {
		return u, nil
	}
	u, err := url.Parse(p.base)
	if err != nil {
		return nil, err
	}
	escaped, query, hasQuery := strings.Cut(path, "?")
	decoded, err := url.PathUnescape(escaped)
	if err != nil {
		return nil, err
	}
	u.RawPath = u.EscapedPath() + escaped
	u.Path += decoded
	if u.EscapedPath() != u.RawPath {
		return nil, errors.New("not a URL path as sent: " + escaped)
	}
	u.ForceQuery = hasQuery && query == "" && u.RawQuery == ""
	u.RawQuery = mergeQuery(u.RawQuery, query)
	if u.Port() == "" {
		u.Host = strings.TrimSuffix(u.Host, ":") // as NewRequest does
	}
	p.urlsMu.Lock()
	if p.urls == nil {
		p.urls = map[string]*url.URL{}
	}
	if len(p.urls) < 64 {
		p.urls[path] = u
	}
	p.urlsMu.Unlock()
	return u, nil
}

// mergeQuery is the query of a request to a base_url whose own query is
// base (Azure OpenAI's ?api-version=…, a gateway's key or route) for a path
// whose query is req, both raw: base's parameters, then req's, each as
// written. A parameter of req that base sets too is dropped: the provider's
// configuration is the operator's, not the bot's to override, and two
// api-version values would be refused or read as either.
func mergeQuery(base, req string) string {
	if base == "" || req == "" {
		return base + req
	}
	set := map[string]bool{}
	for kv := range strings.SplitSeq(base, "&") {
		set[queryKey(kv)] = true
	}
	var b strings.Builder
	b.WriteString(base)
	for kv := range strings.SplitSeq(req, "&") {
		if kv != "" && !set[queryKey(kv)] {
			b.WriteByte('&')
			b.WriteString(kv)
		}
	}
	return b.String()
}

// queryKey is the decoded name of a raw "name=value" query parameter.
func queryKey(kv string) string {
	k, _, _ := strings.Cut(kv, "=")
	if d, err := url.QueryUnescape(k); err == nil {
		return d
	}
	return k
}

// headBase is the instant lastHead and openedAt count from: times are compared as
// their distance from it (time.Time.Sub), on the monotonic clock, which a
// step of the wall clock (NTP, a VM resumed) does not move.
var headBase = time.Now()

// noteHead records that an attempt got the provider's response head at t
// (a reading of time.Now), keeping the latest: attempts of concurrent
// rounds record their heads in any order, and an earlier head stored last
// hid a later one.
func (p *provider) noteHead(t time.Time) {
	at := max(int64(t.Sub(headBase)), 1) // 0: no head yet
	for {
		old := p.lastHead.Load()
		if old >= at || p.lastHead.CompareAndSwap(old, at) {
			return
		}
	}
}

// headSince reports whether an attempt got the provider's response head at
// or after t (a reading of time.Now).
func (p *provider) headSince(t time.Time) bool {
	h := p.lastHead.Load()
	return h != 0 && h >= int64(t.Sub(headBase))
}
