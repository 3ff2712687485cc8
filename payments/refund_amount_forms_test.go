package payments_test

import (
	"testing"
)

// TestRefundAmountFormsAModelMaySend: request_refund's amount as models
// write it, beyond the forms TestRequestRefundArguments holds. A plain
// decimal of at most two places (a string or a JSON number, "CNY" after it
// allowed) is the amount; anything else (a third decimal place, a
// currency sign, an empty string, padding inside, a word) is asked about,
// never rounded or read as something else; and nothing beyond what is left.
func TestRefundAmountFormsAModelMaySend(t *testing.T) {
	e := newEnv(t, envOptions{})
	tools := newTools(e)
	o := paidOrder(t, e, "oUser-refund-forms", 1) // 49.99
	u := caller(o.User)
	head := `{"order_no":"` + o.OrderNo + `","reason":"r","amount":`
	tests := []struct {
		name    string
		amount  string // the JSON value
		wantFen float64
	}{
		{"a tenth", `"0.1"`, 10},
		{"a tenth with two places", `"0.10"`, 10},
		{"a number", `10`, 1000},
		{"a number with places", `10.00`, 1000},
		{"spaces around", `" 10 "`, 1000},
		{"CNY after it", `"10 CNY"`, 1000},
		{"CNY glued", `"10CNY"`, 1000},
		{"three places below the total", `"49.999"`, 0},
		{"three places, half a fen", `"10.005"`, 0},
		{"three places as a number", `10.005`, 0},
		{"an exponent", `"1e1"`, 0},
		{"negative", `"-1"`, 0},
		{"zero", `"0"`, 0},
		{"zero with places", `"0.00"`, 0},
		{"empty", `""`, 0},
		{"a yen sign", `"¥10"`, 0},
		{"a full-width yen sign", `"￥10"`, 0},
		{"yuan after it", `"10元"`, 0},
		{"lowercase cny", `"10 cny"`, 0},
		{"a comma for the point", `"10,50"`, 0},
		{"thousands separator", `"1,000"`, 0},
		{"a plus sign", `"+10"`, 0},
		{"a trailing point", `"10."`, 0},
		{"a leading point", `".5"`, 0},
		{"full-width digits", `"１０"`, 0},
		{"true", `true`, 0},
		{"an object", `{"value":"10.00"}`, 0},
		{"an array", `["10.00"]`, 0},
		{"a cent above the total", `"50.00"`, 0},
		{"the total as a number", `49.99`, 4999},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := call(t, tools, u, "request_refund", head+tt.amount+`}`)
			refund, _ := tc.action["refund"].(map[string]any)
			if tt.wantFen == 0 {
				if tc.result["status"] != "needs_clarification" || !tc.out.Clarify || tc.action != nil {
					t.Fatalf("result %s action %s; want a clarification and no proposal", tc.out.Result, tc.out.Action)
				}
				return
			}
			if tc.result["status"] != "awaiting_user_confirmation" || refund["amount_fen"] != tt.wantFen {
				t.Fatalf("result %s action %s; want a proposal of %v fen", tc.out.Result, tc.out.Action, tt.wantFen)
			}
			// The same proposal again: cancelled, so the next row starts clean.
			id, _ := refund["refund_id"].(string)
			if _, err := e.svc.CancelRefund(t.Context(), "shop-bot", o.User, id); err != nil {
				t.Fatal(err)
			}
		})
	}
	if n := e.sim.RefundCount(""); n != 0 {
		t.Errorf("simulator refunds %d; want 0", n)
	}
}
