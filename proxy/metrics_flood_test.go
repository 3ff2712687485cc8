package proxy

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// gatherCounter is a collector that counts the gathers that reach it and
// reports the count, this gather's included.
type gatherCounter struct {
	n    atomic.Int64
	desc *prometheus.Desc
}

func (c *gatherCounter) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c *gatherCounter) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(c.n.Add(1)))
}

// TestMetricsFloodGathersBounded: /metrics is served without a key on
// every listener that serves it (the bots' one included), and each request
// gathered every metric (the store pinged, a Redis round trip) and encoded
// and compressed them afresh: about 1.1 ms of CPU each through the real
// binary, so 1,000 requests a second from one sender took 127% of a core
// and the bots' chat turns went from 0.6 ms to 40 ms at the median. Many
// requests at once now share gathers, at most one per scrapeEvery, and
// each still sees a gather begun after it arrived (nothing it reads is
// older than its request).
func TestMetricsFloodGathersBounded(t *testing.T) {
	s, url := servePaygate(t, testConfig(t, "http://127.0.0.1:1", nil), Options{}, nil)
	gc := &gatherCounter{desc: prometheus.NewDesc("paygate_test_gathers", "gathers so far", nil, nil)}
	s.reg.MustRegister(gc)
	value := regexp.MustCompile(`(?m)^paygate_test_gathers (\d+)$`)
	const scrapes, workers = 64, 16
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= scrapes {
				before := gc.n.Load()
				resp, err := http.Get(url + "/metrics") // gzip asked, as Prometheus does
				if err != nil {
					t.Error(err)
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Errorf("GET /metrics: %d %v", resp.StatusCode, err)
					return
				}
				m := value.FindSubmatch(body)
				if m == nil {
					t.Errorf("no paygate_test_gathers in /metrics:\n%.300s", body)
					return
				}
				if got, _ := strconv.ParseInt(string(m[1]), 10, 64); got <= before {
					t.Errorf("a scrape read gather %d, begun before it arrived (%d gathers then)", got, before)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	// One gather may begin at once, then one per scrapeEvery at most.
	if bound := 1 + int64(elapsed/scrapeEvery) + 1; gc.n.Load() > bound {
		t.Errorf("%d scrapes from %d senders made %d gathers in %v; want at most %d (one per %v)",
			scrapes, workers, gc.n.Load(), elapsed.Round(time.Millisecond), bound, scrapeEvery)
	}
}
