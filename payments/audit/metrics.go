package audit

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the audit's Prometheus metrics, shared by the Worker and the
// head publisher.
type Metrics struct {
	head      prometheus.Gauge
	records   *prometheus.CounterVec
	conflicts prometheus.Counter
}

func newMetrics() *Metrics {
	return &Metrics{
		head: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paygate_audit_head_seq",
			Help: "Sequence number of the audit chain's head (published so a cut from the end is caught).",
		}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paygate_audit_records_total",
			Help: "Audit events processed, by outcome (appended, duplicate: already in the chain, error).",
		}, []string{"outcome"}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paygate_audit_append_conflicts_total",
			Help: "Audit appends that lost the race for the chain head and were retried.",
		}),
	}
}

// NewMetrics registers the audit metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := newMetrics()
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.head, m.records, m.conflicts} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("audit metrics: %w", err)
		}
	}
	return m, nil
}
