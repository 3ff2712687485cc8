package config

import (
	"strings"
	"testing"
)

// TestApprovalWithoutAdminAPIWarns: an order above
// payments.rules.approval_above is held until a manager approves it through
// the admin API, and nothing else approves it. With that API off (no
// admin.token, the default, or server.admin_listen off) and a catalog whose
// orders can exceed the threshold, every such order was held for a decision
// nobody could make: the user was told it awaited approval, and it expired
// after approval_ttl. check-config and serve now say so at approval_above.
func TestApprovalWithoutAdminAPIWarns(t *testing.T) {
	const catalog = "payments:\n  catalog:\n    - {sku: plan, name: Plan, price: \"49.99\", max_quantity: 12}\n"
	const warn = "payments.rules.approval_above: orders above 500.00 (plan × 11 is 549.89) wait for a manager's approval, and the admin API"
	tests := []struct {
		name, src string
		warn      bool
	}{
		{"no admin token", catalog, true},
		{"admin listener off", catalog + "admin: {token: adm-0123456789abcdef}\nserver: {admin_listen: \"off\"}\n", true},
		{"threshold written", catalog + "  rules:\n    approval_above: \"500.00\"\n", true},
		{"admin token set", catalog + "admin: {token: adm-0123456789abcdef}\n", false},
		{"no order can exceed it", "payments:\n  catalog:\n    - {sku: plan, name: Plan, price: \"49.99\", max_quantity: 10}\n", false},
		{"a threshold above every order", catalog + "  rules: {approval_above: \"1000\"}\n", false},
		{"no orders made", catalog + "  budget: {max_payment_calls: 0}\n", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.src), "c.yaml", envMap(nil))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range cfg.Warnings {
				if strings.Contains(w, "approval_above") {
					got = append(got, w)
				}
			}
			switch {
			case !tc.warn && len(got) > 0:
				t.Errorf("warnings %q; want none about approval_above", got)
			case tc.warn && (len(got) != 1 || !strings.Contains(got[0], warn)):
				t.Errorf("warnings %q; want one with %q", cfg.Warnings, warn)
			}
		})
	}
}
