package failover

import (
	"time"

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

// latencyBuckets are the time to first byte's and token's: up to 5
// minutes, the default timeouts.total a non-streamed answer's headers may
// take (a reasoning model's whole answer). They ended at 60 s, beyond which
// a quantile read 60 s whatever the latency.
var latencyBuckets = []float64{.05, .1, .25, .5, 1, 2, 4, 8, 15, 30, 60, 120, 300}

// The causes of a failover that left a target without asking it: during an
// outage these are most rounds' failovers, once the breaker opens or the
// provider cools down.
const (
	failoverBreaker = "breaker_open" // open, or half-open with its probe out
	failoverCooling = "cooling_down"
	failoverSilent  = "silent" // its provider did not answer earlier in the round
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paygate_upstream_attempts_total",
			Help: "Upstream attempts by provider and outcome (ok or the failure cause).",
		}, []string{"provider", "outcome"}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paygate_upstream_failovers_total",
			Help: "Moves from one target to the next within a round, by model, the provider left and the cause (a failed attempt's, or breaker_open / cooling_down / silent for a target left unasked).",
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

// coolingCollector is paygate_upstream_cooldown_seconds and
// paygate_upstream_target_cooldown_seconds, read from Router.Status at each
// scrape. A provider in cool-down (out of quota for 30 minutes, a refused
// key, a long Retry-After) sits out every round with its breaker closed,
// and a target cooled on its own (an OpenRouter ":free" model until its
// daily reset) with its provider healthy: the breaker gauge read 0 for
// both, and nothing else in /metrics said they were out of service.
// Labels come from the config (providers, public and upstream model
// names) and the Cause constants.
type coolingCollector struct {
	r        *Router
	provider *prometheus.Desc
	target   *prometheus.Desc
}

func newCoolingCollector(r *Router) *coolingCollector {
	return &coolingCollector{r: r,
		provider: prometheus.NewDesc("paygate_upstream_cooldown_seconds",
			"Seconds left of each provider's cool-down (rounds skip it meanwhile; its breaker may read closed), by its cause (upstream_rate_limited, upstream_insufficient_quota, upstream_misconfigured; none: not cooling, 0). POST /admin/api/providers/{name}/reset ends it on this replica.",
			[]string{"provider", "cause"}, nil),
		target: prometheus.NewDesc("paygate_upstream_target_cooldown_seconds",
			"Seconds left of the cool-down of a target cooling on its own while its provider serves its other models (an OpenRouter :free model until its daily limit's reset), by provider, public model and upstream model; a target not cooling has no series.",
			[]string{"provider", "model", "target"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *coolingCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.provider
	ch <- c.target
}

// Collect implements prometheus.Collector.
func (c *coolingCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.r.opts.Now()
	for _, st := range c.r.Status() {
		cause, left := "none", 0.0
		if !st.CoolingUntil.IsZero() {
			cause, left = st.CoolingCause, max(st.CoolingUntil.Sub(now).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(c.provider, prometheus.GaugeValue, left, st.Name, cause)
		// A model may list one target twice: one series for it (two
		// of the same labels fail the whole scrape), the longest wait.
		until := map[[2]string]time.Time{}
		var order [][2]string
		for _, t := range st.CoolingTargets {
			k := [2]string{t.Model, t.Target}
			if u, ok := until[k]; !ok {
				order = append(order, k)
			} else if u.After(t.Until) {
				continue
			}
			until[k] = t.Until
		}
		for _, k := range order {
			ch <- prometheus.MustNewConstMetric(c.target, prometheus.GaugeValue, max(until[k].Sub(now).Seconds(), 0), st.Name, k[0], k[1])
		}
	}
}
