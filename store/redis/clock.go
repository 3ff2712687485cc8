package redis

import (
	"context"
	"sync"
	"time"
)

// serverClock maps this Store's clock (Options.Now) onto the clock of the
// Redis server, so that every time one replica writes for another to
// compare (a webhook lease's end, a sweep lease's, a purchase claim's, an
// announcement mark's, a counter window's) and every time it compares
// against are on one clock, the server's. Replica clocks may differ by up
// to a minute (README); each replica judging by its own, one running 30 s
// ahead found every 30 s webhook lease another replica took a moment ago
// run out, and POSTed the event a second time.
//
// The server's time is read once (luaIdxTime, the clock write intents are
// already judged by) and then carried forward by this Store's clock: a time
// t of this Store's clock is the server's base + (t - at). A time read from
// time.Now carries Go's monotonic reading, so a step of this host's wall
// clock after the read does not move it. Scripts that read TIME themselves
// would need no base, but every caller passes its own now (tests a clock of
// their own), and a lease must still run out when that clock says so; this
// way a caller's times keep their meaning, shifted onto one clock. Until
// the server answers, times are this Store's own (offset 0). With the real
// clock (Options.Now unset) the base is read again at every epoch check,
// so a drift of this host's monotonic clock or a step of the server's does
// not accumulate; an injected clock keeps its base, so a test that
// advances it advances server time by as much.
type serverClock struct {
	mu   sync.Mutex
	set  bool
	base int64     // server time, unix ms, read at at
	at   time.Time // this Store's clock when base was read
}

// syncClock reads the server's time and takes it as the clock's base. The
// read is stamped with the midpoint of this Store's clock around it.
func (s *Store) syncClock(ctx context.Context) error {
	before := s.now()
	v, err := s.run(ctx, "read the server clock", s.sc.idxTime, []string{s.k.idx("notes")})
	if err != nil {
		return err
	}
	after := s.now()
	ms, ok := v.(int64)
	if !ok {
		return nil
	}
	s.clock.mu.Lock()
	s.clock.set, s.clock.base, s.clock.at = true, ms, before.Add(after.Sub(before)/2)
	s.clock.mu.Unlock()
	return nil
}

// serverMs is t, a time of this Store's (or its caller's) clock, as the
// server's clock reads it, in unix milliseconds. Before the server's time
// was ever read it tries once more (toServerMs then falls back to t).
func (s *Store) serverMs(ctx context.Context, t time.Time) int64 {
	s.clock.mu.Lock()
	set := s.clock.set
	s.clock.mu.Unlock()
	if !set {
		_ = s.syncClock(ctx)
	}
	return s.toServerMs(t)
}

// toServerMs is serverMs without the read: t itself while the server's
// time was never read.
func (s *Store) toServerMs(t time.Time) int64 {
	s.clock.mu.Lock()
	defer s.clock.mu.Unlock()
	if !s.clock.set {
		return t.UnixMilli()
	}
	return s.clock.base + t.Sub(s.clock.at).Milliseconds()
}

// nextMs is an event's due time on the server's clock, 0 (due at once)
// for the zero time.
func (s *Store) nextMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return s.toServerMs(t)
}
