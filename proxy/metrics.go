package proxy

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the client-facing counters. Labels are low-cardinality: route
// and status only, never a user or an order.
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
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paygate_requests_total",
			Help: "Client requests by route and HTTP status.",
		}, []string{"route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "paygate_request_duration_seconds",
			Help:    "Client request duration by route (whole stream for streaming requests).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
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
		Help: "Payment tool calls the model made, by tool and outcome (executed, failed: WeChat Pay or the store could not do it, refused: over the turn's budget or a rule, or after a clarification, clarify: arguments incomplete or invalid, not_executed, client_gone: not started because the bot had left).",
	}, []string{"tool", "outcome"})
	m.recoveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "paygate_stream_recoveries_total",
		Help: "Streams that broke after their first byte, by the cause of the first break and outcome (recovered, diverged, partial_tool_call, unmatchable_content, budget_spent, off, no_provider, several_choices, refused, client_gone).",
	}, []string{"cause", "outcome"})
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.budgetExhausted, m.stateUnavailable, m.hashKeyPending, m.toolCalls, m.recoveries} {
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
