package proxy

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// TestScrapeAnswerEncodedOncePerCycle: the requests that share a gather
// share its encoding too (the CPU of a flood was mostly the encoding and
// the gzip of each answer): every request of a cycle asking one format and
// encoding gets the one answer made for the first, and another format its
// own. TestMetricsFloodGathersBounded passed with each answer encoded
// afresh.
func TestScrapeAnswerEncodedOncePerCycle(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGoCollector())
	gate := newScrapeGate(reg)
	cy := gate.join()
	<-cy.ready
	text := scrapeKey{format: expfmt.NegotiateAccept(http.Header{}, expfmt.DefaultAcceptedFormats()...), gzip: true}
	var wg sync.WaitGroup
	got := make([]*scrapeAnswer, 16)
	for i := range got {
		wg.Add(1)
		go func() { defer wg.Done(); got[i] = cy.answer(text) }()
	}
	wg.Wait()
	for i, a := range got {
		if a != got[0] || a.err != nil {
			t.Fatalf("request %d of one cycle got answer %p (err %v); want the first's, %p", i, a, a.err, got[0])
		}
	}
	proto := text
	proto.format = expfmt.NewFormat(expfmt.TypeProtoDelim)
	if p := cy.answer(proto); p == got[0] || bytes.Equal(p.body, got[0].body) {
		t.Errorf("protobuf asked: got the text answer")
	}
	// Served, a request reads the cycle's bytes as they are.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	gate.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Encoding") != "gzip" || rec.Body.Len() == 0 {
		t.Errorf("GET /metrics: %d %q, %d bytes; want 200, gzip", rec.Code, rec.Header().Get("Content-Encoding"), rec.Body.Len())
	}
}
