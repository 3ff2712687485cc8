// Package steppedclock is a clock for tests that reads like time.Now on a
// host whose wall clock is stepped (an NTP correction, a VM resumed): its
// readings carry a monotonic reading that only Advance moves, while Step
// moves the wall clock alone. Code that times a duration on the monotonic
// clock (time.Time.Sub of two such readings) sees no step; code that keeps
// a wall-clock instant (UnixNano, time.Unix) sees it.
package steppedclock

import (
	"fmt"
	"sync"
	"time"
	"unsafe"
)

// Clock is a stepped clock, safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New starts a Clock at time.Now, monotonic reading included.
func New() *Clock { return &Clock{now: time.Now()} }

// Now reads the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance lets d pass, on both clocks.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Step moves the wall clock by d, whole seconds, and leaves the monotonic
// reading as it is. time.Time has no API for it: the wall reading of a
// Time with a monotonic one is kept as 33 bits of seconds above 30 bits of
// nanoseconds (package time's time.go), and the seconds are moved there.
// It returns an error, moving nothing, when the result is not that (a
// layout of time.Time this does not know).
func (c *Clock) Step(d time.Duration) error {
	if d%time.Second != 0 {
		return fmt.Errorf("steppedclock: step %v: whole seconds only", d)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	type layout struct {
		wall uint64
		ext  int64
		loc  *time.Location
	}
	next := c.now
	l := (*layout)(unsafe.Pointer(&next))
	l.wall = uint64(int64(l.wall) + int64(d/time.Second)<<30)
	if next.Round(0) != c.now.Round(0).Add(d) || next.Sub(c.now) != 0 {
		return fmt.Errorf("steppedclock: step %v gave a wall clock moved by %v and a monotonic one by %v", d, next.Round(0).Sub(c.now.Round(0)), next.Sub(c.now))
	}
	c.now = next
	return nil
}
