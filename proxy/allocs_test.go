package proxy

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store/storetest"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestMarkDeliveredWithoutOrdersAllocatesNothing: most answers hand the
// user no payment parameters, and marking them delivered has nothing to
// write: it must cost them nothing (it built a detached context with a
// timer for every answer, five allocations of every non-stream turn).
func TestMarkDeliveredWithoutOrdersAllocatesNothing(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			s := &Server{state: testdrivers.Open(t, driver, storetest.NewClock().Now)}
			c := payments.Caller{Client: "shop-bot", User: "o-plain"}
			ctx := context.Background()
			for _, actions := range [][]json.RawMessage{nil, {}} {
				if n := testing.AllocsPerRun(100, func() { s.markDelivered(ctx, c, actions) }); n != 0 {
					t.Errorf("markDelivered of %d actions, no order handed: %v allocations; want 0", len(actions), n)
				}
			}
		})
	}
}
