package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"
)

// profileLoad is the cell the profile is taken under: the issue asks where the
// time goes at 32 non-stream clients.
var profileLoad = cellSpec{Stream: false, Clients: 32}

// profilePaygate loads paygate at 32 non-stream clients for d while taking a
// CPU profile: from paygate's own net/http/pprof if one of bases serves
// /debug/pprof/, else with perf. It returns a Markdown section body.
func profilePaygate(ctx context.Context, l *loader, t *target, bin string, bases []string, d time.Duration, outPrefix string) (string, error) {
	secs := int(d / time.Second)
	if secs < 1 {
		secs = 1
	}
	loadDur := d + 2*time.Second
	type loadOut struct{ r cellResult }
	done := make(chan loadOut, 1)
	start := func() {
		go func() { done <- loadOut{l.runCell(ctx, t.url, profileLoad, loadDur, t.pids)} }()
	}
	for _, base := range bases {
		if !servesPprof(ctx, base) {
			continue
		}
		start()
		out := outPrefix + ".pprof"
		err := fetchProfile(ctx, base+"/debug/pprof/profile?seconds="+strconv.Itoa(secs), out)
		lo := <-done
		if err != nil {
			return "", err
		}
		flat, err := runTool(ctx, "go", "tool", "pprof", "-top", "-nodecount=100000", bin, out)
		if err != nil {
			return "", err
		}
		cum, err := runTool(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=100000", bin, out)
		if err != nil {
			return "", err
		}
		flatHead, flatBody := splitPprofTop(flat)
		_, cumBody := splitPprofTop(cum)
		var b strings.Builder
		fmt.Fprintf(&b, "Go CPU profile from paygate's own /debug/pprof (`server.pprof: true`, admin listener) over %d s at %d non-stream clients (%s req/s, %s CPU per request during the profile); saved as `%s`. %s. The kernel time of system calls is counted under internal/runtime/syscall/linux.Syscall6.\n\n",
			secs, profileLoad.Clients, fmtRPS(lo.r.RPS()), fmtUS(lo.r.CPUPerReq()), out, flatHead)
		writeProfileTables(&b, parsePprofLines(flatBody, 1), trimLines(flatBody, 30), grepLines(cumBody, "github.com/paygate/", 40), trimLines(cumBody, 45))
		return b.String(), nil
	}
	perf, err := exec.LookPath("perf")
	if err != nil {
		return "No profile: paygate serves no /debug/pprof and perf is not installed.", nil
	}
	out := outPrefix + ".perf.data"
	start()
	rec := exec.CommandContext(ctx, perf, "record", "-F", "997", "-g", "-p", strconv.Itoa(t.proc.pid()), "-o", out, "--", "sleep", strconv.Itoa(secs))
	recOut, recErr := rec.CombinedOutput()
	lo := <-done
	if recErr != nil {
		return "", fmt.Errorf("perf record: %w: %s", recErr, recOut)
	}
	self, err := runTool(ctx, perf, "report", "-i", out, "--stdio", "--no-children", "-g", "none", "-F", "overhead,sym")
	if err != nil {
		return "", err
	}
	cum, err := runTool(ctx, perf, "report", "-i", out, "--stdio", "--children", "-g", "none", "--sort", "sym", "--percent-limit", "0.5")
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "paygate serves no /debug/pprof, so this is `perf record -g` (cpu-clock, 997 Hz) of the paygate process over %d s at %d non-stream clients (%s req/s, %s CPU per request during the profile), kernel time included; saved as `%s`.\n\n",
		secs, profileLoad.Clients, fmtRPS(lo.r.RPS()), fmtUS(lo.r.CPUPerReq()), out)
	writeProfileTables(&b, parsePerfLines(self), trimLines(self, 30), grepLines(cum, "github.com/paygate/", 40), trimLines(cum, 45))
	return b.String(), nil
}

// writeProfileTables writes the per-package self-time table and the raw top
// lists shared by the pprof and the perf report.
func writeProfileTables(b *strings.Builder, self []perfLine, topSelf, ownCum, topCum string) {
	b.WriteString("Self time by package (all samples):\n\n| package | self |\n|---|---:|\n")
	for _, g := range groupByPackage(self) {
		if g.pct < 0.5 {
			break
		}
		fmt.Fprintf(b, "| %s | %.1f%% |\n", g.name, g.pct)
	}
	fmt.Fprintf(b, "\nTop functions by self time:\n\n```\n%s\n```\n", topSelf)
	fmt.Fprintf(b, "\npaygate's own functions, inclusive time:\n\n```\n%s\n```\n", ownCum)
	fmt.Fprintf(b, "\nTop functions by inclusive time:\n\n```\n%s\n```\n", topCum)
}

// splitPprofTop splits `go tool pprof -top` output into its summary (the
// Duration line) and the table lines after the column header.
func splitPprofTop(s string) (head, body string) {
	lines := strings.Split(s, "\n")
	for i, line := range lines {
		if strings.HasPrefix(line, "Duration:") {
			head = strings.TrimSpace(line)
		}
		f := strings.Fields(line)
		if len(f) == 5 && f[0] == "flat" && f[1] == "flat%" {
			return head, strings.Join(lines[i+1:], "\n")
		}
	}
	return head, ""
}

// parsePprofLines reads "flat flat% sum% cum cum% name" rows; field picks
// flat% (1) or cum% (4).
func parsePprofLines(body string, field int) []perfLine {
	var ls []perfLine
	for _, line := range strings.Split(body, "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		pct, err := strconv.ParseFloat(strings.TrimSuffix(f[field], "%"), 64)
		if err != nil {
			continue
		}
		ls = append(ls, perfLine{pct: pct, sym: strings.Join(f[5:], " ")})
	}
	return ls
}

// perfLine is one "  12.34%  [k] symbol" line of perf report.
type perfLine struct {
	pct    float64
	kernel bool
	sym    string
}

func parsePerfLines(s string) []perfLine {
	var ls []perfLine
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || !strings.HasSuffix(f[0], "%") {
			continue
		}
		pct, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		if err != nil {
			continue
		}
		ls = append(ls, perfLine{pct: pct, kernel: f[1] == "[k]", sym: strings.Join(f[2:], " ")})
	}
	return ls
}

type pkgShare struct {
	name string
	pct  float64
}

// groupByPackage sums self time by Go package; kernel symbols are "kernel",
// symbols without a package (assembly, vDSO) "runtime assembly and vDSO".
func groupByPackage(ls []perfLine) []pkgShare {
	sums := map[string]float64{}
	for _, l := range ls {
		sums[symbolPackage(l)] += l.pct
	}
	var gs []pkgShare
	for n, p := range sums {
		gs = append(gs, pkgShare{n, p})
	}
	sort.Slice(gs, func(i, j int) bool {
		if gs[i].pct != gs[j].pct {
			return gs[i].pct > gs[j].pct
		}
		return gs[i].name < gs[j].name
	})
	return gs
}

// symbolPackage is the Go package of a symbol: up to the first '.' after the
// last '/' (net/http.(*conn).serve is net/http).
func symbolPackage(l perfLine) string {
	if l.kernel {
		return "kernel"
	}
	sym := l.sym
	if i := strings.IndexAny(sym, "[("); i >= 0 {
		sym = sym[:i] // receivers and type parameters may hold other paths
	}
	slash := strings.LastIndexByte(sym, '/')
	dot := strings.IndexByte(sym[slash+1:], '.')
	if dot <= 0 || strings.HasPrefix(sym, "0x") {
		return "runtime assembly and vDSO"
	}
	return sym[:slash+1+dot]
}

// grepLines keeps the lines containing sub, at most n.
func grepLines(s, sub string, n int) string {
	var keep []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			keep = append(keep, strings.TrimRight(line, " "))
			if len(keep) == n {
				break
			}
		}
	}
	if len(keep) == 0 {
		return "(no samples in paygate's own packages)"
	}
	return strings.Join(keep, "\n")
}

func servesPprof(ctx context.Context, base string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/debug/pprof/", nil)
	if err != nil {
		return false
	}
	req.Header.Set("Authorization", "Bearer "+benchAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	drainClose(resp.Body)
	return resp.StatusCode == http.StatusOK
}

func fetchProfile(ctx context.Context, url, out string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+benchAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fetch profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch profile: status %d", resp.StatusCode)
	}
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("save profile: %w", err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("save profile: %w", err)
	}
	return f.Close()
}

func runTool(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", name, strings.Join(args[:min(2, len(args))], " "), err)
	}
	return string(out), nil
}

// trimLines drops perf's comment lines and blank lines and keeps at most n.
func trimLines(s string, n int) string {
	var keep []string
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		keep = append(keep, strings.TrimRight(line, " "))
		if len(keep) == n {
			break
		}
	}
	return strings.Join(keep, "\n")
}

// pgoProfile takes one CPU profile of paygate from its /debug/pprof (base is
// its admin listener) under 32 non-stream clients and one under 32 stream
// clients, d each, and writes them merged to out: the profile `go build`
// reads from cmd/paygate/default.pgo. Both loads are in it because a bot's
// traffic is both, and a profile of one would leave the other's path
// unoptimised.
func pgoProfile(ctx context.Context, l *loader, t *target, base string, d time.Duration, tmpPrefix, out string) error {
	if !servesPprof(ctx, base) {
		return fmt.Errorf("paygate serves no /debug/pprof at %s", base)
	}
	secs := max(1, int(d/time.Second))
	var parts []string
	for _, spec := range []cellSpec{{Stream: false, Clients: 32}, {Stream: true, Clients: 32}} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			l.runCell(ctx, t.url, spec, d+2*time.Second, nil)
		}()
		part := fmt.Sprintf("%s-%s.pprof", tmpPrefix, spec)
		err := fetchProfile(ctx, base+"/debug/pprof/profile?seconds="+strconv.Itoa(secs), part)
		<-done
		if err != nil {
			return err
		}
		parts = append(parts, part)
	}
	merged, err := exec.CommandContext(ctx, "go", append([]string{"tool", "pprof", "-proto"}, parts...)...).Output()
	if err != nil {
		return fmt.Errorf("go tool pprof -proto: %w", err)
	}
	return os.WriteFile(out, merged, 0o644)
}
