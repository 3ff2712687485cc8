//go:build linux

package interceptors

import (
	"io"
	"runtime"
	"syscall"
	"testing"
	"unsafe"

	"github.com/paygate/paygate/sse"
)

// threadCPU is the calling thread's CPU time in ns. Unlike wall time it
// does not count the time the thread waited for a CPU, so the figures below
// hold on a loaded machine.
func threadCPU() int64 {
	var ts syscall.Timespec
	const clockThreadCPUTime = 3 // CLOCK_THREAD_CPUTIME_ID
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0)
	return ts.Nano()
}

// BenchmarkCaptureVsPassThrough relays the same OpenAI text stream through
// the bare SSE reader and writer and through reader, Capture and writer, in
// alternating batches on one locked thread, and reports the CPU time per
// event of each and their ratio (the target: capture within 1.5x).
// Rounds of benchRound events, EndRound included.
func BenchmarkCaptureVsPassThrough(b *testing.B) {
	benchVs(b, 0)
}

// BenchmarkCaptureVsPassThroughLaterRound: the same after round 0 (ids
// rewritten to the turn's).
func BenchmarkCaptureVsPassThroughLaterRound(b *testing.B) {
	benchVs(b, 1)
}

func benchVs(b *testing.B, round int) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	stream := append(sseEvent(benchTextChunk), sseEvent(benchTextChunk2)...)
	pr := sse.NewReader(&repeatReader{ev: stream})
	defer pr.Release()
	cr := sse.NewReader(&repeatReader{ev: stream})
	defer cr.Release()
	w := sse.NewWriter(io.Discard)
	c := NewCapture(isPaymentName)
	c.StartRound(round, "chatcmpl-paygate-turn", benchCreated)
	const batch = benchRound * 5
	var pass, capt int64
	b.ReportAllocs()
	for b.Loop() {
		t0 := threadCPU()
		for range batch {
			ev, err := pr.Next()
			if err != nil {
				b.Fatal(err)
			}
			if err := w.Data(ev.Data); err != nil {
				b.Fatal(err)
			}
		}
		t1 := threadCPU()
		for i := range batch {
			ev, err := cr.Next()
			if err != nil {
				b.Fatal(err)
			}
			out, err := c.Process(ev.Data)
			if err != nil {
				b.Fatal(err)
			}
			if err := w.Data(out); err != nil {
				b.Fatal(err)
			}
			if (i+1)%benchRound == 0 {
				c.EndRound()
				c.StartRound(round, "chatcmpl-paygate-turn", benchCreated)
			}
		}
		t2 := threadCPU()
		pass += t1 - t0
		capt += t2 - t1
	}
	events := float64(b.N * batch)
	b.ReportMetric(float64(pass)/events, "pass-ns/event")
	b.ReportMetric(float64(capt)/events, "capture-ns/event")
	b.ReportMetric(float64(capt)/float64(pass), "ratio")
}
