package payments_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/payments"
)

// TestLoweredConfirmTTLKeepsTheOpenProposalsClaim: a refund of 20.00 is
// proposed under confirm_ttl 72h; the operator lowers it to 15m and
// restarts (or rolls one replica of two on Redis). The proposal still
// lives its 72h. The same request_refund asked again there (the model asks
// again, a bot's retry) gets the open proposal back, and so it does an
// hour later: the claim that keeps it the only open one of its amount
// lives as long as any proposal config allows, not the new config's 15m.
// Slid to 15m by the new config's first ask, the claim lapsed while the
// proposal was open, and the next ask made a second open proposal of the
// same 20.00: two "Confirm refund" buttons for one ask, 40.00 refunded.
func TestLoweredConfirmTTLKeepsTheOpenProposalsClaim(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, storeClock: true, service: func(o *payments.Options) {
				o.RefundConfirmTTL = 72 * time.Hour
			}})
			restarted, err := payments.New(payments.Options{Store: e.st, Backend: e.client, Catalog: e.catalog,
				MchID: e.sim.MchID(), AppID: e.sim.AppID(), Registerer: prometheus.NewRegistry(),
				Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Now: e.clock.Now, RefundConfirmTTL: 15 * time.Minute})
			if err != nil {
				t.Fatalf("payments.New: %v", err)
			}
			t.Cleanup(func() { _ = restarted.Close() })
			o := paidOrder(t, e, "oUser-ttl-lowered-"+driver, 2)
			first := propose(t, e, o, 2000)
			ask := func() string {
				t.Helper()
				p, _, err := restarted.ProposeRefund(context.Background(), payments.RefundRequest{Client: "shop-bot", User: o.User,
					OrderNo: o.OrderNo, Reason: "not needed", AmountFen: 2000})
				if err != nil {
					t.Fatalf("propose under confirm_ttl 15m: %v", err)
				}
				return p.RefundID
			}
			if got := ask(); got != first.RefundID {
				t.Errorf("asked again after the restart: proposal %s; want the open %s", got, first.RefundID)
			}
			e.clock.Advance(time.Hour)
			if got := ask(); got != first.RefundID {
				t.Errorf("asked again an hour later, its proposal open until %s: proposal %s; want the open %s, not a second one the user could confirm too",
					first.ExpiresAt.UTC().Format(time.RFC3339), got, first.RefundID)
			}
		})
	}
}
