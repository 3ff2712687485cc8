package failover

import (
	"sync/atomic"
	"time"
)

// instant is a time of the Router's clock kept without a lock, as its
// distance in nanoseconds from the Router's epoch (time.Time.Sub), 0 for
// none. With the real clock, the epoch and the times compared with it carry
// Go's monotonic reading, so a step of the host's wall clock (an NTP
// correction, a VM resumed) neither lengthens nor ends what it times: kept
// as a wall-clock instant (unix ns), a step back of an hour kept a 30 s
// cool-down for an hour and 30 s, and a step ahead ended it at once (and
// sorted a target that failed once behind the others for an hour and a
// minute, latencyStale).
type instant struct{ v atomic.Int64 }

// raise keeps t unless a later time is kept, and reports whether it did.
func (a *instant) raise(epoch, t time.Time) bool {
	n := max(int64(t.Sub(epoch)), 1) // 0: none
	for {
		old := a.v.Load()
		if old >= n {
			return false
		}
		if a.v.CompareAndSwap(old, n) {
			return true
		}
	}
}

// until reports the time kept, as now's clock reads it (now plus what is
// left), when it is after now.
func (a *instant) until(epoch, now time.Time) (time.Time, bool) {
	n := a.v.Load()
	if n == 0 {
		return time.Time{}, false
	}
	left := time.Duration(n) - now.Sub(epoch)
	if left <= 0 {
		return time.Time{}, false
	}
	return now.Add(left), true
}

// set keeps t, whatever was kept.
func (a *instant) set(epoch, t time.Time) { a.v.Store(max(int64(t.Sub(epoch)), 1)) }

// since is how long before now the time kept is, when one is.
func (a *instant) since(epoch, now time.Time) (time.Duration, bool) {
	n := a.v.Load()
	if n == 0 {
		return 0, false
	}
	return now.Sub(epoch) - time.Duration(n), true
}

// after reports whether the time kept is later than b's (none is the
// earliest).
func (a *instant) after(b *instant) bool { return a.v.Load() > b.v.Load() }

// clear forgets the time kept.
func (a *instant) clear() { a.v.Store(0) }
