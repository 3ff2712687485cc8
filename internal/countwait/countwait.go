// Package countwait lets a test wait until each of several participants (the
// replicas or relays of a test) has done something a number of times more,
// without sleeping: every Add wakes the waiters. It is for tests only.
package countwait

import (
	"context"
	"sync"
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
// call, or stop is closed (true), or ctx ends or d passes (false).
func (c *Counter) AwaitMore(ctx context.Context, stop <-chan struct{}, more int, d time.Duration) bool {
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
			return false
		case <-timeout.C:
			return false
		}
	}
}
