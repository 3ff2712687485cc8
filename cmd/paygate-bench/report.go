package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Target names, in the order of the report's columns.
const (
	tDirect     = "direct"
	tNginx      = "nginx"
	tGoFloor    = "go-floor"
	tStackFloor = "stack-floor"
	tPaygate    = "paygate"
	tPaygateB   = "paygate-b" // -compare-rev: another build of paygate, for an A/B in one run
)

// The targets, as ratios of the same run.
const (
	minThroughputRatio = 0.8                    // paygate rps ≥ 0.8 × nginx rps at 32 and 64 clients
	addedP50Slack      = 100 * time.Microsecond // paygate's added p50 ≤ nginx's + 0.1 ms at 1 client
	maxStreamMemory    = 64 << 20               // paygate peak memory < 64 MiB at 128 concurrent streams
)

// The cells every target is measured in.
var (
	nonStreamClients = []int{1, 32, 64}
	streamClients    = []int{1, 32}
)

// targetSummary holds one target's figures: medians over the repetitions.
type targetSummary struct {
	Name      string
	RPS       map[int]float64       // non-stream requests/s by clients
	P50, P99  map[int]time.Duration // non-stream latency by clients
	CPU       map[int]time.Duration // proxy CPU per non-stream request by clients
	TTFC50    map[int]time.Duration // stream time to first chunk by clients
	TTFC99    map[int]time.Duration
	StreamCPU map[int]time.Duration // proxy CPU per stream by clients
	Harness   map[int]time.Duration // load generator and fake upstream CPU per non-stream request
	Busy      map[int]time.Duration // the machine's CPU per non-stream request
	BusyShare map[int]float64       // the machine's non-idle share in non-stream cells
	Rest      map[int]time.Duration // machine CPU per non-stream request no process of the cell was charged for
	Errors    int                   // failed requests over all cells and repetitions
	FirstErr  string
	HasProc   bool   // a proxy process exists (false for direct)
	PeakMem   uint64 // VmHWM at the end of the run (lifetime peak)
	Hold      *holdResult
	// AddedP50 and AddedTTFC are the median over the repetitions of this
	// target's p50 (non-stream) and time to first chunk p50 (stream) minus
	// direct's in the same repetition, by clients; absent for direct and
	// where no repetition had answers from both.
	AddedP50, AddedTTFC map[int]time.Duration
}

func newTargetSummary(name string) *targetSummary {
	return &targetSummary{
		Name: name,
		RPS:  map[int]float64{}, P50: map[int]time.Duration{}, P99: map[int]time.Duration{},
		CPU: map[int]time.Duration{}, TTFC50: map[int]time.Duration{}, TTFC99: map[int]time.Duration{},
		StreamCPU: map[int]time.Duration{}, AddedP50: map[int]time.Duration{}, AddedTTFC: map[int]time.Duration{},
		Harness: map[int]time.Duration{}, Busy: map[int]time.Duration{}, BusyShare: map[int]float64{},
		Rest: map[int]time.Duration{},
	}
}

// summarize turns the repetitions of each cell into medians: throughput and
// busy share over all of them, latency and per-request figures over those
// that answered (none answered: 0, which no target passes). direct holds
// direct's repetitions, nil for direct itself.
func summarize(name string, cells, direct map[cellSpec][]cellResult, hasProc bool) *targetSummary {
	s := newTargetSummary(name)
	s.HasProc = hasProc
	for spec, runs := range cells {
		var rps, share []float64
		var p50, p99, cpu, harness, busy, rest []time.Duration
		for _, r := range runs {
			rps = append(rps, r.RPS())
			share = append(share, r.BusyShare())
			s.Errors += r.Errors
			if r.FirstErr != nil && s.FirstErr == "" {
				s.FirstErr = r.FirstErr.Error()
			}
			if r.OK == 0 {
				// No answer, no latency and no CPU per request: its zeros
				// would pull the medians down and pass a target on failures.
				continue
			}
			p50, p99, cpu = append(p50, r.P50), append(p99, r.P99), append(cpu, r.CPUPerReq())
			harness, busy = append(harness, r.perReq(r.Harness)), append(busy, r.perReq(r.Busy))
			rest = append(rest, r.perReq(r.Busy-r.CPU-r.Harness))
		}
		c := spec.Clients
		if added, ok := addedOver(runs, direct[spec]); ok {
			if spec.Stream {
				s.AddedTTFC[c] = added
			} else {
				s.AddedP50[c] = added
			}
		}
		if spec.Stream {
			s.TTFC50[c], s.TTFC99[c], s.StreamCPU[c] = median(p50), median(p99), median(cpu)
			continue
		}
		s.RPS[c], s.P50[c], s.P99[c], s.CPU[c] = median(rps), median(p50), median(p99), median(cpu)
		s.Harness[c], s.Busy[c], s.BusyShare[c], s.Rest[c] = median(harness), median(busy), median(share), median(rest)
	}
	return s
}

// addedOver is the median over the repetitions of runs' p50 minus direct's
// p50 in the same repetition (runs and direct are in repetition order). The
// two were measured in the same turn of the rotation, seconds apart, so what
// slowed the shared machine then slows both and cancels; a difference of
// the two medians would set one repetition of the proxy against another of
// direct. Repetitions in which either answered nothing have no pair.
func addedOver(runs, direct []cellResult) (time.Duration, bool) {
	var added []time.Duration
	for i, r := range runs {
		if i < len(direct) && r.OK > 0 && direct[i].OK > 0 {
			added = append(added, r.P50-direct[i].P50)
		}
	}
	if len(added) == 0 {
		return 0, false
	}
	return median(added), true
}

// median of a non-empty slice; the mean of the middle two for even lengths.
func median[T float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// check is one of the targets, evaluated.
type check struct {
	Name   string
	Bound  string
	Result string
	Met    bool
}

// evaluate computes the targets from the summaries of nginx and
// paygate (their added latencies already hold direct's).
func evaluate(nginx, pg *targetSummary) []check {
	var cs []check
	for _, c := range []int{32, 64} {
		ratio := 0.0
		if nginx.RPS[c] > 0 {
			ratio = pg.RPS[c] / nginx.RPS[c]
		}
		cs = append(cs, check{
			Name:   fmt.Sprintf("non-stream throughput at %d clients", c),
			Bound:  fmt.Sprintf("≥ %.2f× nginx", minThroughputRatio),
			Result: fmt.Sprintf("%.2f× (paygate %s req/s, nginx %s req/s)", ratio, fmtRPS(pg.RPS[c]), fmtRPS(nginx.RPS[c])),
			Met:    nginx.RPS[c] > 0 && pg.RPS[c] >= minThroughputRatio*nginx.RPS[c],
		})
	}
	pgAdded, pgOK := pg.AddedP50[1]
	ngAdded, ngOK := nginx.AddedP50[1]
	cs = append(cs, check{
		Name:   "added p50 at 1 client (proxy − direct)",
		Bound:  "≤ nginx's + 0.100 ms",
		Result: fmt.Sprintf("paygate %s, nginx %s (difference %s)", fmtMS(pgAdded), fmtMS(ngAdded), fmtMS(pgAdded-ngAdded)),
		Met:    pgOK && ngOK && pgAdded <= ngAdded+addedP50Slack,
	})
	pgT, pgOK := pg.AddedTTFC[1]
	ngT, ngOK := nginx.AddedTTFC[1]
	cs = append(cs, check{
		Name:   "added time to first chunk, p50 at 1 client",
		Bound:  "≤ nginx's",
		Result: fmt.Sprintf("paygate %s, nginx %s (difference %s)", fmtMS(pgT), fmtMS(ngT), fmtMS(pgT-ngT)),
		Met:    pgOK && ngOK && pgT <= ngT,
	})
	memMet := false
	memResult := "not measured"
	if h := pg.Hold; h != nil {
		memResult = fmt.Sprintf("%s with %d of %d streams open at once", fmtMiB(h.PeakBytes), h.MaxConcurrent, h.Streams)
		if !h.PeakExact {
			memResult += " (lifetime peak: VmHWM could not be reset)"
		}
		memMet = h.MaxConcurrent == h.Streams && h.OK == h.Streams && h.PeakBytes > 0 && h.PeakBytes < maxStreamMemory
		if h.MaxConcurrent != h.Streams || h.OK != h.Streams {
			memResult += fmt.Sprintf(", %d completed: the streams were not all concurrent", h.OK)
		}
	}
	cs = append(cs, check{
		Name:   fmt.Sprintf("paygate peak memory at %d concurrent streams", holdStreamsDefault),
		Bound:  "< 64 MiB",
		Result: memResult,
		Met:    memMet,
	})
	return cs
}

// cellBudget is what paygate's non-stream cell could spend per request and
// still reach minThroughputRatio of nginx's throughput. A cell's throughput is
// its busy share of the CPUs divided by the machine's CPU per request, so at
// paygate's own busy share its cell may spend at most
// nginx's CPU per request × paygate's share / (ratio × nginx's share).
type cellBudget struct {
	CellMax  time.Duration // machine CPU per request paygate's cell may spend
	ProxyMax time.Duration // paygate's own share of it, the rest of its cell as measured
}

// throughputBudget computes the budget at c clients; false when a figure is
// missing (a cell without requests, /proc/stat unreadable).
func throughputBudget(nginx, pg *targetSummary, c int) (cellBudget, bool) {
	sn, sp := nginx.BusyShare[c], pg.BusyShare[c]
	if sn == 0 || sp == 0 || nginx.Busy[c] == 0 || pg.Busy[c] == 0 {
		return cellBudget{}, false
	}
	cellMax := time.Duration(float64(nginx.Busy[c]) * sp / (minThroughputRatio * sn))
	return cellBudget{CellMax: cellMax, ProxyMax: pg.CPU[c] - (pg.Busy[c] - cellMax)}, true
}

// holdStreamsDefault is the 128 concurrent streams.
const holdStreamsDefault = 128

// runInfo is what the report says about the run itself.
type runInfo struct {
	Date       time.Time
	Duration   time.Duration // wall time of the whole run
	LoadAvg    string        // 1-minute load average when the run began
	Foreign    string        // share of the machine's CPU other processes used while measuring
	NProc      int
	CPUModel   string
	Kernel     string
	GoVersion  string
	Nginx      string
	Commit     string
	CompareB   string // how -compare-rev's build is named; empty without it
	Reps       int
	CellDur    time.Duration
	Command    string
	SlowStream string // how the slow streams are paced
	PaygateEnv string // -paygate-env settings, empty when none
}

// renderReport writes the Markdown report. targets are in column order and
// must contain direct, nginx and paygate.
func renderReport(info runInfo, targets []*targetSummary, profile string) string {
	byName := map[string]*targetSummary{}
	for _, t := range targets {
		byName[t.Name] = t
	}
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# paygate load benchmark\n\n")
	p("Run on %s (UTC), %s wall time, with `%s`.\n\n", info.Date.UTC().Format("2006-01-02 15:04"), info.Duration.Round(time.Second), info.Command)
	p("- Machine: %d CPUs (%s), Linux %s; load generator, fake upstream and proxy share these CPUs. Load average %s at the start; processes other than the benchmark's used %s of the CPU time while it measured.\n", info.NProc, info.CPUModel, info.Kernel, info.LoadAvg, info.Foreign)
	p("- Software: %s, %s, paygate at %s", info.GoVersion, info.Nginx, info.Commit)
	if info.CompareB != "" {
		p("; %s at %s", tPaygateB, info.CompareB)
	}
	if info.PaygateEnv != "" {
		p(", run with `%s`", info.PaygateEnv)
	}
	p(".\n")
	p("- Method: %d repetitions of every cell, %v per cell, the order of the %d targets rotated every cell and repetition; figures are medians over the repetitions.\n\n", info.Reps, info.CellDur, len(targets))

	p("## Targets (issue 2)\n\n")
	p("| target | bound | this run | |\n|---|---|---|---|\n")
	n, g := byName[tNginx], byName[tPaygate]
	for _, c := range evaluate(n, g) {
		mark := "MISSED"
		if c.Met {
			mark = "MET"
		}
		p("| %s | %s | %s | **%s** |\n", c.Name, c.Bound, c.Result, mark)
	}

	p("\n## Results\n\n")
	row := targetTable(p, "metric", targets)
	for _, c := range nonStreamClients {
		row(fmt.Sprintf("non-stream req/s, %d client%s", c, plural(c)), func(t *targetSummary) string { return fmtRPS(t.RPS[c]) })
	}
	for _, c := range nonStreamClients {
		row(fmt.Sprintf("throughput vs nginx, %d client%s", c, plural(c)), func(t *targetSummary) string {
			if n.RPS[c] == 0 {
				return "—"
			}
			return fmt.Sprintf("%.2f×", t.RPS[c]/n.RPS[c])
		})
	}
	for _, c := range nonStreamClients {
		row(fmt.Sprintf("non-stream p50 / p99, %d client%s", c, plural(c)), func(t *targetSummary) string {
			return fmtMS(t.P50[c]) + " / " + fmtMS(t.P99[c])
		})
	}
	row("added p50 vs direct, 1 client", func(t *targetSummary) string { return fmtAdded(t.AddedP50, 1) })
	for _, c := range streamClients {
		row(fmt.Sprintf("stream time to first chunk p50 / p99, %d client%s", c, plural(c)), func(t *targetSummary) string {
			return fmtMS(t.TTFC50[c]) + " / " + fmtMS(t.TTFC99[c])
		})
	}
	row("added time to first chunk p50 vs direct, 1 client", func(t *targetSummary) string { return fmtAdded(t.AddedTTFC, 1) })
	procCell := func(f func(t *targetSummary) string) func(t *targetSummary) string {
		return func(t *targetSummary) string {
			if !t.HasProc {
				return "—"
			}
			return f(t)
		}
	}
	for _, c := range nonStreamClients {
		row(fmt.Sprintf("proxy CPU per non-stream request, %d client%s", c, plural(c)), procCell(func(t *targetSummary) string { return fmtUS(t.CPU[c]) }))
	}
	for _, c := range streamClients {
		row(fmt.Sprintf("proxy CPU per stream, %d client%s", c, plural(c)), procCell(func(t *targetSummary) string { return fmtUS(t.StreamCPU[c]) }))
	}
	row("proxy peak memory over the run (VmHWM)", procCell(func(t *targetSummary) string { return fmtMiB(t.PeakMem) }))
	row(fmt.Sprintf("proxy peak memory at %d concurrent streams", holdStreamsDefault), procCell(func(t *targetSummary) string {
		if t.Hold == nil {
			return "—"
		}
		return fmt.Sprintf("%s (%d open)", fmtMiB(t.Hold.PeakBytes), t.Hold.MaxConcurrent)
	}))
	row("failed requests (all cells)", func(t *targetSummary) string { return fmt.Sprint(t.Errors) })
	for _, t := range targets {
		if t.FirstErr != "" {
			p("\nFirst error from %s: `%s`\n", t.Name, t.FirstErr)
		}
	}

	renderBudget(p, info.NProc, targets, n, g, byName[tStackFloor])

	p("\n## How it is measured\n\n")
	p("- **direct**: the load generator talks to the fake upstream itself; the other columns add one hop. ")
	p("**nginx**: Debian's nginx as a plain reverse proxy (`proxy_buffering off`, `proxy_http_version 1.1`, upstream keep-alive pool, `access_log off`, one worker per CPU). ")
	p("**go-floor**: a bare `httputil.ReverseProxy` (`FlushInterval: -1`, transport with a large idle pool, no compression) in its own process. ")
	p("**stack-floor**: paygate's own HTTP stack doing none of paygate's work: proxy/h1's server (paygate's bots' listener) running a handler that reads the body, sends it through failover/h1's transport (paygate's upstream transport) and copies the answer back, flushing after every upstream read; what paygate costs above it is its per-request work. ")
	p("**paygate**: `paygate serve`, built as the Software line says, one client key, the user hashed with a configured key (`privacy.forward_user: hash`). Requests carry `user` (an OpenID), so paygate does for them what it does for a bot's real traffic: offers the payment tools, loads the user's state from its embedded store and hashes the user.")
	if info.CompareB != "" {
		p(" **%s**: the same, built from another revision (`-compare-rev`), so that two builds of paygate are compared in one run.", tPaygateB)
	}
	p("\n")
	p("- The fake upstream (its own process) answers a chat.completion JSON of about 500 bytes, or an SSE stream of %d `chat.completion.chunk` events, a finish event and `data: [DONE]`, each flushed; to a request with `stream_options.include_usage` (paygate always asks for it) it streams as OpenAI does, `\"usage\":null` in every chunk and a usage chunk before `[DONE]` (since 2026-12-03: earlier runs sent no `usage` member).\n", len(answerWords)+1)
	p("- Clients are closed-loop goroutines sharing one keep-alive `http.Client`; request bodies are built once, answers read to the end and checked (status 200; streams must end with `data: [DONE]`).\n")
	p("- Latency is from sending the request to the end of the answer; time to first chunk is from sending the request to the first `data:` line at the client (the fake upstream sends its role event and first content event back to back, so a proxy that holds events until the first token, as paygate does for failover, is not charged a model's think time). Added latency is the proxy's p50 minus direct's in the same repetition, the median over the repetitions.\n")
	p("- Proxy CPU is utime+stime of the proxy's processes (nginx: master and workers) from /proc/PID/stat, before and after the cell, divided by the completed requests; the load generator and the fake upstream are not counted.\n")
	p("- A cell's CPU split: the machine's busy time is the first line of /proc/stat (all but idle and iowait) before and after the cell; the load generator's (this bench's own process) and the fake upstream's CPU are read like the proxy's; the rest is what no process of the cell was charged for (kernel threads such as ksoftirqd, interrupts) and any other process's CPU. /proc counts in 10 ms ticks, so over a cell each figure is within about 1 µs per request, and the rest may come out slightly negative.\n")
	p("- Peak memory is VmHWM from /proc/PID/status (nginx: summed over its processes). For %d concurrent streams VmHWM is reset (`clear_refs` 5) and %d streams that %s are opened at once; \"open\" is how many had their first event and had not ended at the same moment.\n", holdStreamsDefault, holdStreamsDefault, info.SlowStream)
	if profile != "" {
		p("\n## Where paygate's time goes\n\n%s\n", profile)
	}
	return b.String()
}

// targetTable writes the head of a table with a column per target, first
// heading the row names, and returns what writes a row of it.
func targetTable(p func(string, ...any), first string, targets []*targetSummary) func(name string, cell func(t *targetSummary) string) {
	head := "| |"
	if first != "" {
		head = "| " + first + " |"
	}
	p("%s", head)
	for _, t := range targets {
		p(" %s |", t.Name)
	}
	p("\n|---|")
	for range targets {
		p("---:|")
	}
	p("\n")
	return func(name string, cell func(t *targetSummary) string) {
		p("| %s |", name)
		for _, t := range targets {
			p(" %s |", cell(t))
		}
		p("\n")
	}
}

// renderBudget writes where the machine's CPU went in the non-stream cells
// under load and what paygate would have to spend to reach the throughput
// target: the issue asks where paygate lands and what the remaining cost is.
func renderBudget(p func(string, ...any), ncpu int, targets []*targetSummary, nginx, pg, floor *targetSummary) {
	p("\n## Where a non-stream cell's CPU goes\n\n")
	p("Every process shares the machine, so a cell's throughput is the machine's busy share of its %d CPUs divided by the CPU the machine spends per request. ", ncpu)
	p("Per request, in the cells under load; every row is its own median over the repetitions, so the parts need not add up to the whole exactly:\n\n")
	row := targetTable(p, "", targets)
	load := []int{32, 64}
	for _, c := range load {
		row(fmt.Sprintf("machine busy, %d clients", c), func(t *targetSummary) string { return fmt.Sprintf("%.1f%%", 100*t.BusyShare[c]) })
		row(fmt.Sprintf("machine CPU per request, %d clients", c), func(t *targetSummary) string { return fmtUS(t.Busy[c]) })
		row(fmt.Sprintf("– the proxy, %d clients", c), func(t *targetSummary) string {
			if !t.HasProc {
				return "—"
			}
			return fmtUS(t.CPU[c])
		})
		row(fmt.Sprintf("– load generator and fake upstream, %d clients", c), func(t *targetSummary) string { return fmtUS(t.Harness[c]) })
		row(fmt.Sprintf("– the rest (kernel threads, interrupts, other processes), %d clients", c), func(t *targetSummary) string {
			return fmtUS(t.Rest[c])
		})
	}
	p("\n")
	for _, c := range load {
		b, ok := throughputBudget(nginx, pg, c)
		if !ok {
			p("- %d clients: no budget, a figure is missing.\n", c)
			continue
		}
		p("- %d clients: %.2f× nginx needs paygate's cell to spend at most %s of machine CPU per request at its busy share of %.1f%% (nginx's cell: %s at %.1f%%); it spent %s. ",
			c, minThroughputRatio, fmtUS(b.CellMax), 100*pg.BusyShare[c], fmtUS(nginx.Busy[c]), 100*nginx.BusyShare[c], fmtUS(pg.Busy[c]))
		if b.ProxyMax <= 0 {
			p("The rest of paygate's cell alone spends more than that.")
		} else {
			p("With the rest of its cell as measured, paygate's CPU per request would have to be at most %s (it was %s)", fmtUS(b.ProxyMax), fmtUS(pg.CPU[c]))
			if floor != nil && floor.CPU[c] > 0 {
				p("; the stack floor, which does none of paygate's work, spent %s", fmtUS(floor.CPU[c]))
			}
			p(".")
		}
		p("\n")
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func fmtRPS(v float64) string {
	if v == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f", v)
}

func fmtMS(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond))
}

func fmtUS(d time.Duration) string {
	us := math.Round(float64(d) / float64(time.Microsecond))
	if us == 0 {
		us = 0 // not "-0" for a difference that rounds to nothing
	}
	return fmt.Sprintf("%.0f µs", us)
}

// fmtAdded is an added latency at c clients, "—" where there is none
// (direct, or no repetition answered both).
func fmtAdded(added map[int]time.Duration, c int) string {
	v, ok := added[c]
	if !ok {
		return "—"
	}
	return fmtMS(v)
}

func fmtMiB(b uint64) string {
	if b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
