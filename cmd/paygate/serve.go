package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/proxy"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/embedded"
)

// app is everything serve wires together, so tests can drive the same handler
// the binary serves.
type app struct {
	cfg    *config.Config
	log    *slog.Logger
	reg    *prometheus.Registry
	store  store.Store
	router *failover.Router
	server *proxy.Server
}

// newApp builds the application from a loaded config. logOut receives the
// JSON log.
func newApp(cfg *config.Config, logOut io.Writer) (*app, error) {
	a := &app{cfg: cfg, reg: prometheus.NewRegistry()}
	a.log = logging.New(logOut, logging.ParseLevel(cfg.Log.Level), cfg.Secrets())
	for _, w := range cfg.Warnings {
		a.log.Warn("config", "warning", w)
	}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	st, err := openStore(cfg, a.log)
	if err != nil {
		return nil, err
	}
	a.store = st

	hashKey, err := userHashKey(cfg, st)
	if err != nil {
		a.close()
		return nil, err
	}
	a.router, err = failover.New(cfg, failover.Options{Logger: a.log, Registerer: a.reg})
	if err != nil {
		a.close()
		return nil, fmt.Errorf("building failover: %w", err)
	}
	a.server, err = proxy.New(proxy.Options{
		Config:   cfg,
		Upstream: a.router,
		Logger:   a.log,
		Registry: a.reg,
		Store:    st,
		HashKey:  hashKey,
	})
	if err != nil {
		a.close()
		return nil, fmt.Errorf("building proxy: %w", err)
	}
	return a, nil
}

func (a *app) close() {
	if a.router != nil {
		_ = a.router.Close()
	}
	if a.store != nil {
		_ = a.store.Close()
	}
}

func openStore(cfg *config.Config, log *slog.Logger) (store.Store, error) {
	switch cfg.Store.Driver {
	case "embedded":
		db, err := embedded.Open(cfg.Store.Path, embedded.Options{Logger: log})
		if err != nil {
			return nil, fmt.Errorf("opening store: %w", err)
		}
		return db, nil
	}
	return nil, fmt.Errorf("store driver %q is not built into this version", cfg.Store.Driver)
}

// userHashKey returns privacy.hash_key, or the key generated once and kept in
// the store so every replica and every restart hashes a user the same way.
func userHashKey(cfg *config.Config, st store.Store) ([]byte, error) {
	if cfg.Privacy.HashKey != "" {
		return []byte(cfg.Privacy.HashKey), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key, err := st.GetOrCreateSecret(ctx, "privacy.hash_key", func() ([]byte, error) {
		b := make([]byte, 32)
		_, err := rand.Read(b)
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("loading the user hash key from the store: %w", err)
	}
	return key, nil
}

// serve runs the listeners until ctx ends, then drains in-flight requests up
// to server.shutdown_timeout. ready, when not nil, receives the bound
// addresses once every listener accepts.
func serve(ctx context.Context, cfg *config.Config, logOut io.Writer, ready chan<- map[string]string) error {
	a, err := newApp(cfg, logOut)
	if err != nil {
		return err
	}
	defer a.close()

	type listener struct {
		name string
		addr string
		h    http.Handler
	}
	ls := []listener{{"main", cfg.Server.Listen, a.server.Handler()}}
	if cfg.Server.AdminListen != "" && cfg.Server.AdminListen != "off" {
		ls = append(ls, listener{"admin", cfg.Server.AdminListen, a.adminHandler()})
	}
	if cfg.Server.NotifyListen != "" {
		ls = append(ls, listener{"notify", cfg.Server.NotifyListen, a.server.NotifyHandler()})
	}

	var servers []*http.Server
	errc := make(chan error, len(ls))
	addrs := map[string]string{}
	for _, l := range ls {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			for _, s := range servers {
				_ = s.Close()
			}
			return fmt.Errorf("listening on %s (%s): %w", l.addr, l.name, err)
		}
		srv := &http.Server{
			Handler:           l.h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       120 * time.Second,
			ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		}
		servers = append(servers, srv)
		addrs[l.name] = ln.Addr().String()
		a.log.Info("listening", "listener", l.name, "addr", ln.Addr().String())
		go func() { errc <- srv.Serve(ln) }()
	}
	if ready != nil {
		ready <- addrs
	}

	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("listener failed", "err", err)
		}
	}
	a.log.Info("shutting down: draining in-flight requests", "timeout", cfg.Server.ShutdownTimeout.D().String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout.D())
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(sctx); err != nil {
			a.log.Warn("drain deadline passed; closing remaining connections", "err", err)
			_ = s.Close()
		}
	}
	return nil
}

// adminHandler serves the operator endpoints on the admin listener.
func (a *app) adminHandler() http.Handler {
	mux := http.NewServeMux()
	main := a.server.Handler()
	for _, p := range []string{"GET /healthz", "GET /readyz", "GET /metrics"} {
		mux.Handle(p, main)
	}
	if a.cfg.Server.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}
