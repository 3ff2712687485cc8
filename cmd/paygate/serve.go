package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/paygate/paygate/accounting"
	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/proxy"
	"github.com/paygate/paygate/proxy/console"
	"github.com/paygate/paygate/proxy/h1"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/embedded"
	redisstore "github.com/paygate/paygate/store/redis"
)

// app is everything serve wires together, so tests can drive the same handler
// the binary serves.
type app struct {
	cfg      *config.Config
	log      *slog.Logger
	reg      *prometheus.Registry
	store    store.Store
	router   *failover.Router
	sim      *wxsim.Server // nil unless payments.backend is simulator
	payments *payments.Service
	server   *proxy.Server
	stop     func()             // stops background work (the reconciler sweep) and waits for it
	audit    *auditing          // the audit chain's worker and head publisher
	webhooks *webhooks          // the merchant webhook relay; nil when webhooks.url is empty
	ledger   *accounting.Ledger // LLM cost per round, conversation and transaction
	// stopHashKey stops the background load of the user hash key and waits
	// for it; nil when none runs (loadHashKey).
	stopHashKey func()
	// storeStart is the Redis store's start (its first check of Redis) when
	// it runs in the background (withoutStoreWait); nil otherwise.
	storeStart storeStarter
	// hashKeyWanted wakes the user hash key's background load (loadHashKey)
	// when the store is found answering while the key is pending.
	hashKeyWanted chan struct{}
}

// paymentsDescription says, for the start line, whether payments move real
// money: the simulator's do not.
func paymentsDescription(cfg *config.Config) string {
	if cfg.Payments.Backend == "simulator" {
		return "simulator: WeChat Pay simulated in this process, no real money moves"
	}
	return cfg.Payments.Backend + ": merchant " + cfg.Payments.WeChatPay.MchID
}

// storeDescription says, for the start line, where the orders are kept: the
// embedded store's file as an absolute path (a relative store.path is read
// from the working directory), or the Redis servers and key prefix.
func storeDescription(cfg *config.Config) string {
	if cfg.Store.Driver == "redis" {
		// As serve dials them: with master_name the addresses are the
		// sentinels, not the server holding the orders; several without
		// it, or cluster, a cluster's seeds. Addresses hold no password
		// (config refuses a URL there).
		r := cfg.Store.Redis
		addrs := strings.Join(r.Addrs, ",")
		switch {
		case r.MasterName != "":
			addrs = "master " + strconv.Quote(r.MasterName) + " from sentinels " + addrs
		case r.Cluster || len(r.Addrs) > 1:
			addrs = "cluster " + addrs
		}
		return "redis " + addrs + " prefix " + strconv.Quote(r.KeyPrefix)
	}
	if p, err := filepath.Abs(cfg.Store.Path); err == nil {
		return p
	}
	return cfg.Store.Path
}

// storeStarter is a store whose start runs in the background: the Redis
// driver's under redisstore.Options.NoWait.
type storeStarter interface {
	Started() <-chan struct{}
	StartErr() error
}

// newApp builds the application from a loaded config. logOut receives the
// JSON log; notifyURL is where WeChat Pay (or the simulator) reaches
// POST /wechatpay/notify — the configured notify_url wins when set.
func newApp(cfg *config.Config, logOut io.Writer, notifyURL string, opts ...appOption) (*app, error) {
	var ao appOptions
	for _, o := range opts {
		o(&ao)
	}
	if ao.configure != nil {
		ao.configure(cfg)
	}
	a := &app{cfg: cfg, reg: prometheus.NewRegistry()}
	a.log = logging.New(logOut, logging.ParseLevel(cfg.Log.Level), cfg.Secrets())
	// What a new user needs first and saw nowhere: which build runs,
	// whether money is real (the default config runs the simulator) and
	// where the orders are kept (a relative store.path is read from the
	// working directory). Only the listeners' addresses were logged.
	v := buildVersion()
	a.log.Info("paygate starting", "version", v, "config", cmp.Or(cfg.Source, "built-in defaults"),
		"payments", paymentsDescription(cfg), "store", storeDescription(cfg))
	for _, w := range cfg.Warnings {
		a.log.Warn("config", "warning", w)
	}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The build as `paygate version` names it, which a dashboard or an
	// alert can tell two rollouts apart by.
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "paygate_build_info",
		Help:        "Always 1; version is paygate's (paygate version), goversion the Go release it was built with.",
		ConstLabels: prometheus.Labels{"version": v, "goversion": runtime.Version()},
	})
	buildInfo.Set(1)
	a.reg.MustRegister(buildInfo)

	// The embedded file this deployment served on before a switch of
	// store (to Redis, to another store.path) is refused while it holds
	// orders or events in flight, which the new store knows nothing of.
	if !ao.skipLeftStores {
		if err := checkLeftStores(cfg, a.log, storeOwner(cfg)); err != nil {
			return nil, err
		}
	}
	st, err := openStoreAs(cfg, a.log, storeOwner(cfg), 0, ao.noStoreWait, ao.storeNoSync)
	if err != nil {
		return nil, err
	}
	if s, ok := st.(storeStarter); ok && ao.noStoreWait {
		a.storeStart = s
	}
	if ao.wrapStore != nil {
		st = ao.wrapStore(st)
	}
	a.store = st

	hashKey, keyPending := a.userHashKey()
	var wantHashKey func()
	if keyPending {
		a.hashKeyWanted = make(chan struct{}, 1)
		wantHashKey = func() {
			select {
			case a.hashKeyWanted <- struct{}{}:
			default:
			}
		}
	}
	a.router, err = failover.New(cfg, failover.Options{Logger: a.log, Registerer: a.reg})
	if err != nil {
		a.close()
		return nil, fmt.Errorf("building failover: %w", err)
	}
	if a.ledger, err = accounting.New(cfg, st, a.reg, a.log.With("component", "accounting")); err != nil {
		a.close()
		return nil, err
	}
	if a.audit, err = newAuditing(cfg, st, a.reg, a.log.With("component", "audit")); err != nil {
		a.close()
		return nil, fmt.Errorf("building audit: %w", err)
	}
	if a.webhooks, err = newWebhooks(cfg, st, a.reg, a.log.With("component", "webhook"), a.audit.worker.Wake, ao.webhook); err != nil {
		a.close()
		return nil, fmt.Errorf("building webhooks: %w", err)
	}
	if a.webhooks != nil {
		// Each of an order's webhooks is queued behind its audit record:
		// the worker's appending it wakes the relay, as the relay's moving
		// a webhook off wakes the worker (Moved), so that an order's
		// events go out back to back, not a poll of each apart.
		a.audit.wakeOnAcked(a.webhooks.relay.Wake)
	}
	if err := a.buildPayments(notifyURL, ao.wechatpayTransport, ao.paymentsNow, ao.prepayTimeout); err != nil {
		a.close()
		return nil, err
	}
	a.server, err = proxy.New(proxy.Options{
		Config:   cfg,
		Upstream: a.router,
		Logger:   a.log,
		Registry: a.reg,
		Store:    st,
		HashKey:  hashKey,
		// Asked for by /readyz and a turn that find the store answering.
		WantHashKey: wantHashKey,
		Notify:      a.payments.NotifyHandler(),
		Tools: payments.NewTools(a.payments, payments.ToolNames{
			CreateOrder:   cfg.Payments.Tools.CreateOrder,
			QueryOrder:    cfg.Payments.Tools.QueryOrder,
			RequestRefund: cfg.Payments.Tools.RequestRefund,
		}, a.log.With("component", "tools")),
		Ledger:        a.ledger,
		State:         st,
		Reconciler:    a.payments,
		UserPayments:  a.payments,
		AdminPayments: a.payments,
		// The budget of request bodies in flight is derived from it.
		MemoryLimit: memoryLimit(os.Getenv, os.ReadFile, debug.SetMemoryLimit(-1)),
	})
	if err != nil {
		a.close()
		return nil, fmt.Errorf("building proxy: %w", err)
	}
	if keyPending {
		a.loadHashKey(cmp.Or(ao.hashKeyRetry, hashKeyRetry))
	}
	return a, nil
}

// close stops what writes first, then what drains: the sweeper and the
// payments' background queries can still commit a transition (and enqueue
// its audit and webhook events), so the audit worker and the webhook relay
// stop after them, and the store last. What drains stops all at once: the
// audit worker, the webhook relay and the ledger's writer depend on each
// other in nothing, and one after the other a store that answers slowly or
// not at all would hold the shutdown once for each of them.
func (a *app) close() {
	if a.stopHashKey != nil {
		a.stopHashKey()
	}
	if a.stop != nil {
		a.stop()
	}
	if a.payments != nil {
		_ = a.payments.Close()
	}
	var wg sync.WaitGroup
	if a.audit != nil {
		wg.Go(a.audit.stop)
	}
	wg.Go(a.webhooks.stop)
	if a.sim != nil {
		wg.Go(func() { _ = a.sim.Close() })
	}
	if a.router != nil {
		wg.Go(func() { _ = a.router.Close() })
	}
	if a.ledger != nil {
		wg.Go(a.ledger.Close) // its queued conversation costs go to the store first
	}
	wg.Wait()
	if a.store != nil {
		_ = a.store.Close()
	}
}

// closeBy runs close, in its order, within a shutdown's deadline. When
// close has not ended reserve before the deadline, something it waits for
// is blocked on a store that stopped answering (a paused or stalled Redis
// holds each call up to the driver's read timeout, and the ledger's queue
// one call per entry): the store is closed under it, so every call still
// waiting returns at once with an error (a money write among them as
// unavailable: payments fail closed, an order left `creating` is the
// reconciler's), and close has until the deadline to end. closeBy returns
// by the deadline in any case.
func (a *app) closeBy(deadline time.Time, reserve time.Duration) {
	done := make(chan struct{})
	go func() { defer close(done); a.close() }()
	if l, ok := a.store.(store.Local); ok && l.Local() {
		// The embedded file waits on no other process: nothing can hang
		// on it, and closing it under a write only fails the write.
		<-done
		return
	}
	if waitUntil(done, deadline.Add(-reserve)) {
		return
	}
	a.log.Warn("shutdown: background work still waiting on the store at the deadline; closing the store under it",
		"left", max(time.Until(deadline), 0).Round(time.Millisecond).String())
	if a.store != nil {
		_ = a.store.Close()
	}
	if !waitUntil(done, deadline) {
		a.log.Warn("shutdown: background work still running at the deadline; exiting without it")
	}
}

// waitUntil reports whether done closed by t.
func waitUntil(done <-chan struct{}, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-done:
		return true
	case <-timer.C:
		select {
		case <-done:
			return true
		default:
			return false
		}
	}
}

func openStore(cfg *config.Config, log *slog.Logger) (store.Store, error) {
	return openStoreAs(cfg, log, storeOwner(cfg), 0, false, false)
}

// storeOwner is the deployment cfg's store belongs to (Redis's
// Options.Owner): its payments backend and merchant.
func storeOwner(cfg *config.Config) string {
	return cfg.Payments.Backend + ":" + cfg.Payments.WeChatPay.MchID
}

// openStoreAs is openStore as the deployment owner names (Redis's
// Options.Owner; "": a tool, which neither claims a prefix nor is refused
// one), with Redis's repair loop every repair (0: its default; negative:
// none). noWait opens Redis without waiting for it (Options.NoWait): its
// Started tells when its first check ended and whether it was refused.
// noSync opens an embedded store without an fsync after each write (tests:
// withoutStoreSync).
func openStoreAs(cfg *config.Config, log *slog.Logger, owner string, repair time.Duration, noWait, noSync bool) (store.Store, error) {
	switch cfg.Store.Driver {
	case "embedded":
		// A file another merchant's orders are in is refused, as a Redis
		// prefix is: this merchant's sweep would expire the orders it
		// does not find at its own WeChat Pay.
		db, err := embedded.Open(cfg.Store.Path, embedded.Options{Logger: log, Owner: owner, NoSync: noSync})
		if errors.Is(err, embedded.ErrOtherOwner) {
			return nil, fmt.Errorf("opening store: %w: settle that merchant's orders (paid, refunded or closed) under its config first, then give this one a store.path of its own, or put payments.backend and payments.wechatpay.mch_id back", err)
		}
		if err != nil {
			return nil, fmt.Errorf("opening store: %w", err)
		}
		return db, nil
	case "redis":
		o := redisOptions(cfg, log)
		// Another deployment under the same prefix is refused: its
		// sweep would settle this one's orders at its own merchant.
		o.Owner, o.RepairInterval, o.NoWait = owner, repair, noWait
		st, err := redisstore.Open(o)
		if err != nil {
			return nil, fmt.Errorf("opening redis store: %w", err)
		}
		return st, nil
	}
	return nil, fmt.Errorf("unknown store driver %q", cfg.Store.Driver)
}

// redisOptions are the Redis store's options for cfg's store.redis.
func redisOptions(cfg *config.Config, log *slog.Logger) redisstore.Options {
	r := cfg.Store.Redis
	return redisstore.Options{
		Addrs: r.Addrs, Username: r.Username, Password: r.Password, DB: r.DB,
		MasterName: r.MasterName, Cluster: r.Cluster, TLS: r.TLS, TLSServerName: r.TLSServerName, KeyPrefix: r.KeyPrefix, WaitReplicas: r.WaitReplicas,
		// One retry: a down Redis must fail a turn's state load fast so chat
		// without payment state goes on. A hung one is bounded by the
		// callers' deadlines and the driver's own read timeout.
		MaxRetries: 1, DialTimeout: 2 * time.Second,
		Logger: log,
	}
}

// simulatorKeys makes the simulator's key material (payments.backend:
// simulator): three fresh RSA keys and a certificate for every app. The
// tests share one set (TestMain), as making it took about 2 s under the race
// detector on a loaded 2-core host and most of them start a simulator.
var simulatorKeys = wxsim.GenerateKeys

// creatingGrace is the payments service's CreatingGrace: how old an order
// left `creating` (its prepay's outcome never recorded) must be before a
// turn or the sweep resolves it. A variable so a test need not wait it out:
// the tests' child processes take a shorter one from TestMain.
var creatingGrace = payments.DefaultCreatingGrace

// buildPayments wires WeChat Pay (the real API or the in-process simulator)
// and the payments service, and starts the reconciler's sweep. now is the
// service's clock (nil: time.Now); prepayTimeout its PrepayTimeout (zero:
// the default).
func (a *app) buildPayments(notifyURL string, transport http.RoundTripper, now func() time.Time, prepayTimeout time.Duration) error {
	cfg := a.cfg
	w := cfg.Payments.WeChatPay
	if w.NotifyURL != "" {
		notifyURL = w.NotifyURL
	}
	ctx := context.Background()
	var wcfg wechatpay.Config
	switch cfg.Payments.Backend {
	case "simulator":
		keys, err := simulatorKeys()
		if err != nil {
			return fmt.Errorf("starting the WeChat Pay simulator: wxsim: %w", err)
		}
		sim, err := wxsim.New(wxsim.Options{
			MchID: w.MchID, AppID: w.AppID, APIv3Key: w.APIv3Key, Keys: keys,
			AutoPayAfter:    cfg.Payments.Simulator.PayAfter.D(),
			AutoRefundAfter: cfg.Payments.Simulator.RefundAfter.D(),
			Logger:          a.log.With("component", "wxsim"),
		})
		if err != nil {
			return fmt.Errorf("starting the WeChat Pay simulator: %w", err)
		}
		a.sim = sim
		base, err := sim.Start("127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("starting the WeChat Pay simulator: %w", err)
		}
		wcfg = sim.ClientConfig(base, notifyURL)
	case "wechatpay":
		wcfg = wechatpay.Config{
			APIBase: w.APIBase, MchID: w.MchID, AppID: w.AppID,
			MchCertSerial: w.MchCertSerial, MchPrivateKeyFile: w.MchPrivateKeyFile,
			APIv3Key: w.APIv3Key, APIv3PreviousKey: w.APIv3PreviousKey,
			PublicKeyID: w.PublicKeyID, PublicKeyFile: w.PublicKeyFile,
			PlatformCertFiles: w.PlatformCertFiles, NotifyURL: notifyURL,
		}
	}
	wcfg.Logger = a.log.With("component", "wechatpay")
	wcfg.Registerer = a.reg
	if transport != nil {
		wcfg.Transport = transport
	}
	client, err := wechatpay.New(ctx, wcfg)
	if err != nil {
		return fmt.Errorf("building the WeChat Pay client: %w", err)
	}
	items := make([]payments.CatalogItem, len(cfg.Payments.Catalog))
	for i, it := range cfg.Payments.Catalog {
		items[i] = payments.CatalogItem{SKU: it.SKU, Name: it.Name, Price: it.Price.Text, MaxQuantity: it.MaxQuantity}
	}
	catalog, err := payments.NewCatalog(items)
	if err != nil {
		return fmt.Errorf("payments.catalog: %w", err)
	}
	a.payments, err = payments.New(payments.Options{
		Store:               a.store,
		Backend:             client,
		Notify:              client.NotifyVerifier(),
		Catalog:             catalog,
		MchID:               wcfg.MchID,
		AppID:               wcfg.AppID,
		PayMethods:          payMethodsOf(cfg),
		DedupeWindow:        cfg.Payments.DedupeWindow.D(),
		NotifyReadTimeout:   notifyReadTimeout,
		OrderTTL:            cfg.Payments.OrderTTL.D(),
		PrepayTimeout:       prepayTimeout,
		ActiveQueryAfter:    cfg.Payments.Reconcile.QueryAfter.D(),
		ActiveQueryDeadline: cfg.Payments.Reconcile.QueryDeadline.D(),
		SweepInterval:       cfg.Payments.Reconcile.SweepInterval.D(),
		CreatingGrace:       creatingGrace,
		// The embedded file is locked by one process: what it finds claimed
		// or creating and is not working on was left by a crash.
		SoleWriter:       cfg.Store.Driver == "embedded",
		Rules:            paymentRules(cfg.Payments.Rules),
		RefundConfirmTTL: cfg.Payments.Refunds.ConfirmTTL.D(),
		Events:           a.withWebhookEvents(audit.TransitionEvents), // audit records and webhooks ride each transition's outbox write
		Committed:        a.withWebhookWake(a.withLedger(a.audit.wake)),
		ProposalEvents:   a.withWebhookProposalEvents(audit.ProposalEvents), // audit refund.proposed, .cancelled, .confirmed and the refund.proposed webhook ride the proposal's writes
		Proposed:         a.withWebhookProposals(a.audit.proposed),
		Registerer:       a.reg,
		Logger:           a.log.With("component", "payments"),
		Now:              now,
	})
	if err != nil {
		return fmt.Errorf("building payments: %w", err)
	}
	sweepCtx, stop := context.WithCancel(context.Background())
	swept := make(chan struct{})
	a.stop = func() { stop(); <-swept }
	go func() { defer close(swept); a.payments.RunSweeper(sweepCtx) }()
	a.audit.start()
	return nil
}

// payMethodsOf gives the pay methods each client of cfg is offered, by its
// name, as the proxy's Caller has them (config.Config.PayMethodsOf).
func payMethodsOf(cfg *config.Config) func(client string) []string {
	byName := make(map[string]*config.Client, len(cfg.Clients))
	for i := range cfg.Clients {
		byName[cfg.Clients[i].Name] = &cfg.Clients[i]
	}
	return func(client string) []string { return cfg.PayMethodsOf(byName[client]) }
}

// hashKeyUnavailable is logged when the store does not answer the first
// ask for the user hash key.
const hashKeyUnavailable = "user hash key unavailable: the store did not answer; provider requests go without the end user's identifiers until it does"

// storedHashKeyName is the store's secret the user hash key is kept under
// when privacy.hash_key is empty.
const storedHashKeyName = "privacy.hash_key"

// userHashKey returns the key the proxy hashes users with toward providers:
// privacy.hash_key, or the key generated once and kept in the store so every
// replica and every restart hashes a user the same way. The store's key is
// looked for only under forward_user hash, the one mode that uses it. When
// the store does not answer, paygate starts anyway (SPEC 6: chat works with
// the store down, and a replica restarting during an outage must come back):
// pending reports that, the key is nil, and the proxy drops the end user's
// identifiers until loadHashKey gets the key. A store opened without waiting
// (withoutStoreWait) is not asked here: pending, and loadHashKey asks it as
// soon as its start ends.
func (a *app) userHashKey() (key []byte, pending bool) {
	p := a.cfg.Privacy
	if p.HashKey != "" || p.ForwardUser != "hash" {
		return []byte(p.HashKey), false
	}
	if a.storeStart != nil {
		return nil, true
	}
	key, err := storedHashKey(context.Background(), a.store)
	if err != nil {
		a.log.Warn(hashKeyUnavailable, "err", err)
		return nil, true
	}
	return key, false
}

// storedHashKey reads the user hash key from the store, or makes it there.
func storedHashKey(ctx context.Context, st store.Store) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	key, err := st.GetOrCreateSecret(ctx, storedHashKeyName, func() ([]byte, error) {
		b := make([]byte, 32)
		_, err := rand.Read(b)
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("loading the user hash key from the store: %w", err)
	}
	return key, nil
}

// backoff is a retry schedule: the first wait, doubled after each failure
// up to max.
type backoff struct{ first, max time.Duration }

// hashKeyRetry is how often loadHashKey asks a store that did not answer:
// soon after startup, then no more than twice a minute (each failure is a
// log line).
var hashKeyRetry = backoff{first: time.Second, max: 30 * time.Second}

// hashKeyWantedEvery bounds how often loadHashKey asks the store when
// woken (hashKeyWanted), which every turn may do.
const hashKeyWantedEvery = time.Second

// loadHashKey asks the store for the user hash key in the background, on
// retry's schedule, until it answers or the app closes, and gives the key
// to the proxy. Every replica gets the one key the store holds: none
// hashes under a key of its own meanwhile. A store opened without waiting
// (storeStart) is asked first as soon as its start ends, and then on
// retry's schedule; otherwise userHashKey asked it first. Found answering
// meanwhile (hashKeyWanted: a /readyz ping, a turn's state load), the
// store is asked at once, no more often than hashKeyWantedEvery: after an
// outage the schedule's next ask was up to retry.max away, the replica
// unready and its requests without the end user's identifiers all that
// time.
func (a *app) loadHashKey(retry backoff) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	a.stopHashKey = func() { cancel(); <-done }
	go func() {
		defer close(done)
		asked := a.storeStart == nil // userHashKey asked once already
		if !asked {
			select {
			case <-ctx.Done():
				return
			case <-a.storeStart.Started():
			}
		}
		wait := retry.first
		timer := time.NewTimer(wait)
		defer timer.Stop()
		var last time.Time // the last ask's start
		for {
			if asked {
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				case <-a.hashKeyWanted:
					if time.Since(last) < hashKeyWantedEvery {
						continue
					}
				}
			}
			last = time.Now()
			key, err := storedHashKey(ctx, a.store)
			if err == nil {
				a.server.SetHashKey(key)
				if asked {
					a.log.Info("user hash key loaded from the store; provider requests carry the end user's hash again")
				}
				return
			}
			if ctx.Err() != nil {
				return
			}
			if !asked {
				asked = true
				a.log.Warn(hashKeyUnavailable, "err", err)
				timer.Reset(wait)
				continue
			}
			wait = min(2*wait, retry.max)
			a.log.Warn("user hash key still unavailable; provider requests go without the end user's identifiers",
				"err", err, "retry_in", wait.String())
			timer.Reset(wait)
		}
	}()
}

// serve runs the listeners until ctx ends, then drains in-flight requests up
// to server.shutdown_timeout. ready, when not nil, receives the bound
// addresses once every listener accepts.
func serve(ctx context.Context, cfg *config.Config, logOut io.Writer, ready chan<- map[string]string) error {
	return serveHangups(ctx, cfg, logOut, ready, nil)
}

// serveHangups is serve, logging a warning for each signal on hup (SIGHUP,
// which asks elsewhere for a reload) until it returns: the config is read
// once, at start, and nothing else changes.
func serveHangups(ctx context.Context, cfg *config.Config, logOut io.Writer, ready chan<- map[string]string, hup <-chan os.Signal) error {
	// Listen first: the notify URL the simulator calls is the bound address.
	type listener struct {
		name string
		ln   net.Listener
		h    func(*app) http.Handler
	}
	type spec struct {
		name, addr string
		h          func(*app) http.Handler
	}
	specs := []spec{{"main", cfg.Server.Listen, func(a *app) http.Handler { return a.server.Handler() }}}
	if cfg.Server.AdminListen != "" && cfg.Server.AdminListen != "off" {
		specs = append(specs, spec{"admin", cfg.Server.AdminListen, (*app).adminHandler})
	}
	if cfg.Server.NotifyListen != "" {
		specs = append(specs, spec{"notify", cfg.Server.NotifyListen, func(a *app) http.Handler { return a.server.NotifyHandler() }})
	}
	var ls []listener
	addrs := map[string]string{}
	for _, sp := range specs {
		ln, err := net.Listen("tcp", sp.addr)
		if err != nil {
			for _, l := range ls {
				_ = l.ln.Close()
			}
			return fmt.Errorf("listening on %s (%s): %w", sp.addr, sp.name, err)
		}
		ls = append(ls, listener{sp.name, ln, sp.h})
		addrs[sp.name] = ln.Addr().String()
	}
	notifyAddr := addrs["main"]
	if n, ok := addrs["notify"]; ok {
		notifyAddr = n
	}
	// Redis is not waited for: every listener answers at once, also on a
	// Redis that does not (/healthz 200, /readyz 503, chat without payment
	// state), as when it stops answering later. Its first check goes on
	// in the background, and a refusal there (another deployment's key
	// prefix) stops paygate as it stopped it before it listened.
	a, err := newApp(cfg, logOut, localNotifyURL(notifyAddr), withoutStoreWait())
	if err != nil {
		for _, l := range ls {
			_ = l.ln.Close()
		}
		return err
	}

	var servers []httpServer
	errc := make(chan error, len(ls))
	for _, l := range ls {
		ln := l.ln
		srv := newHTTPServer(l.name, l.h(a), serverErrorLog(a.log))
		servers = append(servers, srv)
		a.log.Info("listening", "listener", l.name, "addr", ln.Addr().String())
		go func() { errc <- srv.Serve(ln) }()
	}
	if ready != nil {
		ready <- addrs
	}
	if hup != nil {
		served := make(chan struct{})
		defer close(served)
		go func() {
			for {
				select {
				case <-hup:
					a.log.Warn("SIGHUP ignored: paygate does not reload its config; restart it to apply a changed config (SIGTERM drains it first)")
				case <-served:
					return
				}
			}
		}()
	}

	var failed error
	var started <-chan struct{} // the store's start, when it runs in the background
	if a.storeStart != nil {
		started = a.storeStart.Started()
	}
	cause := "signal" // ctx ends at the first SIGTERM or SIGINT (cmdServe)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case err := <-errc:
			done = true
			cause = "listener failed"
			if !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("listener failed", "err", err)
				failed = fmt.Errorf("listener failed: %w", err) // exit non-zero, so a supervisor restarts it
			}
		case <-started:
			started = nil
			if err := a.storeStart.StartErr(); err != nil {
				done = true
				cause = "store refused"
				failed = fmt.Errorf("opening redis store: %w", err) // as openStore reports it
			}
		}
	}
	budget := cfg.Server.ShutdownTimeout.D()
	// Only a drain a signal began is ended at once by the next one: begun
	// by a failure, the first signal only ends cmdServe's wait for one, and
	// the line said "a second SIGTERM" to an operator who had sent none.
	stopNow := "a second SIGTERM or Ctrl-C stops at once"
	if cause != "signal" {
		stopNow = "two SIGTERMs or Ctrl-C twice stop at once"
	}
	a.log.Info("shutting down: draining in-flight requests ("+stopNow+")", "cause", cause, "timeout", budget.String())
	a.server.Drain() // /readyz says so at once, on every listener
	start := time.Now()
	cutCtx, cancelCut := context.WithDeadline(context.Background(), start.Add(budget-cutReserve(budget)))
	defer cancelCut()
	sctx, cancel := context.WithDeadline(context.Background(), start.Add(budget))
	defer cancel()
	// Every listener stops taking connections at once and drains within the
	// one deadline: one after the other, the admin and notify listeners kept
	// accepting while the bots' drained, and an approval in flight there
	// could find the deadline spent. The last cutReserve of it is kept back:
	// a request still running then is cancelled (proxy.ErrShuttingDown) on
	// a connection left open, so that it ends its answer itself (a stream
	// with an error event naming the shutdown, an answer not begun with a
	// 503) and the bot reads why; Close, once the whole deadline passed,
	// cuts what is left at the TCP level, a stream without its end.
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.Shutdown(cutCtx) == nil {
				return
			}
			a.log.Warn("drain deadline nearly passed; ending in-flight requests", "left", time.Until(start.Add(budget)).Round(time.Millisecond).String())
			s.CancelRequests(proxy.ErrShuttingDown)
			if err := s.Shutdown(sctx); err != nil {
				a.log.Warn("drain deadline passed; closing remaining connections", "err", err)
				_ = s.Close()
			}
		}()
	}
	wg.Wait()
	// The background workers and the store close within what is left of
	// the same deadline, and at least closeFloor after the drain: a store
	// that stopped answering must not hold the exit much past
	// shutdown_timeout, and a healthy one must not be cut under the
	// ledger's queued costs and a delivered webhook's settling write
	// because the drain used the whole timeout.
	closeEnd := start.Add(budget)
	if floor := time.Now().Add(closeFloor(budget)); floor.After(closeEnd) {
		closeEnd = floor
	}
	a.closeBy(closeEnd, cutReserve(budget))
	return failed
}

// localNotifyURL is the notify route's URL at the address its listener
// bound, as a process on this host reaches it: the simulator's notify_url
// (a configured payments.wechatpay.notify_url wins). A listener on every
// interface is reached on 127.0.0.1, as healthURL reaches one: Go binds
// "0.0.0.0:8080" (the image's PAYGATE_LISTEN) as "[::]:8080", and
// http://[::]:8080/ is a connection to ::1, which a container whose
// network has no IPv6 (Docker's default) does not have, so every
// notification of a simulated payment failed there.
func localNotifyURL(addr string) string {
	if host, port, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
	}
	return "http://" + addr + "/wechatpay/notify"
}

// closeFloor is the least time the background workers and the store get to
// close after a drain of budget: a quarter of it, at most 2 s. Healthy,
// they close in milliseconds (40 queued turn costs on Redis: a few ms).
func closeFloor(budget time.Duration) time.Duration {
	return min(2*time.Second, budget/4)
}

// cutReserve is the part of a drain of budget kept for the requests still
// in flight to end on being cancelled: a quarter of it, at most 250 ms. It
// is also how long before its deadline closeBy closes a store that holds
// the close up, for the calls it cuts to return.
// Ending one is a write and a return (a payment call in progress runs on
// detached from the request, payments' detached, and may outlast it), or
// a read bounded within it first (an approval's order, proxy's
// approvalCut). proxy.CutReserve says it.
func cutReserve(budget time.Duration) time.Duration { return proxy.CutReserve(budget) }

// httpServer is what serve needs of a listener's server: proxy/h1's, or
// net/http's where proxy/h1 is not supported (newHTTPServer).
type httpServer interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	// CancelRequests cancels the requests in flight with cause, their
	// connections left open for the answers to end (h1.Server's).
	CancelRequests(cause error)
	Close() error
}

// stdServer is net/http's server with CancelRequests: every request's
// context derives from one (BaseContext) that it cancels with the cause.
type stdServer struct {
	*http.Server
	cancel context.CancelCauseFunc
}

func (s stdServer) CancelRequests(cause error) { s.cancel(cause) }

// serverErrorLog is the HTTP servers' error log, written to l: what a
// client did (a broken TLS handshake, an accept error) at WARN, and a
// handler's panic (net/http's and proxy/h1's "panic serving"), a bug whose
// request got no answer, at ERROR, as the sweeps' panics are, its first
// line the message and its stack the stack attribute.
func serverErrorLog(l *slog.Logger) *log.Logger { return log.New(serverLogWriter{l}, "", 0) }

type serverLogWriter struct{ log *slog.Logger }

func (w serverLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSuffix(string(p), "\n")
	if !strings.Contains(msg, ": panic serving ") {
		w.log.Warn(msg)
		return len(p), nil
	}
	msg, stack, _ := strings.Cut(msg, "\n")
	w.log.Error(msg, "stack", stack)
	return len(p), nil
}

// newHTTPServer serves every listener with proxy/h1's server where it can
// watch for disconnects. On the bots' listener ("main") it is for
// throughput: that listener carries every chat request and net/http's
// server costs it about a quarter of it (BENCHMARKS.md). On the operators'
// ("admin") and the notification listener it is for the framing: net/http's
// server serves a request with both Content-Length and Transfer-Encoding by
// its coding and keeps the connection, frames one with Transfer-Encoding on
// HTTP/1.0 by its length, and joins a folded header line to the one before,
// so a proxy in front (the TLS proxy the notification listener sits behind)
// that frames it otherwise reads another request boundary than paygate, the
// shape of request smuggling; proxy/h1 refuses those heads with a 400 and
// closes the connection. Elsewhere every listener keeps net/http's.
func newHTTPServer(name string, h http.Handler, errLog *log.Logger) httpServer {
	if h1.Supported() {
		if name == "notify" {
			// As ReadTimeout below: the listener faces the internet and
			// takes small bodies answered at once, so a body must come
			// whole within notifyReadTimeout, whatever route reads it
			// (proxy/h1 bounds each wait for body bytes, not a body).
			h = boundAdminBody(h, notifyReadTimeout)
		}
		return &h1.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, ErrorLog: errLog}
	}
	base, cancel := context.WithCancelCause(context.Background())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, ErrorLog: errLog,
		BaseContext: func(net.Listener) context.Context { return base }}
	if name == "notify" {
		// The notification listener faces the internet and takes small
		// bodies (a signed notification of a few KiB) answered at once, so a
		// whole request must be read within notifyReadTimeout: with
		// ReadHeaderTimeout alone, a client that declares a body and stops
		// sending holds its connection and goroutine for as long as it stays
		// connected. (The admin listener bounds request bodies in its
		// handler, boundAdminBody, which answers a stalled one itself;
		// proxy/h1 bounds each wait for body bytes on the bots' listener.)
		srv.ReadTimeout = notifyReadTimeout
	}
	return stdServer{srv, cancel}
}

// notifyReadTimeout bounds reading a request's body on the notification
// listener (newHTTPServer; the whole request under net/http's server), and a notification's body wherever its route is
// served (payments.Options.NotifyReadTimeout: on the bots' listener too,
// whose server bounds only each wait for body bytes); a variable so a test
// need not wait it out.
var notifyReadTimeout = 30 * time.Second

// pprofMutexFraction and pprofBlockRate are the runtime's sampling of lock
// contention (one event in pprofMutexFraction) and of waits (every wait of
// pprofBlockRate or more, a shorter one by its share of it) under
// server.pprof: at the runtime's default of 0 the mutex and block profiles
// came back empty whatever the process waited on. A wait for the store's
// one writer or a lock under a burst lasts milliseconds and is always
// recorded; the per-event channel waits of streams, mostly shorter, cost
// little to sample.
const (
	pprofMutexFraction = 10
	pprofBlockRate     = 100 * time.Microsecond
)

// adminHandler serves the operator endpoints on the admin listener: the
// admin API, the web console at / over it, and the operators' health and
// metrics. Every request passes console.OnlyHosts first (a Host the listener
// is reached by, not a name re-pointed at it), and every state-changing one
// console.Guard (CSRF header, same origin) before the admin token is
// checked. Every admin API route is served through Server.AdminRoute, so
// each answer carries X-Request-Id and is counted under its route label.
func (a *app) adminHandler() http.Handler {
	mux := http.NewServeMux()
	a.server.MountAdminAPI(mux)
	a.server.MountAdminAudit(mux, a.store, a.audit.worker.Erase)
	a.server.MountStats(mux)
	route := a.server.AdminRoute
	mux.Handle("GET /admin/api/webhooks", route("admin_webhooks", a.webhooks.handler()))
	resend := a.webhooks.resendHandler()
	if a.webhooks != nil { // off, every resend is a 409, whatever its body
		resend = a.server.AdminActor(resend)
	}
	mux.Handle("POST /admin/api/orders/{order_no}/webhook", route("admin_webhooks", resend))
	resume := a.webhooks.resumeHandler()
	if a.webhooks != nil { // off, a 409, whatever its body
		resume = a.server.AdminActor(resume)
	}
	mux.Handle("POST /admin/api/webhooks/resume", route("admin_webhooks", resume))
	if a.sim != nil {
		mux.Handle("POST /admin/api/simulator/orders/{order_no}/pay", route("admin_simulator", a.simPayHandler()))
		mux.Handle("POST /admin/api/simulator/refunds/{out_refund_no}/complete", route("admin_simulator", a.simRefundHandler()))
	}
	ui := console.Handler()
	mux.Handle("GET /{$}", ui)
	mux.Handle("GET "+console.AssetPrefix, ui)
	// Every method, so that another than GET gets main's own answer (its
	// 405 method_not_allowed, counted under route operator), as on main,
	// not ServeMux's plain-text one. main serves nothing else here.
	main := a.server.Handler()
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		mux.Handle(p, main)
	}
	if a.cfg.Server.Pprof {
		// Behind the admin token like the rest of the admin listener: a
		// profile costs CPU and a goroutine dump shows requests in flight.
		auth := a.server.AdminAuth
		runtime.SetMutexProfileFraction(pprofMutexFraction)
		runtime.SetBlockProfileRate(int(pprofBlockRate.Nanoseconds()))
		mux.Handle("/debug/pprof/", auth(http.HandlerFunc(pprof.Index)))
		mux.Handle("/debug/pprof/profile", auth(http.HandlerFunc(pprof.Profile)))
		mux.Handle("/debug/pprof/symbol", auth(http.HandlerFunc(pprof.Symbol)))
		mux.Handle("/debug/pprof/trace", auth(http.HandlerFunc(pprof.Trace)))
	}
	// The guards' refusals are admin API answers too: a request id, and
	// counted under admin_csrf and admin_host.
	h := console.Guard(mux, func(h http.Handler) http.Handler { return a.server.Route("admin_csrf", h) })
	hosts := console.NewHosts(a.cfg.Server.AdminListen, a.cfg.Server.AdminHosts)
	return boundAdminBody(adminHeaders(console.OnlyHosts(h, hosts, func(h http.Handler) http.Handler { return a.server.Route("admin_host", h) })),
		adminBodyTimeout)
}

// adminHeaders puts on every answer of the admin listener, whichever
// handler writes it (the admin API's JSON, the webhook relay's, a refusal,
// the metrics), Cache-Control: no-store, so that no browser or proxy keeps
// a copy of orders, OpenIDs or the audit, and X-Content-Type-Options:
// nosniff, so that no browser reads one as anything but its Content-Type.
// Every answer also carries console.DataPolicy as its
// Content-Security-Policy, X-Frame-Options: DENY and Referrer-Policy:
// no-referrer, so that none runs a script, loads anything or is framed by
// another site (clickjacking) when a browser opens it. A handler may set
// its own Cache-Control and Content-Security-Policy over them: the
// console's static page and assets, which hold no data, are revalidated
// (no-cache), and its page runs its own scripts.
func adminHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Cache-Control", "no-store")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Content-Security-Policy", console.DataPolicy)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

// paymentRules maps payments.rules onto the payments service (defaults are
// applied by config: approval above 500.00 CNY, held for a manager up to
// 72h, 20 orders a day, 10 payment calls a minute).
func paymentRules(r config.Rules) payments.Rules {
	out := payments.Rules{MaxOrdersPerUserPerDay: r.MaxOrdersPerUserPerDay, MaxPaymentCallsPerMinute: r.MaxPaymentCallsPerMinute,
		ApprovalTTL: r.ApprovalTTL.D()}
	if fen, ok := r.ApprovalAbove.Fen(); ok && !r.ApprovalAbove.IsZero() {
		out.ApprovalAboveFen = payments.FenPtr(fen)
	}
	return out
}

// withLedger composes payments.Options.Committed: f, then a paid order
// closes its conversation's cost as one completed transaction. The ledger
// counts an order once, however often it becomes paid again (a refund
// WeChat Pay closes, a review settled as paid), and does not wait for the
// store: Committed runs on the notification's path.
func (a *app) withLedger(f func(payments.Transition)) func(payments.Transition) {
	return func(t payments.Transition) {
		f(t)
		if a.ledger != nil && t.After.Status == store.StatusPaid && t.Before.Status != store.StatusPaid {
			a.ledger.Paid(context.Background(), t.After.Client, t.After.User, t.After.Session, t.After.OrderNo, t.After.PaidAt)
		}
	}
}

// adminBodyTimeout bounds reading a request's body on the admin listener
// (boundAdminBody); a variable so a test need not wait it out. Its bodies
// are a decision's few hundred bytes.
var adminBodyTimeout = 10 * time.Second

// boundAdminBody gives a request with a body d to send all of it (the
// notification listener's too, under proxy/h1, which bounds each wait for
// body bytes but not a body). The admin
// listener's server has no ReadTimeout (newHTTPServer), and net/http reads
// what a handler left of a small body before answering, with no deadline:
// a client that declared a body and stopped sending held its connection
// and goroutine, unanswered, for as long as it stayed connected, on any
// route and without a token. Past d the read fails: a handler reading the
// body gets the error, one that did not (a refusal) is answered and the
// connection closed. A body read to its end lifts the deadline (net/http
// clears it when it starts watching the connection for the client going
// away; proxy/h1 reads nothing of the connection while the handler runs),
// so a handler that outlasts d is not cut short.
func boundAdminBody(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
		}
		h.ServeHTTP(w, r)
	})
}
