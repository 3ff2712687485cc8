package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/store"
)

// metrics are the client-facing counters. Labels are low-cardinality, each
// value one the code or the config names: a route, an HTTP status, a
// budget's limit, a payment tool (turn.metricTool: "unnamed" for any other
// name the model writes), an outcome, a stream's cause, a client's config
// name; never a user or an order.
type metrics struct {
	requests        *prometheus.CounterVec
	duration        *prometheus.HistogramVec
	budgetExhausted *prometheus.CounterVec
	// The two series of budgetExhausted, resolved once.
	roundsExhausted, callsExhausted prometheus.Counter
	stateUnavailable                prometheus.Counter
	hashKeyPending                  prometheus.Counter
	toolCalls                       *prometheus.CounterVec
	recoveries                      *prometheus.CounterVec
	// previousKey counts requests authenticated by a client's
	// previous_key, by client: a series for each client with one.
	previousKey *prometheus.CounterVec
}

// requestBuckets are paygate_request_duration_seconds's: from 1 ms (an
// operator route, a notification) to 10 minutes (a turn of several rounds,
// each attempt up to its provider's timeouts.total, 5 minutes by default).
// They ended at 24 s, so every long turn or stream was +Inf and a quantile
// read 24 s however slow the answers were. The first twelve are the
// earlier ones, which dashboards may name.
var requestBuckets = append(prometheus.ExponentialBuckets(0.001, 2.5, 12), 60, 120, 300, 600)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paygate_requests_total",
			Help: "Client requests by route and HTTP status.",
		}, []string{"route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "paygate_request_duration_seconds",
			Help:    "Client request duration by route (whole stream for streaming requests).",
			Buckets: requestBuckets,
		}, []string{"route"}),
		budgetExhausted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paygate_budget_exhausted_total",
			Help: "Turns that spent a limit of payments.budget, by limit: max_rounds (the turn ended with the clarification text), max_payment_calls (a money-moving call was refused, counted once per turn).",
		}, []string{"limit"}),
	}
	// Both series exist from the start, at 0.
	m.roundsExhausted = m.budgetExhausted.WithLabelValues("max_rounds")
	m.callsExhausted = m.budgetExhausted.WithLabelValues("max_payment_calls")
	m.stateUnavailable = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "paygate_state_unavailable_total",
		Help: "Turns served without payment state because the store did not answer.",
	})
	m.hashKeyPending = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "paygate_user_hash_key_pending_total",
		Help: "Requests forwarded under privacy.forward_user hash before the user hash key was loaded from the store (it did not answer at startup): the end user's identifiers were dropped, not hashed.",
	})
	m.toolCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "paygate_tool_calls_total",
		Help: "Payment tool calls the model made, by tool and outcome (executed, failed: WeChat Pay or the store could not do it, refused: over the turn's budget or a rule, or after a clarification, clarify: arguments incomplete or invalid, not_executed: not run for another reason (an unknown tool, its round's answer unreadable, a call in a choice other than the first, which the turn does not take, one not started because the drain deadline ended its turn), client_gone: not started because the bot had left, cut_by_shutdown: still running when the drain deadline ended its turn; it runs on, its outcome uncounted).",
	}, []string{"tool", "outcome"})
	m.recoveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "paygate_stream_recoveries_total",
		Help: "Streams that broke after their first byte, by the cause of the first break and outcome (recovered, diverged, partial_tool_call, unmatchable_content, budget_spent, off, no_provider, several_choices, too_long: more was sent than paygate keeps to continue it, refused, client_gone).",
	}, []string{"cause", "outcome"})
	m.previousKey = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "paygate_client_previous_key_requests_total",
		Help: "Client requests authenticated by the client's previous_key (a key rotation in progress), by client: once it stops rising with every bot moved to the new key, previous_key can be removed.",
	}, []string{"client"})
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.budgetExhausted, m.stateUnavailable, m.hashKeyPending, m.toolCalls, m.recoveries, m.previousKey} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering proxy metrics: %w", err)
		}
	}
	return m, nil
}

// routeMetrics are one route's series, the common ones resolved once: a
// label lookup hashes the labels and takes the vector's lock on each call.
type routeMetrics struct {
	m        *metrics
	route    string
	ok       prometheus.Counter
	duration prometheus.Observer
}

func (m *metrics) forRoute(route string) *routeMetrics {
	return &routeMetrics{m: m, route: route,
		ok: m.requests.WithLabelValues(route, "200"), duration: m.duration.WithLabelValues(route)}
}

// observe counts a finished request; code 0 is an implicit 200.
func (r *routeMetrics) observe(code int, d time.Duration) {
	if code == 0 || code == http.StatusOK {
		r.ok.Inc()
	} else {
		r.m.requests.WithLabelValues(r.route, strconv.Itoa(code)).Inc()
	}
	r.duration.Observe(d.Seconds())
}

// storeStatuses are paygate_store_status's label values: the store's state
// as /readyz reads it.
var storeStatuses = [...]string{"ready", "unreachable", "writes_fail", "data_lost"}

// storeStatusOf is the status a Ping's error reports.
func storeStatusOf(err error) string {
	switch {
	case err == nil:
		return "ready"
	case errors.Is(err, store.ErrDataLost):
		return "data_lost"
	case errors.Is(err, store.ErrWritesFail):
		return "writes_fail"
	}
	return "unreachable"
}

// storeStatusPing bounds a scrape's ping: a Redis that does not answer
// must not hold the scrape for its whole timeout.
const storeStatusPing = time.Second

// storeStatus is paygate_store_status{status}: 1 for the store's state,
// 0 for the others, read by a ping at each scrape. Without it nothing in
// /metrics said the store was down, refusing writes or had lost its data
// (/readyz did, but it is no metric and the Kubernetes manifest probes
// /healthz), and paygate_state_unavailable_total moves with turns only.
// Each store answers a ping cheaply (a write probe at most every 10 s).
type storeStatus struct {
	ping Pinger
	desc *prometheus.Desc
}

func newStoreStatus(p Pinger) *storeStatus {
	return &storeStatus{ping: p, desc: prometheus.NewDesc("paygate_store_status",
		"The store's state as /readyz reads it, pinged at each scrape: 1 for the current status (ready, unreachable, writes_fail: it answers but refuses writes, data_lost: restart every replica), 0 for the others.",
		[]string{"status"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *storeStatus) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *storeStatus) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), storeStatusPing)
	defer cancel()
	cur := storeStatusOf(c.ping.Ping(ctx))
	for _, st := range storeStatuses {
		v := 0.0
		if st == cur {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, st)
	}
}
