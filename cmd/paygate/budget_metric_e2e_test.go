package main

import (
	"strconv"
	"strings"
	"testing"
)

// TestPaymentCallBudgetExhaustionIsCounted: a turn whose model spends
// payments.budget.max_payment_calls (three create_order calls, budget 1) is
// one budget exhaustion (SPEC 9: "budget exhaustions"), as a turn that
// spends max_rounds is, under its own limit label; both series are there,
// at 0, before any turn.
func TestPaymentCallBudgetExhaustionIsCounted(t *testing.T) {
	n := 0
	up := newScriptedProvider(t, func(body string) scriptRound {
		defer func() { n++ }()
		if n == 0 {
			return toolRound("c1",
				[2]string{"create_order", `{"sku":"premium-monthly"}`},
				[2]string{"create_order", `{"sku":"premium-yearly"}`},
				[2]string{"create_order", `{"sku":"premium-monthly","quantity":2}`})
		}
		return textRound("c2", "Done.")
	})
	url, a := paymentApp(t, up.URL, "")
	before := scrape(t, url)
	for _, limit := range []string{"max_rounds", "max_payment_calls"} {
		if series := `paygate_budget_exhausted_total{limit="` + limit + `"} 0`; !strings.Contains(before, series) {
			t.Errorf("before any turn, /metrics lacks %s", series)
		}
	}
	if _, err := streamText(t, userClient(url), "buy all three"); err != nil {
		t.Fatal(err)
	}
	if got := a.sim.OrderCount(); got != 1 {
		t.Fatalf("orders %d; want 1 (the other calls are over the budget)", got)
	}
	m := scrape(t, url)
	if got := metricSum(t, m, "paygate_budget_exhausted_total", map[string]string{"limit": "max_payment_calls"}); got != 1 {
		t.Errorf(`paygate_budget_exhausted_total{limit="max_payment_calls"} = %v after one turn refused calls over max_payment_calls; want 1 (tool_calls refused: %v)`,
			got, metricSum(t, m, "paygate_tool_calls_total", map[string]string{"outcome": "refused"}))
	}
	if got := metricSum(t, m, "paygate_budget_exhausted_total", map[string]string{"limit": "max_rounds"}); got != 0 {
		t.Errorf(`paygate_budget_exhausted_total{limit="max_rounds"} = %v; want 0 (the turn had rounds left)`, got)
	}
}

// TestRoundBudgetExhaustionIsCountedUnderItsLimit: a turn that spends
// max_rounds (a model that keeps calling query_order) counts under
// limit="max_rounds", and not as a payment-call exhaustion.
func TestRoundBudgetExhaustionIsCountedUnderItsLimit(t *testing.T) {
	n := 0
	up := newScriptedProvider(t, func(body string) scriptRound {
		defer func() { n++ }()
		return toolRound("q"+strconv.Itoa(n), [2]string{"query_order", `{"order_no":"PG-unknown"}`})
	})
	url, _ := paymentApp(t, up.URL, "")
	text, err := streamText(t, userClient(url), "where is my order?")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(text, "Could you tell me exactly which plan and how many you want?") {
		t.Fatalf("answer %q; want the clarification", text)
	}
	m := scrape(t, url)
	for limit, want := range map[string]float64{"max_rounds": 1, "max_payment_calls": 0} {
		if got := metricSum(t, m, "paygate_budget_exhausted_total", map[string]string{"limit": limit}); got != want {
			t.Errorf(`paygate_budget_exhausted_total{limit=%q} = %v; want %v`, limit, got, want)
		}
	}
}
