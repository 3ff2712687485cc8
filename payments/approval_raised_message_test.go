package payments_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/paygate/paygate/payments"
)

// TestHeldOrderMessageAfterTheLimitIsRaised: an order held for a manager
// under approval_above 50.00 stays held once an operator raises the limit
// (or turns approval off) and restarts: asked for again, it is answered
// approval_required. Its message said "orders above 200.00 CNY need a
// manager's approval" of a 99.98 CNY order, and the model told the user a
// rule the order does not meet. The message quotes a limit only when the
// order is above it.
func TestHeldOrderMessageAfterTheLimitIsRaised(t *testing.T) {
	for _, tt := range []struct {
		name  string
		limit *int64
	}{
		{"raised to 200.00", payments.FenPtr(20000)},
		{"turned off", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var opts payments.Options
			e := newEnv(t, envOptions{service: func(o *payments.Options) {
				o.Rules.ApprovalAboveFen = payments.FenPtr(5000)
				opts = *o
			}})
			u := caller("oUser-held-raised")
			tc := call(t, newTools(e), u, "create_order", `{"sku":"premium-monthly","quantity":2}`)
			if tc.result["status"] != "approval_required" {
				t.Fatalf("create: %s; want approval_required", tc.out.Result)
			}
			opts.Rules.ApprovalAboveFen = tt.limit
			restarted := payments.NewTools(otherReplica(t, opts), toolNames, slog.New(slog.NewJSONHandler(io.Discard, nil)))
			again := call(t, restarted, u, "create_order", `{"sku":"premium-monthly","quantity":2}`)
			if again.result["status"] != "approval_required" || again.result["order_no"] != tc.result["order_no"] {
				t.Fatalf("asked again: %s; want the held order, approval_required", again.out.Result)
			}
			msg, _ := again.result["message"].(string)
			if strings.Contains(msg, "above") || strings.Contains(msg, "limit") {
				t.Errorf("message %q quotes a limit the 99.98 CNY order is not above", msg)
			}
			if !strings.Contains(msg, "waiting for approval") {
				t.Errorf("message %q does not say the order is waiting for approval", msg)
			}
		})
	}
}
