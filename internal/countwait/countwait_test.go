package countwait

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that keeps what a helper reported.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestAwaitMore: a wait that ends short of its count (its time out, its
// context ended) fails the test that waited, so that a caller which goes on
// without reading the result (a last wait "for two more polls" before the
// checks) does not check a state the wait never reached; a wait that got its
// count, or was stopped, fails nothing. It counts from the call: events
// counted before it, or by some participants alone, are not its count.
func TestAwaitMore(t *testing.T) {
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	stopped := make(chan struct{})
	close(stopped)
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		stop   chan struct{}
		before int   // events each participant counted before the wait
		count  []int // the participants that count events until the wait returns
		d      time.Duration
		want   bool
		report string // in the error reported; "" for none
	}{
		{"every participant counted", context.Background(), nil, 0, []int{0, 1}, time.Minute, true, ""},
		{"stopped", context.Background(), stopped, 0, nil, time.Minute, true, ""},
		{"no participant counted, timed out", context.Background(), nil, 0, nil, time.Nanosecond, false, "after 1ns, counted [0 0] more; want 1 more each"},
		{"one participant counted, the other never", context.Background(), nil, 0, []int{0}, 100 * time.Millisecond, false, " 0] more; want 1 more each"},
		{"counted before the wait only", context.Background(), nil, 3, nil, time.Nanosecond, false, "counted [0 0] more; want 1 more each"},
		{"context ended", ended, nil, 0, nil, time.Minute, false, "context canceled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New(2)
			for range tc.before {
				c.Add(0)
				c.Add(1)
			}
			rec := &recorder{TB: t}
			got := make(chan bool)
			go func() { got <- c.AwaitMore(rec, tc.ctx, tc.stop, 1, tc.d) }()
			var ok bool
			// The wait counts from the events counted when it starts, which
			// this goroutine cannot know: it counts until the wait returns.
		wait:
			for {
				select {
				case ok = <-got:
					break wait
				default:
					for _, i := range tc.count {
						c.Add(i)
					}
					runtime.Gosched()
				}
			}
			if ok != tc.want {
				t.Errorf("AwaitMore = %v; want %v", ok, tc.want)
			}
			switch {
			case tc.report == "" && len(rec.errs) > 0:
				t.Errorf("AwaitMore reported %q; want nothing", rec.errs)
			case tc.report != "" && (len(rec.errs) != 1 || !strings.Contains(rec.errs[0], tc.report)):
				t.Errorf("AwaitMore reported %q; want one error saying %q", rec.errs, tc.report)
			}
		})
	}
}
