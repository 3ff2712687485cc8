package main

import (
	"testing"
	"time"
)

// TestRulesUnreadLoggedPaced: with the store away, every payment call is
// refused unrun (its rules cannot be read), each counted in
// paygate_tool_calls_total{outcome="failed"}, and the log says so at most
// once per 10 s, the first at once and the next with how many were left
// out (suppressed), as the turns served without payment state are: a
// warning per call wrote 100 lines (35 KB) for 100 purchase turns, 350 KB
// per 1,000, each saying the same thing.
func TestRulesUnreadLoggedPaced(t *testing.T) {
	const turns = 100
	base, first, elapsed, lines := storeAwayTurns(t, `
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
`, "premium", "payment rules could not be checked; call refused", turns)
	if most := 1 + int(elapsed/(10*time.Second)); len(lines) < 1 || len(lines) > most {
		t.Fatalf("%d purchase turns with the store away (%v) wrote %d lines saying the rules could not be checked; want 1 to %d", turns, elapsed, len(lines), most)
	}
	if got := lines[0]; got["request_id"] != first || got["level"] != "WARN" || got["err"] == nil || got["tool"] != "create_order" {
		t.Errorf("the first line %v; want WARN with the first turn's request_id %s, the tool and the store's error", got, first)
	}
	if n := metricSum(t, scrape(t, base), "paygate_tool_calls_total", map[string]string{"outcome": "failed"}); n != turns {
		t.Errorf("paygate_tool_calls_total{outcome=failed} %v after %d purchase turns; want each counted", n, turns)
	}
}
