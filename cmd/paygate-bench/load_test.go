package main

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRunCellCountsAnswers(t *testing.T) {
	up := newTestUpstream(t)
	l := newLoader("sk-test")
	self := func() []int { return []int{os.Getpid()} }
	tests := []struct {
		name string
		spec cellSpec
	}{
		{name: "non-stream, 1 client", spec: cellSpec{Clients: 1}},
		{name: "non-stream, 4 clients", spec: cellSpec{Clients: 4}},
		{name: "stream, 4 clients", spec: cellSpec{Stream: true, Clients: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := l.runCell(context.Background(), up.URL+"/v1/chat/completions", tt.spec, 200*time.Millisecond, self)
			if r.Errors != 0 || r.OK == 0 {
				t.Fatalf("got %d ok, %d errors (%v); want answers and no errors", r.OK, r.Errors, r.FirstErr)
			}
			if r.P50 <= 0 || r.P99 < r.P50 {
				t.Errorf("got p50 %v p99 %v; want 0 < p50 <= p99", r.P50, r.P99)
			}
			if r.RPS() <= 0 {
				t.Errorf("got %v req/s; want > 0", r.RPS())
			}
		})
	}
}

// TestRunCellAccountsTheMachine checks the figures the report's CPU budget
// is computed from: the harness's CPU (here the test process, which runs both
// the clients and the upstream) and the machine's busy time.
func TestRunCellAccountsTheMachine(t *testing.T) {
	up := newTestUpstream(t)
	l := newLoader("sk-test")
	l.harness = func() []int { return []int{os.Getpid()} }
	r := l.runCell(context.Background(), up.URL+"/v1/chat/completions", cellSpec{Clients: 4}, 300*time.Millisecond, nil)
	if r.OK == 0 {
		t.Fatalf("no answers (%v)", r.FirstErr)
	}
	if r.Harness <= 0 {
		t.Errorf("got harness CPU %v; want > 0 for a process that served and sent every request", r.Harness)
	}
	if r.Busy <= 0 || r.NCPU < 1 {
		t.Errorf("got machine busy %v over %d CPUs; want > 0", r.Busy, r.NCPU)
	}
	// /proc counts in 10 ms ticks, so the share may exceed 1 by a tick.
	if s := r.BusyShare(); s <= 0 || s > 1+float64(clockTick)/float64(r.Elapsed) {
		t.Errorf("got busy share %.3f; want within (0, 1]", s)
	}
	if r.CPU != 0 {
		t.Errorf("got proxy CPU %v with no proxy process; want 0", r.CPU)
	}
}

func TestRunCellCountsFailures(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":{"message":"down"}}`, http.StatusBadGateway)
	}))
	t.Cleanup(srv.Close)
	r := newLoader("sk-test").runCell(context.Background(), srv.URL, cellSpec{Clients: 2}, 50*time.Millisecond, nil)
	if r.OK != 0 || r.Errors == 0 || r.FirstErr == nil || !strings.Contains(r.FirstErr.Error(), "502") {
		t.Errorf("got %d ok, %d errors, first %v; want only failures naming status 502", r.OK, r.Errors, r.FirstErr)
	}
}

// sseHandler writes the given raw stream.
func sseHandler(raw string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte(raw))
	})
}

func TestStreamOnce(t *testing.T) {
	long := strings.Repeat("x", 40<<10) // longer than the reader's buffer
	tests := []struct {
		name    string
		raw     string
		wantErr error
	}{
		{name: "complete", raw: "data: {\"a\":1}\n\ndata: [DONE]\n\n"},
		{name: "comment lines and long events", raw: ": keep-alive\n\ndata: {\"c\":\"" + long + "\"}\n\ndata: [DONE]\n\n"},
		{name: "cut before [DONE]", raw: "data: {\"a\":1}\n\n", wantErr: errShortStream},
		{name: "[DONE] only inside a long event is no end", raw: "data: {\"c\":\"" + long + "data: [DONE]\"}\n\n", wantErr: errShortStream},
		{name: "no events", raw: ": hello\n\n", wantErr: errShortStream},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(sseHandler(tt.raw))
			defer srv.Close()
			firsts := 0
			ttfc, err := newLoader("k").streamOnce(context.Background(), srv.URL, []byte("{}"), bufio.NewReaderSize(nil, 16<<10), func() { firsts++ })
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v; want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && (ttfc <= 0 || firsts != 1) {
				t.Errorf("got ttfc %v, %d first-event calls; want > 0 and 1", ttfc, firsts)
			}
		})
	}
}

// TestHoldStreamsAllOpen holds n streams whose server ends them only when the
// client has seen all n open, so the count must reach n and every stream end.
func TestHoldStreamsAllOpen(t *testing.T) {
	const n = 16
	all := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("data: {\"first\":true}\n\n"))
		_ = http.NewResponseController(w).Flush()
		select {
		case <-all:
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write([]byte("data: [DONE]\n\n"))
	}))
	t.Cleanup(srv.Close)
	onOpen := func(open int) {
		if open == n {
			once.Do(func() { close(all) })
		}
	}
	h := newLoader("k").holdStreams(context.Background(), srv.URL, n, func() []int { return []int{os.Getpid()} }, onOpen)
	if h.FirstErr != nil {
		t.Fatal(h.FirstErr)
	}
	if h.MaxConcurrent != n || h.OK != n || h.Streams != n {
		t.Errorf("got %d open at once, %d ok of %d; want %d, %d of %d", h.MaxConcurrent, h.OK, h.Streams, n, n, n)
	}
	if h.PeakBytes == 0 {
		t.Errorf("got peak 0; want this process's VmHWM")
	}
}
