package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the webhook series (SPEC 9): deliveries by outcome, and the
// backlog as last read from the outbox.
type metrics struct {
	deliveries *prometheus.CounterVec
	duration   prometheus.Histogram
	pending    prometheus.Gauge
	retrying   prometheus.Gauge
	oldest     prometheus.Gauge
	dead       prometheus.Gauge
	// throttled counts the 429 and 503 answers whose Retry-After the relay
	// honoured; pausedUntil is the end of the latest such wait.
	throttled   *prometheus.CounterVec
	pausedUntil prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paygate_webhook_deliveries_total",
			Help: "Merchant webhook delivery attempts, by event type and outcome (delivered, failed: will be retried, given_up: retried past webhook retry_for and kept as a dead letter).",
		}, []string{"type", "outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "paygate_webhook_delivery_duration_seconds",
			Help:    "Time of one webhook POST to the merchant, answered or not.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paygate_webhook_pending_orders",
			Help: "Orders with at least one merchant webhook not yet delivered (from the store's outbox, refreshed periodically).",
		}),
		retrying: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paygate_webhook_retrying_orders",
			Help: "Orders whose next merchant webhook has failed at least once and waits for a retry.",
		}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paygate_webhook_oldest_pending_seconds",
			Help: "Age of the oldest undelivered merchant webhook; 0 when none.",
		}),
		dead: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paygate_webhook_dead_letters",
			Help: "Merchant webhooks given up and kept in the store until their order is sent again (unlike the given_up count, it survives a restart).",
		}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paygate_webhook_throttled_total",
			Help: "Merchant webhook answers that asked paygate to wait (a 429 or 503 with a Retry-After), by status; each paused deliveries to the endpoint (counted as failed attempts too).",
		}, []string{"status"}),
		pausedUntil: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paygate_webhook_paused_until_timestamp_seconds",
			Help: "Unix time until which the merchant's endpoint asked paygate to send nothing (Retry-After, capped at webhooks' max delay); 0 when it never asked. Paused while above time().",
		}),
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	for _, c := range []prometheus.Collector{m.deliveries, m.duration, m.pending, m.retrying, m.oldest, m.dead, m.throttled, m.pausedUntil} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("webhook metrics: already registered (one Relay per registry): %w", err)
			}
			return nil, fmt.Errorf("webhook metrics: %w", err)
		}
	}
	for _, t := range Types() {
		for _, o := range []string{OutcomeDelivered, OutcomeFailed, OutcomeGivenUp} {
			m.deliveries.WithLabelValues(t, o)
		}
	}
	for _, st := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		m.throttled.WithLabelValues(strconv.Itoa(st))
	}
	return m, nil
}
