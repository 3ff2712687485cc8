package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// figures builds a summary with the numbers the targets are computed from;
// its added latencies are over direct's (none for direct, nil, or for a
// target without answers, 0).
func figures(name string, direct *targetSummary, rps32, rps64 float64, p50, ttfc time.Duration) *targetSummary {
	s := newTargetSummary(name)
	s.RPS[32], s.RPS[64], s.P50[1], s.TTFC50[1] = rps32, rps64, p50, ttfc
	if direct != nil && p50 > 0 {
		s.AddedP50[1], s.AddedTTFC[1] = p50-direct.P50[1], ttfc-direct.TTFC50[1]
	}
	return s
}

func hold(streams, open, ok int, peak uint64) *holdResult {
	return &holdResult{Streams: streams, MaxConcurrent: open, OK: ok, PeakBytes: peak, PeakExact: true}
}

func TestEvaluate(t *testing.T) {
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	direct := figures(tDirect, nil, 30000, 30000, ms(0.150), ms(0.200))
	nginx := figures(tNginx, direct, 10000, 12000, ms(0.250), ms(0.350)) // added p50 0.100, added TTFC 0.150
	tests := []struct {
		name string
		pg   *targetSummary
		hold *holdResult
		want []bool // throughput@32, throughput@64, added p50, added TTFC, memory
	}{
		{
			name: "all met at the exact bounds",
			pg:   figures(tPaygate, direct, 8000, 9600, ms(0.350), ms(0.350)),
			hold: hold(128, 128, 128, 64<<20-1),
			want: []bool{true, true, true, true, true},
		},
		{
			name: "all missed just past the bounds",
			pg:   figures(tPaygate, direct, 7999, 9599, ms(0.351), ms(0.351)),
			hold: hold(128, 128, 128, 64<<20),
			want: []bool{false, false, false, false, false},
		},
		{
			name: "faster than nginx",
			pg:   figures(tPaygate, direct, 20000, 20000, ms(0.200), ms(0.250)),
			hold: hold(128, 128, 128, 20<<20),
			want: []bool{true, true, true, true, true},
		},
		{
			name: "memory under the bound but the streams were not all concurrent",
			pg:   figures(tPaygate, direct, 8000, 9600, ms(0.300), ms(0.300)),
			hold: hold(128, 100, 128, 20<<20),
			want: []bool{true, true, true, true, false},
		},
		{
			name: "memory under the bound but streams failed",
			pg:   figures(tPaygate, direct, 8000, 9600, ms(0.300), ms(0.300)),
			hold: hold(128, 128, 127, 20<<20),
			want: []bool{true, true, true, true, false},
		},
		{
			name: "nothing measured for paygate",
			pg:   figures(tPaygate, direct, 0, 0, 0, 0),
			hold: nil,
			want: []bool{false, false, false, false, false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.pg.Hold = tt.hold
			got := evaluate(nginx, tt.pg)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d checks; want %d", len(got), len(tt.want))
			}
			for i, c := range got {
				if c.Met != tt.want[i] {
					t.Errorf("%s: got met=%v; want %v (%s)", c.Name, c.Met, tt.want[i], c.Result)
				}
			}
		})
	}
}

func TestRenderReportMarksEachTarget(t *testing.T) {
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	direct := figures(tDirect, nil, 30000, 30000, ms(0.150), ms(0.200))
	nginx := figures(tNginx, direct, 10000, 12000, ms(0.250), ms(0.350))
	nginx.HasProc = true
	floor := figures(tGoFloor, direct, 5000, 6000, ms(0.400), ms(0.400))
	floor.HasProc = true
	pg := figures(tPaygate, direct, 9000, 6000, ms(0.300), ms(0.600)) // throughput@32 met, @64 missed, p50 met, TTFC missed
	pg.HasProc = true
	pg.Hold = hold(128, 128, 128, 30<<20)
	us := time.Microsecond
	cell(nginx, 32, 0.9, 80*us, 20*us, 55*us)
	cell(pg, 32, 0.9, 110*us, 40*us, 62*us)
	cell(floor, 32, 0.9, 100*us, 30*us, 60*us)
	date := time.Date(2026, 11, 30, 4, 5, 0, 0, time.UTC)
	out := renderReport(runInfo{Date: date, NProc: 2, Reps: 4, CellDur: 2500 * time.Millisecond, Command: "go run ./cmd/paygate-bench"},
		[]*targetSummary{direct, nginx, floor, pg}, "")
	tests := []struct {
		name string
		want string
	}{
		{name: "date", want: "2026-11-30 04:05"},
		{name: "columns side by side", want: "| metric | direct | nginx | go-floor | paygate |"},
		{name: "throughput at 32 met", want: "| non-stream throughput at 32 clients | ≥ 0.80× nginx | 0.90× (paygate 9000 req/s, nginx 10000 req/s) | **MET** |"},
		{name: "throughput at 64 missed", want: "| non-stream throughput at 64 clients | ≥ 0.80× nginx | 0.50× (paygate 6000 req/s, nginx 12000 req/s) | **MISSED** |"},
		{name: "added p50 met", want: "paygate 0.150 ms, nginx 0.100 ms (difference 0.050 ms) | **MET** |"},
		{name: "added TTFC missed", want: "paygate 0.400 ms, nginx 0.150 ms (difference 0.250 ms) | **MISSED** |"},
		{name: "memory met", want: "| < 64 MiB | 30.0 MiB with 128 of 128 streams open at once | **MET** |"},
		{name: "ratio row", want: "| throughput vs nginx, 32 clients | 3.00× | 1.00× | 0.50× | 0.90× |"},
		{name: "cell split columns", want: "| | direct | nginx | go-floor | paygate |"},
		{name: "cell split", want: "| – the rest (kernel threads, interrupts, other processes), 32 clients | 0 µs | 5 µs | 10 µs | 8 µs |"},
		{name: "budget", want: "- 32 clients: 0.80× nginx needs paygate's cell to spend at most 100 µs of machine CPU per request at its busy share of 90.0% (nginx's cell: 80 µs at 90.0%); it spent 110 µs. With the rest of its cell as measured, paygate's CPU per request would have to be at most 30 µs (it was 40 µs)."},
		{name: "budget missing", want: "- 64 clients: no budget, a figure is missing."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(out, tt.want) {
				t.Errorf("report lacks %q; got:\n%s", tt.want, out)
			}
		})
	}
}

// cell sets the non-stream CPU figures of s at c clients.
func cell(s *targetSummary, c int, share float64, busy, proxy, harness time.Duration) *targetSummary {
	s.BusyShare[c], s.Busy[c], s.CPU[c], s.Harness[c] = share, busy, proxy, harness
	s.Rest[c] = busy - proxy - harness
	return s
}

func TestThroughputBudget(t *testing.T) {
	us := time.Microsecond
	tests := []struct {
		name      string
		nginx, pg *targetSummary
		ok        bool
		cellMax   time.Duration
		proxyMax  time.Duration
	}{
		{
			// 0.8× at the same busy share: 80 µs / 0.8 = 100 µs for the
			// cell; paygate's cell spent 110 with 40 its own, so 30 is left.
			name:  "same busy share",
			nginx: cell(newTargetSummary(tNginx), 32, 0.9, 80*us, 20*us, 55*us),
			pg:    cell(newTargetSummary(tPaygate), 32, 0.9, 110*us, 40*us, 62*us),
			ok:    true, cellMax: 100 * us, proxyMax: 30 * us,
		},
		{
			// A cell that idles more gets less CPU per second, so it must
			// spend less per request: 80 × 0.72 / (0.8 × 0.9) = 80.
			name:  "paygate's cell idles more",
			nginx: cell(newTargetSummary(tNginx), 32, 0.9, 80*us, 20*us, 55*us),
			pg:    cell(newTargetSummary(tPaygate), 32, 0.72, 110*us, 40*us, 62*us),
			ok:    true, cellMax: 80 * us, proxyMax: 10 * us,
		},
		{
			name:  "the rest of the cell alone is over",
			nginx: cell(newTargetSummary(tNginx), 32, 0.9, 40*us, 20*us, 15*us),
			pg:    cell(newTargetSummary(tPaygate), 32, 0.9, 110*us, 40*us, 62*us),
			ok:    true, cellMax: 50 * us, proxyMax: -20 * us,
		},
		{
			name:  "no busy figure",
			nginx: cell(newTargetSummary(tNginx), 32, 0, 0, 20*us, 55*us),
			pg:    cell(newTargetSummary(tPaygate), 32, 0.9, 110*us, 40*us, 62*us),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, ok := throughputBudget(tt.nginx, tt.pg, 32)
			if ok != tt.ok {
				t.Fatalf("got ok=%v; want %v", ok, tt.ok)
			}
			near := func(got, want time.Duration) bool { return (got - want).Abs() < time.Nanosecond*10 }
			if ok && (!near(b.CellMax, tt.cellMax) || !near(b.ProxyMax, tt.proxyMax)) {
				t.Errorf("got cell %v, paygate %v; want %v, %v", b.CellMax, b.ProxyMax, tt.cellMax, tt.proxyMax)
			}
		})
	}
}

// TestSummarizeRest checks that the unattributed CPU is each repetition's
// own, not the difference of the medians: there the rows' medians give 40 µs
// where every repetition had 10.
func TestSummarizeRest(t *testing.T) {
	us := time.Microsecond
	run := func(busy, proxy, harness time.Duration) cellResult {
		return cellResult{OK: 1, Elapsed: time.Second, NCPU: 2, Busy: busy, CPU: proxy, Harness: harness}
	}
	spec := cellSpec{Clients: 32}
	s := summarize(tPaygate, map[cellSpec][]cellResult{spec: {
		run(100*us, 40*us, 50*us), run(200*us, 60*us, 130*us), run(150*us, 90*us, 50*us),
	}}, nil, true)
	if s.Rest[32] != 10*us {
		t.Errorf("rest: got %v; want 10µs", s.Rest[32])
	}
	if s.Busy[32] != 150*us || s.CPU[32] != 60*us || s.Harness[32] != 50*us {
		t.Errorf("medians: got busy %v, proxy %v, harness %v; want 150µs, 60µs, 50µs", s.Busy[32], s.CPU[32], s.Harness[32])
	}
}

func TestFmtUS(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{in: 40 * time.Microsecond, want: "40 µs"},
		{in: 1500 * time.Nanosecond, want: "2 µs"},
		{in: -400 * time.Nanosecond, want: "0 µs"},
		{in: -2 * time.Microsecond, want: "-2 µs"},
	}
	for _, tt := range tests {
		if got := fmtUS(tt.in); got != tt.want {
			t.Errorf("fmtUS(%v) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want float64
	}{
		{name: "empty", in: nil, want: 0},
		{name: "odd", in: []float64{5, 1, 3}, want: 3},
		{name: "even", in: []float64{4, 1, 3, 2}, want: 2.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := median(tt.in); got != tt.want {
				t.Errorf("got %v; want %v", got, tt.want)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	sorted := make([]time.Duration, 100)
	for i := range sorted {
		sorted[i] = time.Duration(i + 1)
	}
	tests := []struct {
		name string
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		{name: "p50 of 1..100", in: sorted, q: 0.50, want: 50},
		{name: "p99 of 1..100", in: sorted, q: 0.99, want: 99},
		{name: "p100 of 1..100", in: sorted, q: 1, want: 100},
		{name: "single", in: sorted[:1], q: 0.99, want: 1},
		{name: "empty", in: nil, q: 0.5, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.in, tt.q); got != tt.want {
				t.Errorf("got %v; want %v", got, tt.want)
			}
		})
	}
}

// answered is one repetition of a cell that answered n requests with the
// given median latency (also its p99) and proxy CPU per request.
func answered(n int, p50, cpuPerReq time.Duration) cellResult {
	return cellResult{OK: n, Elapsed: time.Second, NCPU: 2, P50: p50, P99: p50, CPU: cpuPerReq * time.Duration(n), Busy: 2 * cpuPerReq * time.Duration(n)}
}

// unanswered is one repetition of a cell in which every request failed.
func unanswered() cellResult {
	return cellResult{Errors: 101, FirstErr: errors.New("status 503"), Elapsed: time.Second, NCPU: 2, Busy: time.Second}
}

// TestSummarizeLeavesOutCellsWithoutAnswers: a repetition in which paygate
// answered nothing has no latency and no CPU per request; counting its zeros
// halves paygate's median p50 and CPU and marks a missed target met.
func TestSummarizeLeavesOutCellsWithoutAnswers(t *testing.T) {
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	us := time.Microsecond
	nonStream1, stream1 := cellSpec{Clients: 1}, cellSpec{Stream: true, Clients: 1}
	cells := func(reps ...cellResult) map[cellSpec][]cellResult {
		return map[cellSpec][]cellResult{nonStream1: reps, stream1: reps}
	}
	direct := cells(answered(4000, ms(0.100), 0), answered(4000, ms(0.100), 0))
	nginx := summarize(tNginx, cells(answered(3000, ms(0.200), 40*us), answered(3000, ms(0.200), 40*us)), direct, true)
	// paygate adds 0.300 ms to nginx's 0.100 ms: both added targets missed.
	pg := summarize(tPaygate, cells(answered(2000, ms(0.400), 100*us), unanswered()), direct, true)
	if pg.P50[1] != ms(0.400) || pg.TTFC50[1] != ms(0.400) || pg.CPU[1] != 100*us || pg.StreamCPU[1] != 100*us {
		t.Errorf("got p50 %v, first chunk %v, CPU %v a request, %v a stream; want 400µs, 400µs, 100µs, 100µs: the repetition without answers has no figures",
			pg.P50[1], pg.TTFC50[1], pg.CPU[1], pg.StreamCPU[1])
	}
	if pg.RPS[1] != 1000 {
		t.Errorf("got %v req/s; want 1000, the median of 2000 and the failed repetition's 0", pg.RPS[1])
	}
	for _, c := range evaluate(nginx, pg) {
		if strings.HasPrefix(c.Name, "added") && c.Met {
			t.Errorf("%s: met (%s); want missed, paygate adds more than nginx in every repetition that answered", c.Name, c.Result)
		}
	}
}

// TestAddedLatencyIsPerRepetition: a proxy's added latency is its p50 minus
// direct's measured in the same repetition, next to it in the rotation, and
// the median over the repetitions of that. Here the machine slows over the
// run (direct 0.1, 0.2, 0.3 ms) and nginx adds 0.1 ms in every repetition,
// while paygate adds 0.25 ms in two of three: the difference of the medians
// sets paygate's quiet first repetition against direct's busier second and
// reads 0.15 ms (p50) and 0.05 ms (first chunk), inside both bounds.
func TestAddedLatencyIsPerRepetition(t *testing.T) {
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	reps := func(p50s ...float64) []cellResult {
		var rs []cellResult
		for _, p := range p50s {
			rs = append(rs, answered(1000, ms(p), 0))
		}
		return rs
	}
	nonStream1, stream1 := cellSpec{Clients: 1}, cellSpec{Stream: true, Clients: 1}
	direct := map[cellSpec][]cellResult{nonStream1: reps(0.10, 0.20, 0.30), stream1: reps(0.10, 0.20, 0.30)}
	nginx := summarize(tNginx, map[cellSpec][]cellResult{nonStream1: reps(0.20, 0.30, 0.40), stream1: reps(0.20, 0.30, 0.40)}, direct, true)
	pg := summarize(tPaygate, map[cellSpec][]cellResult{nonStream1: reps(0.35, 0.21, 0.55), stream1: reps(0.25, 0.21, 0.45)}, direct, true)
	tests := []struct {
		name          string
		pg, nginx     time.Duration
		wantPg, wantN time.Duration
	}{
		{name: "added p50", pg: pg.AddedP50[1], nginx: nginx.AddedP50[1], wantPg: ms(0.25), wantN: ms(0.10)},
		{name: "added time to first chunk", pg: pg.AddedTTFC[1], nginx: nginx.AddedTTFC[1], wantPg: ms(0.15), wantN: ms(0.10)},
	}
	near := func(got, want time.Duration) bool { return (got - want).Abs() < time.Microsecond/100 }
	for _, tt := range tests {
		if !near(tt.pg, tt.wantPg) || !near(tt.nginx, tt.wantN) {
			t.Errorf("%s: got paygate %v, nginx %v; want %v, %v", tt.name, tt.pg, tt.nginx, tt.wantPg, tt.wantN)
		}
	}
	for _, c := range evaluate(nginx, pg) {
		if strings.HasPrefix(c.Name, "added") && c.Met {
			t.Errorf("%s: met (%s); want missed, paygate added more than the bound in two repetitions of three", c.Name, c.Result)
		}
	}
}
