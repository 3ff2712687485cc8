package failover

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// deadlines are an attempt's timeouts (first byte, first token, idle gap,
// the round's time, the total) on one timer that is re-armed lazily.
//
// Resetting a runtime timer is not free: the runtime wakes the network
// poller or starts a thread for it (wakeNetPoller), a futex wake and a
// thread that spins up to find nothing to do, and a stream read event by
// event used to reset its idle timer around every read from the provider.
// Here a wait for the provider only publishes its deadline (an atomic
// store); the timer is armed at the start for the earliest moment any
// deadline could fall, and when it fires before a deadline it re-arms
// itself for what is left. An attempt that ends within its shortest
// timeout, as almost all do, arms the timer once and stops it once.
//
// Invariant: the timer fires no later than every deadline in force, and no
// later than now+idle, so that waitIdle never has to move it. Only a
// deadline earlier than that (the drain after a stream, a short round)
// resets it.
type deadlines struct {
	start time.Time
	idle  time.Duration
	// totalAt is when, counted from start, the total timeout ends; under
	// mu once the timer runs (noTotal).
	totalAt time.Duration
	// roundAt is when, counted from start, the round's time runs out; 0
	// once the round has its answer.
	roundAt atomic.Int64
	// waitAt is when the current wait for the provider times out, counted
	// from start; 0 while nothing is awaited (the proxy is relaying).
	waitAt atomic.Int64
	// pausedAt is when, counted from start and plus one (0: not paused),
	// the caller took the event Next returned last: until it asks for the
	// next one, it is passing that one on at its client's pace, which the
	// total timeout does not count (pause, resume, totalDeadline).
	pausedAt atomic.Int64
	// leftOut is how much of the caller's time the total has left out so
	// far, at most maxCallerPause for the whole attempt; under mu.
	leftOut   time.Duration
	phaseKind atomic.Int32 // names the wait's timeout: first byte, first token, idle
	// timerAt is when the timer fires, counted from start.
	timerAt atomic.Int64

	mu      sync.Mutex // orders the timer's re-arming with setPhase and stop
	timer   *time.Timer
	stopped bool
	expire  func(cause error)
}

// startDeadlines arms d for an attempt that starts now and waits for its
// first byte until headerWait; expire is called once with the cause when a
// deadline passes. firstToken is the first-token allowance; roundLeft is
// what is left of the round (0: unbounded).
func (d *deadlines) startDeadlines(idle, firstToken, headerWait, total, roundLeft time.Duration, expire func(error)) {
	d.start = time.Now()
	d.idle, d.totalAt, d.expire = idle, total, expire
	d.phaseKind.Store(phaseFirstByte)
	d.waitAt.Store(int64(headerWait))
	first := min(headerWait, firstToken, idle, total)
	if roundLeft > 0 {
		d.roundAt.Store(int64(roundLeft))
		first = min(first, roundLeft)
	}
	first = max(first, time.Nanosecond)
	d.timerAt.Store(int64(first))
	// Under mu: a timer due at once runs fire, which re-arms d.timer, before
	// AfterFunc has returned it.
	d.mu.Lock()
	d.timer = time.AfterFunc(first, d.fire)
	d.mu.Unlock()
}

// setPhase starts a wait of the kind ph that times out after dur.
func (d *deadlines) setPhase(ph int32, dur time.Duration) {
	d.setPhaseAt(ph, time.Since(d.start)+max(dur, time.Nanosecond))
}

// setPhaseAt starts a wait of the kind ph that times out at at, counted
// from start. Only a deadline earlier than the timer moves it.
func (d *deadlines) setPhaseAt(ph int32, at time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.phaseKind.Store(ph)
	d.waitAt.Store(int64(at))
	if int64(at) < d.timerAt.Load() && !d.stopped {
		d.timerAt.Store(int64(at))
		d.timer.Reset(max(at-time.Since(d.start), time.Nanosecond))
	}
}

// waitIdle starts a wait for the provider bounded by the idle timeout: the
// hot path of a stream, one clock read and two atomic operations.
func (d *deadlines) waitIdle() { d.waitIdleAt(time.Since(d.start)) }

// waitIdleAt is waitIdle at elapsed, a clock read the caller has just
// made (Next's, in resume).
func (d *deadlines) waitIdleAt(elapsed time.Duration) {
	at := elapsed + d.idle
	d.waitAt.Store(int64(at))
	if d.timerAt.Load() > int64(at) {
		d.setPhaseAt(phaseIdle, at) // not reached while the invariant holds
	}
}

// endWait ends the current wait: the proxy has what it waited for.
func (d *deadlines) endWait() { d.waitAt.Store(0) }

// noTotal lifts the total timeout for the rest of the attempt: a piped
// answer's body goes at its reader's pace, and only each wait for the
// provider stays bounded (idle).
func (d *deadlines) noTotal() {
	d.mu.Lock()
	d.totalAt = math.MaxInt64
	d.mu.Unlock()
}

// maxCallerPause bounds how much of the caller's time (passing events on
// to a client that reads slowly or not at all) the total timeout leaves
// out, over the whole attempt and not per pause: a provider that streams
// without end to a bot a little slower than it finds each next event
// already read, its own clock hardly running, and is still cut at the
// total plus this. It is well above what the bots' listener lets a
// client that takes nothing hold a write (proxy/h1's WriteStallTimeout,
// 60 s, which cuts it within two and a half times that), so that the
// server ends a stalled bot first; where nothing bounds the bot's writes (net/http's server, on
// systems other than Linux) the provider's exchange still ends.
const maxCallerPause = 3 * time.Minute

// pauseAt starts the caller's time at elapsed: it has an event to pass on,
// and the provider waits on it, not it on the provider. An atomic store and
// no clock read of its own: a stream pauses once per event, and Next
// passes the attempt's last reading of the clock, taken in resume or after
// the read from the provider that brought the event. Taken before Next's
// own work on the event, it counts that work (microseconds) as the
// caller's; a pause that short is counted as the provider's anyway
// (shortPause).
func (d *deadlines) pauseAt(elapsed time.Duration) {
	d.pausedAt.Store(int64(elapsed) + 1)
}

// resume ends the caller's time: the total timeout's deadline moves on by
// it (up to what is left of maxCallerPause), so that a bot's pace over a
// long answer is not counted as the provider's slowness. It returns the
// attempt's elapsed time, its one clock read, for Next to reuse (pauseAt,
// waitIdleAt): three readings an event cost a relayed stream about 170
// instructions and 50-60 ns an event more than one.
func (d *deadlines) resume() time.Duration {
	elapsed := time.Since(d.start)
	p := d.pausedAt.Load()
	if p == 0 {
		return elapsed
	}
	if elapsed-time.Duration(p-1) < shortPause {
		// A bot that keeps up: its write is counted as the provider's
		// time, as every write was before pauses were left out, and the
		// stream's hot path takes no lock. A timer that read this pause
		// in progress fires at most shortPause late.
		d.pausedAt.Store(0)
		return elapsed
	}
	d.resumeAt(elapsed)
	return elapsed
}

// shortPause is the longest pause of the caller's that the total timeout
// still counts (resume): a bot that reads as fast as the provider writes
// takes each event in microseconds.
const shortPause = time.Millisecond

// resumeAt is resume at elapsed.
func (d *deadlines) resumeAt(elapsed time.Duration) {
	d.mu.Lock()
	if p := d.pausedAt.Load(); p > 0 {
		t := d.totalDeadline(elapsed)
		d.leftOut += t - d.totalAt
		d.totalAt = t
		d.pausedAt.Store(0)
	}
	d.mu.Unlock()
}

// totalDeadline is when the total timeout ends, counted from start, at
// elapsed: moved on by the pause in progress, if any, as far as the
// attempt's maxCallerPause has room for. Under mu.
func (d *deadlines) totalDeadline(elapsed time.Duration) time.Duration {
	t := d.totalAt
	if p := d.pausedAt.Load(); p > 0 && t != math.MaxInt64 {
		t += max(min(elapsed-time.Duration(p-1), maxCallerPause-d.leftOut), 0)
	}
	return t
}

// stop stops the timer for good.
func (d *deadlines) stop() {
	d.mu.Lock()
	d.stopped = true
	d.mu.Unlock()
	d.timer.Stop()
}

// fire is the timer's action: it expires the attempt when a deadline has
// passed, else re-arms the timer for the next one.
func (d *deadlines) fire() {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return
	}
	elapsed := time.Since(d.start)
	cause, next := d.check(elapsed)
	if cause == nil {
		d.timerAt.Store(int64(next))
		d.timer.Reset(next - elapsed)
	}
	d.mu.Unlock()
	if cause != nil {
		d.expire(cause)
	}
}

// check reports the cause when a deadline has passed at elapsed: the
// round's time or the total timeout when one of them is spent (the earlier
// one, when both are), else the timeout of the wait in progress. Otherwise
// it reports when the timer must fire next.
func (d *deadlines) check(elapsed time.Duration) (error, time.Duration) {
	r := time.Duration(d.roundAt.Load())
	totalAt := d.totalDeadline(elapsed)
	roundOver, totalOver := r > 0 && elapsed >= r, elapsed >= totalAt
	switch {
	case roundOver && (!totalOver || r <= totalAt):
		return errRoundTime, 0
	case totalOver:
		return ErrTotalTimeout, 0
	}
	// elapsed is read before waitAt: a wait that began after it cannot
	// be taken for one that timed out.
	next := min(totalAt, elapsed+d.idle)
	if r > 0 {
		next = min(next, r)
	}
	if w := time.Duration(d.waitAt.Load()); w > 0 {
		if elapsed >= w {
			switch d.phaseKind.Load() {
			case phaseFirstByte:
				return ErrFirstByteTimeout, 0
			case phaseFirstToken:
				return ErrFirstTokenTimeout, 0
			default:
				return ErrIdleTimeout, 0
			}
		}
		next = min(next, w)
	}
	return nil, next
}
