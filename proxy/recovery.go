package proxy

import (
	"fmt"
	"time"

	"github.com/paygate/paygate/failover"
)

// Recovery budget per turn (SPEC 5, after the first byte): a flapping
// provider cannot stretch a turn without bound.
const (
	// maxRecoveries is how many cut streams one turn may recover.
	maxRecoveries = 2
	// recoveryWindow is how long after the turn's first cut a recovery may
	// still start; each recovery round is bounded by failover's own
	// max_round_time and the target's timeouts besides.
	recoveryWindow = 30 * time.Second
)

// recoveries counts a turn's stream recoveries.
type recoveries struct {
	n     int
	first time.Time
}

// take spends one recovery at now, or says why none is left.
func (r *recoveries) take(now time.Time) string {
	if r.n == 0 {
		r.first = now
	}
	switch {
	case r.n >= maxRecoveries:
		return fmt.Sprintf("recovery budget spent (%d attempts)", maxRecoveries)
	case now.Sub(r.first) > recoveryWindow:
		return fmt.Sprintf("recovery budget spent (%s)", recoveryWindow)
	}
	r.n++
	return ""
}

// unrecovered is the error a client gets when a cut stream could not be
// recovered: it names the original cut (its provider and cause), never a
// later attempt's failure, and says why recovery stopped.
func unrecovered(first *failover.StreamError, why string) error {
	if first == nil {
		return fmt.Errorf("stream not recovered: %s", why)
	}
	err := fmt.Errorf("not recovered: %s", why)
	if first.Err != nil {
		err = fmt.Errorf("%w; not recovered: %s", first.Err, why)
	}
	return &failover.StreamError{Provider: first.Provider, Cause: first.Cause, Err: err}
}
