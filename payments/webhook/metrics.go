package webhook

import (
	"errors"
	"fmt"

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
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	for _, c := range []prometheus.Collector{m.deliveries, m.duration, m.pending, m.retrying, m.oldest, m.dead} {
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
	return m, nil
}
