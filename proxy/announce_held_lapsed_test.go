package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestHeldOrderPastItsDeadlineNotToldAsWaiting: a held order whose
// approval_required answer never reached the bot is told in the user's
// next turn (approval_required), but only while it still waits: one at or
// past its approval deadline that no sweep has expired yet can no longer
// be approved (Approve expires it), and telling it as waiting had the
// model promise the user a payment that will never be opened.
func TestHeldOrderPastItsDeadlineNotToldAsWaiting(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			clock := storetest.NewClock()
			st := testdrivers.Open(t, driver, clock.Now)
			for _, tc := range []struct {
				user     string
				deadline time.Duration // from now
				want     int
			}{
				{"o-held-waiting", time.Hour, 1},
				{"o-held-at-deadline", 0, 0},
				{"o-held-past-deadline", -time.Second, 0},
			} {
				o := storetest.NewOrder("HELD-"+tc.user, "shop-bot", tc.user, clock.Now().Add(-time.Hour))
				o.Status, o.ExpiresAt = store.StatusApprovalRequired, clock.Now().Add(tc.deadline)
				if err := st.CreateOrder(ctx, o); err != nil {
					t.Fatal(err)
				}
				if n := announceTurns(t, st, tc.user, "approval_required")(); n != tc.want {
					t.Errorf("%s: held order whose deadline is %v from now: %d approval_required; want %d", tc.user, tc.deadline, n, tc.want)
				}
			}
		})
	}
}
