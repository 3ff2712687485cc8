package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/store"
)

// TestWorkerSaysTheChainWasCut: a worker that finds the chain's head
// behind records it read in the chain (records cut from the end, the head
// moved back) says so at once, at error level with the alert mark, naming
// both, before it appends on. A live cut is only possible on Redis (the
// embedded file is locked while paygate runs). Before, the worker forgot
// what it had read and appended on the cut chain in silence: the cut was
// found only by an auditor who verified against a head published earlier,
// and the running replicas, which had seen it happen, left no trace of it.
func TestWorkerSaysTheChainWasCut(t *testing.T) {
	e := newEnv(t, "redis")
	st := e.store()
	logs := &logtest.Buffer{}
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	w := newTestWorker(t, st, func(o *WorkerOptions) {
		o.Logger = logging.New(logs, slog.LevelDebug, nil)
		o.Metrics = m
	})
	for i := 1; i <= 4; i++ {
		enqueue(t, st, mustEvent(t, Action{Time: time.Now(), Name: "order.created", Client: "shop-bot", User: "oAlice",
			OrderNo: fmt.Sprintf("PG%d", i), AmountFen: 4999}, ""))
	}
	if got := drainAll(t, w); got != 4 {
		t.Fatalf("drained %d; want 4", got)
	}
	recs := readAll(t, st)
	e.rawDelete(4)
	e.rawDelete(3)
	e.rawSetHead(store.AuditHead{Seq: 2, Hash: recs[1].Hash})
	if strings.Contains(logs.String(), "cut") {
		t.Fatalf("a cut reported before any: %s", logs.String())
	}
	// The on-call alerting on /metrics sees the cut too: a series at 0
	// before it, so the alert's increase() sees the first.
	const cutLine = "paygate_audit_chain_cuts_total %d\n"
	if got := scrapeMetrics(t, reg); !strings.Contains(got, fmt.Sprintf(cutLine, 0)) {
		t.Fatalf("/metrics before the cut lacks %q:\n%s", fmt.Sprintf(cutLine, 0), got)
	}
	enqueue(t, st, mustEvent(t, Action{Time: time.Now(), Name: "order.paid", Client: "shop-bot", User: "oAlice", OrderNo: "PG9", AmountFen: 4999}, ""))
	if got := drainAll(t, w); got != 1 {
		t.Fatalf("drained %d after the cut; want 1", got)
	}
	var found map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if msg, _ := rec["msg"].(string); strings.Contains(msg, "cut") {
			found = rec
		}
	}
	if found == nil {
		t.Fatalf("no line about the cut chain: %s", logs.String())
	}
	if found["level"] != "ERROR" || found["alert"] != true || found["head_seq"] != float64(2) || found["read_to_seq"] != float64(4) {
		t.Errorf("the cut's line: %v; want level ERROR, alert, head_seq 2, read_to_seq 4", found)
	}
	if got := scrapeMetrics(t, reg); !strings.Contains(got, fmt.Sprintf(cutLine, 1)) {
		t.Errorf("/metrics after the cut lacks %q:\n%s", fmt.Sprintf(cutLine, 1), got)
	}
}

// scrapeMetrics reads reg's exposition through the real /metrics handler.
func scrapeMetrics(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// readFailsOnce fails the next ReadAudit once armed: a Redis timeout, or
// the end of Erase's wait for its pass, as the worker reads the chain.
type readFailsOnce struct {
	Store
	armed atomic.Bool
}

func (r *readFailsOnce) ReadAudit(ctx context.Context, from uint64, limit int) ([]store.AuditRecord, error) {
	if r.armed.CompareAndSwap(true, false) {
		return nil, errors.New("i/o timeout")
	}
	return r.Store.ReadAudit(ctx, from, limit)
}

// TestWorkerSaysTheChainWasCutThoughItsReadFails: the pass that finds the
// chain cut says so even when its reading of the chain then fails (the
// index, reset to the cut head, rereads the records before it). Before, the
// cut was dropped with the read's error, and the next pass, its index
// already reset, no longer saw any cut: one timeout at that moment and the
// alarm was never raised.
func TestWorkerSaysTheChainWasCutThoughItsReadFails(t *testing.T) {
	e := newEnv(t, "redis")
	st := &readFailsOnce{Store: e.store()}
	logs := &logtest.Buffer{}
	w := newTestWorker(t, st, func(o *WorkerOptions) { o.Logger = logging.New(logs, slog.LevelDebug, nil) })
	for i := 1; i <= 4; i++ {
		enqueue(t, st, mustEvent(t, Action{Time: time.Now(), Name: "order.created", Client: "shop-bot", User: "oAlice",
			OrderNo: fmt.Sprintf("PG%d", i), AmountFen: 4999}, ""))
	}
	if got := drainAll(t, w); got != 4 {
		t.Fatalf("drained %d; want 4", got)
	}
	recs := readAll(t, st)
	e.rawDelete(4)
	e.rawDelete(3)
	e.rawSetHead(store.AuditHead{Seq: 2, Hash: recs[1].Hash})

	enqueue(t, st, mustEvent(t, Action{Time: time.Now(), Name: "order.paid", Client: "shop-bot", User: "oAlice", OrderNo: "PG8", AmountFen: 4999}, ""))
	st.armed.Store(true)
	if _, err := w.Drain(context.Background()); err == nil {
		t.Fatalf("drain with the chain's read failing: no error")
	}
	enqueue(t, st, mustEvent(t, Action{Time: time.Now(), Name: "order.paid", Client: "shop-bot", User: "oAlice", OrderNo: "PG9", AmountFen: 4999}, ""))
	if got := drainAll(t, w); got == 0 { // PG9, and PG8 once its 1 s backoff is over
		t.Fatalf("drained nothing after the cut; want PG9 appended")
	}
	if !strings.Contains(logs.String(), "audit chain cut") {
		t.Fatalf("the cut was never reported: %s", logs.String())
	}
}
