package config

import (
	"fmt"
	"testing"
)

// TestDecisionTTLFloors: payments.refunds.confirm_ttl is how long the user
// may confirm a refund proposal, payments.rules.approval_ttl how long a
// manager may approve an order held for one. A written 0 is refused (a
// proposal must be answerable, a held order approvable), but a TTL of
// milliseconds (15ms typed for 15m, 72ms for 72h) loaded silently and was
// as unanswerable: every proposal expired before the user saw it, every
// held order before a manager could open it, its user told it awaits
// approval. Below 1s each is refused at its line.
func TestDecisionTTLFloors(t *testing.T) {
	tests := []struct {
		name, src string
		want      string // the error's start; "" when it loads
	}{
		{"confirm_ttl 15ms", "payments:\n  refunds:\n    confirm_ttl: 15ms\n", "c.yaml:3: payments.refunds.confirm_ttl: 15ms is below 1s"},
		{"confirm_ttl 1ns", "payments: {refunds: {confirm_ttl: 1ns}}\n", "c.yaml:1: payments.refunds.confirm_ttl: 1ns is below 1s"},
		{"confirm_ttl 2s", "payments: {refunds: {confirm_ttl: 2s}}\n", ""},
		{"approval_ttl 72ms", "payments:\n  rules:\n    approval_ttl: 72ms\n", "c.yaml:3: payments.rules.approval_ttl: 72ms is below 1s"},
		{"approval_ttl 1s", "payments: {rules: {approval_ttl: 1s}}\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loadsOrRefused(t, tc.src, tc.want, func(cfg *Config) string {
				return fmt.Sprintf("confirm_ttl %v, approval_ttl %v", cfg.Payments.Refunds.ConfirmTTL.D(), cfg.Payments.Rules.ApprovalTTL.D())
			})
		})
	}
}
