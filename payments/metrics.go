package payments

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the payments series (SPEC 9): notifications by outcome and why,
// order transitions, reconciler actions.
type metrics struct {
	notifications  *prometheus.CounterVec
	notifyDuration prometheus.Histogram
	transitions    *prometheus.CounterVec
	reconcile      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paygate_notifications_total",
			Help: "WeChat Pay notifications received, by event type, outcome (applied, duplicate, review, orphan, rejected, error, ignored) and reason.",
		}, []string{"event", "outcome", "reason"}),
		notifyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "paygate_notify_duration_seconds",
			Help:    "Time to answer a WeChat Pay notification.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
		}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paygate_order_transitions_total",
			Help: "Committed order status changes, by from, to and cause.",
		}, []string{"from", "to", "cause"}),
		reconcile: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paygate_reconcile_total",
			Help: "Reconciler actions on pending orders, by action and outcome.",
		}, []string{"action", "outcome"}),
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	for _, c := range []prometheus.Collector{m.notifications, m.notifyDuration, m.transitions, m.reconcile} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("payments metrics: already registered (one Service per registry): %w", err)
			}
			return nil, fmt.Errorf("payments metrics: %w", err)
		}
	}
	return m, nil
}
