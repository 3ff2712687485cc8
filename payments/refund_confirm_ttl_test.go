package payments_test

import (
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
)

// TestConfirmTTLNeverOutlivesTheProposalsClaim: one open refund proposal
// per (client, user, order, amount) rests on the proposal's claim living
// past the proposal, and the claim is capped well inside the store's
// tombstones (3.5 days). A confirm_ttl of 96h let the claim lapse after
// 84h while its proposal was still open: the same request_refund (the
// model asked again, a bot's retry of the turn) then made a second open
// proposal of the same 20.00, and the user, shown two "Confirm refund of
// 20.00 CNY" buttons for one ask, could be refunded 40.00. A confirm TTL
// above MaxRefundConfirmTTL is refused; at it, a request made again just
// before the proposal lapses gets the open proposal back.
func TestConfirmTTLNeverOutlivesTheProposalsClaim(t *testing.T) {
	st := openStore(t, "embedded")
	e0 := newEnv(t, envOptions{})
	if _, err := payments.New(payments.Options{Store: st, Backend: e0.client, Catalog: e0.catalog, MchID: e0.sim.MchID(),
		RefundConfirmTTL: payments.MaxRefundConfirmTTL + time.Second}); err == nil {
		t.Errorf("payments.New took a refund confirm TTL of %v, above %v", payments.MaxRefundConfirmTTL+time.Second, payments.MaxRefundConfirmTTL)
	}
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, storeClock: true, service: func(o *payments.Options) {
				o.RefundConfirmTTL = payments.MaxRefundConfirmTTL
			}})
			o := paidOrder(t, e, "oUser-confirm-ttl-"+driver, 2)
			first := propose(t, e, o, 2000)
			e.clock.Advance(payments.MaxRefundConfirmTTL - time.Hour)
			again := propose(t, e, o, 2000)
			if again.RefundID != first.RefundID {
				t.Errorf("asked again %v later: proposal %s; want the open %s, not a second one the user could confirm too",
					payments.MaxRefundConfirmTTL-time.Hour, again.RefundID, first.RefundID)
			}
		})
	}
}
