package failover

import (
	"context"
	"sync"
	"time"
)

// attemptCtx is the context of one attempt: it ends when the caller's
// context does, or when the attempt is aborted (a timeout fired, the
// Response was released), and it keeps why.
//
// It does the work of context.WithCancelCause(caller) plus the transport's
// context.AfterFunc on that child, for less: the standard pair made about a
// dozen allocations per attempt (two cancelCtx values, two done channels,
// two children maps, their closures) and took two mutexes at every step,
// about 5% of paygate's CPU per proxied request under load. Here the attempt
// lives inside its Response, registers once with the caller's context, and
// keeps the transport's hook in a slot of its own.
//
// Transports reach the hook slot through the AfterFunc method, which
// context.AfterFunc and the context package's derived contexts also use
// (the afterFuncer interface): no goroutine is ever started to watch it.
//
// Err is context.Canceled (or the caller's error) once the attempt ended,
// as the Context contract asks; the attempt's own cause (a timeout) is read
// with cause, since context.Cause would find the caller's cancelCtx first.
type attemptCtx struct {
	parent     context.Context
	stopParent func() bool // ends the registration with parent; nil when there is none (under mu)

	mu     sync.Mutex
	done   chan struct{} // made by the first Done, or closed at the end
	err    error         // nil while the attempt runs
	why    error         // the cause kept with err
	hooks  []hook        // AfterFunc registrations not yet run or stopped
	buf    [2]hook       // hooks' backing array: a transport holds one at a time
	nextID uint64
}

// hook is one AfterFunc registration.
type hook struct {
	id uint64
	f  func()
}

// closedDone is the done channel of an attempt that ended before anyone
// asked for it.
var closedDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// init starts the attempt as a child of parent. A parent that is already
// done ends it at once.
func (c *attemptCtx) init(parent context.Context) {
	c.parent = parent
	c.hooks = c.buf[:0]
	if parent.Done() == nil {
		return // never canceled (Background, WithoutCancel)
	}
	// A caller that is already done, or ends now, runs parentDone on
	// another goroutine at once: it must not read stopParent unlocked.
	stop := context.AfterFunc(parent, c.parentDone)
	c.mu.Lock()
	c.stopParent = stop
	c.mu.Unlock()
}

// parentDone runs, on a goroutine of the context package's, when the
// caller's context ends.
func (c *attemptCtx) parentDone() {
	c.end(c.parent.Err(), context.Cause(c.parent))
}

// cancel ends the attempt with cause, unless it has already ended.
func (c *attemptCtx) cancel(cause error) { c.end(context.Canceled, cause) }

// end records err and why, closes Done and runs the hooks. The hooks run on
// the calling goroutine, after the lock is released: the ones registered
// here (the transports' and the dialer's) only move a deadline, and the
// context package's own (a context derived from this one) only cancel
// their child.
func (c *attemptCtx) end(err, why error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err, c.why = err, why
	if c.done == nil {
		c.done = closedDone
	} else {
		close(c.done)
	}
	hooks, stopParent := c.hooks, c.stopParent
	c.hooks = nil
	c.mu.Unlock()
	if stopParent != nil {
		// Nil when the caller ended the attempt before init kept the
		// registration: that registration has run, nothing to stop.
		stopParent()
	}
	for _, h := range hooks {
		h.f()
	}
}

// cause reports why the attempt ended; nil while it runs.
func (c *attemptCtx) cause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.why
}

// Deadline is the caller's: the attempt's own limits are timers.
func (c *attemptCtx) Deadline() (time.Time, bool) { return c.parent.Deadline() }

// Value is the caller's.
func (c *attemptCtx) Value(key any) any { return c.parent.Value(key) }

// Done is closed when the attempt ends.
func (c *attemptCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
	}
	return c.done
}

// Err is nil while the attempt runs, then context.Canceled, or the caller's
// error when the caller's context ended it.
func (c *attemptCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// AfterFunc arranges for f to run once the attempt ends, as
// context.AfterFunc does, which calls this method. If the attempt has
// already ended, f runs at once in its own goroutine. stop removes the
// registration and reports whether it did so before f ran.
func (c *attemptCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	c.nextID++
	id := c.nextID
	c.hooks = append(c.hooks, hook{id: id, f: f})
	c.mu.Unlock()
	return func() bool { return c.stopHook(id) }
}

func (c *attemptCtx) stopHook(id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, h := range c.hooks {
		if h.id == id {
			last := len(c.hooks) - 1
			c.hooks[i] = c.hooks[last]
			c.hooks[last] = hook{}
			c.hooks = c.hooks[:last]
			return true
		}
	}
	return false
}

// String names the context as the context package's types do.
func (c *attemptCtx) String() string { return "failover.attemptCtx" }
