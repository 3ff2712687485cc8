package redis

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// go-redis logs on its own (a pool that cannot dial, a cluster node it
// drops) through a package-wide logger that by default prints plain lines
// to stderr: around the redacting JSON handler every other line of paygate
// goes through, without a request id, and mixed into a JSON log. The
// package's logger is replaced once, at init, by one that hands each line
// to the logger of the store opened last with one (Options.Logger), and
// drops it before any is. An atomic pointer: go-redis reads its logger from
// its own goroutines, and SetLogger may not be called once clients run.
var clientLog atomic.Pointer[slog.Logger]

func init() { goredis.SetLogger(clientLogger{}) }

type clientLogger struct{}

func (clientLogger) Printf(ctx context.Context, format string, v ...any) {
	l := clientLog.Load()
	if l == nil {
		return
	}
	detail := fmt.Sprintf(format, v...)
	suppressed, ok := 0, true
	if format != sentinelNewMaster {
		suppressed, ok = clientLines.Load().take(detail)
	}
	if !ok {
		return
	}
	args := []any{"component", "redis", "detail", detail}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	l.WarnContext(ctx, "redis client", args...)
}

// sentinelNewMaster is go-redis's line for a Sentinel failover. It is never
// left out: go-redis writes it only when the master changes, so it cannot
// flood, and each one names the master paygate now writes to; left out
// within a minute of the one before (the master found at start, or a
// failover back), the log named a master that no longer was.
const sentinelNewMaster = "sentinel: new master=%q addr=%q"

// clientLogEvery is how often a go-redis line of one kind (its text) is
// logged at most. go-redis logs one for every command that finds no
// connection: while Redis is down, every poll of an idle server (the sweep,
// the audit worker, the webhook relay) and every request under load, so an
// outage flooded the log with hundreds of lines a minute, burying paygate's
// own warnings about it, which come once a minute.
const clientLogEvery = time.Minute

// clientLines limits go-redis's lines, per kind: the line's text, so that a
// repeat is left out but not news (with the format as the kind, a second
// cluster node that could not be dialled went unnamed behind the first).
// Repeats are what flood: a dial failure's text names its address and its
// error, the same for every command while that node is down. Its maps are
// emptied past maxLineKinds, so texts that vary cannot grow them without
// bound.
// An atomic pointer, as clientLog: a test puts a limit with a clock of its
// own in place while go-redis's goroutines log.
var clientLines atomic.Pointer[lineLimit]

func init() { clientLines.Store(newLineLimit(time.Now)) }

type lineLimit struct {
	now  func() time.Time
	mu   sync.Mutex
	last map[string]time.Time // when a line of the kind was last logged
	left map[string]int       // lines of the kind left out since
}

// maxLineKinds bounds the kinds a lineLimit remembers.
const maxLineKinds = 1024

func newLineLimit(now func() time.Time) *lineLimit {
	return &lineLimit{now: now, last: map[string]time.Time{}, left: map[string]int{}}
}

// take reports whether a line of kind may be logged now, and how many were
// left out before it.
func (ll *lineLimit) take(kind string) (suppressed int, ok bool) {
	now := ll.now()
	ll.mu.Lock()
	defer ll.mu.Unlock()
	if t, seen := ll.last[kind]; seen && now.Sub(t) < clientLogEvery {
		ll.left[kind]++
		return 0, false
	}
	suppressed = ll.left[kind]
	delete(ll.left, kind)
	if len(ll.last) >= maxLineKinds {
		clear(ll.last)
		clear(ll.left)
	}
	ll.last[kind] = now
	return suppressed, true
}
