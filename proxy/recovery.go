package proxy

import (
	"fmt"
	"time"

	"github.com/paygate/paygate/failover"
)

// Recovery budget per turn (SPEC 5, after the first byte; failover.recovery
// in the config): a flapping provider cannot stretch a turn without bound.
// These are the defaults for a config built without config.SetDefaults.
const (
	// defaultMaxRecoveries is how many cut streams one turn may recover.
	defaultMaxRecoveries = 2
	// defaultRecoveryWindow is how long after the turn's first cut a
	// recovery may still start; each recovery round is bounded by failover's
	// own max_round_time and the target's timeouts besides.
	defaultRecoveryWindow = 30 * time.Second
)

// Outcomes of a stream that broke after its first byte, the outcome label
// of paygate_stream_recoveries_total.
const (
	recoveryRecovered   = "recovered"         // the client got the whole answer
	recoveryDiverged    = "diverged"          // the new answer did not match what was sent
	recoveryPartialCall = "partial_tool_call" // the client had part of a call no answer repeats
	recoveryBudget      = "budget_spent"      // failover.recovery.max_attempts or window
	recoveryOff         = "off"               // failover.recovery.max_attempts: -1
	recoveryNoProvider  = "no_provider"       // no other provider could take the round
)

// recoveries counts a turn's stream recoveries against its limits.
type recoveries struct {
	max    int // -1: recovery is off
	window time.Duration
	n      int
	first  time.Time
}

func (s *Server) newRecoveries() *recoveries {
	r := &recoveries{max: defaultMaxRecoveries, window: defaultRecoveryWindow}
	if s.cfg != nil {
		if c := s.cfg.Failover.Recovery; c.MaxAttempts != 0 {
			r.max = c.MaxAttempts
		}
		if w := s.cfg.Failover.Recovery.Window.D(); w > 0 {
			r.window = w
		}
	}
	return r
}

// take spends one recovery at now, or says why none is left and the
// outcome to count.
func (r *recoveries) take(now time.Time) (why, outcome string) {
	if r.max < 0 {
		return "stream recovery is off", recoveryOff
	}
	if r.n == 0 {
		r.first = now
	}
	switch {
	case r.n >= r.max:
		return fmt.Sprintf("recovery budget spent (%d attempts)", r.max), recoveryBudget
	case now.Sub(r.first) > r.window:
		return fmt.Sprintf("recovery budget spent (%s)", r.window), recoveryBudget
	}
	r.n++
	return "", ""
}

// countRecovery records how a broken stream ended, by the cause of its
// first break.
func (s *Server) countRecovery(first *failover.StreamError, outcome string) {
	cause := "unknown"
	if first != nil {
		cause = first.Cause
	}
	s.metrics.recoveries.WithLabelValues(cause, outcome).Inc()
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
