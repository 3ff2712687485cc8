package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// options are the command-line flags.
type options struct {
	out          string
	reps         int
	cellDur      time.Duration
	warmup       time.Duration
	nginxPath    string
	paygateBin   string
	paygateRev   string
	compareRev   string
	pgoOut       string
	streams      int
	slowInterval time.Duration
	slowChunks   int
	profile      string
	profileDur   time.Duration
	keepTmp      bool
	paygateEnv   envList
	command      string
}

// envList is a repeatable KEY=VALUE flag.
type envList []string

func (e *envList) String() string { return strings.Join(*e, " ") }

func (e *envList) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	*e = append(*e, v)
	return nil
}

func main() {
	// Hidden: the bench re-executes itself as the fake upstream or the Go floor.
	if len(os.Args) > 2 && os.Args[1] == "-child" {
		if err := runChild(os.Args[2], os.Args[3:]); err != nil {
			fmt.Fprintln(os.Stderr, "paygate-bench child:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.StringVar(&o.out, "out", "", "also write the Markdown report to this file")
	flag.IntVar(&o.reps, "reps", 4, "repetitions of every cell")
	flag.DurationVar(&o.cellDur, "duration", 2500*time.Millisecond, "duration of one cell")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "warm-up per target before measuring")
	flag.StringVar(&o.nginxPath, "nginx", "", "nginx binary (default: nginx on PATH, else /usr/sbin/nginx)")
	flag.StringVar(&o.paygateBin, "paygate-bin", "", "paygate binary (default: go build -o tmp/paygate ./cmd/paygate)")
	flag.StringVar(&o.paygateRev, "paygate-rev", "", "build paygate from this git revision (git archive) rather than the working tree, e.g. HEAD")
	flag.StringVar(&o.compareRev, "compare-rev", "", "also measure paygate built from this git revision, as the column "+tPaygateB+", for an A/B in one run")
	flag.StringVar(&o.pgoOut, "pgo-out", "", "after the run, write a CPU profile of paygate under 32 non-stream and 32 stream clients, merged, to this file (for cmd/paygate/default.pgo)")
	flag.IntVar(&o.streams, "streams", holdStreamsDefault, "concurrent slow streams for the peak-memory measurement")
	flag.DurationVar(&o.slowInterval, "slow-interval", 50*time.Millisecond, "pause between the chunks of a slow stream")
	flag.IntVar(&o.slowChunks, "slow-chunks", 40, "content chunks of a slow stream")
	flag.StringVar(&o.profile, "profile", "", "also profile paygate at 32 non-stream clients; path prefix of the profile file")
	flag.DurationVar(&o.profileDur, "profile-duration", 10*time.Second, "length of the profile")
	flag.Var(&o.paygateEnv, "paygate-env", "KEY=VALUE added to paygate's environment only, e.g. GOGC=200 (repeatable; shown in the report)")
	flag.BoolVar(&o.keepTmp, "keep-tmp", false, "keep the temporary directory with the configs and the children's logs")
	flag.Parse()
	o.command = strings.TrimSpace("go run ./cmd/paygate-bench " + strings.Join(os.Args[1:], " "))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	report, err := run(ctx, o, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "paygate-bench:", err)
		os.Exit(1)
	}
	fmt.Print(report)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(report), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "paygate-bench:", err)
			os.Exit(1)
		}
	}
}

// target is one column of the report.
type target struct {
	name string
	url  string       // the chat completions URL
	proc *child       // nil for direct
	pids func() []int // the proxy's processes; nil for direct
}

// run starts everything, measures and returns the report.
func run(ctx context.Context, o options, logw io.Writer) (string, error) {
	began := time.Now()
	loadBefore := loadAvg()
	logf := func(format string, a ...any) { fmt.Fprintf(logw, "paygate-bench: "+format+"\n", a...) }
	if o.reps < 1 || o.cellDur <= 0 || o.streams < 1 || o.slowChunks < 1 {
		return "", fmt.Errorf("-reps, -duration, -streams and -slow-chunks must be positive")
	}
	nginxBin, err := findNginx(o.nginxPath)
	if err != nil {
		return "", err
	}
	nginxVer, err := nginxVersion(ctx, nginxBin)
	if err != nil {
		return "", err
	}
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("locate own binary: %w", err)
	}
	tmp, err := os.MkdirTemp("", "paygate-bench-")
	if err != nil {
		return "", err
	}
	if o.keepTmp {
		logf("keeping %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	pgBin, pgFrom := o.paygateBin, ""
	switch {
	case pgBin != "" && o.paygateRev != "":
		return "", fmt.Errorf("-paygate-bin and -paygate-rev exclude each other")
	case pgBin != "":
		pgFrom = "the binary " + pgBin
	case o.paygateRev != "":
		pgBin = filepath.Join("tmp", "paygate")
		logf("building paygate from git revision %s: go build -o %s ./cmd/paygate", o.paygateRev, pgBin)
		if pgFrom, err = buildPaygateRev(ctx, o.paygateRev, filepath.Join(tmp, "src"), pgBin); err != nil {
			return "", err
		}
	default:
		pgBin = filepath.Join("tmp", "paygate")
		logf("building paygate: go build -o %s ./cmd/paygate", pgBin)
		if err := buildPaygate(ctx, "", pgBin); err != nil {
			return "", err
		}
		pgFrom = "the working tree at " + gitCommit(ctx)
	}
	if pgBin, err = filepath.Abs(pgBin); err != nil {
		return "", err
	}
	cmpBin, cmpFrom := "", ""
	if o.compareRev != "" {
		cmpBin = filepath.Join("tmp", "paygate-b")
		logf("building %s from git revision %s: go build -o %s ./cmd/paygate", tPaygateB, o.compareRev, cmpBin)
		if cmpFrom, err = buildPaygateRev(ctx, o.compareRev, filepath.Join(tmp, "src-b"), cmpBin); err != nil {
			return "", err
		}
		if cmpBin, err = filepath.Abs(cmpBin); err != nil {
			return "", err
		}
	}

	var children []*child
	defer func() {
		for i := len(children) - 1; i >= 0; i-- {
			children[i].stop(5 * time.Second)
		}
	}()
	startGo := func(name string, args ...string) (*child, string, error) {
		f, addr, err := listenLoopback()
		if err != nil {
			return nil, "", err
		}
		defer f.Close()
		c, err := startChild(name, filepath.Join(tmp, name+".log"), nil, []*os.File{f}, self, append([]string{"-child"}, args...)...)
		if err != nil {
			return nil, "", err
		}
		children = append(children, c)
		return c, addr, nil
	}

	up, upAddr, err := startGo("upstream", childUpstream, "-slow-interval", o.slowInterval.String(), "-slow-chunks", fmt.Sprint(o.slowChunks))
	if err != nil {
		return "", err
	}
	gf, gfAddr, err := startGo("go-floor", childGoFloor, "-target", "http://"+upAddr)
	if err != nil {
		return "", err
	}
	sf, sfAddr, err := startGo("stack-floor", childStack, "-target", "http://"+upAddr)
	if err != nil {
		return "", err
	}

	ngAddr, err := freePort()
	if err != nil {
		return "", err
	}
	ngPrefix := filepath.Join(tmp, "nginx")
	ngConf, err := writeNginxConf(nginxParams{Prefix: ngPrefix, Listen: ngAddr, Upstream: upAddr, Workers: runtime.NumCPU()})
	if err != nil {
		return "", err
	}
	ng, err := startChild("nginx", filepath.Join(tmp, "nginx.log"), nil, nil, nginxBin, nginxArgs(ngPrefix, ngConf)...)
	if err != nil {
		return "", err
	}
	children = append(children, ng)

	var pgEnv []string
	if len(o.paygateEnv) > 0 {
		pgEnv = append(os.Environ(), o.paygateEnv...)
	}
	pprof := o.profile != "" || o.pgoOut != ""
	pg, pgAddr, pgAdmin, err := startPaygate(tmp, "paygate", pgBin, "http://"+upAddr+"/v1", pprof, pgEnv)
	if err != nil {
		return "", err
	}
	children = append(children, pg)
	var pgB *child
	pgBAddr := ""
	if cmpBin != "" {
		if pgB, pgBAddr, _, err = startPaygate(tmp, tPaygateB, cmpBin, "http://"+upAddr+"/v1", false, pgEnv); err != nil {
			return "", err
		}
		children = append(children, pgB)
	}

	l := newLoader(benchClientKey)
	l.harness = func() []int { return []int{os.Getpid(), up.pid()} }
	single := func(c *child) func() []int { return func() []int { return []int{c.pid()} } }
	targets := []*target{
		{name: tDirect, url: "http://" + upAddr + "/v1/chat/completions"},
		{name: tNginx, url: "http://" + ngAddr + "/v1/chat/completions", proc: ng, pids: func() []int { return processTree(ng.pid()) }},
		{name: tGoFloor, url: "http://" + gfAddr + "/v1/chat/completions", proc: gf, pids: single(gf)},
		{name: tStackFloor, url: "http://" + sfAddr + "/v1/chat/completions", proc: sf, pids: single(sf)},
		{name: tPaygate, url: "http://" + pgAddr + "/v1/chat/completions", proc: pg, pids: single(pg)},
	}
	pgTarget := targets[len(targets)-1]
	if err := waitAny(ctx, pg, l, []string{"http://" + pgAddr + "/healthz", "http://" + pgAdmin + "/healthz"}, 60*time.Second); err != nil {
		return "", err
	}
	procOf := map[string]*child{tDirect: up, tNginx: ng, tGoFloor: gf, tStackFloor: sf, tPaygate: pg}
	if pgB != nil {
		targets = append(targets, &target{name: tPaygateB, url: "http://" + pgBAddr + "/v1/chat/completions", proc: pgB, pids: single(pgB)})
		procOf[tPaygateB] = pgB
		if err := waitAny(ctx, pgB, l, []string{"http://" + pgBAddr + "/healthz"}, 60*time.Second); err != nil {
			return "", err
		}
	}
	for _, t := range targets {
		if err := waitHTTP(ctx, procOf[t.name], l.client, "POST", t.url, benchClientKey, l.nonStream, 30*time.Second); err != nil {
			return "", fmt.Errorf("%s: %w", t.name, err)
		}
	}
	logf("all targets answer; nginx workers: %v", processTree(ng.pid()))

	alive := func() error {
		for _, c := range children {
			if err := c.exited(); err != nil {
				return err
			}
		}
		return nil
	}
	// Foreign load: CPU the machine spent on processes other than the bench's
	// own, over the measurement; on a shared machine it says how clean the run was.
	ours := func() []int {
		p := []int{os.Getpid(), up.pid(), gf.pid(), sf.pid(), pg.pid()}
		if pgB != nil {
			p = append(p, pgB.pid())
		}
		return append(p, processTree(ng.pid())...)
	}
	busy0, busyErr := systemBusy()
	ours0, wall0 := cpuOf(ours()), time.Now()
	for _, t := range targets {
		l.runCell(ctx, t.url, cellSpec{Stream: false, Clients: 64}, o.warmup, nil)
		l.runCell(ctx, t.url, cellSpec{Stream: true, Clients: 32}, o.warmup/2, nil)
	}
	specs := []cellSpec{}
	for _, c := range nonStreamClients {
		specs = append(specs, cellSpec{Stream: false, Clients: c})
	}
	for _, c := range streamClients {
		specs = append(specs, cellSpec{Stream: true, Clients: c})
	}
	results := map[string]map[cellSpec][]cellResult{}
	for _, t := range targets {
		results[t.name] = map[cellSpec][]cellResult{}
	}
	for rep := 0; rep < o.reps; rep++ {
		for ci, spec := range specs {
			for k := range targets {
				t := targets[(rep+ci+k)%len(targets)]
				if err := ctx.Err(); err != nil {
					return "", err
				}
				r := l.runCell(ctx, t.url, spec, o.cellDur, t.pids)
				if err := alive(); err != nil {
					return "", err
				}
				results[t.name][spec] = append(results[t.name][spec], r)
				logf("rep %d %-14s %-9s %7.0f req/s  p50 %s  p99 %s  cpu/req %s  errors %d",
					rep+1, spec, t.name, r.RPS(), fmtMS(r.P50), fmtMS(r.P99), fmtUS(r.CPUPerReq()), r.Errors)
			}
		}
	}

	summaries := make([]*targetSummary, len(targets))
	for i, t := range targets {
		var direct map[cellSpec][]cellResult
		if t.name != tDirect {
			direct = results[tDirect]
		}
		s := summarize(t.name, results[t.name], direct, t.pids != nil)
		if t.pids != nil {
			s.PeakMem = memOf(t.pids(), "VmHWM")
		}
		summaries[i] = s
	}
	for i, t := range targets {
		if t.pids == nil {
			continue
		}
		h := l.holdStreams(ctx, t.url, o.streams, t.pids, nil)
		if err := alive(); err != nil {
			return "", err
		}
		summaries[i].Hold = &h
		summaries[i].PeakMem = max(summaries[i].PeakMem, h.PeakBytes)
		logf("hold %-9s %d streams: %d open at once, %d completed, peak %s (first error: %v)", t.name, h.Streams, h.MaxConcurrent, h.OK, fmtMiB(h.PeakBytes), h.FirstErr)
	}

	foreign := "unknown"
	if busy1, err := systemBusy(); err == nil && busyErr == nil {
		other := (busy1 - busy0) - (cpuOf(ours()) - ours0)
		capacity := time.Since(wall0) * time.Duration(runtime.NumCPU())
		foreign = fmt.Sprintf("%.1f%%", 100*max(0, float64(other))/float64(capacity))
	}
	logf("CPU used by other processes during the measurement: %s of the machine", foreign)

	profile := ""
	if o.profile != "" {
		logf("profiling paygate for %v", o.profileDur)
		profile, err = profilePaygate(ctx, l, pgTarget, pgBin, []string{"http://" + pgAdmin, "http://" + pgAddr}, o.profileDur, o.profile)
		if err != nil {
			return "", fmt.Errorf("profile: %w", err)
		}
		if err := alive(); err != nil {
			return "", err
		}
	}

	if o.pgoOut != "" {
		logf("profiling paygate for %v under non-stream and stream load for %s", o.profileDur, o.pgoOut)
		if err := pgoProfile(ctx, l, pgTarget, "http://"+pgAdmin, o.profileDur, filepath.Join(tmp, "pgo"), o.pgoOut); err != nil {
			return "", fmt.Errorf("pgo profile: %w", err)
		}
		if err := alive(); err != nil {
			return "", err
		}
	}

	info := runInfo{
		Date:       began,
		Duration:   time.Since(began),
		LoadAvg:    loadBefore,
		Foreign:    foreign,
		NProc:      runtime.NumCPU(),
		CPUModel:   cpuModel(),
		Kernel:     strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		GoVersion:  runtime.Version(),
		Nginx:      nginxVer,
		Commit:     pgFrom,
		CompareB:   cmpFrom,
		Reps:       o.reps,
		CellDur:    o.cellDur,
		Command:    o.command,
		PaygateEnv: o.paygateEnv.String(),
		SlowStream: fmt.Sprintf("send %d chunks %v apart", o.slowChunks, o.slowInterval),
	}
	return renderReport(info, summaries, profile), nil
}

// waitAny polls the URLs with GET until one answers 200 (paygate's /healthz
// may live on the client or the admin listener).
func waitAny(ctx context.Context, c *child, l *loader, urls []string, deadline time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	errc := make(chan error, len(urls))
	for _, u := range urls {
		go func() { errc <- waitHTTP(ctx, c, l.client, "GET", u, "", nil, deadline) }()
	}
	var first error
	for range urls {
		err := <-errc
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return fmt.Errorf("paygate /healthz: %w", first)
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	return string(b)
}

// loadAvg is the 1-minute load average: a busy machine makes every column
// slower, so the report says how busy it was.
func loadAvg() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) == 0 {
		return "unknown"
	}
	return f[0]
}

func cpuModel() string {
	for _, line := range strings.Split(readFile("/proc/cpuinfo"), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// gitCommit names the tree the run measured.
func gitCommit(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "no commit"
	}
	c := "commit " + strings.TrimSpace(string(out))
	if st, err := exec.CommandContext(ctx, "git", "status", "--porcelain").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		c += " (the working tree had uncommitted or untracked files)"
	}
	return c
}
