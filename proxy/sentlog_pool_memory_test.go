package proxy

import (
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/heaptest"
)

// TestSentLogPoolHoldsNoLongAnswer: the logs of sent events (sentLog) of
// plain streams are pooled for the next streams, so that a healthy stream
// costs no allocation; a log a long answer grew (a reasoning model's few
// thousand tokens: 200 bytes of chunk each) went back to the pool at any
// size up to 1 MiB, and a pooled log never shrinks. Every pooled log then
// grows, stream after stream, to the longest answer it ever logged, and
// stays so while short answers reuse it: one long answer per concurrent
// stream was enough for the heap to keep up to 1 MiB per stream, 32 MiB
// for 32, for as long as paygate ran. Streams run 32 at once (each waits
// at its midpoint for the others, so 32 logs are out together): short
// ones, then long ones (600 KiB of events each), then short ones again;
// the short streams after the long ones must leave the heap as it was
// before them. It runs under the race detector too, whose sync.Pool drops
// a quarter of what is put back: a test skipped under it put the whole
// package in CI's second run, without it (scripts/test.sh greps for that
// skip), for this one test.
func TestSentLogPoolHoldsNoLongAnswer(t *testing.T) {
	const streams = 32
	var mu sync.Mutex
	barriers := map[string]*midBarrier{}
	provider := func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var phase string
		var events, size int
		fmt.Sscanf(gjson.GetBytes(body, "messages.0.content").Str, "%s %d %d", &phase, &events, &size)
		mu.Lock()
		b := barriers[phase]
		if b == nil {
			b = &midBarrier{n: streams, all: make(chan struct{})}
			barriers[phase] = b
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		delta := strings.Repeat("x", size)
		for i := range events {
			if i == events/2 {
				w.(http.Flusher).Flush()
				b.wait()
			}
			io.WriteString(w, roundChunk+`[{"index":0,"delta":{"content":"`+delta+`"},"finish_reason":null}]}`+"\n\n")
		}
		io.WriteString(w, roundChunk+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\ndata: [DONE]\n\n")
	}
	fp := newFakeProvider(t, provider)
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	run := func(phase string, events, size int) {
		var wg sync.WaitGroup
		for range streams {
			wg.Go(func() {
				body := fmt.Sprintf(`{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"%s %d %d"}]}`, phase, events, size)
				resp := post(t, url, "/v1/chat/completions", body, nil)
				if got := readAll(t, resp.Body); !strings.HasSuffix(got, "data: [DONE]\n\n") {
					t.Errorf("phase %s: the stream ended %q", phase, got[max(0, len(got)-200):])
				}
			})
		}
		wg.Wait()
	}
	// No collection but the measures': two collections between a log's
	// Put and the next Get drop it from the pool, and the collections
	// the long streams' garbage brings came at random, so the pool's hold
	// was measured in some runs only (without the rule, 1.3 to 12.2 MiB
	// kept over six runs, under the 8 MiB bound in half of them). Now,
	// without the rule: 20 to 22 MiB, 6.7 to 15.4 MiB under -race; with
	// it, at most 1.1 MiB.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	run("short-1", 20, 50)
	run("short-2", 20, 50)
	base := heaptest.Live()
	run("long", 300, 2000) // 600 KiB of events
	run("short-3", 20, 50)
	kept := int64(heaptest.Live()) - int64(base)
	t.Logf("%d concurrent short streams after %d long ones keep %.1f MiB more heap than before them", streams, streams, float64(kept)/(1<<20))
	if kept > 4<<20 {
		t.Errorf("the heap keeps %.1f MiB after the long answers, short ones streaming; want at most 4 MiB (their logs let go)", float64(kept)/(1<<20))
	}
}

// midBarrier holds the streams of a phase at their midpoint until all n
// have reached it.
type midBarrier struct {
	n    int
	at   atomic.Int32
	all  chan struct{}
	once sync.Once
}

func (b *midBarrier) wait() {
	if int(b.at.Add(1)) == b.n {
		b.once.Do(func() { close(b.all) })
	}
	<-b.all
}

// TestSentLogOverIsNotPooled: a log that went over maxSentLog let go of
// its buffer (nil); put back so, the next stream that took it grew one
// from nothing, an allocation at each doubling, where a log from the
// pool's New starts at 16 KiB.
func TestSentLogOverIsNotPooled(t *testing.T) {
	defer func(n int) { maxSentLog = n }(maxSentLog)
	maxSentLog = 64 << 10
	event := []byte(roundChunk + `[{"index":0,"delta":{"content":"` + strings.Repeat("x", 150) + `"},"finish_reason":null}]}`)
	l := sentLogs.New().(*sentLog)
	for !l.over {
		l.add(event)
	}
	if l.reusable() {
		t.Errorf("a log over maxSentLog (its buffer dropped, cap %d) goes back to the pool", cap(l.b))
	}
	// What the next stream would pay for it: 13 KB of events logged.
	grow := testing.AllocsPerRun(20, func() {
		var g sentLog
		for range 13 << 10 / len(event) {
			g.add(event)
		}
	})
	fresh := testing.AllocsPerRun(20, func() {
		g := sentLog{b: make([]byte, 0, 16<<10)}
		for range 13 << 10 / len(event) {
			g.add(event)
		}
	})
	t.Logf("13 KB of events logged: %.0f allocations from a dropped buffer, %.0f from a new log", grow, fresh)
}
