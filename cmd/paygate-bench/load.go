package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// benchUser is the end user's OpenID in the requests; paygate hashes it.
const benchUser = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"

// requestBody is a small realistic chat request for model.
func requestBody(model string, stream bool) []byte {
	s := ""
	if stream {
		s = `"stream":true,`
	}
	return []byte(`{"model":"` + model + `",` + s + `"messages":[` +
		`{"role":"system","content":"You are the shop assistant of a WeChat mini-program. Answer briefly."},` +
		`{"role":"user","content":"What plans do you offer, and how much is the premium one?"}],` +
		`"temperature":0.7,"max_tokens":256,"user":"` + benchUser + `"}`)
}

// loader is the load generator: one http.Client with a transport tuned for
// many keep-alive connections, request bodies built once.
type loader struct {
	client     *http.Client
	key        string
	nonStream  []byte
	stream     []byte
	slowStream []byte
	// harness lists the processes of the load generator and the fake
	// upstream, whose CPU every cell also spends; nil in tests that do not
	// account it.
	harness func() []int
}

func newLoader(key string) *loader {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4096,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     120 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &loader{
		client:     &http.Client{Transport: tr},
		key:        "Bearer " + key,
		nonStream:  requestBody(benchModel, false),
		stream:     requestBody(benchModel, true),
		slowStream: requestBody(slowModel, true),
	}
}

// cellSpec is one measured cell: non-stream or stream, at a concurrency.
type cellSpec struct {
	Stream  bool
	Clients int
}

func (c cellSpec) String() string {
	if c.Stream {
		return fmt.Sprintf("stream@%d", c.Clients)
	}
	return fmt.Sprintf("non-stream@%d", c.Clients)
}

// cellResult is one measurement of one cell on one target. Latency is the
// whole response for non-stream and the time to the first data event for
// stream.
type cellResult struct {
	OK       int
	Errors   int
	FirstErr error
	Elapsed  time.Duration
	P50, P99 time.Duration
	CPU      time.Duration // proxy process CPU during the cell; 0 with no process
	Harness  time.Duration // load generator and fake upstream CPU during the cell
	Busy     time.Duration // the whole machine's CPU outside idle during the cell
	NCPU     int           // CPUs Busy is a share of
}

// RPS is completed requests per second.
func (r cellResult) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// CPUPerReq is the proxy's CPU time per completed request.
func (r cellResult) CPUPerReq() time.Duration { return r.perReq(r.CPU) }

// perReq divides a cell's CPU time by its completed requests.
func (r cellResult) perReq(d time.Duration) time.Duration {
	if r.OK == 0 {
		return 0
	}
	return d / time.Duration(r.OK)
}

// BusyShare is the share of the machine's CPU time that was not idle during
// the cell. Throughput is this share of the CPUs divided by the machine's CPU
// per request, so a cell can lose throughput to CPU or to idle time.
func (r cellResult) BusyShare() float64 {
	if r.Elapsed <= 0 || r.NCPU == 0 {
		return 0
	}
	return float64(r.Busy) / (float64(r.Elapsed) * float64(r.NCPU))
}

// percentile returns the q-quantile (nearest rank) of sorted durations.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

// worker is one client's state for a cell.
type worker struct {
	lat      []time.Duration
	errs     int
	firstErr error
	br       *bufio.Reader
}

func (w *worker) fail(err error) {
	w.errs++
	if w.firstErr == nil {
		w.firstErr = err
	}
}

// runCell drives spec.Clients closed-loop clients against url for d and reads
// the CPU of pids (nil: none) around it.
func (l *loader) runCell(ctx context.Context, url string, spec cellSpec, d time.Duration, pids func() []int) cellResult {
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	var procs []int
	if pids != nil {
		procs = pids()
	}
	var harness []int
	if l.harness != nil {
		harness = l.harness()
	}
	cpu0, h0 := cpuOf(procs), cpuOf(harness)
	busy0, busyErr := systemBusy()
	workers := make([]*worker, spec.Clients)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for i := range workers {
		w := &worker{lat: make([]time.Duration, 0, 1<<14), br: bufio.NewReaderSize(nil, 16<<10)}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				var lat time.Duration
				var err error
				if spec.Stream {
					lat, err = l.streamOnce(ctx, url, l.stream, w.br, nil)
				} else {
					err = l.nonStreamOnce(ctx, url)
					lat = time.Since(t0)
				}
				if err != nil {
					w.fail(err)
					if w.errs > 100 && len(w.lat) == 0 {
						return // the target is down; do not spin
					}
					continue
				}
				w.lat = append(w.lat, lat)
			}
		}()
	}
	wg.Wait()
	res := cellResult{Elapsed: time.Since(start)}
	res.CPU = cpuOf(procs) - cpu0
	res.Harness = cpuOf(harness) - h0
	if busy1, err := systemBusy(); err == nil && busyErr == nil {
		res.Busy, res.NCPU = busy1-busy0, runtime.NumCPU()
	}
	var all []time.Duration
	for _, w := range workers {
		all = append(all, w.lat...)
		res.Errors += w.errs
		if res.FirstErr == nil {
			res.FirstErr = w.firstErr
		}
	}
	slices.Sort(all)
	res.OK = len(all)
	res.P50, res.P99 = percentile(all, 0.50), percentile(all, 0.99)
	return res
}

func (l *loader) newRequest(ctx context.Context, url string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header["Content-Type"] = []string{"application/json"}
	req.Header["Authorization"] = []string{l.key}
	return req, nil
}

var errShortStream = errors.New("stream ended without data: [DONE]")

// nonStreamOnce sends one non-stream request and reads the whole answer.
func (l *loader) nonStreamOnce(ctx context.Context, url string) error {
	req, err := l.newRequest(ctx, url, l.nonStream)
	if err != nil {
		return err
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if resp.StatusCode != http.StatusOK || n == 0 {
		return fmt.Errorf("status %d, %d bytes", resp.StatusCode, n)
	}
	return nil
}

// streamOnce sends one stream request, returns the time from the request's
// start to the first "data:" line, reads to the end and checks that the stream
// was closed by "data: [DONE]". onFirst, if set, runs at the first event.
func (l *loader) streamOnce(ctx context.Context, url string, body []byte, br *bufio.Reader, onFirst func()) (time.Duration, error) {
	start := time.Now()
	req, err := l.newRequest(ctx, url, body)
	if err != nil {
		return 0, err
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer drainClose(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	br.Reset(resp.Body)
	var ttfc time.Duration
	first, done, lineStart := false, false, true
	for {
		line, err := br.ReadSlice('\n')
		if lineStart && bytes.HasPrefix(line, []byte("data:")) {
			if !first {
				ttfc, first = time.Since(start), true
				if onFirst != nil {
					onFirst()
				}
			}
			if bytes.HasPrefix(bytes.TrimSpace(line[5:]), []byte("[DONE]")) {
				done = true
			}
		}
		lineStart = err == nil
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("read stream: %w", err)
		}
	}
	if !first || !done {
		return 0, errShortStream
	}
	return ttfc, nil
}

// holdResult is the outcome of holding many slow streams open at once.
type holdResult struct {
	Streams       int    // streams started
	OK            int    // streams that ended with [DONE]
	MaxConcurrent int    // most streams open (first event seen, not ended) at once
	PeakBytes     uint64 // VmHWM of the proxy over the hold, summed over its processes
	PeakExact     bool   // VmHWM was reset before the hold; else a lifetime peak
	FirstErr      error
}

// holdStreams opens n slow streams at once against url and reads the proxy's
// peak memory over them. onOpen, if set, sees the number of open streams each
// time a stream delivers its first event.
func (l *loader) holdStreams(ctx context.Context, url string, n int, pids func() []int, onOpen func(open int)) holdResult {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	procs := pids()
	res := holdResult{Streams: n, PeakExact: resetPeakRSS(procs) == nil}
	var open, maxOpen, ok atomic.Int64
	var errOnce sync.Once
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			br := bufio.NewReaderSize(nil, 16<<10)
			counted := false
			_, err := l.streamOnce(ctx, url, l.slowStream, br, func() {
				counted = true
				cur := open.Add(1)
				for m := maxOpen.Load(); cur > m && !maxOpen.CompareAndSwap(m, cur); m = maxOpen.Load() {
				}
				if onOpen != nil {
					onOpen(int(cur))
				}
			})
			if counted {
				open.Add(-1)
			}
			if err != nil {
				errOnce.Do(func() { res.FirstErr = err })
				return
			}
			ok.Add(1)
		}()
	}
	wg.Wait()
	res.OK = int(ok.Load())
	res.MaxConcurrent = int(maxOpen.Load())
	res.PeakBytes = memOf(procs, "VmHWM")
	return res
}
