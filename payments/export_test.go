package payments

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
)

// SetSweepPage makes s's sweeps read n orders at a time, so a test can page
// through orders created at one instant without making hundreds of them.
func SetSweepPage(s *Service, n int) { s.sweepPage = n }

// SetMaxUnacked bounds the unconfirmed order writes s keeps to n, so a
// test reaches the bound without thousands of failed writes. Call it before
// s serves anything.
func SetMaxUnacked(s *Service, n int) { s.maxUnacked = n }

// SetSwitchWait sets how long a switch of pay method waits for another
// caller's count of the same switch (countReplacement).
func SetSwitchWait(s *Service, d time.Duration) { s.switchWait = d }

// SetRefundCallTimeout bounds s's confirmations' refunds (reservation to
// WeChat Pay's answer) by d, so a test reaches the end of that budget
// without waiting refundCallTimeout. Call it before s serves anything.
func SetRefundCallTimeout(s *Service, d time.Duration) { s.refundCall = d }

// DropTransition takes the edge from → to out of the state machine until
// the test ends, to reach what a complete state machine never does. Call it
// before the test starts a service: nothing may read the table meanwhile.
func DropTransition(t testing.TB, from, to store.OrderStatus) {
	saved := transitions[from]
	kept := make([]store.OrderStatus, 0, len(saved))
	for _, s := range saved {
		if s != to {
			kept = append(kept, s)
		}
	}
	transitions[from] = kept
	t.Cleanup(func() { transitions[from] = saved })
}

// Orphaned reports whether s takes order number no for one a process that
// died left (orphaned).
func Orphaned(s *Service, no string) bool { return s.orphaned(no) }

// RecordInFlight writes the refund-in-flight record a confirmation writes
// before calling WeChat Pay, for refund refundID of order orderNo, at the
// order's version as it stands.
func RecordInFlight(ctx context.Context, s *Service, orderNo, refundID string) error {
	o, err := s.store.GetOrder(ctx, orderNo)
	if err != nil {
		return err
	}
	return s.putInFlight(ctx, &inFlight{Proposal: store.RefundProposal{RefundID: refundID, OrderNo: orderNo}, OrderVersion: o.Version})
}

// RefusalLogEvery is how often a notification refused unverified is logged
// at most, per reason.
const RefusalLogEvery = refusalLogEvery

// SweepLogged is one pass of s's sweeper (RunSweeper's): Sweep, then its
// summary line. It returns the pass's stats.
func SweepLogged(ctx context.Context, s *Service) SweepStats { return s.sweepSafely(ctx) }
