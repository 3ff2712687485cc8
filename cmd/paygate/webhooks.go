package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
)

// appOption adjusts what newApp builds beyond the config (tests shorten the
// webhook retry schedule with it).
type appOption func(*appOptions)

type appOptions struct {
	webhook func(*webhook.Options)
	// wechatpayTransport carries the requests to WeChat Pay (tests record
	// them); nil: the default transport.
	wechatpayTransport http.RoundTripper
	// hashKeyRetry replaces hashKeyRetry, the schedule of the user hash
	// key's background load; zero: hashKeyRetry.
	hashKeyRetry backoff
	// wrapStore, when set, stands between the application and the store
	// the config opens (tests make single writes fail with it).
	wrapStore func(store.Store) store.Store
	// paymentsNow, when set, is the payments service's clock (tests move
	// it past the reconciler's waits instead of sleeping through them).
	paymentsNow func() time.Time
	// prepayTimeout, when set, is the payments service's PrepayTimeout
	// (tests of a WeChat Pay that never answers end its wait sooner than
	// the default's 15 s).
	prepayTimeout time.Duration
	// noStoreWait opens a Redis store without waiting for it (serve): its
	// first check of Redis and the user hash key's first load run in the
	// background (app.storeStart).
	noStoreWait bool
	// otherStores leaves out the check of the store files the config can
	// see but does not serve on (checkLeftStores): the demo's store is a
	// file of its own, whatever the directory it runs in holds.
	skipLeftStores bool
	// storeNoSync opens an embedded store without an fsync after each
	// write (embedded.Options.NoSync): tests that write thousands of
	// orders whose durability they do not test.
	storeNoSync bool
	// configure, when set, changes the config before anything reads it
	// (a test's sweep interval, where its YAML is a shared helper's).
	configure func(*config.Config)
}

// withConfig has newApp change the config with f before it reads any of it.
func withConfig(f func(*config.Config)) appOption {
	return func(o *appOptions) { o.configure = f }
}

// withoutStoreSync opens an embedded store without an fsync after each
// write (a test's thousands of orders).
func withoutStoreSync() appOption {
	return func(o *appOptions) { o.storeNoSync = true }
}

// withoutLeftStoreCheck starts without checkLeftStores (the demo).
func withoutLeftStoreCheck() appOption {
	return func(o *appOptions) { o.skipLeftStores = true }
}

// withoutStoreWait opens a Redis store without waiting for it: newApp
// returns at once on a Redis that does not answer, and serve answers on
// its listeners meanwhile as it does when Redis stops answering later.
func withoutStoreWait() appOption {
	return func(o *appOptions) { o.noStoreWait = true }
}

// withPaymentsClock gives the payments service the clock now.
func withPaymentsClock(now func() time.Time) appOption {
	return func(o *appOptions) { o.paymentsNow = now }
}

// withPrepayTimeout bounds the payments service's prepay calls by d.
func withPrepayTimeout(d time.Duration) appOption {
	return func(o *appOptions) { o.prepayTimeout = d }
}

// withStoreWrap puts f's store between the application and its store.
func withStoreWrap(f func(store.Store) store.Store) appOption {
	return func(o *appOptions) { o.wrapStore = f }
}

// withWeChatPayTransport routes the WeChat Pay client's requests through rt.
func withWeChatPayTransport(rt http.RoundTripper) appOption {
	return func(o *appOptions) { o.wechatpayTransport = rt }
}

// withHashKeyRetry makes the user hash key's background load ask the store
// first after first, then up to every max.
func withHashKeyRetry(first, max time.Duration) appOption {
	return func(o *appOptions) { o.hashKeyRetry = backoff{first, max} }
}

// withWebhookOptions lets a test change the relay's options (retry base,
// poll interval, clock, a store that reports its writes) before it starts;
// given more than once, each changes them in turn.
func withWebhookOptions(f func(*webhook.Options)) appOption {
	return func(o *appOptions) {
		prev := o.webhook
		o.webhook = func(w *webhook.Options) {
			if prev != nil {
				prev(w)
			}
			f(w)
		}
	}
}

// webhooks is the merchant webhooks' part of a running paygate: the relay
// draining the outbox to webhooks.url.
type webhooks struct {
	relay  *webhook.Relay
	cancel context.CancelFunc
	done   chan struct{}
}

// newWebhooks builds and starts the relay, or returns nil when webhooks.url
// is empty (webhooks off: no event is enqueued either). moved is
// webhook.Options.Moved: the audit worker's Wake, so that the audit records
// queued behind a webhook on its order's queue are appended as soon as the
// relay moved it off, not at the worker's next poll (the relay is woken
// the other way by the worker: auditing.wakeOnAcked).
func newWebhooks(cfg *config.Config, st store.Store, reg prometheus.Registerer, log *slog.Logger, moved func(), tweak func(*webhook.Options)) (*webhooks, error) {
	if cfg.Webhooks.URL == "" {
		return nil, nil
	}
	o := webhook.Options{Store: st, URL: cfg.Webhooks.URL, Secret: cfg.Webhooks.Secret, Registerer: reg, Logger: log,
		ResendEvents: audit.ResendEvents, Moved: moved}
	if tweak != nil {
		tweak(&o)
	}
	r, err := webhook.New(o)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &webhooks{relay: r, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(w.done); r.Run(ctx) }()
	return w, nil
}

// stop ends the relay and waits for it, before the store closes.
func (w *webhooks) stop() {
	if w == nil {
		return
	}
	w.cancel()
	<-w.done
}

// handler serves GET /admin/api/webhooks (behind the admin token).
func (w *webhooks) handler() http.Handler {
	if w == nil {
		return webhook.DisabledHandler()
	}
	return w.relay.Handler()
}

// resendHandler serves POST /admin/api/orders/{order_no}/webhook (behind
// the admin token and the console's CSRF guard, and proxy.AdminActor, whose
// actor the resend's audit record names).
func (w *webhooks) resendHandler() http.Handler {
	if w == nil {
		return webhook.DisabledResendHandler()
	}
	return w.relay.ResendHandler()
}

// resumeHandler serves POST /admin/api/webhooks/resume (behind the admin
// token, the console's CSRF guard and proxy.AdminActor, whose actor its log
// line names).
func (w *webhooks) resumeHandler() http.Handler {
	if w == nil {
		return webhook.DisabledResumeHandler()
	}
	return w.relay.ResumeHandler()
}

// withWebhookEvents composes payments.Options.Events: the events of f (the
// audit record) and the transition's merchant webhook, all enqueued
// atomically with the transition on the order's key, f's first.
func (a *app) withWebhookEvents(f func(payments.Transition) []store.Event) func(payments.Transition) []store.Event {
	if a.webhooks == nil {
		return f
	}
	return func(t payments.Transition) []store.Event {
		return append(f(t), webhook.Events(t)...)
	}
}

// withWebhookWake composes payments.Options.Committed: f, then wake the
// relay.
func (a *app) withWebhookWake(f func(payments.Transition)) func(payments.Transition) {
	if a.webhooks == nil {
		return f
	}
	return func(t payments.Transition) {
		f(t)
		a.webhooks.relay.Wake()
	}
}

// withWebhookProposalEvents composes payments.Options.ProposalEvents: the
// events of f (the audit record), then the refund.proposed webhook, all
// written atomically with the proposal on its queue, f's first.
func (a *app) withWebhookProposalEvents(f func(context.Context, payments.ProposalStep, store.RefundProposal, *store.Order) []store.Event) func(context.Context, payments.ProposalStep, store.RefundProposal, *store.Order) []store.Event {
	if a.webhooks == nil {
		return f
	}
	return func(ctx context.Context, step payments.ProposalStep, p store.RefundProposal, o *store.Order) []store.Event {
		return append(f(ctx, step, p, o), webhook.ProposalEvents(ctx, step, p, o)...)
	}
}

// withWebhookProposals composes payments.Options.Proposed: f (the audit
// worker's wake), then wake the relay for the refund.proposed the proposal
// carried.
func (a *app) withWebhookProposals(f func(context.Context, store.RefundProposal)) func(context.Context, store.RefundProposal) {
	if a.webhooks == nil {
		return f
	}
	return func(ctx context.Context, p store.RefundProposal) {
		f(ctx, p)
		a.webhooks.relay.Wake()
	}
}
