package payments_test

import "testing"

// TestRepeatedPurchaseIsNotCounted: a create_order that only hands back its
// purchase's order (RepeatsPurchase) reaches no WeChat Pay, so it does not
// count toward max_payment_calls_per_minute below the limit either. A bot
// SDK that resent one purchase six times (LangChain's retries) used up a
// limit of 2 and the user's next, different purchase was refused. Every
// purchase that reaches WeChat Pay still counts: a third one is refused.
func TestRepeatedPurchaseIsNotCounted(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e, tools, u, no := purchasedUnderALimit(t, driver, 2, "oUser-rate-repeat")
			for i := range 6 {
				tc := call(t, tools, u, "create_order", `{"sku":"premium-monthly"}`)
				if tc.result["order_no"] != no {
					t.Fatalf("resend %d: %s; want order %s back", i+1, tc.out.Result, no)
				}
			}
			if tc := call(t, tools, u, "create_order", `{"sku":"tip"}`); tc.result["status"] != "awaiting_payment" {
				t.Fatalf("another purchase after 6 resends of the first, limit 2: %s; want awaiting_payment", tc.out.Result)
			}
			if tc := call(t, tools, u, "create_order", `{"sku":"premium-monthly","quantity":2}`); tc.result["status"] != "rate_limited" {
				t.Errorf("a third purchase that reaches WeChat Pay, limit 2: %s; want rate_limited", tc.out.Result)
			}
			if n := e.sim.OrderCount(); n != 2 {
				t.Errorf("%d orders at WeChat Pay; want 2", n)
			}
		})
	}
}
