// Package countwait lets a test wait until each of several participants (the
// replicas or relays of a test) has done something a number of times more,
// without sleeping: every Add wakes the waiters. It is for tests only.
package countwait

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Counter counts events per participant.
type Counter struct {
	mu      sync.Mutex
	n       []int
	changed chan struct{} // closed and replaced on every Add
}

// New returns a Counter for participants 0..n-1.
func New(n int) *Counter {
	return &Counter{n: make([]int, n), changed: make(chan struct{})}
}

// Add counts one event of participant i.
func (c *Counter) Add(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[i]++
	close(c.changed)
	c.changed = make(chan struct{})
}

// AwaitMore waits until every participant has counted more events since the
// call, or stop is closed (true), or ctx ends or d passes: then it fails t
// (Errorf, which a server's handler may call too) saying what each counted,
// and returns false. A wait that ended short is a test's failure even where
// its caller goes on without reading the result: the checks after a wait
// "until every replica polled twice more" would pass on a state the wait
// never reached.
func (c *Counter) AwaitMore(t testing.TB, ctx context.Context, stop <-chan struct{}, more int, d time.Duration) bool {
	t.Helper()
	c.mu.Lock()
	base := append([]int(nil), c.n...)
	c.mu.Unlock()
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	for {
		c.mu.Lock()
		done, changed := true, c.changed
		for i := range c.n {
			done = done && c.n[i] >= base[i]+more
		}
		c.mu.Unlock()
		if done {
			return true
		}
		select {
		case <-changed:
		case <-stop:
			return true
		case <-ctx.Done():
			t.Errorf("countwait: %v after counting %v more; want %d more each", ctx.Err(), c.since(base), more)
			return false
		case <-timeout.C:
			t.Errorf("countwait: after %s, counted %v more; want %d more each", d, c.since(base), more)
			return false
		}
	}
}

// since is what each participant counted after base.
func (c *Counter) since(base []int) []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := make([]int, len(c.n))
	for i := range c.n {
		d[i] = c.n[i] - base[i]
	}
	return d
}
