package config

import (
	"strings"
	"testing"
)

// TestOneRoundIsRefused: a round whose payment tool calls run needs a round
// after it to tell the user what they did, so with max_rounds 1 the proxy
// runs none (a turn whose model calls create_order, query_order or
// request_refund ends with the clarification text instead), while the tools
// are still offered: a user asking to buy was asked to clarify, turn after
// turn, and never got an order, whatever max_payment_calls said.
func TestOneRoundIsRefused(t *testing.T) {
	tests := []struct {
		src  string
		want string // "" accepted
	}{
		{"payments:\n  budget:\n    max_rounds: 1\n", "c.yaml:3: payments.budget.max_rounds: 1 leaves no round"},
		{"payments:\n  budget: {max_rounds: 1, max_payment_calls: 0}\n", "c.yaml:2: payments.budget.max_rounds: 1 leaves no round"},
		{"payments:\n  budget:\n    max_rounds: 2\n", ""},
		{"payments:\n  budget: {}\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.src, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.src), "c.yaml", envMap(nil))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want == "":
				if cfg.Payments.Budget.MaxRounds < 2 {
					t.Errorf("max_rounds %d", cfg.Payments.Budget.MaxRounds)
				}
			case err == nil:
				t.Fatalf("accepted with max_rounds %d: no payment call would ever run; want %q", cfg.Payments.Budget.MaxRounds, tc.want)
			case !strings.Contains(err.Error(), tc.want):
				t.Fatalf("got %q; want %q", err, tc.want)
			}
		})
	}
}
