package audit

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/store"
)

// Metrics are the audit's Prometheus metrics, shared by the Worker and the
// head publisher.
type Metrics struct {
	head      prometheus.Gauge
	headInfo  *headInfo
	records   *prometheus.CounterVec
	conflicts prometheus.Counter
	cuts      prometheus.Counter
}

func newMetrics() *Metrics {
	return &Metrics{
		head: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paygate_audit_head_seq",
			Help: "Sequence number of the audit chain's head (published so a cut from the end is caught).",
		}),
		headInfo: &headInfo{desc: prometheus.NewDesc("paygate_audit_head_info",
			"The audit chain's head: always 1, labelled with its sequence number and hash (SEQ:HASH is what `paygate audit verify --head` takes).",
			[]string{"seq", "hash"}, nil)},
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paygate_audit_records_total",
			Help: "Audit events processed, by outcome (appended, duplicate: already in the chain, error).",
		}, []string{"outcome"}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paygate_audit_append_conflicts_total",
			Help: "Audit appends that lost the race for the chain head and were retried.",
		}),
		cuts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paygate_audit_chain_cuts_total",
			Help: "Times this replica found the audit chain's head behind records it had read in the chain (cut from the end, or the head moved back), each also logged as `audit chain cut` with alert: run paygate audit verify --head with a head published before.",
		}),
	}
}

// NewMetrics registers the audit metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := newMetrics()
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.head, m.headInfo, m.records, m.conflicts, m.cuts} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("audit metrics: %w", err)
		}
	}
	return m, nil
}

// setHead publishes h in both head metrics: the sequence gauge and the info
// series, and returns the head now published. The worker publishes each
// record it appends and the publisher the head it read, and a record may be
// appended between the publisher's read and its set: the head published
// never moves back within a process, so one older than it (fewer records)
// is ignored and the published one returned. paygate_audit_head_seq went
// back from 3 to 2 otherwise, and an alert on its decrease fired on a
// healthy chain. A chain cut from the end is the worker's alarm (`audit
// chain cut`), not the gauge's; a head at the same sequence with another
// hash (a last record replaced) is published.
func (m *Metrics) setHead(h store.AuditHead) store.AuditHead {
	return m.headInfo.set(h, m.head)
}

// headInfo is paygate_audit_head_info{seq="N",hash="H"} 1: one series, the
// last head published. A collector of its own rather than a GaugeVec that is
// reset and set again, so a scrape never falls between the two and sees no
// head (or two).
type headInfo struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	h    store.AuditHead
	ok   bool // a head was published
}

// set publishes h in i and in gauge seq, unless a later head is
// published, and returns the head published. Both are set under i's lock,
// so two sets in a race leave them agreeing.
func (i *headInfo) set(h store.AuditHead, seq prometheus.Gauge) store.AuditHead {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.ok && h.Seq < i.h.Seq {
		return i.h
	}
	i.h, i.ok = h, true
	seq.Set(float64(h.Seq))
	return h
}

// get is the head published; false before any.
func (i *headInfo) get() (store.AuditHead, bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.h, i.ok
}

// Describe implements prometheus.Collector.
func (i *headInfo) Describe(ch chan<- *prometheus.Desc) { ch <- i.desc }

// Collect implements prometheus.Collector.
func (i *headInfo) Collect(ch chan<- prometheus.Metric) {
	i.mu.Lock()
	h, ok := i.h, i.ok
	i.mu.Unlock()
	if ok {
		ch <- prometheus.MustNewConstMetric(i.desc, prometheus.GaugeValue, 1, strconv.FormatUint(h.Seq, 10), h.Hash)
	}
}
