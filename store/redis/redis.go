package redis

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/store"
)

// Defaults for Options.
const (
	DefaultWaitTimeout    = time.Second
	DefaultRepairInterval = time.Minute
	DefaultRepairGrace    = 30 * time.Second
	DefaultEpochInterval  = time.Second
	// DefaultReadTimeout and DefaultWriteTimeout bound one socket read (a
	// reply) or write when the caller's context has no earlier deadline.
	// Every reply paygate waits for is one script, a short pipeline or a
	// batch of at most 500 entries: milliseconds on a healthy Redis, so
	// these are far above a fork or an fsync stall, and they are what holds
	// a call on a Redis that accepts connections but does not answer (a
	// paused process, a stalled host, a path that drops packets) when its
	// context has no deadline or is only cancelled: go-redis puts a
	// context's deadline on the socket (ContextTimeoutEnabled, set by Open)
	// but not its cancellation. go-redis sends a command whose read timed
	// out once more on a fresh connection (MaxRetries), so a call without a
	// deadline waits about twice this; every script here is written to run
	// twice, as a re-send after a lost reply would (its token tells the
	// second run it applied), and a twice-enqueued event is delivered at
	// least once with one id, as the outbox promises anyway.
	DefaultReadTimeout  = 3 * time.Second
	DefaultWriteTimeout = 3 * time.Second
	// expiryGrace is added to every physical PEXPIRE so a record is never
	// deleted before its logical expiry, whatever the clock skew.
	expiryGrace = time.Minute
)

// Options configures the driver; cmd/ maps store.redis config onto it.
type Options struct {
	// Addrs are host:port seeds. One address: a single server (or, with
	// Cluster, a cluster seed); several: a cluster; with MasterName: sentinels.
	Addrs      []string
	Username   string
	Password   string
	DB         int    // single server and sentinel only
	MasterName string // sentinel: the monitored master's name
	// Cluster forces cluster mode with a single seed address.
	Cluster bool
	// TLS dials with TLS 1.2+. Each connection verifies the certificate
	// against TLSServerName when set, else against the host it dials: a
	// sentinel's master, a cluster's nodes and every seed after the first
	// are servers of their own, with certificates for their own names, or
	// (a managed Redis's) for the name they are listed by, which is taken
	// too (tlsDialer).
	TLS           bool
	TLSServerName string
	// rootCAs, in tests, verifies the servers' certificates instead of the
	// system's roots.
	rootCAs *x509.CertPool
	// KeyPrefix is put before every key (e.g. "paygate:"), so several
	// deployments can share one Redis. It must not contain '{' or '}'.
	KeyPrefix string
	// Owner names the deployment whose keys these are (cmd/: the payments
	// backend and merchant id); "" (a tool) checks nothing. The first
	// Store to reach Redis under KeyPrefix records its owner there; a
	// Store of another owner is refused (store.ErrOtherDeployment): Open
	// fails when it reaches Redis, and otherwise every command is refused
	// from when it first does. Deployments of one Redis under one prefix
	// swept, expired and prepaid each other's orders at their own
	// merchants.
	Owner string
	// WaitReplicas > 0 makes every money write (orders, claims, refund
	// consumption, notifications, announcement claims, audit) wait, with
	// WAIT, until that many replicas have it, for at most WaitTimeout
	// (default DefaultWaitTimeout).
	// A write that is not replicated in time is applied on the primary but
	// reported as store.ErrUnavailable, so the caller fails closed.
	WaitReplicas int
	WaitTimeout  time.Duration
	// Timeouts, retries and pool size. A zero ReadTimeout or WriteTimeout
	// is DefaultReadTimeout or DefaultWriteTimeout (with WaitReplicas, the
	// read timeout also covers WaitTimeout: WAIT answers only after it);
	// the other zeros are go-redis defaults (dial 5s, 3 retries, a pool
	// wait of the read timeout and a second). A context's deadline, when
	// earlier, cuts a dial, a pool wait, a write or a read all the same.
	// MaxRetries -1 disables retries, so a down Redis fails a turn's state
	// load fast.
	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	MaxRetries   int
	PoolSize     int
	// RepairInterval is how often write intents left by a crash are replayed
	// (default DefaultRepairInterval; negative disables the background loop,
	// Repair can still be called). RepairGrace is how old an intent must be
	// before it is considered abandoned (default DefaultRepairGrace).
	RepairInterval time.Duration
	RepairGrace    time.Duration
	// EpochInterval is how often the epoch marker and the generation
	// counters are checked in the background (default DefaultEpochInterval;
	// negative disables; Ping checks them too). Once the marker is gone or a
	// counter went back, this Store refuses every command: see checkEpoch.
	EpochInterval time.Duration
	// Now is the clock expiry is judged against; default time.Now. The
	// times a Store writes for other replicas to compare, and compares
	// against, are carried onto the Redis server's clock (serverClock).
	Now func() time.Time
	// realClock is whether Now was left unset (withDefaults): then the
	// server's clock is read again at every epoch check.
	realClock bool
	// Logger receives repair and index-sync warnings, and go-redis's own
	// lines (clientlog.go); default discards.
	Logger *slog.Logger
	// ReadOnly opens the store for reading alone (`paygate audit verify`
	// and `export`): nothing is written to Redis, at Open or after. The
	// epoch marker and the owner record are read, not set (a prefix no
	// paygate reached stays empty; a marker set later is adopted, not
	// taken for a loss); no repair runs; Ping makes no write probe; a Redis
	// found to have gone back is refused here without changing the marker
	// for the other replicas. Every command that is not a read, and every
	// script that writes, is refused before it is sent with ErrReadOnly
	// (readOnlyRefusal), so a write method fails, saying so, rather than
	// writing.
	ReadOnly bool
	// NoWait makes Open return at once, without waiting for Redis: its
	// first check (the owner, the epoch marker, the start-up warnings),
	// the scripts' load and the clock's read run in the background within
	// the same bound as Open's, and Started tells when they ended and
	// whether Redis refused this Store there (another deployment's
	// prefix). A command sent meanwhile waits for them, within its own
	// context's deadline, and is refused as unavailable when that passes
	// first: `paygate serve` answers at once on a Redis that does not,
	// and a turn goes on without payment state after its own deadline,
	// as it does when Redis stops answering later.
	NoWait bool
}

// Store is the Redis driver. It implements store.Store.
type Store struct {
	c        goredis.UniversalClient
	k        keys
	sc       *scripts
	now      func() time.Time
	clock    serverClock
	realTime bool
	log      *slog.Logger
	owner    string
	waitN    int
	waitT    time.Duration
	grace    time.Duration
	stop     context.CancelFunc
	wg       sync.WaitGroup
	once     sync.Once
	statuses []store.OrderStatus

	// epoch is the marker this Store found or set when it first reached
	// Redis; nil until then (set under epochMu, read anywhere). lost is set
	// for good once the marker is gone or changed, or a generation counter
	// went back (cause says which). See checkEpoch.
	epochMu    sync.Mutex
	epoch      atomic.Pointer[string]
	epochAlert sync.Once
	lost       atomic.Bool
	lostMu     sync.Mutex // serialises markLost
	cause      atomic.Pointer[error]

	// textsRead is the retention (ms) plus one of the last time this Store
	// read every kept text to apply a shortened retention
	// (RetainAuditTexts), 0 before: later calls under no shorter one read
	// only the texts of records appended since.
	textsRead atomic.Int64

	// genSeen is the highest value of each generation counter this Store
	// has seen (generation.go).
	genMu   sync.Mutex
	genSeen map[string]int64

	// secrets are the secrets this Store handed out (GetOrCreateSecret),
	// by key: checkEpoch reads them back, and one gone or replaced is
	// data Redis lost (errSecretLost).
	secretMu sync.Mutex
	secrets  map[string]string

	// probe is Ping's last write probe (probeWrite); probeMu is held by
	// the Ping that makes one.
	probe   atomic.Pointer[probeOutcome]
	probeMu sync.Mutex

	// readOnly is Options.ReadOnly; readShas are the SHA1s of the scripts
	// a read-only Store runs (readScripts).
	readOnly bool
	readShas map[string]bool

	// started is closed once Open's start (the first check of Redis, the
	// scripts' load, the clock's read) has ended; startErr is then set
	// when Redis refused this Store there (Started).
	started  chan struct{}
	startErr error
}

var _ store.Store = (*Store)(nil)

var _ store.Replicated = (*Store)(nil)

// Open builds the client and starts the background repair. It does not fail
// when Redis is down (chat keeps working without payment state); Ping tells.
func Open(opts Options) (*Store, error) {
	if len(opts.Addrs) == 0 {
		return nil, errors.New("redis: no addresses")
	}
	if strings.ContainsAny(opts.KeyPrefix, "{}") {
		return nil, fmt.Errorf("redis: key prefix %q must not contain braces (they are hash tags)", opts.KeyPrefix)
	}
	opts = withDefaults(opts)
	uo := &goredis.UniversalOptions{
		Addrs:         opts.Addrs,
		Username:      opts.Username,
		Password:      opts.Password,
		DB:            opts.DB,
		MasterName:    opts.MasterName,
		IsClusterMode: opts.Cluster,
		DialTimeout:   opts.DialTimeout,
		ReadTimeout:   opts.ReadTimeout,
		WriteTimeout:  opts.WriteTimeout,
		MaxRetries:    opts.MaxRetries,
		PoolSize:      opts.PoolSize,
		// Without it go-redis gives the socket its own read and write
		// timeouts only, whatever the caller's deadline: /readyz's 2s
		// ping, a turn's state load and the workers' passes would each
		// wait out the read timeout on a Redis that does not answer.
		ContextTimeoutEnabled: true,
	}
	if opts.TLS {
		listed := make([]string, 0, len(opts.Addrs))
		for _, a := range opts.Addrs {
			host, _, err := net.SplitHostPort(a)
			if err != nil {
				return nil, fmt.Errorf("redis: address %q: %w", a, err)
			}
			listed = append(listed, host)
		}
		uo.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: opts.TLSServerName, RootCAs: opts.rootCAs}
		if opts.TLSServerName == "" {
			// One name for all, the first address's, refused every master,
			// node or seed whose certificate names only itself; the
			// dialled host alone refused the servers a managed Redis
			// announces at IP addresses, which share the certificate of
			// the name they are listed by.
			uo.Dialer = tlsDialer(uo.TLSConfig, opts.DialTimeout, listed)
		}
	}
	s := newStore(goredis.NewUniversalClient(uo), opts)
	if opts.NoWait {
		return s, nil
	}
	if err := s.StartErr(); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// Started is closed once Open's start has ended: the first check of Redis,
// the scripts' load and the clock's read, each within Open's bound. Open
// waits for it unless Options.NoWait.
func (s *Store) Started() <-chan struct{} { return s.started }

// StartErr is, once Started is closed, why Redis refused this Store at
// start (store.ErrOtherDeployment: another deployment owns the prefix);
// nil when Redis took it, or did not answer within Open's bound (its
// first check is made again when a command first reaches it). Open
// returns it as its error unless Options.NoWait.
func (s *Store) StartErr() error {
	<-s.started
	return s.startErr
}

// tlsDialer dials each connection with TLS, verifying the server's
// certificate against the host dialled or, failing that, against the host
// of one of the listed addresses. A sentinel's master and a cluster's nodes
// are reached at the addresses the servers give: some hold certificates for
// their own names (verified by the host dialled), while a managed Redis's
// (Azure's, ElastiCache's) are announced at IP addresses and all hold the
// certificate of the endpoint they are listed by, which verification
// against the first address's host took, and the dialled host alone
// refused. A certificate for a listed name is trusted as the operator's
// servers', wherever they point paygate.
func tlsDialer(base *tls.Config, timeout time.Duration, listed []string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if timeout <= 0 {
		timeout = 5 * time.Second // go-redis's default dial timeout
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("redis: address %q: %w", addr, err)
		}
		cfg := base.Clone()
		cfg.ServerName = host // sent as SNI
		if net.ParseIP(host) != nil {
			// Go sends no SNI to an IP address; a node announced by
			// address gets the first listed name, as every node did when
			// all were verified against it, for a server that picks its
			// certificate by SNI.
			for _, name := range listed {
				if net.ParseIP(name) == nil {
					cfg.ServerName = name
					break
				}
			}
		}
		// Verified in VerifyConnection instead, against more than one name:
		// the chain as the default does, then the names.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			return verifyServer(cs, base.RootCAs, host, listed)
		}
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout, KeepAliveConfig: net.KeepAliveConfig{
			Enable: true, Idle: 30 * time.Second, Interval: 5 * time.Second, Count: 3, // go-redis's own dialer's
		}}, Config: cfg}
		return d.DialContext(ctx, network, addr)
	}
}

// verifyServer verifies a server's certificate chain against roots (nil:
// the system's) for server authentication, and its leaf against host or,
// failing that, one of listed; the error is the chain's, or host's.
func verifyServer(cs tls.ConnectionState, roots *x509.CertPool, host string, listed []string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: the server sent no certificate")
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	leaf := cs.PeerCertificates[0]
	if _, err := leaf.Verify(opts); err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
	}
	err := leaf.VerifyHostname(host)
	if err == nil {
		return nil
	}
	for _, name := range listed {
		if leaf.VerifyHostname(name) == nil {
			return nil
		}
	}
	return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
}

// withDefaults fills the options left unset (the logger is newStore's: a
// caller's own also takes go-redis's lines). It is idempotent: Open fills
// them for the client, newStore (also called by tests) for the Store.
func withDefaults(opts Options) Options {
	if opts.Now == nil {
		opts.Now = time.Now
		opts.realClock = true
	}
	if opts.WaitTimeout <= 0 {
		opts.WaitTimeout = DefaultWaitTimeout
	}
	if opts.ReadTimeout == 0 {
		opts.ReadTimeout = DefaultReadTimeout
		if opts.WaitReplicas > 0 {
			// What a money write's WAIT may spend on the server before
			// its reply comes.
			opts.ReadTimeout += opts.WaitTimeout
		}
	}
	opts.WriteTimeout = cmp.Or(opts.WriteTimeout, DefaultWriteTimeout)
	if opts.RepairInterval == 0 {
		opts.RepairInterval = DefaultRepairInterval
	}
	if opts.RepairGrace <= 0 {
		opts.RepairGrace = DefaultRepairGrace
	}
	if opts.EpochInterval == 0 {
		opts.EpochInterval = DefaultEpochInterval
	}
	return opts
}

// readTimeout is the client's read timeout for opts: opts.ReadTimeout, or
// DefaultReadTimeout; with WaitReplicas, plus WaitTimeout (or its default).
func readTimeout(opts Options) time.Duration { return withDefaults(opts).ReadTimeout }

func newStore(c goredis.UniversalClient, opts Options) *Store {
	opts = withDefaults(opts)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	} else {
		clientLog.Store(opts.Logger) // go-redis's own lines (clientlog.go)
	}
	s := &Store{
		c: c, k: keys{p: opts.KeyPrefix}, sc: newScripts(), now: opts.Now, realTime: opts.realClock, log: opts.Logger, owner: opts.Owner,
		waitN: opts.WaitReplicas, waitT: opts.WaitTimeout, grace: opts.RepairGrace,
		statuses: store.Statuses(), genSeen: map[string]int64{}, readOnly: opts.ReadOnly,
	}
	if s.readOnly {
		s.readShas = map[string]bool{}
		for _, src := range readScripts {
			s.readShas[goredis.NewScript(src).Hash()] = true
		}
	}
	c.AddHook(lostGuard{s: s, first: true})
	if cc, ok := c.(*goredis.ClusterClient); ok {
		// A cluster's node clients do not inherit its hooks, and runMoney
		// writes through the key's primary's own client (for WAIT). Nodes are
		// created on first use, so registering here, before the first
		// command, guards every one of them.
		cc.OnNewNode(func(n *goredis.Client) { n.AddHook(lostGuard{s: s}) })
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.started = make(chan struct{})
	if !opts.NoWait {
		s.start(ctx, opts)
		return s
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.start(ctx, opts)
	}()
	return s
}

// start makes the first check of Redis, loads the scripts and reads the
// server's clock, bounded (Redis may be down at start), then closes
// started and starts the background loops. A Redis the first check did not
// reach is not asked the rest: each would wait for it again (a refused
// dial is retried for about half a second, a hung Redis holds it to the
// bound), and the first command to reach it later makes the check.
func (s *Store) start(ctx context.Context, opts Options) {
	lctx, lcancel := context.WithTimeout(context.WithValue(ctx, starting{}, true), 2*time.Second)
	err := s.checkEpoch(lctx) // Ping retries while Redis is down; the first to reach it warns (firstReached)
	if s.epoch.Load() == nil && !s.lost.Load() && ctx.Err() == nil {
		var reply goredis.Error
		answered := errors.As(err, &reply) && !errors.Is(err, goredis.ErrClosed)
		switch {
		case err != nil && errors.Is(err, store.ErrUnavailable) && answered:
			// It answered, refusing for now: READONLY (addrs naming a
			// replica), OOM, MISCONF, LOADING, CLUSTERDOWN.
			s.log.Warn("Redis refused paygate's first write at start: every store call fails as unavailable until it takes "+
				"paygate's writes (READONLY: store.redis.addrs names a replica, not the primary; OOM, MISCONF: its memory "+
				"or disk; paygate serve: payment tools fail closed, chat goes on without payment state)", "err", err)
		case err != nil && !errors.Is(err, store.ErrUnavailable):
			// It answered, refusing: WRONGPASS or NOAUTH (credentials),
			// NOPERM (an ACL), a syntax error (a Redis older than
			// paygate's commands). "Did not answer" sent the operator of
			// a mistyped password to the network.
			s.log.Warn("Redis refused paygate at start: every store call fails until it takes paygate's commands "+
				"(check store.redis.username and password, the user's ACL, the Redis version; "+
				"paygate serve: payment tools fail closed, chat goes on without payment state)", "err", err)
		default:
			s.log.Warn("Redis did not answer at start: every store call fails as unavailable until it does "+
				"(paygate serve: payment tools fail closed, chat goes on without payment state)", "err", err)
		}
	}
	if s.epoch.Load() != nil && !s.lost.Load() {
		// Load the scripts before the first request so a turn's
		// LoadUserState is one EVALSHA, not EVALSHA + EVAL.
		s.loadScripts(lctx)
		_ = s.syncClock(lctx) // else the first time compared reads it (serverMs)
	}
	lcancel()
	if err := s.lostCause(); s.lost.Load() && errors.Is(err, store.ErrOtherDeployment) {
		s.startErr = fmt.Errorf("redis: %w", err)
	}
	close(s.started)
	if opts.RepairInterval > 0 && !s.readOnly {
		s.wg.Add(1)
		go s.background(ctx, opts.RepairInterval)
	}
	if opts.EpochInterval > 0 {
		s.wg.Add(1)
		go s.watchEpoch(ctx, opts.EpochInterval)
	}
}

// starting marks the context of start's own commands, which the guard
// does not hold for start to end.
type starting struct{}

// watchEpoch checks the epoch marker and the generation counters every
// interval, so a Redis that lost its data or went back to an earlier state is
// refused within about that long even when nothing calls Ping. One round trip
// per interval (two on a cluster: see checkEpoch), and with the real clock
// one more, the server clock's read (syncClock).
func (s *Store) watchEpoch(ctx context.Context, every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.lost.Load() {
			return
		}
		cctx, cancel := context.WithTimeout(ctx, every)
		_ = s.checkEpoch(cctx)
		if s.realTime {
			_ = s.syncClock(cctx)
		}
		cancel()
	}
}

// lostGuard refuses every command once the Store knows Redis lost its data.
// A write into the new, empty Redis would be made against state that no
// longer exists: a second claim, and so a second payable order, for a
// purchase already claimed; an audit chain restarted at 0; a notification
// mark gone, so a payment applied twice. Failing with store.ErrUnavailable
// makes every caller fail closed (payment tools answer "unavailable", chat
// goes on) until the replica is restarted and adopts the new store.
// It is on the Store's client and, in a cluster, on every node client (see
// newStore); run, runMoney and evalEach also check s.lost themselves, so a
// path that reaches Redis some other way is refused all the same.
//
// With an Owner, it also runs the first check (checkEpoch, and so
// checkOwner) before the first command that reaches Redis: a Store started
// while Redis was away checked the owner only at its first Ping or epoch
// check, and until then another deployment's sweep read the owner's orders
// to settle them at its own merchant, and its bots' orders landed among the
// owner's. Past that check it costs one atomic load a command. Only the
// Store's own client (first) makes that check: a cluster client asks its
// nodes questions of its own (COMMAND, CLUSTER SLOTS, a new connection's
// HELLO) with contexts of their own while the check's write is under way,
// and a node's guard that started the check again waited for the lock the
// first one held (Open hung). What paygate sends a node itself goes
// through primaryFor, which makes the check first.
type lostGuard struct {
	s     *Store
	first bool
}

// firstCheck marks the context of the first check's own commands
// (checkEpoch), which the guard lets through to make it.
type firstCheck struct{}

// refuse is the error a command gets before it is sent: the lost cause, or
// the first check's failure (Redis away, or another deployment's prefix).
func (g lostGuard) refuse(ctx context.Context) error {
	s := g.s
	if g.first && ctx.Value(starting{}) == nil {
		// A command sent while Open's start runs in the background
		// (Options.NoWait) waits for it, as it would have for Open,
		// within its own deadline: one on a healthy Redis goes on once
		// the first check has been made (milliseconds), one on a Redis
		// that does not answer is refused, unavailable, at its deadline
		// (a turn's state load at its 1 s) or the start's bound.
		select {
		case <-s.started:
		default:
			select {
			case <-s.started:
			case <-ctx.Done():
				return fmt.Errorf("redis: %w: the store's first check is under way: %w", store.ErrUnavailable, context.Cause(ctx))
			}
		}
	}
	if g.first && !s.lost.Load() && s.owner != "" && s.epoch.Load() == nil && ctx.Value(firstCheck{}) == nil {
		// One check at a time, and a command does not queue behind
		// another's: with Redis hung each waited for every check before
		// it (/readyz 15 s, a plain turn 6 s, against their 2 s and 1 s
		// deadlines). It fails closed, unavailable, as it would have.
		if !s.epochMu.TryLock() {
			return fmt.Errorf("redis: %w: the store's first check is under way", store.ErrUnavailable)
		}
		err := s.checkEpochLocked(ctx)
		s.epochMu.Unlock()
		if err != nil {
			return err
		}
	}
	if s.lost.Load() {
		return s.lostCause()
	}
	return nil
}

func (g lostGuard) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (g lostGuard) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := g.refuse(ctx)
		if err == nil && g.s.readOnly {
			err = g.s.readOnlyRefusal(cmd)
		}
		if err != nil {
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

func (g lostGuard) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		err := g.refuse(ctx)
		for i := 0; err == nil && g.s.readOnly && i < len(cmds); i++ {
			err = g.s.readOnlyRefusal(cmds[i]) // one write refuses the whole pipeline
		}
		if err != nil {
			for _, cmd := range cmds {
				cmd.SetErr(err)
			}
			return err
		}
		return next(ctx, cmds)
	}
}

// Client is the underlying go-redis client, for hooks (metrics, tests) and
// diagnostics. Do not write paygate keys through it.
func (s *Store) Client() goredis.UniversalClient { return s.c }

// background replays abandoned write intents at start-up and every interval.
func (s *Store) background(ctx context.Context, every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if s.lost.Load() {
			return // every command is refused; nothing left to repair
		}
		rctx, cancel := context.WithTimeout(ctx, every)
		if _, err := s.Repair(rctx); err != nil && ctx.Err() == nil {
			s.log.Warn("store repair failed", "err", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// loadScripts puts every script into the server's cache (on every cluster
// shard). Failure is not fatal: EVALSHA falls back to EVAL.
func (s *Store) loadScripts(ctx context.Context) {
	for _, sc := range s.sc.all() {
		if err := sc.Load(ctx, s.c).Err(); err != nil {
			s.log.Warn("store script load failed", "err", err)
			return
		}
	}
}

// firstReached logs the start-up warnings (warnIfEvicting,
// warnIfFewReplicas, warnIfNotDurable) once, when this Store first reaches
// Redis: at Open, or at the first Ping after it when Redis was not there
// yet (a paygate started before its Redis), whose warnings would otherwise
// never be logged.
func (s *Store) firstReached(ctx context.Context) {
	s.warnIfEvicting(ctx)
	s.warnIfFewReplicas(ctx)
	s.warnIfNotDurable(ctx)
}

// warnIfNotDurable logs a warning for each server (each primary of a
// cluster) that can lose writes it acknowledged. When no replica is waited
// for (WaitReplicas 0): without an append-only file (appendonly no, Redis's
// default) a restart loses every write since the last snapshot, and with
// appendfsync other than always a crash loses the last writes. When one is
// (WaitReplicas above 0), a write counts only once a replica has it, but a
// primary without an append-only file that restarts on its own (a
// container's restart policy, before Sentinel or the operator fails over)
// comes back empty, and its replicas copy that empty data set, so every
// acknowledged write goes all the same (Redis's replication docs: "Safety
// of replication when master has persistence turned off"); it must keep an
// append-only file or never restart automatically. appendfsync everysec is
// not warned of then: such a restart loses at most about the last second.
// A lost purchase claim gives the same purchase a second payable order;
// paygate finds the loss only afterwards (checkEpoch), when every replica
// then refuses the store until restarted. It only warns: the Redis is the
// operator's. aof_enabled is read from INFO persistence, and appendfsync
// with CONFIG GET, which INFO does not carry: where CONFIG is refused (a
// managed Redis, a user's ACL) an append-only file is taken as it is; a
// server that answers neither says nothing.
func (s *Store) warnIfNotDurable(ctx context.Context) {
	s.eachServer(ctx, func(ctx context.Context, c goredis.Cmdable, addr string) error {
		info, err := c.Info(ctx, "persistence").Result()
		if err != nil {
			return nil
		}
		aof := ""
		for line := range strings.SplitSeq(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "aof_enabled:"); ok {
				aof = v
			}
		}
		switch {
		case aof == "0" && s.waitN > 0:
			s.log.Warn("Redis keeps no append-only file (appendonly no), so waiting for replicas does not keep its writes: "+
				"if it restarts on its own (a container's restart policy, before any failover) it comes back empty and its "+
				"replicas copy the empty data set, losing every acknowledged write, orders and purchase claims with them, so "+
				"a purchase can get a second payable order; run it with appendonly yes (appendfsync everysec is enough with "+
				"store.redis.wait_replicas), or never restart it automatically", "addr", addr, "appendonly", "no")
		case aof == "0":
			s.log.Warn("Redis keeps no append-only file (appendonly no): a restart loses every write since its last "+
				"snapshot, orders and purchase claims with them, so a purchase can get a second payable order; run it "+
				"with appendonly yes and appendfsync always, or with appendonly yes and store.redis.wait_replicas (waiting "+
				"for replicas keeps no write when a primary without one restarts: its replicas copy it empty)", "addr", addr, "appendonly", "no")
		case aof == "1" && s.waitN > 0:
			// everysec loses at most about a second to a restart before
			// failover; no leaves the flush to the kernel, tens of
			// seconds, which the replicas then copy.
			m, err := c.ConfigGet(ctx, "appendfsync").Result()
			if v := m["appendfsync"]; err == nil && v == "no" {
				s.log.Warn("Redis leaves its append-only file's flush to the kernel (appendfsync no), so waiting for replicas "+
					"does not keep its writes: if it crashes and restarts on its own before any failover it comes back without "+
					"up to about 30 s of acknowledged writes and its replicas copy that loss, a purchase's claim among them, so a "+
					"purchase can get a second payable order; set appendfsync everysec (enough with store.redis.wait_replicas) "+
					"or always", "addr", addr, "appendfsync", v)
			}
		case aof == "1":
			m, err := c.ConfigGet(ctx, "appendfsync").Result()
			if v := m["appendfsync"]; err == nil && v != "" && v != "always" {
				s.log.Warn("Redis acknowledges writes before its append-only file has them on disk (appendfsync "+v+"): "+
					"a crash loses the last ones, a purchase's claim among them, so a purchase can get a second payable "+
					"order; set appendfsync always, or store.redis.wait_replicas", "addr", addr, "appendfsync", v)
			}
		}
		return nil
	})
}

// warnIfEvicting logs a warning for each server (each primary of a
// cluster) whose maxmemory-policy evicts keys: under memory pressure it
// drops keys without telling anyone, and the store's keys are not a cache.
// A volatile-* policy drops the keys with an expiry: purchase claims,
// refund proposals and their tombstones, refund proposal queues, seen
// notifications, announcement marks; an allkeys-* one any key, orders
// and order outboxes too. A dropped claim starts a second order for one
// purchase, a dropped tombstone or mark lets a refund or an announcement
// happen twice, a dropped queue loses its audit records. It only warns: the
// policy is the operator's (a Redis shared with a cache may need it). The
// policy is read with CONFIG GET or, where CONFIG is refused (a managed
// Redis, ElastiCache's or Azure's, whose default is volatile-lru; a
// rename-command; a user whose ACL denies it), from INFO memory; a server
// that answers neither says nothing.
func (s *Store) warnIfEvicting(ctx context.Context) {
	check := func(ctx context.Context, c goredis.Cmdable, addr string) error {
		if p := maxmemoryPolicy(ctx, c); p != "" && p != "noeviction" {
			s.log.Warn("Redis evicts keys under memory pressure (maxmemory-policy "+p+"): claims, refund tombstones, "+
				"announcement marks and outbox queues can vanish silently, letting an order, a refund or an announcement "+
				"happen twice; set maxmemory-policy noeviction", "addr", addr, "maxmemory_policy", p)
		}
		return nil
	}
	s.eachServer(ctx, check)
}

// maxmemoryPolicy is c's maxmemory-policy, by CONFIG GET or, when CONFIG is
// refused, by INFO memory; "" when neither tells.
func maxmemoryPolicy(ctx context.Context, c goredis.Cmdable) string {
	if m, err := c.ConfigGet(ctx, "maxmemory-policy").Result(); err == nil {
		return m["maxmemory-policy"]
	}
	info, err := c.Info(ctx, "memory").Result()
	if err != nil {
		return ""
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "maxmemory_policy:"); ok {
			return v
		}
	}
	return ""
}

// eachServer runs check on the server paygate writes to, or on each primary
// of a cluster, with its address for the log; the start-up warnings read
// each server's own settings.
func (s *Store) eachServer(ctx context.Context, check func(ctx context.Context, c goredis.Cmdable, addr string) error) {
	if cc, ok := s.c.(*goredis.ClusterClient); ok {
		_ = cc.ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error {
			return check(ctx, n, n.Options().Addr)
		})
		return
	}
	addr := ""
	if c, ok := s.c.(*goredis.Client); ok {
		addr = c.Options().Addr
	}
	_ = check(ctx, s.c, addr)
}

// warnIfFewReplicas logs a warning for each server (each primary of a
// cluster) that has fewer replicas connected than WaitReplicas asks for:
// every money write there waits WaitTimeout and is then refused (fail
// closed), while chat goes on, so without it an operator learnt only from
// a log line per refused payment (Ping's probe reports it too). It only
// warns: replicas starting beside paygate may connect a moment later. A
// server that refuses INFO says nothing.
func (s *Store) warnIfFewReplicas(ctx context.Context) {
	for _, sh := range s.fewReplicas(ctx) {
		s.log.Warn("Redis has fewer replicas connected than store.redis.wait_replicas asks for: every money write "+
			"(orders, claims, refunds) there is refused after waiting for them, so payments fail while chat goes on; "+
			"add replicas or lower wait_replicas", "addr", sh.addr, "connected_replicas", sh.n, "wait_replicas", s.waitN)
	}
}

// shortServer is a server with fewer replicas connected (n) than
// WaitReplicas.
type shortServer struct {
	addr string
	n    int
}

// fewReplicas lists the servers (each primary of a cluster) with fewer
// replicas connected than WaitReplicas, by INFO replication; none without
// WaitReplicas. A server that refuses INFO, or does not answer it, is not
// listed.
func (s *Store) fewReplicas(ctx context.Context) []shortServer {
	if s.waitN <= 0 {
		return nil
	}
	var mu sync.Mutex // a cluster's primaries are asked at once
	var short []shortServer
	s.eachServer(ctx, func(ctx context.Context, c goredis.Cmdable, addr string) error {
		info, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return nil
		}
		n := -1
		for line := range strings.SplitSeq(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_slaves:"); ok {
				if n, err = strconv.Atoi(v); err != nil {
					return nil
				}
			}
		}
		if n >= 0 && n < s.waitN {
			mu.Lock()
			short = append(short, shortServer{addr: addr, n: n})
			mu.Unlock()
		}
		return nil
	})
	return short
}

// writeProbeEvery is how long Ping trusts its last write probe: a bound on
// the probes (with appendfsync always each is a fsync on Redis, and every
// replica's readiness is checked every few seconds), and on how long a
// Redis that stopped taking writes, or took them again, goes unnoticed.
const writeProbeEvery = 10 * time.Second

// Ping reports whether Redis answers, still holds the data this Store has
// seen (checkEpoch) and takes writes. PING and the marker's read are
// answered by a Redis that refuses every write (OOM: at its maxmemory
// under noeviction; MISCONF: its RDB snapshot failed on a full disk;
// NOREPLICAS: short of min-replicas-to-write; READONLY: a replica), or
// whose writes this store refuses (short of WaitReplicas: fewReplicas),
// and every replica read ready while it could record no order. So Ping also
// sets a probe key, at most once per writeProbeEvery while Redis takes
// it (at each Ping while it refuses it), and reports a refused probe as
// store.ErrWritesFail until a later one succeeds. On a
// cluster the probe reaches the primary of its own slot only.
func (s *Store) Ping(ctx context.Context) error {
	select {
	case <-s.started:
	default:
		// Open's start runs in the background (Options.NoWait), and
		// Redis has not answered it yet: not ready, said at once, for
		// /readyz answers a probe within its timeout (a second) while
		// a Redis that does not answer holds the start up to its bound.
		return fmt.Errorf("redis: %w: the store's first check is under way", store.ErrUnavailable)
	}
	if err := s.c.Ping(ctx).Err(); err != nil {
		return mapErr("ping", err)
	}
	if err := s.checkEpoch(ctx); err != nil {
		return err
	}
	if s.readOnly {
		return nil // it writes nothing, and would learn nothing by a probe
	}
	return s.probeWrite(ctx)
}

// probeWrite sets the probe key when the last probe is writeProbeEvery old,
// was refused, or there is none, and reports the last probe's refusal.
// Concurrent Pings make one probe; the others report the outcome before
// it. A refused probe is made again at the next Ping: Redis refuses it
// before any write (no fsync to bound; short of WaitReplicas, no probe is
// set, an INFO per primary), and waiting writeProbeEvery kept
// every replica not ready that long after a refusal of a moment (one OOM
// at a peak), though Redis took writes again.
func (s *Store) probeWrite(ctx context.Context) error {
	last := s.probe.Load()
	if probeDue(last, s.now()) && s.probeMu.TryLock() {
		defer s.probeMu.Unlock()
		if last = s.probe.Load(); probeDue(last, s.now()) {
			var err error
			// Short of wait_replicas, the store refuses every money write
			// itself (after WAIT), though Redis would take the probe: a
			// refusal without setting it (no write per Ping meanwhile).
			if sh := s.fewReplicas(ctx); len(sh) > 0 {
				err = fmt.Errorf("%s has %d replicas connected, fewer than store.redis.wait_replicas %d: every money write is refused",
					sh[0].addr, sh[0].n, s.waitN)
			} else {
				// Written as money writes are (a script and, with
				// wait_replicas, WAIT, but no generation raise:
				// runWrite), so that what refuses them refuses the
				// probe: a user whose ACL lacks @scripting or WAIT
				// passed a plain SET.
				_, err = s.runWrite(ctx, "write probe", s.sc.probe, false, []string{s.k.one("meta", "write-probe")},
					time.Minute.Milliseconds())
				var rerr goredis.Error
				if err != nil && !errors.Is(err, errNotReplicated) && (!errors.As(err, &rerr) || errors.Is(err, goredis.ErrClosed)) {
					// Not a refusal: Redis did not answer (or the
					// caller left, or it lost its data); nothing
					// learnt of its writes.
					return err
				}
			}
			next := &probeOutcome{at: s.now(), err: err}
			s.probe.Store(next)
			switch {
			case err != nil && (last == nil || last.err == nil):
				s.log.Warn("Redis refuses writes: payments fail closed and /readyz answers not ready until it takes them again", "err", err)
			case err == nil && last != nil && last.err != nil:
				s.log.Warn("Redis takes writes again")
			}
			last = next
		}
	}
	if last != nil && last.err != nil {
		return fmt.Errorf("redis write probe: %w: %w", store.ErrWritesFail, last.err)
	}
	return nil
}

// probeDue reports whether Ping probes again after last, at now.
func probeDue(last *probeOutcome, now time.Time) bool {
	return last == nil || last.err != nil || now.Sub(last.at) >= writeProbeEvery
}

// probeOutcome is a write probe's: when (the Store's clock) and Redis's
// refusal, nil when it took the write.
type probeOutcome struct {
	at  time.Time
	err error
}

// errDataLost is the cause Ping reports once the epoch marker is gone or
// changed (errRolledBack, in generation.go, once a counter went back).
var errDataLost error = lostError("Redis lost its data since this replica first reached it (the epoch marker is gone or changed: a restart without persistence, a flush, a failover to an empty replica, or another replica found that Redis went back to an earlier state); orders, claims and the audit head it held are gone, and replicas started since hash users with a new key: restart every paygate replica, then reconcile payments against WeChat Pay")

// errSecretLost is the cause once a secret this Store handed out is gone
// from Redis or replaced (checkEpoch): the generated user hash key, which
// the replica keeps hashing with, while replicas started since load the
// other one.
var errSecretLost error = lostError("Redis lost its data: a secret this replica loaded from it is gone or replaced (the user hash key, privacy.hash_key generated once and kept in the store: a failover to a replica that never had it, and a paygate started since made another), so replicas hash one user two ways toward providers, and other writes of that time may be gone too: restart every paygate replica, so that all hash with the key Redis now holds, then reconcile payments against WeChat Pay")

// lostError is a cause for which every command is refused (errDataLost,
// errRolledBack): store.ErrDataLost to callers, in its own words.
type lostError string

func (e lostError) Error() string { return string(e) }

// Is makes a lost Redis store.ErrDataLost to errors.Is.
func (e lostError) Is(target error) bool { return target == store.ErrDataLost }

// lostCause is why every command is refused: errDataLost or errRolledBack.
func (s *Store) lostCause() error {
	if p := s.cause.Load(); p != nil {
		return *p
	}
	return errDataLost
}

// checkEpoch keeps a marker key without expiry. The first time a Store
// reaches Redis it adopts the marker (setting one if there is none); later,
// a missing or different marker means Redis lost everything this Store has
// seen. Nothing else would tell: scripts reload, reads find nothing, the
// audit head goes back to 0 and a new user-hash key is generated, so one
// user gets two hashes across replicas. It also reads each primary's
// generation counter: lower than this Store saw means Redis went back to an
// earlier state, which the marker, written long before, survives (see
// generation.go), and the secrets it handed out (GetOrCreateSecret): the
// generated user hash key, gone or replaced, means this replica hashes
// users apart from those started since. Ping then fails (/readyz answers 503), an ALERT is logged
// once, and from then on every command is refused (lostGuard) until the
// process is restarted. The marker and the counters are checked by Ping
// and every EpochInterval, and by every money write, in the write's own
// round trip (runWrite; on a cluster with WaitReplicas, the marker right
// after it): one that finds the loss has landed in the empty or
// rolled-back Redis all the same, and is reported failed. Other writes
// (counters, intents, the outbox's) made between the loss and its
// detection (at most about one interval) still land unnoticed: a check of
// its own would cost each of them a round trip, and a check inside the
// scripts cannot work on a cluster, where the marker lives on another
// slot.
//
// The marker and the counters are read in one pipeline: one round trip on a
// single server or sentinel, as the marker alone was; on a cluster, a
// CLUSTER SLOTS names the primaries, then the pipeline reaches them all at
// once.
func (s *Store) checkEpoch(ctx context.Context) error {
	if s.lost.Load() {
		return fmt.Errorf("redis: %w: %w", store.ErrUnavailable, s.lostCause())
	}
	s.epochMu.Lock()
	defer s.epochMu.Unlock()
	return s.checkEpochLocked(ctx)
}

// checkEpochLocked is checkEpoch with s.epochMu held.
func (s *Store) checkEpochLocked(ctx context.Context) error {
	key := s.k.one("meta", "epoch")
	epoch := s.epoch.Load()
	if epoch == nil {
		ctx = context.WithValue(ctx, firstCheck{}, true) // its commands pass lostGuard
		if err := s.checkOwner(ctx); err != nil {
			return err
		}
		if s.readOnly {
			// The marker as it is, "" for none: set here, a prefix that
			// a mistyped key_prefix named would hold it from then on.
			cur, err := s.c.Get(ctx, key).Result()
			if err != nil && !errors.Is(err, goredis.Nil) {
				return mapErr("epoch", err)
			}
			s.epoch.Store(&cur)
			s.firstReached(ctx)
			return nil
		}
		tok := rand.Text()
		prev, err := s.c.SetArgs(ctx, key, tok, goredis.SetArgs{Mode: "NX", Get: true}).Result()
		switch {
		case errors.Is(err, goredis.Nil):
			s.epoch.Store(&tok)
		case err != nil:
			return mapErr("epoch", err)
		default:
			s.epoch.Store(&prev)
		}
		s.firstReached(ctx)
		return nil
	}
	gks, err := s.genKeys(ctx)
	if err != nil {
		return mapErr("epoch", err)
	}
	before := s.gensSeen(gks)
	sks, svals := s.secretsSeen()
	var marker *goredis.StringCmd
	gens := make([]*goredis.StringCmd, len(gks))
	secs := make([]*goredis.StringCmd, len(sks))
	_, err = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		marker = p.Get(ctx, key)
		for i, gk := range gks {
			gens[i] = p.Get(ctx, gk)
		}
		for i, sk := range sks {
			secs[i] = p.Get(ctx, sk)
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return mapErr("epoch", err)
	}
	cur, err := marker.Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return mapErr("epoch", err)
	}
	if s.readOnly && *epoch == "" && cur != "" {
		// Set since by a paygate that reached Redis after this Store
		// found none: the state from which it reads on, no loss.
		s.epoch.Store(&cur)
		epoch = &cur
	}
	if cur != *epoch {
		s.markLost(ctx, errDataLost)
		return fmt.Errorf("redis: %w: %w", store.ErrUnavailable, s.lostCause())
	}
	for i, gk := range gks {
		cur, err := gens[i].Int64()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return mapErr("epoch", err)
		}
		if err := s.sawGen(ctx, gk, before[i], cur, false); err != nil {
			return err
		}
	}
	for i, sk := range sks {
		cur, err := secs[i].Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return mapErr("epoch", err)
		}
		if cur != svals[i] {
			s.markLost(ctx, errSecretLost, "redis_key", sk)
			return fmt.Errorf("redis: %w: %w", store.ErrUnavailable, s.lostCause())
		}
	}
	return nil
}

// checkOwner records this Store's owner under its prefix when none is
// there, and refuses the Store for good (markLost, errOtherDeployment)
// when another is: see Options.Owner. Run when the Store first reaches
// Redis, before it adopts the epoch marker.
func (s *Store) checkOwner(ctx context.Context) error {
	if s.owner == "" {
		return nil
	}
	var prev string
	var err error
	if s.readOnly {
		// Read, not recorded: a reader makes no prefix its owner's.
		prev, err = s.c.Get(ctx, s.k.one("meta", "owner")).Result()
	} else {
		prev, err = s.c.SetArgs(ctx, s.k.one("meta", "owner"), s.owner, goredis.SetArgs{Mode: "NX", Get: true}).Result()
	}
	if errors.Is(err, goredis.Nil) || err == nil && prev == s.owner {
		return nil
	}
	if err != nil {
		return mapErr("owner", err)
	}
	s.markLost(ctx, otherDeployment(fmt.Sprintf("Redis holds the keys of another paygate deployment under this one's key prefix %q "+
		"(theirs: %s; this one: %s): two deployments under one prefix sweep, expire and prepay each other's orders at their own merchants, "+
		"and deliver each other's webhooks: give this deployment a store.redis.key_prefix of its own (or, if the other is gone and its "+
		"orders are settled, delete the key %s)", s.k.p, prev, s.owner, s.k.one("meta", "owner"))))
	return fmt.Errorf("redis: %w: %w", store.ErrUnavailable, s.lostCause())
}

// otherDeployment is the cause for which every command is refused once the
// prefix is found to be another deployment's (checkOwner):
// store.ErrOtherDeployment to callers, in its own words.
type otherDeployment string

func (e otherDeployment) Error() string { return string(e) }

// Is makes it store.ErrOtherDeployment to errors.Is.
func (e otherDeployment) Is(target error) bool { return target == store.ErrOtherDeployment }

// secretsSeen lists the secrets this Store handed out: their keys and
// values, in one order.
func (s *Store) secretsSeen() (ks, vs []string) {
	s.secretMu.Lock()
	defer s.secretMu.Unlock()
	for k, v := range s.secrets {
		ks, vs = append(ks, k), append(vs, v)
	}
	return ks, vs
}

// markLost makes this Store refuse every command from now on, for cause,
// and logs the ALERT once. When a counter went back (errRolledBack), or a
// secret it handed out is gone or replaced (errSecretLost), it first
// changes the epoch marker, so that every other replica stops at its next
// check too: they may have seen none of the writes that were lost, and would
// otherwise take the same purchase's claim again. It does so only while the
// marker is still the one this Store adopted: a missing or different one
// means Redis lost all its data, which the others find by themselves, and a
// replica started since may have adopted the new state already.
func (s *Store) markLost(ctx context.Context, cause error, attrs ...any) {
	s.lostMu.Lock()
	defer s.lostMu.Unlock()
	if epoch := s.epoch.Load(); (errors.Is(cause, errRolledBack) || errors.Is(cause, errSecretLost)) && epoch != nil && !s.lost.Load() && !s.readOnly {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		n, err := s.c.Eval(pctx, luaReplaceMarker, []string{s.k.one("meta", "epoch")}, *epoch, "rolled-back:"+rand.Text()).Int()
		cancel()
		switch {
		case err != nil:
			s.log.Warn("store: could not change the epoch marker to stop the other replicas", "err", err)
		case n == 0:
			cause = errDataLost
		}
	}
	s.cause.CompareAndSwap(nil, &cause)
	s.lost.Store(true)
	s.epochAlert.Do(func() {
		s.log.Error("ALERT: "+s.lostCause().Error(), append([]any{"alert", true}, attrs...)...)
	})
}

// Close stops the background repair and closes the client. The client is
// closed before the background loops are waited for: closing it closes its
// connections, in use or not, so every call still waiting on a Redis that
// does not answer (the loops' own, a worker's, a request's) returns at once
// with an error instead of at its deadline, which a cancellation alone does
// not bring forward (DefaultReadTimeout).
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		s.stop()
		err = s.c.Close()
		s.wg.Wait()
	})
	return err
}

// errNotReplicated is the cause when WAIT saw fewer replicas than asked for.
var errNotReplicated = errors.New("write not acknowledged by enough replicas")

// unavailablePrefixes are server replies that mean "not now" rather than "bad
// request". OOM is a Redis at its maxmemory under noeviction, the policy
// paygate requires, and MISCONF one whose last RDB snapshot failed (a full
// or read-only disk) under stop-writes-on-bgsave-error, the default: each
// refuses every write, before the write applies, until an operator acts,
// as NOREPLICAS refuses one until a replica is back.
var unavailablePrefixes = []string{"LOADING", "CLUSTERDOWN", "MASTERDOWN", "READONLY", "TRYAGAIN", "MOVED", "ASK", "NOREPLICAS", "BUSY", "OOM", "MISCONF"}

// scriptRefusal finds the reply Redis up to 6.2 raised inside a script for
// a command it refused: "ERR Error running script (call to f_SHA):
// @user_script:N: @user_script: N: -READONLY You can't write against a
// read only replica." (6.0 writes "@user_script:N: " once). A refusal keeps
// its dash, a command's own error does not; either is read from its code
// on, as the command alone would be, so a refused write (READONLY after a
// failover, OOM, NOREPLICAS, MISCONF) is "not now" rather than the
// script's plain error, "not applied". Redis 7 puts the refusal first
// ("READONLY ... script: SHA, on @user_script:N."), and refuses EVALSHA
// itself with the bare reply (LOADING, MASTERDOWN) in every version.
var scriptRefusal = regexp.MustCompile(`^ERR Error running script \(call to f_[0-9a-f]+\): (?:@user_script: ?\d+: )+-?([A-Z]+ )`)

// mapErr classifies a go-redis error: nil and redis.Nil pass through, the
// caller's cancellation passes through, server "not now" replies and every
// transport failure (refused, reset, timeout, closed client) wrap
// store.ErrUnavailable, other server errors are returned with context.
func mapErr(op string, err error) error {
	if err == nil || errors.Is(err, goredis.Nil) || errors.Is(err, context.Canceled) {
		return err
	}
	if errors.Is(err, ErrReadOnly) {
		return fmt.Errorf("redis %s: %w", op, err) // not "unavailable": it never will be
	}
	var rerr goredis.Error
	if errors.As(err, &rerr) && !errors.Is(err, goredis.ErrClosed) {
		msg := rerr.Error()
		if m := scriptRefusal.FindStringSubmatchIndex(msg); m != nil {
			msg = msg[m[2]:] // Redis 6's wrapping of a refusal inside a script
		}
		for _, p := range unavailablePrefixes {
			if strings.HasPrefix(msg, p) {
				return fmt.Errorf("redis %s: %w: %w", op, store.ErrUnavailable, err)
			}
		}
		return fmt.Errorf("redis %s: %w", op, err)
	}
	return fmt.Errorf("redis %s: %w: %w", op, store.ErrUnavailable, err)
}

// run executes one script: one round trip (EVALSHA; EVAL after a script-cache
// flush). Its error is read as a money write's (writeErr): go-redis sends
// a script again after a lost reply, and a refusal of the re-send (or of
// the connection, at its handshake) may follow a try that applied, the
// day's order count or an outbox enqueue taken for not done while it was.
func (s *Store) run(ctx context.Context, op string, sc *goredis.Script, keys []string, args ...any) (any, error) {
	if err := s.refused(op); err != nil {
		return nil, err
	}
	v, err := sc.Run(ctx, s.c, keys, args...).Result()
	if err != nil {
		return nil, writeErr(op, err)
	}
	return v, nil
}

// refused is the error of every write once the Store knows Redis lost its
// data (the same lostGuard gives a command), nil until then.
func (s *Store) refused(op string) error {
	if s.lost.Load() {
		return mapErr(op, s.lostCause())
	}
	return nil
}

// runMoney is run for money writes. Behind the script, in the same pipeline
// and so the same round trip, it raises the generation counter of the key's
// primary (generation.go): run after the script on the same server, the
// raise is lost whenever the write is, which is how a Redis gone back to an
// earlier state is found. With WaitReplicas the pipeline runs on the
// connection of the key's primary and ends with WAIT, so WAIT covers this
// write.
func (s *Store) runMoney(ctx context.Context, op string, sc *goredis.Script, keys []string, args ...any) (any, error) {
	return s.runWrite(ctx, op, sc, true, keys, args...)
}

// runWrite is runMoney, raising the generation counter when raise is set:
// Ping's write probe (probeWrite) writes as money writes do but raises
// nothing, for each raise by a replica that saw none of the writes a
// rollback lost brings the counter back toward what the replicas that
// saw them had seen, past which they can no longer tell (generation.go).
//
// A money write also reads the epoch marker behind its script, in the
// same pipeline (a cluster's with WAIT, which runs on its keys' primary's
// own client, right after it through the cluster): one gone or changed is
// a Redis that lost all its data (checkEpoch), found by the write itself.
// The counter alone missed it at a replica whose counter had seen no raise
// (opened before the other replicas' money writes, and not checking
// since: the background check is a second apart): the raise behind its
// write looked new, and it claimed again, with a new number, a purchase
// whose first order may still be paid. Such a write has applied, as one
// a counter finds has: it is reported failed, and every one after it is
// refused.
func (s *Store) runWrite(ctx context.Context, op string, sc *goredis.Script, raise bool, keys []string, args ...any) (any, error) {
	if err := s.refused(op); err != nil {
		return nil, err
	}
	var c goredis.Cmdable = s.c
	if s.waitN > 0 {
		node, err := s.primaryFor(ctx, keys[0])
		if err != nil {
			return nil, mapErr(op, err)
		}
		c = node
	}
	var gk string
	if raise {
		var err error
		if gk, err = s.genKey(ctx, keys[0]); err != nil {
			return nil, mapErr(op, err)
		}
	}
	before := s.gensSeen([]string{gk})[0]
	epoch := s.epoch.Load()
	if !raise || s.readOnly {
		epoch = nil
	}
	_, cluster := s.c.(*goredis.ClusterClient)
	apart := cluster && s.waitN > 0 // the marker's primary may be another
	var marker *goredis.StringCmd
	exec := func() (res *goredis.Cmd, gen *goredis.IntCmd, wait *goredis.Cmd) {
		_, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
			res = sc.EvalSha(ctx, p, keys, args...)
			if gk != "" {
				gen = p.Incr(ctx, gk)
			}
			if epoch != nil && !apart {
				marker = p.Get(ctx, s.k.one("meta", "epoch"))
			}
			if s.waitN > 0 {
				wait = p.Do(ctx, "WAIT", s.waitN, s.waitT.Milliseconds())
			}
			return nil
		})
		if err != nil && res.Err() == nil && (gen == nil || gen.Err() == nil) && (wait == nil || wait.Err() == nil) && (marker == nil || marker.Err() == nil) {
			// No command has the pipeline's error: go-redis got no
			// connection, refused by a server error at its handshake (a
			// changed password or ACL, clients full), and left every
			// reply empty without an error. Read so, the raise's 0 was
			// a counter gone back (Redis "lost its data") and the
			// script's nothing a write done.
			res.SetErr(err)
			if gen != nil {
				gen.SetErr(err)
			}
			if wait != nil {
				wait.SetErr(err)
			}
			if marker != nil {
				marker.SetErr(err)
			}
		}
		return res, gen, wait
	}
	var res, wait *goredis.Cmd
	var gen *goredis.IntCmd
	// refusedRaise checks the raise behind a script that answered an
	// error: it ran all the same, and is checked as any other. Unchecked,
	// it hid one lost write from the raise that follows: a Redis restarted
	// from a snapshot has no script cached, so the first money write after
	// the restart answers NOSCRIPT; a writer stalled through a failover to
	// a replica that lagged has its first money step refused as stale
	// (STALEINTENT) and retried under a fresh intent.
	refusedRaise := func() error {
		if gen == nil {
			return nil
		}
		n, err := gen.Result()
		if err != nil {
			return nil
		}
		if err := s.sawGen(ctx, gk, before, n, true); err != nil {
			return err
		}
		before = n
		return nil
	}
	res, gen, wait = exec()
	if goredis.HasErrorPrefix(res.Err(), "NOSCRIPT") {
		if err := refusedRaise(); err != nil {
			return nil, err
		}
		if err := sc.Load(ctx, c).Err(); err != nil {
			return nil, writeErr(op, err)
		}
		res, gen, wait = exec()
	}
	v, err := res.Result()
	if err != nil {
		if err := refusedRaise(); err != nil {
			return nil, err
		}
		return nil, writeErr(op, err)
	}
	if epoch != nil && apart {
		marker = s.c.Get(ctx, s.k.one("meta", "epoch"))
	}
	if marker != nil {
		cur, err := marker.Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			// Applied, but its loss could not be told: fail closed.
			return v, unconfirmed(op+" epoch", err)
		}
		if err != nil || cur != *epoch {
			s.markLost(ctx, errDataLost)
			return nil, fmt.Errorf("redis: %w: %w", store.ErrUnavailable, s.lostCause())
		}
	}
	if gen != nil {
		n, err := gen.Result()
		if err != nil {
			// Applied, but its loss could not be told: fail closed.
			return v, unconfirmed(op+" generation", err)
		}
		if err := s.sawGen(ctx, gk, before, n, true); err != nil {
			return nil, err
		}
	}
	if wait == nil {
		return v, nil
	}
	n, err := wait.Int64()
	if err != nil {
		return v, unconfirmed(op+" wait", err)
	}
	if n < int64(s.waitN) {
		return v, fmt.Errorf("redis %s: %d of %d replicas within %s: %w: %w", op, n, s.waitN, s.waitT, store.ErrUnavailable, errNotReplicated)
	}
	return v, nil
}

// writeErr is mapErr for the reply to a script (runWrite's money writes,
// run's, runBatch's and evalEach's others). go-redis sends a command again after a
// lost reply (a read timeout, a cut connection) and reports the last
// try's error alone. A server error that
// is not the script's own answer (a refusal of the connection or of the
// command: a rotated password or ACL, clients full, a protocol error) may
// so follow a try that applied, and as a plain error callers took it for
// "not applied": it is store.ErrUnavailable, which they take for "may have
// applied". The script's own answers (its error replies, the error of a
// command it ran, which Redis reports naming user_script) are kept: every
// money script answers a re-send as the run that applied did. Not so
// Redis's ACL refusing a command the script runs (scriptACLRefusal): an
// ACL changed since the try that applied refuses the re-send alone, and
// a script stopped there keeps what it wrote before the refused command.
// A script's nil reply (redis.Nil, a go-redis Error too) is its answer, a
// plain miss, as mapErr passes it.
func writeErr(op string, err error) error {
	err = mapErr(op, err)
	var rerr goredis.Error
	if errors.Is(err, store.ErrUnavailable) || !errors.As(err, &rerr) || errors.Is(err, goredis.Nil) ||
		goredis.HasErrorPrefix(rerr, "STALEINTENT") ||
		strings.Contains(rerr.Error(), "user_script") && !scriptACLRefusal(rerr.Error()) {
		return err
	}
	return fmt.Errorf("%w (not the script's answer: a try before it may have applied): %w", store.ErrUnavailable, err)
}

// scriptACLRefusal reports whether msg is Redis's ACL refusing a command
// inside a script: "The user executing the script can't ..." up to Redis
// 7.0, "ACL failure in script: ..." from 7.2.
func scriptACLRefusal(msg string) bool {
	return strings.Contains(msg, "user executing the script can't") || strings.Contains(msg, "ACL failure in script")
}

// unconfirmed is the error of a money write whose script applied but whose
// generation raise or WAIT behind it failed: store.ErrUnavailable, which
// callers take for "may have applied", whatever the failure. A reply such as
// NOPERM (a user whose ACL lacks WAIT) is no "not now" to mapErr, and a
// plain error told the payments service the write had not applied: it let
// the purchase's claim go while the order stood.
func unconfirmed(op string, err error) error {
	err = mapErr(op, err)
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w (the write applied, unconfirmed): %w", store.ErrUnavailable, err)
}

// primaryFor is the client of the primary that owns key.
func (s *Store) primaryFor(ctx context.Context, key string) (*goredis.Client, error) {
	switch c := s.c.(type) {
	case *goredis.ClusterClient:
		// A node's own guard makes no first check (lostGuard): make it
		// here, as the Store's client would for a command of its own.
		if err := (lostGuard{s: s, first: true}).refuse(ctx); err != nil {
			return nil, err
		}
		return c.MasterForKey(ctx, key)
	case *goredis.Client:
		return c, nil
	default:
		return nil, fmt.Errorf("wait_replicas is not supported with %T", s.c)
	}
}

// keys builds every key name. Components are escaped so that ':' '{' '}' in a
// client, user or id can neither merge two records nor break a hash tag.
type keys struct{ p string }

var escaper = strings.NewReplacer("%", "%25", ":", "%3A", "{", "%7B", "}", "%7D")

func esc(s string) string { return escaper.Replace(s) }

// Per order (and per outbox key): the record, its outbox list, its outbox
// version. The queue of a refund proposal's events (store.ProposalEventKey)
// is on the proposal's own tag, {r:ID}, so the proposal and its events are
// written by one script; it has no record there (the proposal's key is the
// bare tag, k.one("r", ID)).
func (k keys) orderTag(no string) (rec, ob, obv string) {
	t := k.p + "{o:" + esc(no) + "}"
	if id, ok := strings.CutPrefix(no, store.ProposalEventKeyPrefix); ok {
		t = k.one("r", id)
	}
	return t + ":rec", t + ":ob", t + ":obv"
}

// refundRecord is order no's refund record (store.RefundRecordKey), on the
// order's tag, so that one script checks the order's version and writes it
// (PutRefundRecord). An earlier version kept it on a tag of its own,
// one("x", store.RefundRecordKey(no)), where GetExchange still reads it
// and a copy is written for that version's replicas (copyRefundRecord).
func (k keys) refundRecord(no string) string {
	rec, _, _ := k.orderTag(no)
	return strings.TrimSuffix(rec, ":rec") + ":rf"
}

// queueKeys are the KEYS of an outbox script on key's queue: its list and
// version and, for a refund proposal's queue, the proposal's record, whose
// expiry the queue keeps (luaHold); an order's queue has no expiry.
func (k keys) queueKeys(key string) []string {
	_, ob, obv := k.orderTag(key)
	if id, ok := strings.CutPrefix(key, store.ProposalEventKeyPrefix); ok {
		return []string{ob, obv, k.one("r", id)}
	}
	return []string{ob, obv}
}

// queueToken is the token key of one call that writes to key's queue, on
// the queue's tag (luaEnqueueOnceAll).
func (k keys) queueToken(key, tok string) string {
	_, ob, _ := k.orderTag(key)
	return strings.TrimSuffix(ob, ":ob") + ":qt:" + tok
}

// queueHold is the hold_ms of luaHold for a step on a proposal's queue whose
// pending head is due after: that long and store.TombstoneTTL + expiryGrace
// more. Order queues ignore it.
func queueHold(after time.Duration) int64 {
	return ms(max(after, 0) + store.TombstoneTTL + expiryGrace)
}

// Per user: order copies, their versions, their index by creation time and
// the index of the newest by last update (store.UserStateOrders of them,
// and every order updated within userUpdatedSlack of the newest).
func (k keys) userTag(client, user string) (uo, uv, ur, uu string) {
	t := k.p + "{u:" + esc(client) + ":" + esc(user) + "}"
	return t + ":o", t + ":v", t + ":r", t + ":u"
}

// userAnnounced is the user's announcement marks (ClaimAnnouncement), on
// the user's tag, so that LoadUserState's script reads them with the
// order copies.
func (k keys) userAnnounced(client, user string) string {
	return k.p + "{u:" + esc(client) + ":" + esc(user) + "}:a"
}

// userAnnouncedKept is how many marks the user's announcement marks kept
// after their last pass over them (luaAnnounce), on the user's tag.
func (k keys) userAnnouncedKept(client, user string) string {
	return k.userAnnounced(client, user) + "p"
}

// userRefunds is the user's index of refund proposals
// (OpenRefundProposals): a sorted set of proposal ids scored by their
// expiry (unix ms), on the user's tag.
func (k keys) userRefunds(client, user string) string {
	return k.p + "{u:" + esc(client) + ":" + esc(user) + "}:rp"
}

func (k keys) idx(name string) string { return k.p + "{idx}:" + name }

func (k keys) status(st store.OrderStatus) string { return k.idx("st:" + string(st)) }

// clientOrders is client's index of orders by creation time ("" for the
// orders recorded without one), on {idx} with the global indexes, so that
// the sync script writes it with them (luaSyncIndex). {idx}:cv is the set
// of the orders the client indexes hold (clientIndexed).
func (k keys) clientOrders(client string) string { return k.idx("cl:" + esc(client)) }

func (k keys) claim(key string) (claim, gen string) {
	t := k.p + "{c:" + esc(key) + "}"
	return t + ":claim", t + ":gen"
}

func (k keys) one(kind, id string) string { return k.p + "{" + kind + ":" + esc(id) + "}" }

func (k keys) audit(name string) string { return k.p + "{audit}:" + name }

func (k keys) auditText(seq uint64) string { return k.audit("t:" + strconv.FormatUint(seq, 10)) }

// auditClientUser is the set of the seqs of (client, user)'s texts.
func (k keys) auditClientUser(client, user string) string {
	return k.audit("tcu:" + esc(client) + ":" + esc(user))
}

// auditClientKept is how many numbers (client, user)'s set held after its
// last pass over them (luaPutText, pruneTexts).
func (k keys) auditClientKept(client, user string) string {
	return k.audit("tcup:" + esc(client) + ":" + esc(user))
}

// auditClientErased holds the time (unix ms) of (client, user)'s last
// erasure, without expiry.
func (k keys) auditClientErased(client, user string) string {
	return k.audit("tce:" + esc(client) + ":" + esc(user))
}

// auditUser and auditErased are an earlier version's set of user's texts
// (of any client) and mark of user's last erasure (applying to every
// client). Nothing new is written there.
func (k keys) auditUser(user string) string { return k.audit("tu:" + esc(user)) }

func (k keys) auditErased(user string) string { return k.audit("te:" + esc(user)) }

// ms is a duration in whole milliseconds, at least 1.
func ms(d time.Duration) int64 { return max(d.Milliseconds(), 1) }

// Reply helpers for Lua tables.

func replySlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func replyInt(s []any, i int) int64 {
	if i >= len(s) {
		return 0
	}
	switch x := s[i].(type) {
	case int64:
		return x
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

func replyStr(s []any, i int) (string, bool) {
	if i >= len(s) {
		return "", false
	}
	x, ok := s[i].(string)
	return x, ok
}
