package proxy

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// slowGatherer is a Gatherer whose gathers take d each, as one does while
// the store's ping waits for a Redis that does not answer (up to
// storeStatusPing); it keeps the most gathers it saw in flight at once.
type slowGatherer struct {
	d              time.Duration
	in, most, runs atomic.Int64
}

func (g *slowGatherer) Gather() ([]*dto.MetricFamily, error) {
	n := g.in.Add(1)
	defer g.in.Add(-1)
	for m := g.most.Load(); n > m && !g.most.CompareAndSwap(m, n); m = g.most.Load() {
	}
	g.runs.Add(1)
	time.Sleep(g.d) // the gather's own duration, not a wait for another goroutine
	return nil, nil
}

var _ prometheus.Gatherer = (*slowGatherer)(nil)

// TestMetricsSlowGathersDoNotOverlap: a gather takes as long as the
// store's ping, up to a second while Redis does not answer, and the gate
// began one every scrapeEvery whatever the last was doing, so a flood of
// scrapes kept ten in flight, ten pings holding ten of the pool's
// connections to a Redis the bots' turns wait on. A gather begins only
// once the last has ended, and still after every request it answers
// arrived.
func TestMetricsSlowGathersDoNotOverlap(t *testing.T) {
	g := &slowGatherer{d: 3 * scrapeEvery}
	gate := newScrapeGate(g)
	// Senders that do not wait for each other: a scrape every
	// scrapeEvery/10, for ten scrapeEvery.
	var wg sync.WaitGroup
	tick := time.NewTicker(scrapeEvery / 10)
	defer tick.Stop()
	for range 100 {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			before := g.runs.Load()
			rec := httptest.NewRecorder()
			gate.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			if rec.Code != http.StatusOK {
				t.Errorf("GET /metrics: %d", rec.Code)
			}
			if after := g.runs.Load(); after <= before {
				t.Errorf("a scrape was answered by no gather begun after it arrived (%d gathers before, %d after)", before, after)
			}
		}()
	}
	wg.Wait()
	if m := g.most.Load(); m != 1 {
		t.Errorf("%d gathers in flight at once (%d in all, each %v); want 1", m, g.runs.Load(), g.d)
	}
}
