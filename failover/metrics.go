package failover

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

// metrics are the failover collectors (SPEC 9). Labels are bounded: provider
// and model names come from the config, outcomes are Cause constants.
type metrics struct {
	attempts  *prometheus.CounterVec
	failovers *prometheus.CounterVec
	ttfb      *prometheus.HistogramVec
	ttft      *prometheus.HistogramVec
	breaker   *prometheus.GaugeVec
	streams   *prometheus.CounterVec
}

var latencyBuckets = []float64{.05, .1, .25, .5, 1, 2, 4, 8, 15, 30, 60}

// The causes of a failover that left a target without asking it: during an
// outage these are most rounds' failovers, once the breaker opens or the
// provider cools down.
const (
	failoverBreaker = "breaker_open" // open, or half-open with its probe out
	failoverCooling = "cooling_down"
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paygate_upstream_attempts_total",
			Help: "Upstream attempts by provider and outcome (ok or the failure cause).",
		}, []string{"provider", "outcome"}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paygate_upstream_failovers_total",
			Help: "Moves from one target to the next within a round, by model, the provider left and the cause (a failed attempt's, or breaker_open / cooling_down for a target left unasked).",
		}, []string{"model", "provider", "cause"}),
		ttfb: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "paygate_upstream_time_to_first_byte_seconds",
			Help:    "Time from sending an upstream request to its response headers.",
			Buckets: latencyBuckets,
		}, []string{"provider"}),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "paygate_upstream_time_to_first_token_seconds",
			Help:    "Time from sending an upstream stream request to its first token-bearing event.",
			Buckets: latencyBuckets,
		}, []string{"provider"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "paygate_upstream_breaker_state",
			Help: "Circuit breaker state per provider: 0 closed, 1 half-open, 2 open.",
		}, []string{"provider"}),
		streams: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paygate_upstream_stream_ends_total",
			Help: "Upstream streams, and answers piped on passthrough paths, by provider and how they ended (complete, closed_early or the failure cause).",
		}, []string{"provider", "outcome"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.attempts, m.failovers, m.ttfb, m.ttft, m.breaker, m.streams} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) breakerState(provider string, s gobreaker.State) {
	v := 0.0
	switch s {
	case gobreaker.StateHalfOpen:
		v = 1
	case gobreaker.StateOpen:
		v = 2
	}
	m.breaker.WithLabelValues(provider).Set(v)
}
