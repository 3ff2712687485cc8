package failover

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/failover/h1"
)

// Options are a Router's dependencies. The zero value works: a discarding
// logger, no metrics, tuned transports, the real clock.
type Options struct {
	// Logger receives attempt failures, skipped malformed events and breaker
	// changes. Default: discard.
	Logger *slog.Logger
	// Registerer receives upstream attempts by provider and outcome, failovers,
	// time to first byte and first token, and breaker state. Default: none.
	Registerer prometheus.Registerer
	// Transport carries every upstream request. Default: one h1.Transport
	// per provider (HTTP/1.1 on the caller's goroutine, keep-alive, 256 idle
	// connections per host, dial and TLS handshake bounded by
	// timeouts.connect), with a tuned *http.Transport for requests that go
	// through an HTTP proxy from the environment.
	Transport http.RoundTripper

	// Now is the clock for cool-downs, Retry-After dates and attempt spacing.
	// Default time.Now. (Per-attempt timeouts always use real timers.)
	Now func() time.Time
	// Sleep waits between attempts; it returns ctx's error when ctx ends
	// first. Default: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter turns a nominal pause into the one taken. Default: uniform in
	// [d/2, 3d/2).
	Jitter func(d time.Duration) time.Duration
	// Rand returns a number in [0, 1) for the weighted strategy. Default
	// math/rand/v2.Float64.
	Rand func() float64

	// QuotaCooldown is how long a provider that answered 429
	// insufficient_quota (billing) stays out of service unless reset.
	// Default 30m.
	QuotaCooldown time.Duration
	// MisconfiguredCooldown is how long a provider that answered 401 or 403
	// stays out of service unless reset. Default 10m.
	MisconfiguredCooldown time.Duration
	// MaxResponseBytes caps the body of a non-stream chat completion, read
	// whole before Open returns. Default 32 MiB: an answer that long is
	// one to stream, and the round tells the client so.
	MaxResponseBytes int64
	// MaxJSONResponseBytes caps the body of a JSON answer on a forwarded
	// path (anything but chat completions: embeddings, a file's or a
	// batch's object), read whole before Open returns so that a 2xx error
	// envelope still fails over and the proxy can drop a forged "paygate"
	// member from it. Default 128 MiB, not MaxResponseBytes: such an
	// answer cannot be streamed instead, and one over the cap is a 502
	// for an answer the provider has already billed. The largest
	// embeddings batch OpenAI serves (2048 inputs to
	// text-embedding-3-large, 3072 dimensions each) answers 33.7 MB in the
	// SDKs' default base64 encoding and about 63 MB with encoding_format
	// "float"; 128 MiB holds that with room for a provider's longer float
	// formatting. Other answers (Response.Piped) are not held in memory
	// and have no cap.
	MaxJSONResponseBytes int64
}

// Router routes requests for public models to provider targets. It is safe
// for concurrent use.
type Router struct {
	// epoch is the Router's clock at its start, from which its cool-downs
	// are kept (instant).
	epoch     time.Time
	log       *slog.Logger
	fo        config.Failover
	opts      Options
	providers []*provider
	models    []*model
	byName    map[string]*model
	names     []string
	m         *metrics
	owned     []idleCloser // transports New created, closed by Close
	errText   errorText    // masks, then cuts, a non-JSON error body's text
}

type model struct {
	name     string
	strategy string
	targets  []*target
}

// target is one provider serving a model. It is shared by all rounds and
// holds only atomics besides its configuration.
type target struct {
	p     *provider
	model string
	// modelJSON is model as a JSON string, spliced into every request.
	modelJSON []byte
	weight    int
	// mistral: the target reaches a Mistral model (family mistral or
	// mistral_api, or isMistral), which takes tool call ids of one shape
	// only (adaptMessages).
	mistral bool
	// mistralAPI: the target is on Mistral's own API (family mistral_api,
	// or isMistralAPI), which also refuses stream_options.
	mistralAPI bool
	// deepseek: the target reaches DeepSeek's own API (family
	// deepseek_api, or isDeepSeek), whose thinking mode wants every tool
	// round's reasoning back.
	deepseek bool
	// latency is, per request kind (kindStream, kindWhole), an
	// exponentially weighted average of the time to first token (a
	// stream, a forwarded event stream's first event included) or to the
	// answer (a non-stream request: the whole body, or a piped answer's
	// head); 0: not measured yet. The kinds are apart: a
	// non-stream answer takes as long as the model writes, and one average
	// of both ordered streams by what each target had served last.
	latency [2]atomicDuration
	// measured is when each latency was last observed (Router clock,
	// instant from its provider's epoch). A stale average counts as unmeasured, so a target that was slow
	// once gets tried again instead of being shunned for ever.
	measured [2]instant
	// failed is when an attempt of each kind last failed for a reason of
	// the target's own (as measured is; see failedOwn). Newer than
	// measured and not stale, it sorts the target behind every other.
	failed [2]instant
	// remeasured is when a round last took each kind's stale average (or
	// stale failure) for unmeasured, to measure the target again
	// (claimRemeasure): the one round that may, until remeasureHold.
	remeasured [2]instant
	// waiting counts each kind's attempts out for their answer (a
	// stream's first token, a non-stream request's answer), for the
	// lowest-latency strategy; waitSince is when the first of those
	// begun since the kind's last sample began, none once none is out
	// (beginWait, endWait).
	waiting   [2]atomic.Int32
	waitSince [2]instant
	// coolUntil is the Router-clock instant before which this target alone
	// sits out rounds: a rate limit on its model only
	// (failure.targetLimit); instant, from its provider's epoch.
	coolUntil instant
	// throttles counts the target's consecutive rate limits on its model
	// alone without a wait (backOffTarget), apart from its provider's:
	// the target's answer ends them, another model's does not.
	throttles atomic.Int32
}

// cooling reports until when the target sits out rounds for a limit on
// its model alone.
func (t *target) cooling(now time.Time) (time.Time, bool) {
	return t.coolUntil.until(t.p.epoch, now)
}

// coolDown keeps the target out of rounds until until; a longer cool-down
// already in place wins.
func (t *target) coolDown(until time.Time) {
	t.coolUntil.raise(t.p.epoch, until)
}

// Request kinds, the index of a target's latency averages.
const (
	kindStream = 0 // time to first token
	kindWhole  = 1 // time to the answer of a non-stream request
)

// latencyKind is the index of the latency average of a stream or not.
func latencyKind(stream bool) int {
	if stream {
		return kindStream
	}
	return kindWhole
}

// latencyStale is how long a latency average stays trusted without a new
// sample for the lowest-latency strategy.
const latencyStale = time.Minute

// observe folds a latency sample into the target's average. A stale
// average (latencyStale) is replaced, not folded in: it already counts as
// unmeasured for the order, and folded in, one slow outlier (10 s) still
// weighed 7.5 s after the fast answer that measured the target again, so
// the target went back behind the others for another minute, and so on
// for a quarter hour of minutes.
func (t *target) observe(now time.Time, stream bool, d time.Duration) {
	k := latencyKind(stream)
	if age, ok := t.measured[k].since(t.p.epoch, now); !ok || age > latencyStale {
		t.latency[k].Store(d)
	} else {
		t.latency[k].observe(d)
	}
	t.measured[k].set(t.p.epoch, now)
	t.waitSince[k].clear() // the waits out now are counted from the next one begun
}

// beginWait notes an attempt of kind k begun at now, whose wait for its
// answer counts in the target's sort key until it ends (endWait).
func (t *target) beginWait(k int, now time.Time) {
	t.waiting[k].Add(1)
	t.waitSince[k].v.CompareAndSwap(0, max(int64(now.Sub(t.p.epoch)), 1))
}

// endWait notes the end of an attempt beginWait noted: answered, failed
// or left.
func (t *target) endWait(k int) {
	if t.waiting[k].Add(-1) == 0 {
		t.waitSince[k].clear()
	}
}

// waited is how long the target's attempts of kind k have waited for an
// answer without one: since the first begun after the last sample, while
// any is out; 0 when none is.
func (t *target) waited(k int, now time.Time) time.Duration {
	d, _ := t.waitSince[k].since(t.p.epoch, now)
	return max(d, 0)
}

// generation reports a request whose answer's time is a latency sample of
// its model: a chat completion, or a forwarded POST that names the model
// (a Responses call, a legacy completion, embeddings). A call that names
// no model (a file's or a batch's object, the model list) is routed by the
// first model (lookup) but says nothing of its speed: taken for a sample,
// a bot polling its batch on the one provider that holds it gave that
// provider's average the poll's milliseconds, and it took the lead of the
// model's non-stream requests from a target faster to answer them.
func generation(req *Request) bool {
	return (req.Method == "" || req.Method == http.MethodPost) && (req.Model != "" || isChatPath(req.Path))
}

// sample gives the attempt's target a latency sample d, of a stream or
// not, when its request is a generation: d, the attempt's time, and what
// the round spent on the target before it (Response.spent).
func (a *Response) sample(stream bool, d time.Duration) {
	if a.measure {
		a.t.observe(a.r.opts.Now(), stream, a.spent+d)
	}
}

// failedAt records that an attempt of kind k failed at now for a reason
// of the target's own (failedOwn).
func (t *target) failedAt(k int, now time.Time) {
	t.failed[k].set(t.p.epoch, now)
}

// remeasureHold is how long one round's claim to measure a stale target
// again (claimRemeasure) keeps other rounds from it: its answer or failure
// ends the staleness sooner; a claim lost (the round was answered by
// another target, or its bot left) lets the next round measure after it.
// It is the default first_token, the longest a stream's attempt waits for
// the sample, so that a target still slow is measured by about one round
// per hold, not by every round.
const remeasureHold = 30 * time.Second

// claimRemeasure reports whether the round ordering at now is the one to
// measure the target's stale kind k again: no other round claimed it
// within remeasureHold.
func (t *target) claimRemeasure(k int, now time.Time) bool {
	at := max(int64(now.Sub(t.p.epoch)), 1)
	for {
		old := t.remeasured[k].v.Load()
		if old != 0 && at-old < int64(remeasureHold) {
			return false
		}
		if t.remeasured[k].v.CompareAndSwap(old, at) {
			return true
		}
	}
}

// latencyKey is the lowest-latency sort key of a stream or a non-stream
// request: its average, or how long its attempts out have waited when
// that is longer (waited); 0 for unmeasured with none waiting, and for a
// stale target in the one round that measures it again (claimRemeasure).
// A call claims, when claim is set (a round whose answer is a sample,
// generation): order reads each target's key once per round.
func (t *target) latencyKey(now time.Time, stream, claim bool) time.Duration {
	k := latencyKind(stream)
	failing := t.failed[k].after(&t.measured[k])
	if failing {
		if age, _ := t.failed[k].since(t.p.epoch, now); age <= latencyStale {
			// Its last attempt failed: unmeasured it would sort first, and a
			// target that only ever fails without cooling down (a 404 for a
			// model it does not serve) cost every round its failed attempt.
			return math.MaxInt64
		}
	} else if age, ok := t.measured[k].since(t.p.epoch, now); !ok {
		return t.waited(k, now)
	} else if age <= latencyStale {
		// An answer out longer than the average says the target is
		// slower now: ordered by its average alone, a target whose
		// answers began to take 20 s (a brownout: no error, just slow)
		// drew every round until its first late answer came back.
		return max(t.latency[k].Load(), t.waited(k, now))
	}
	// Stale: a slow target once, or a failing one, is tried again, so that
	// it is not shunned for ever. One round measures it; the others sort
	// it behind every target measured lately (by its last average among
	// the stale ones, a failing one last), since what it was a minute ago
	// says little of what it is: taken for unmeasured by every round, a
	// target in a brownout (its answers 20 s late, passed over while the
	// others took the traffic) drew every round of its next 20 s once a
	// minute, each waiting out the brownout, until its first late answer
	// came back to say so.
	if claim && t.claimRemeasure(k, now) {
		return 0
	}
	if failing {
		return math.MaxInt64
	}
	return staleKeys + min(t.latency[k].Load(), staleKeys-1)
}

// staleKeys is where the sort keys of stale targets another round is
// measuring again begin: above any average, below a failing target's.
const staleKeys = time.Duration(math.MaxInt64 / 2)

// failedOwn reports a failure that tells of the target rather than of the
// request: not the client's error, a context or body too large for this
// target alone, or a canceled request; nor one that follows from this one
// request and says nothing of the target's other answers: a Responses
// conversation stored at another provider (previousNotFound), a forwarded
// path the provider key lacks the permission for (pathRefused, which cools
// no provider down either) or that the provider does not serve
// (pathMissing: a Responses call to a server with chat completions only),
// an answer larger than paygate relays (its n or max_tokens). Counted, each
// put a healthy target behind the others for every bot's requests of the
// model for a minute.
func failedOwn(f *failure) bool {
	switch f.cause {
	case CauseClientError, CauseContextLength, CauseRequestTooLarge, CauseCanceled, CauseResponseTooLarge:
		return false
	}
	return !f.canceled && !f.previousNotFound && !f.pathRefused && !f.pathMissing
}

// New builds a Router for cfg's providers and models. cfg must have been
// loaded by config (defaults applied and validated); New fills in any zero
// timeouts and limits with the documented defaults all the same.
func New(cfg *config.Config, opts Options) (*Router, error) {
	if cfg == nil {
		return nil, errors.New("failover: nil config")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepCtx
	}
	if opts.Jitter == nil {
		opts.Jitter = func(d time.Duration) time.Duration {
			if d <= 0 {
				return 0
			}
			return d/2 + rand.N(d)
		}
	}
	if opts.Rand == nil {
		opts.Rand = rand.Float64
	}
	if opts.QuotaCooldown <= 0 {
		opts.QuotaCooldown = 30 * time.Minute
	}
	if opts.MisconfiguredCooldown <= 0 {
		opts.MisconfiguredCooldown = 10 * time.Minute
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = 32 << 20
	}
	if opts.MaxJSONResponseBytes <= 0 {
		opts.MaxJSONResponseBytes = 128 << 20
	}
	fo := cfg.Failover
	if fo.MaxAttempts <= 0 {
		fo.MaxAttempts = 4
	}
	if fo.RetryAfterMaxWait <= 0 {
		fo.RetryAfterMaxWait = config.Duration(5 * time.Second)
	}
	if fo.MaxRoundTime <= 0 {
		fo.MaxRoundTime = config.Duration(60 * time.Second)
	}
	if fo.Breaker.Failures <= 0 {
		fo.Breaker.Failures = 5
	}
	if fo.Breaker.Cooldown <= 0 {
		fo.Breaker.Cooldown = config.Duration(30 * time.Second)
	}

	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("failover: registering metrics: %w", err)
	}
	r := &Router{
		epoch:  opts.Now(),
		log:    opts.Logger,
		fo:     fo,
		opts:   opts,
		byName: map[string]*model{},
		m:      m,
	}
	r.errText = newErrorText(cfg)
	byProvider := map[string]*provider{}
	for i := range cfg.Providers {
		pc := cfg.Providers[i]
		if _, dup := byProvider[pc.Name]; dup {
			return nil, fmt.Errorf("failover: duplicate provider %q", pc.Name)
		}
		fillTimeouts(&pc.Timeouts)
		rt := opts.Transport
		if rt == nil {
			tr := newTransport(pc.Timeouts.Connect.D())
			r.owned = append(r.owned, tr)
			rt = tr
		}
		p := newProvider(r, pc, rt)
		byProvider[pc.Name] = p
		r.providers = append(r.providers, p)
	}
	for _, mc := range cfg.Models {
		if _, dup := r.byName[mc.Name]; dup {
			return nil, fmt.Errorf("failover: duplicate model %q", mc.Name)
		}
		if len(mc.Targets) == 0 {
			return nil, fmt.Errorf("failover: model %q has no targets", mc.Name)
		}
		md := &model{name: mc.Name, strategy: mc.Strategy}
		switch md.strategy {
		case "":
			md.strategy = StrategyPriority
		case StrategyPriority, StrategyWeighted, StrategyLowestLatency:
		default:
			return nil, fmt.Errorf("failover: model %q: unknown strategy %q", mc.Name, mc.Strategy)
		}
		for _, tc := range mc.Targets {
			p, ok := byProvider[tc.Provider]
			if !ok {
				return nil, fmt.Errorf("failover: model %q: unknown provider %q", mc.Name, tc.Provider)
			}
			w := tc.Weight
			if w <= 0 {
				w = 1
			}
			tg := &target{p: p, model: tc.Model, modelJSON: appendQuoted(nil, tc.Model), weight: w}
			family := tc.Family
			if family == "" {
				family = p.cfg.Family
			}
			if err := tg.setFamily(family, p.cfg.BaseURL); err != nil {
				return nil, fmt.Errorf("failover: model %q: target %q of provider %q: %w", mc.Name, tc.Model, tc.Provider, err)
			}
			md.targets = append(md.targets, tg)
		}
		r.models = append(r.models, md)
		r.byName[md.name] = md
		r.names = append(r.names, md.name)
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(newCoolingCollector(r)); err != nil {
			return nil, fmt.Errorf("failover: registering metrics: %w", err)
		}
	}
	return r, nil
}

// Strategies order a model's targets for each round.
const (
	// StrategyPriority tries targets in config order.
	StrategyPriority = "priority"
	// StrategyWeighted draws the order at random, in proportion to weight.
	StrategyWeighted = "weighted"
	// StrategyLowestLatency tries the target with the lowest recent time to
	// first token first (for a non-stream request: to its answer), or the
	// time its attempts out have waited when that is longer; unmeasured
	// targets with none out come first so they get measured, one whose
	// last attempt failed within latencyStale comes last, and one measured
	// longer ago is measured again by one round at a time (latencyKey).
	StrategyLowestLatency = "lowest-latency"
)

func fillTimeouts(t *config.Timeouts) {
	def := func(d *config.Duration, v time.Duration) {
		if *d <= 0 {
			*d = config.Duration(v)
		}
	}
	def(&t.Connect, 5*time.Second)
	def(&t.FirstByte, 30*time.Second)
	def(&t.FirstToken, 30*time.Second)
	def(&t.Idle, 30*time.Second)
	def(&t.Total, 300*time.Second)
}

type idleCloser interface{ CloseIdleConnections() }

// newTransport is a provider's default transport. Requests go out on the
// lean HTTP/1.1 transport, which does the exchange on the caller's goroutine
// (about a fifth of net/http's per-request CPU went to its connection
// goroutines; BENCHMARKS.md); a proxy from the environment (HTTPS_PROXY and
// friends) needs CONNECT tunnelling, which stays with net/http, over
// HTTP/1.1 as well (newProxyTransport).
func newTransport(connect time.Duration) *h1.Transport {
	d := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	return &h1.Transport{
		DialContext:         d.DialContext,
		TLSHandshakeTimeout: connect,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		Proxy:               http.ProxyFromEnvironment,
		Fallback:            newProxyTransport(d, connect),
	}
}

func newProxyTransport(d *net.Dialer, connect time.Duration) *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &tunnelConn{Conn: c, connect: connect}, nil
		},
		// A proxy spoken to over TLS (HTTPS_PROXY=https://…): its TLS is
		// done here, not by net/http, so that the CONNECT written inside
		// it reaches tunnelConn in the clear, as an http:// proxy's does.
		// net/http calls this only for a proxy's address: a request is
		// sent here only when the environment names a proxy for it.
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialProxyTLS(ctx, d, network, addr, connect)
		},
		TLSHandshakeTimeout: connect,
		// HTTP/1.1 alone, as the direct path (h1.Transport): HTTP/2's
		// first burst on a new connection goes out before the
		// provider's stream limit is known, and the streams it refuses
		// net/http sends again after a back-off of 1 s, then 2 s.
		Protocols:           http1Only(),
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		// net/http fails a refused CONNECT with the proxy's reason phrase
		// alone ("Forbidden", "Proxy Authentication Required", "Bad
		// Gateway"), which the log read as the provider's own refusal.
		OnProxyConnectResponse: proxyRefusal,
	}
}

// http1Only is the protocols of the proxied transport: HTTP/1.1 alone.
func http1Only() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	return &p
}

// tunnelConn is a connection to the egress proxy. When its first write is
// a CONNECT (net/http opening a tunnel to an https provider), the
// proxy's answer is awaited for the provider's connect timeout, as the
// dial is on a direct connection: the proxy answers when its own connect
// to the provider is made, and net/http waits up to a minute for it. A
// provider whose address dropped connects held each attempt for its whole
// first-byte wait, or its share of the round (30 s of the default 60 s),
// where a direct dial gave up after timeouts.connect. Other requests (to
// a provider over plain http, whose answer is the model's) are not
// bounded. An https:// proxy's CONNECT is seen alike: its TLS is
// dialProxyTLS's, below this connection.
type tunnelConn struct {
	net.Conn
	connect time.Duration
	writes  bool // the first write went out
	waiting bool // a CONNECT awaits its answer under the read deadline
}

func (c *tunnelConn) Write(p []byte) (int, error) {
	if !c.writes {
		c.writes = true
		if c.connect > 0 && bytes.HasPrefix(p, []byte("CONNECT ")) {
			if err := c.Conn.SetReadDeadline(time.Now().Add(c.connect)); err == nil {
				c.waiting = true
			}
		}
	}
	return c.Conn.Write(p)
}

func (c *tunnelConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.waiting {
		if err != nil && isTimeout(err) {
			return n, fmt.Errorf("the proxy did not answer CONNECT within the provider's connect timeout (%v): %w", c.connect, err)
		}
		if n > 0 {
			c.waiting = false
			_ = c.Conn.SetReadDeadline(time.Time{})
		}
	}
	return n, err
}

// dialProxyTLS dials an https:// proxy at addr and does its TLS handshake,
// bounded as net/http bounds it (TLSHandshakeTimeout: connect), verifying
// its certificate for its host (SSL_CERT_FILE, SSL_CERT_DIR and the
// system's roots), HTTP/1.1 alone: a CONNECT is not sent over HTTP/2.
func dialProxyTLS(ctx context.Context, d *net.Dialer, network, addr string, connect time.Duration) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(c, &tls.Config{ServerName: host, NextProtos: []string{"http/1.1"}})
	hctx := ctx
	if connect > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(ctx, connect)
		defer cancel()
	}
	if err := tc.HandshakeContext(hctx); err != nil {
		_ = c.Close()
		return nil, &proxyTLSError{err: err}
	}
	return &tunnelConn{Conn: tc, connect: connect}, nil
}

// proxyTLSError is a failed TLS handshake with an https:// proxy: the
// proxy's certificate or scheme, not the provider's (tlsNote).
type proxyTLSError struct{ err error }

func (e *proxyTLSError) Error() string { return "TLS with the proxy: " + e.err.Error() }
func (e *proxyTLSError) Unwrap() error { return e.err }

// proxyRefusal says that the proxy would not open the tunnel, with its
// status; h1.Transport names the proxy and the provider's host.
func proxyRefusal(_ context.Context, _ *url.URL, _ *http.Request, resp *http.Response) error {
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	if resp.StatusCode == http.StatusProxyAuthRequired {
		return fmt.Errorf("the proxy refused the tunnel: %s: %w", resp.Status, errProxyAuth)
	}
	return fmt.Errorf("the proxy refused the tunnel: %s", resp.Status)
}

// errProxyAuth marks a tunnel the proxy refused with a 407: paygate's
// proxy setting, not the provider (a 407 over plain http, causeOf).
var errProxyAuth = errors.New("the proxy wants credentials")

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Models returns the public model names in config order.
func (r *Router) Models() []string { return append([]string(nil), r.names...) }

// HasModel reports whether name is a configured public model.
func (r *Router) HasModel(name string) bool {
	_, ok := r.byName[name]
	return ok
}

// Close releases idle upstream connections. In-flight responses stay usable
// until their own Close.
func (r *Router) Close() error {
	for _, tr := range r.owned {
		tr.CloseIdleConnections()
	}
	return nil
}

func (r *Router) lookup(name string) (*model, error) {
	if name == "" {
		if len(r.models) == 0 {
			return nil, fmt.Errorf("failover: no models configured: %w", ErrUnknownModel)
		}
		return r.models[0], nil
	}
	m, ok := r.byName[name]
	if !ok {
		return nil, fmt.Errorf("failover: model %q: %w", name, ErrUnknownModel)
	}
	return m, nil
}

func trimBase(u string) string {
	// The slashes end the path, before a query (?api-version=…).
	path, query, hasQuery := strings.Cut(u, "?")
	path = strings.TrimRight(path, "/")
	if hasQuery {
		return path + "?" + query
	}
	return path
}

// ProviderStatus is one provider's live state, for the admin API and
// readiness: whether rounds currently try it, and why not.
type ProviderStatus struct {
	Name string
	// Breaker is "closed", "half-open" or "open".
	Breaker string
	// CoolingUntil is when a cool-down ends (zero: none); CoolingCause is
	// the cause that started it (rate limit, quota, misconfigured key).
	CoolingUntil time.Time
	CoolingCause string
	// CoolingTargets are the provider's targets that sit out rounds on
	// their own while the provider serves its other models (each
	// OpenRouter ":free" model once the account's free-model limit is
	// spent, cooled until its reset), in config order: without them an operator saw a healthy
	// provider and every request of the model going to its next target.
	CoolingTargets []TargetCooling
	// Targets are the provider's targets in config order with the
	// latency the lowest-latency strategy orders them by: what an operator
	// reads to see why a model's traffic goes where it does.
	Targets []TargetLatency
}

// TargetLatency is one target's measured latency, as the router keeps it
// for the lowest-latency order: an average (α = 1/4) per request kind, the
// time to the first token of a stream and to the whole answer of a
// non-stream request, and when each was last measured (zero: never).
type TargetLatency struct {
	Model, Target     string
	Stream, Whole     time.Duration
	StreamAt, WholeAt time.Time
}

// TargetCooling is one target's cool-down: the public model it serves,
// its upstream model, until when and why.
type TargetCooling struct {
	Model  string
	Target string
	Until  time.Time
	// Cause is CauseRateLimited: only a limit on the target's model alone
	// (failure.targetLimit) cools a target.
	Cause string
}

// Status reports every provider in config order.
func (r *Router) Status() []ProviderStatus {
	now := r.opts.Now()
	out := make([]ProviderStatus, 0, len(r.providers))
	for _, p := range r.providers {
		st := ProviderStatus{Name: p.name, Breaker: p.breakerState().String()}
		if until, why, ok := p.cooling(now); ok {
			st.CoolingUntil, st.CoolingCause = until, why.cause
		}
		for _, m := range r.models {
			for _, t := range m.targets {
				if t.p != p {
					continue
				}
				if until, ok := t.cooling(now); ok {
					st.CoolingTargets = append(st.CoolingTargets, TargetCooling{Model: m.name, Target: t.model, Until: until, Cause: CauseRateLimited})
				}
				tl := TargetLatency{Model: m.name, Target: t.model}
				if age, ok := t.measured[kindStream].since(p.epoch, now); ok {
					tl.Stream, tl.StreamAt = t.latency[kindStream].Load(), now.Add(-age)
				}
				if age, ok := t.measured[kindWhole].since(p.epoch, now); ok {
					tl.Whole, tl.WholeAt = t.latency[kindWhole].Load(), now.Add(-age)
				}
				st.Targets = append(st.Targets, tl)
			}
		}
		out = append(out, st)
	}
	return out
}

// ResetProvider ends a provider's cool-down at once and closes its breaker:
// the operator fixed its key or its billing and wants traffic back before
// the cool-down (or the breaker's) ends. Its
// targets' last failures are forgotten by the lowest-latency order too.
func (r *Router) ResetProvider(name string) error {
	for _, p := range r.providers {
		if p.name == name {
			p.reset(r)
			for _, m := range r.models {
				for _, t := range m.targets {
					if t.p == p {
						t.coolUntil.clear() // a limit on one of its models too
						t.throttles.Store(0)
						// The failure the reset answers (a refused key, an
						// account out of quota) sorted the target behind
						// every other under lowest-latency for a minute
						// (latencyKey): its traffic came back a minute after
						// the failure, not at the reset.
						for k := range t.failed {
							t.failed[k].clear()
						}
					}
				}
			}
			r.log.Info("upstream provider reset", "provider", name)
			return nil
		}
	}
	return fmt.Errorf("failover: provider %q: %w", name, ErrUnknownProvider)
}
