package main

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
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

// wholeToolRound is toolRound as a chat.completion, for a non-stream turn.
func wholeToolRound(id string, calls ...[2]string) scriptRound {
	var tc []string
	for i, c := range calls {
		tc = append(tc, fmt.Sprintf(`{"id":"call_%d","type":"function","function":{"name":%q,"arguments":%q}}`, i, c[0], c[1]))
	}
	return scriptRound{whole: `{"id":"` + id + `","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"On it. ","tool_calls":[` +
		strings.Join(tc, ",") + `]},"finish_reason":"tool_calls"}]}`}
}

// TestBudgetExhaustionCountedNonStream: the two budget exhaustions of the
// tests above, in non-stream turns (their own code path), each counted once
// under its limit.
func TestBudgetExhaustionCountedNonStream(t *testing.T) {
	tests := []struct {
		name   string
		script func(n int) scriptRound
		want   map[string]float64
	}{
		{"max_payment_calls", func(n int) scriptRound {
			if n == 0 {
				return wholeToolRound("c1",
					[2]string{"create_order", `{"sku":"premium-monthly"}`},
					[2]string{"create_order", `{"sku":"premium-yearly"}`},
					[2]string{"create_order", `{"sku":"premium-monthly","quantity":2}`})
			}
			return scriptRound{whole: `{"id":"c2","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Done."},"finish_reason":"stop"}]}`}
		}, map[string]float64{"max_payment_calls": 1, "max_rounds": 0}},
		{"max_rounds", func(n int) scriptRound {
			return wholeToolRound("q"+strconv.Itoa(n), [2]string{"query_order", `{"order_no":"PG-unknown"}`})
		}, map[string]float64{"max_payment_calls": 0, "max_rounds": 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			n := 0
			up := newScriptedProvider(t, func(string) scriptRound {
				mu.Lock()
				defer func() { n++; mu.Unlock() }()
				return tc.script(n)
			})
			url, _ := paymentApp(t, up.URL, "")
			resp := postAs(t, url, e2eClientKey, testOpenID, `{"model":"gpt-4o","messages":[{"role":"user","content":"buy it all, and where is my order?"}]}`)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			m := scrape(t, url)
			for limit, want := range tc.want {
				if got := metricSum(t, m, "paygate_budget_exhausted_total", map[string]string{"limit": limit}); got != want {
					t.Errorf(`paygate_budget_exhausted_total{limit=%q} = %v; want %v`, limit, got, want)
				}
			}
		})
	}
}

// TestRoundBudgetRefusedCallsCounted: the payment calls of the round that
// spends max_rounds are not run (the turn ends with the clarification) and
// count on paygate_tool_calls_total as refused, over the turn's budget, as
// calls over max_payment_calls do. They were counted under no outcome: the
// calls the model made read one short of what it made for every turn that
// spent its rounds, streamed or not.
func TestRoundBudgetRefusedCallsCounted(t *testing.T) {
	for _, stream := range []bool{true, false} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			var mu sync.Mutex
			n := 0
			up := newScriptedProvider(t, func(string) scriptRound {
				mu.Lock()
				defer func() { n++; mu.Unlock() }()
				if stream {
					return toolRound("q"+strconv.Itoa(n), [2]string{"query_order", `{"order_no":"PG-unknown"}`})
				}
				return wholeToolRound("q"+strconv.Itoa(n), [2]string{"query_order", `{"order_no":"PG-unknown"}`})
			})
			url, a := paymentApp(t, up.URL, "")
			if stream {
				if _, err := streamText(t, userClient(url), "where is my order?"); err != nil {
					t.Fatal(err)
				}
			} else {
				resp := postAs(t, url, e2eClientKey, testOpenID, `{"model":"gpt-4o","messages":[{"role":"user","content":"where is my order?"}]}`)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("status %d", resp.StatusCode)
				}
			}
			rounds := a.cfg.Payments.Budget.MaxRounds
			mu.Lock()
			made := n
			mu.Unlock()
			if made != rounds {
				t.Fatalf("%d rounds; want max_rounds, %d", made, rounds)
			}
			m := scrape(t, url)
			for outcome, want := range map[string]float64{"executed": float64(rounds - 1), "refused": 1} {
				if got := metricSum(t, m, "paygate_tool_calls_total", map[string]string{"tool": "query_order", "outcome": outcome}); got != want {
					t.Errorf(`paygate_tool_calls_total{tool="query_order",outcome=%q} = %v; want %v (one call a round, the last round's over max_rounds)`, outcome, got, want)
				}
			}
		})
	}
}
