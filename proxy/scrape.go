package proxy

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// scrapeEvery is the least time between the starts of two gathers of
// /metrics (scrapeGate). A scraper asks every 15 s or more; a scrape that
// comes within it of the last gather waits for the next, at most this long
// past the last's end.
const scrapeEvery = 100 * time.Millisecond

// scrapeGate serves /metrics. /metrics is served without a key on every
// listener that serves it, the bots' one included, and promhttp's handler
// gathered every metric (the store pinged: a Redis round trip), encoded
// and compressed them for each request: about 1.1 ms of CPU each, so a
// flood of 1,000 a second from one sender took more than a core and slowed
// every chat turn. Here the requests that arrive while a gather is due
// share it, gathers begin at most once per scrapeEvery and one at a time
// (the next once the last has ended), and each answer is
// encoded once per gather for each format and encoding asked: a request
// costs a copy of bytes made for it and the others. A request still reads
// a gather begun after it arrived, never an older one. The format is
// negotiated as promhttp's is (text unless protobuf is asked); gzip is
// given to a client that takes it; a name[] filter is not applied (the
// whole set is always an answer a scraper reads).
type scrapeGate struct {
	g  prometheus.Gatherer
	mu sync.Mutex
	// due is the gather the requests arriving now join, not begun yet;
	// nil when none is due.
	due *scrapeCycle
	// last is when the last gather began.
	last time.Time
	// prev is the cycle made last: the next gather begins once it has
	// ended (nil before the first).
	prev *scrapeCycle
}

// scrapeCycle is one gather and the answers made of it.
type scrapeCycle struct {
	ready chan struct{} // closed once mfs and err are set
	mfs   []*dto.MetricFamily
	err   error

	mu      sync.Mutex
	answers map[scrapeKey]*scrapeAnswer
}

type scrapeKey struct {
	format expfmt.Format
	gzip   bool
}

// scrapeAnswer is an encoded answer: its body, or the error that stopped
// its encoding.
type scrapeAnswer struct {
	body []byte
	err  error
}

func newScrapeGate(g prometheus.Gatherer) *scrapeGate { return &scrapeGate{g: g} }

func (g *scrapeGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := scrapeKey{format: expfmt.NegotiateAccept(r.Header, expfmt.DefaultAcceptedFormats()...), gzip: takesGzip(r.Header)}
	cy := g.join()
	select {
	case <-cy.ready:
	case <-r.Context().Done():
		return // the client left; the gather goes on for the others
	}
	h := w.Header()
	h.Add("Vary", "Accept")
	h.Add("Vary", "Accept-Encoding")
	if cy.err != nil {
		// As promhttp's default (HTTPErrorOnError).
		http.Error(w, "An error has occurred while serving metrics:\n\n"+cy.err.Error(), http.StatusInternalServerError)
		return
	}
	a := cy.answer(key)
	if a.err != nil {
		http.Error(w, "An error has occurred while serving metrics:\n\n"+a.err.Error(), http.StatusInternalServerError)
		return
	}
	h.Set("Content-Type", string(key.format))
	if key.gzip {
		h.Set("Content-Encoding", "gzip")
	}
	_, _ = w.Write(a.body)
}

// join returns the gather due for a request arriving now, starting one
// when none is: at once when the last began scrapeEvery ago or more and
// has ended, else when both are so. A gather takes as long as the store's
// ping (up to storeStatusPing while Redis does not answer): begun every
// scrapeEvery whatever the last was doing, a flood kept ten in flight,
// ten pings holding ten of the pool's connections the bots' turns wait on.
func (g *scrapeGate) join() *scrapeCycle {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.due != nil {
		return g.due
	}
	cy := &scrapeCycle{ready: make(chan struct{}), answers: map[scrapeKey]*scrapeAnswer{}}
	g.due = cy
	prev := g.prev
	g.prev = cy
	wait := time.Until(g.last.Add(scrapeEvery))
	go g.gather(cy, prev, wait)
	return cy
}

// gather begins cy's gather after wait and once prev's has ended. From
// then on a request arriving makes the next cycle: every request that
// joined cy arrived before its gather began.
func (g *scrapeGate) gather(cy, prev *scrapeCycle, wait time.Duration) {
	if wait > 0 {
		time.Sleep(wait)
	}
	if prev != nil {
		<-prev.ready
	}
	g.mu.Lock()
	g.due = nil
	g.last = time.Now()
	g.mu.Unlock()
	defer close(cy.ready)
	defer func() {
		// Served in the request, a panic was the server's to log and
		// answer; here, with no request of its own, it would end the
		// process: every scrape of the cycle is told instead.
		if p := recover(); p != nil {
			cy.mfs, cy.err = nil, fmt.Errorf("gathering metrics panicked: %v", p)
		}
	}()
	cy.mfs, cy.err = g.g.Gather()
}

// answer is cy encoded for key, made by the first request that asks.
func (cy *scrapeCycle) answer(key scrapeKey) *scrapeAnswer {
	cy.mu.Lock()
	defer cy.mu.Unlock()
	if a, ok := cy.answers[key]; ok {
		return a
	}
	var buf bytes.Buffer
	a := &scrapeAnswer{}
	if key.gzip {
		zw := gzip.NewWriter(&buf)
		a.err = encodeFamilies(zw, key.format, cy.mfs)
		if err := zw.Close(); a.err == nil {
			a.err = err
		}
	} else {
		a.err = encodeFamilies(&buf, key.format, cy.mfs)
	}
	a.body = buf.Bytes()
	cy.answers[key] = a
	return a
}

func encodeFamilies(w io.Writer, format expfmt.Format, mfs []*dto.MetricFamily) error {
	enc := expfmt.NewEncoder(w, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		return c.Close()
	}
	return nil
}

// takesGzip reports whether an Accept-Encoding header takes gzip: named
// without q=0, or, not named, "*" without q=0. A gzip named with q=0 is
// refused whatever "*" says (RFC 9110 12.5.3: "*" stands for the codings
// not named); the parameter's name is read without regard to case.
func takesGzip(h http.Header) bool {
	gzipQ, starQ := -1.0, -1.0
	for _, v := range h.Values("Accept-Encoding") {
		for _, part := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(part, ";")
			name = strings.ToLower(strings.TrimSpace(name))
			if name != "gzip" && name != "*" {
				continue
			}
			q := 1.0
			for _, p := range strings.Split(params, ";") {
				k, val, _ := strings.Cut(p, "=")
				if strings.EqualFold(strings.TrimSpace(k), "q") {
					if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
						q = f
					}
				}
			}
			if name == "gzip" {
				gzipQ = max(gzipQ, q)
			} else {
				starQ = max(starQ, q)
			}
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}
