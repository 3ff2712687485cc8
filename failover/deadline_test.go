package failover

import (
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestDeadlinesCheck(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name      string
		elapsed   time.Duration
		waitAt    time.Duration // 0: nothing awaited
		phase     int32
		roundAt   time.Duration // 0: the round has its answer
		wantCause error
		wantNext  time.Duration
	}{
		{name: "relaying, nothing due: again after idle", elapsed: 2 * s, wantNext: 32 * s},
		{name: "waiting, the wait ends first", elapsed: 2 * s, waitAt: 10 * s, phase: phaseIdle, wantNext: 10 * s},
		{name: "waiting past the heartbeat", elapsed: 2 * s, waitAt: 50 * s, phase: phaseFirstToken, wantNext: 32 * s},
		{name: "the round ends first", elapsed: 2 * s, waitAt: 50 * s, phase: phaseFirstByte, roundAt: 5 * s, wantNext: 5 * s},
		{name: "first byte spent", elapsed: 30 * s, waitAt: 30 * s, phase: phaseFirstByte, wantCause: ErrFirstByteTimeout},
		{name: "first token spent", elapsed: 31 * s, waitAt: 30 * s, phase: phaseFirstToken, wantCause: ErrFirstTokenTimeout},
		{name: "idle gap spent", elapsed: 45 * s, waitAt: 40 * s, phase: phaseIdle, wantCause: ErrIdleTimeout},
		{name: "a spent wait that ended is not a timeout", elapsed: 45 * s, wantNext: 75 * s},
		{name: "round spent before the phase", elapsed: 6 * s, waitAt: 8 * s, phase: phaseFirstByte, roundAt: 5 * s, wantCause: errRoundTime},
		{name: "round and phase spent: the round", elapsed: 9 * s, waitAt: 8 * s, phase: phaseFirstByte, roundAt: 5 * s, wantCause: errRoundTime},
		{name: "total spent", elapsed: 100 * s, wantCause: ErrTotalTimeout},
		{name: "the total is never passed by", elapsed: 90 * s, wantNext: 100 * s},
		{name: "round and total spent: the earlier, total", elapsed: 120 * s, roundAt: 110 * s, wantCause: ErrTotalTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &deadlines{idle: 30 * s, totalAt: 100 * s}
			d.waitAt.Store(int64(tt.waitAt))
			d.phaseKind.Store(tt.phase)
			d.roundAt.Store(int64(tt.roundAt))
			cause, next := d.check(tt.elapsed)
			if !errors.Is(cause, tt.wantCause) || (tt.wantCause == nil) != (cause == nil) {
				t.Fatalf("cause = %v, want %v", cause, tt.wantCause)
			}
			if cause == nil && next != tt.wantNext {
				t.Fatalf("next = %v, want %v", next, tt.wantNext)
			}
		})
	}
}

// TestDeadlinesArmOnce: an attempt that ends within its shortest timeout
// arms the timer once. Waits for the provider move no timer (the point of
// the lazy timer); only a deadline earlier than the timer does.
func TestDeadlinesArmOnce(t *testing.T) {
	const h = time.Hour
	d := &deadlines{}
	d.startDeadlines(30*h, 20*h, 10*h, 50*h, 0, func(error) { t.Error("expired") })
	defer d.stop()
	armed := d.timerAt.Load()
	if armed != int64(10*h) {
		t.Fatalf("armed for %v, want the shortest timeout, 10h", time.Duration(armed))
	}
	d.setPhase(phaseFirstToken, 20*h) // later: left to the timer
	for range 100 {
		d.waitIdle()
		d.endWait()
	}
	if got := d.timerAt.Load(); got != armed {
		t.Fatalf("timer moved to %v by later deadlines", time.Duration(got))
	}
	d.setPhase(phaseIdle, time.Hour) // earlier: the timer moves
	if got := time.Duration(d.timerAt.Load()); got > time.Hour+time.Minute {
		t.Fatalf("timer at %v after a deadline in 1h", got)
	}
}

// TestDeadlinesFireEarly: a timer firing before any deadline re-arms for
// the next one and expires nothing; a stopped one does neither.
func TestDeadlinesFireEarly(t *testing.T) {
	const h = time.Hour
	var expired []error
	d := &deadlines{}
	d.startDeadlines(h, h, h, 50*h, 0, func(err error) { expired = append(expired, err) })
	defer d.stop()
	d.setPhase(phaseFirstToken, 3*h)
	d.fire() // early: nothing is due for an hour
	if len(expired) != 0 {
		t.Fatalf("expired %v before any deadline", expired)
	}
	if got := time.Duration(d.timerAt.Load()); got < 59*time.Minute || got > 61*time.Minute {
		t.Fatalf("re-armed for %v, want the heartbeat an idle timeout (1h) from now", got)
	}
	d.stop()
	d.timerAt.Store(0)
	d.fire()
	if d.timerAt.Load() != 0 || len(expired) != 0 {
		t.Fatal("a stopped timer re-armed or expired")
	}
}

// TestDeadlinesExpire: a wait that outlasts its timeout expires the attempt
// once, with the wait's cause.
func TestDeadlinesExpire(t *testing.T) {
	got := make(chan error, 2)
	d := &deadlines{}
	d.startDeadlines(time.Hour, time.Hour, time.Hour, 50*time.Hour, 0, func(err error) { got <- err })
	defer d.stop()
	d.setPhase(phaseIdle, time.Millisecond)
	select {
	case err := <-got:
		if !errors.Is(err, ErrIdleTimeout) {
			t.Fatalf("expired with %v, want %v", err, ErrIdleTimeout)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a spent wait did not expire")
	}
}

// TestDeadlinesConcurrent runs the hot path against the timer's re-arming
// (for -race).
func TestDeadlinesConcurrent(t *testing.T) {
	d := &deadlines{}
	d.startDeadlines(time.Hour, time.Hour, time.Hour, 50*time.Hour, 0, func(error) { t.Error("expired") })
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 1000 {
			d.waitIdle()
			d.endWait()
		}
	})
	wg.Go(func() {
		for range 1000 {
			d.fire()
		}
	})
	wg.Wait()
	d.stop()
}

// TestDeadlinesFireAtOnce: a timer that fires as it is armed (a timeout of
// a nanosecond) re-arms itself through d.timer, which must already be set
// (for -race).
func TestDeadlinesFireAtOnce(t *testing.T) {
	for range 50 {
		d := &deadlines{}
		d.startDeadlines(time.Nanosecond, time.Hour, time.Hour, 50*time.Hour, 0, func(error) { t.Error("expired") })
		armed := d.timerAt.Load()
		for give := time.Now().Add(10 * time.Second); d.timerAt.Load() == armed; runtime.Gosched() {
			if time.Now().After(give) {
				t.Fatal("the timer never fired")
			}
		}
		d.stop()
	}
}

// TestDeadlinesNoTotal: once a piped answer's head has come the total
// timeout ends nothing (a slow client may take its time over a large
// file), while a wait for the provider still ends at the idle timeout.
func TestDeadlinesNoTotal(t *testing.T) {
	const s = time.Second
	d := &deadlines{idle: 30 * s, totalAt: 100 * s}
	d.noTotal()
	if cause, next := d.check(1000 * s); cause != nil || next != 1030*s {
		t.Fatalf("relaying past the total: cause %v, next %v; want none, again after idle", cause, next)
	}
	d.waitAt.Store(int64(1010 * s))
	d.phaseKind.Store(phaseIdle)
	if cause, _ := d.check(1010 * s); !errors.Is(cause, ErrIdleTimeout) {
		t.Fatalf("a spent wait past the total: cause %v; want the idle timeout", cause)
	}
}

// TestDeadlinesPauseLeavesTotal: the time the caller spends passing an
// event on (a slow bot's pace) is not the total timeout's: a pause moves
// the total's end on by its length, up to maxCallerPause, so that a bot
// that stopped reading altogether still has the provider's exchange ended
// where nothing else cuts it.
func TestDeadlinesPauseLeavesTotal(t *testing.T) {
	const s = time.Second
	d := &deadlines{idle: 30 * s, totalAt: 100 * s}
	d.pausedAt.Store(int64(90*s) + 1)
	if cause, next := d.check(150 * s); cause != nil || next != 160*s {
		t.Fatalf("paused past the total: cause %v, next %v; want none, again at the moved total (160s)", cause, next)
	}
	if cause, _ := d.check(90*s + maxCallerPause + 10*s); !errors.Is(cause, ErrTotalTimeout) {
		t.Fatalf("paused past the total by more than maxCallerPause: cause %v; want the total timeout", cause)
	}
	// The pause ended at 150 s: the total now ends 60 s later, at 160 s.
	d.totalAt = d.totalDeadline(150 * s)
	d.pausedAt.Store(0)
	if d.totalAt != 160*s {
		t.Fatalf("total ends at %v after a 60 s pause; want 160s", d.totalAt)
	}
	if cause, _ := d.check(161 * s); !errors.Is(cause, ErrTotalTimeout) {
		t.Fatalf("past the moved total: cause %v; want the total timeout", cause)
	}
	d.noTotal()
	d.pausedAt.Store(int64(200*s) + 1)
	if cause, _ := d.check(1000 * s); cause != nil {
		t.Fatalf("paused without a total: cause %v; want none", cause)
	}
}

// TestDeadlinesPausesShareOneBudget: the caller's time is left out of the
// total up to maxCallerPause over the whole attempt, not per pause: a
// provider that streams without end (a model looping) to a bot that reads
// a little slower than it writes finds every next event already read, so
// its own clock hardly runs, and with a bound per pause the total never
// came. Here each event costs the provider 10 ms and the bot 1 s: the total
// (100 s) must end the attempt once the pauses have used maxCallerPause,
// at 100 s + maxCallerPause, not never.
func TestDeadlinesPausesShareOneBudget(t *testing.T) {
	const s = time.Second
	d := &deadlines{idle: 30 * s, totalAt: 100 * s}
	var elapsed time.Duration
	want := 100*s + maxCallerPause
	for range 1000 {
		elapsed += 10 * time.Millisecond // the provider's next event: its clock runs
		if cause, _ := d.check(elapsed); cause != nil {
			if !errors.Is(cause, ErrTotalTimeout) || elapsed < want || elapsed > want+2*s {
				t.Fatalf("cause %v at %v; want the total timeout at %v", cause, elapsed, want)
			}
			return
		}
		d.pausedAt.Store(int64(elapsed) + 1)
		elapsed += s // the bot's pace
		if cause, _ := d.check(elapsed); cause != nil {
			if !errors.Is(cause, ErrTotalTimeout) || elapsed < want || elapsed > want+2*s {
				t.Fatalf("cause %v at %v in a pause; want the total timeout at %v", cause, elapsed, want)
			}
			return
		}
		d.resumeAt(elapsed)
	}
	t.Fatalf("no total timeout at %v (1000 events of 10 ms to the provider, 1 s to the bot); want it at %v", elapsed, want)
}
