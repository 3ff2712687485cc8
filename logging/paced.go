package logging

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Paced lets a line of each kind through at most once per Every: the first
// at once, a repeat within Every of the last one let through left out and
// counted, and the next one let through told how many were (Take's
// suppressed, for a "suppressed" attribute). It is for lines a sender on
// the network makes paygate write (a refusal it costs them nothing to
// earn), which logged each let one sender fill the disk; a metric counts
// every one. Kinds are a caller's own few names, or codes from a short
// list it was answered with (cut short); never a sender's free words,
// which would share one pacing past maxPacedKinds. The zero value is
// ready; a zero Every lets every line through.
type Paced struct {
	Every time.Duration

	mu   sync.Mutex
	last map[string]time.Time // when a line of the kind was last let through
	left map[string]int       // lines of the kind left out since
}

// Take reports whether a line of kind may be written at now, and how many
// of it were left out before it. A clock stepped back by Every or more
// lets the next line through.
func (p *Paced) Take(kind string, now time.Time) (suppressed int, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, seen := p.last[kind]; !seen && len(p.last) >= maxPacedKinds {
		for k, t := range p.last {
			if d := now.Sub(t); (d >= p.Every || d <= -p.Every) && p.left[k] == 0 {
				delete(p.last, k)
			}
		}
		if len(p.last) >= maxPacedKinds {
			kind = overflowKind
		}
	}
	if t, seen := p.last[kind]; seen {
		if d := now.Sub(t); d < p.Every && d > -p.Every {
			p.left[kind]++
			return 0, false
		}
	}
	if p.last == nil {
		p.last, p.left = map[string]time.Time{}, map[string]int{}
	}
	suppressed = p.left[kind]
	delete(p.left, kind)
	p.last[kind] = now
	return suppressed, true
}

// Log writes msg with attrs to l at level when a line of kind may be
// written at now (Take), with "suppressed" and how many were left out
// before it when any were.
func (p *Paced) Log(ctx context.Context, l *slog.Logger, level slog.Level, kind string, now time.Time, msg string, attrs ...any) {
	suppressed, ok := p.Take(kind, now)
	if !ok {
		return
	}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	l.Log(ctx, level, msg, attrs...)
}

// maxPacedKinds bounds the kinds a Paced remembers: a caller that paces
// by a code it was answered with (WeChat Pay's, cut short) cannot make it
// remember without bound. Past it, kinds whose window has passed are
// forgotten (unless lines of theirs were left out, whose count is still
// owed), and while none has, new kinds share overflowKind's pacing.
const maxPacedKinds = 256

// overflowKind is the kind new kinds are paced under while maxPacedKinds
// are remembered and none can be forgotten.
const overflowKind = "\x00more kinds"
