package payments_test

import (
	"context"
	"strings"
	"testing"
)

// TestRefundAmountInChineseNumeralsIsAsked (and in English words): a model answering "退我十块"
// that put the amount in Chinese numerals under a name of its own
// ({"退款金额":"十元"}) had it ignored as outside the schema, since it holds
// no digit, and the user was offered the whole payment back, one tap from
// sending it, where {"refund_amount":"10.00"} is asked about. Such a call
// asks too, and nothing is proposed.
func TestRefundAmountInChineseNumeralsIsAsked(t *testing.T) {
	e := newEnv(t, envOptions{})
	tools := newTools(e)
	paid := paidOrder(t, e, "oUser-refund-chinese", 2) // 99.98
	u := caller(paid.User)
	head := `{"order_no":"` + paid.OrderNo + `","reason":"买多了一杯",`
	for _, tc := range []struct{ name, extra, member string }{
		{"十元", `"退款金额":"十元"`, "退款金额"},
		{"五十块", `"refund":"五十块"`, "refund"},
		{"capital numerals", `"金额":"壹拾元整"`, "金额"},
		{"half", `"退款":"一半"`, "退款"},
		{"escaped", `"\u91d1\u989d":"\u4e94\u5143"`, "金额"},
		// Traditional characters: 兩 (两), 貳 (贰), 參 (叁), 陸 (陆).
		{"兩塊", `"退款金額":"兩塊"`, "退款金額"},
		{"陸元", `"金額":"陸元"`, "金額"},
		{"參圓", `"refund":"參圓"`, "refund"},
		{"貳圓", `"退款":"貳圓"`, "退款"},
		// English words hold no digit either: "ten yuan" was ignored.
		{"ten yuan", `"refund_amount":"ten yuan"`, "refund_amount"},
		{"one yuan", `"refundAmount":"One Yuan"`, "refundAmount"},
		{"half in English", `"refund":"half"`, "refund"},
		{"twenty", `"amount_cny":"twenty-five"`, "amount_cny"},
		{"a quarter", `"refund_amount":"a quarter"`, "refund_amount"},
		{"a third", `"portion":"a third of it"`, "portion"},
		// A fraction past a third, and a refund said to be partial, name
		// less than everything as "half" does.
		{"a fifth", `"refund_share":"a fifth"`, "refund_share"},
		{"partial", `"refund_type":"partial"`, "refund_type"},
		{"part of it", `"scope":"part of the order"`, "scope"},
		{"a tenth", `"share":"a tenth"`, "share"},
		{"partially", `"refund_scope":"refund partially"`, "refund_scope"},
		{"a portion", `"refund":"a portion"`, "refund"},
		// So does a partial refund said in Chinese (部分退款: a refund of
		// part), or by a flag's name: {"partial":true} and
		// {"full_refund":false} were ignored, the whole payment proposed,
		// while {"meta":{"partial":true}} was asked about.
		{"部分退款", `"退款类型":"部分退款"`, "退款类型"},
		{"partial flag", `"partial":true`, "partial"},
		{"is_partial", `"isPartial":true`, "isPartial"},
		{"not a full refund", `"full_refund":false`, "full_refund"},
		{"not all", `"refund_all":false`, "refund_all"},
		// Nor was a flag saying less than everything one level down or in
		// a JSON string, while {"meta":{"partial":true}} was asked about;
		// nor a flag written as a string ("true", "no"), one named in
		// Chinese (部分退款, a partial refund; 全额退款, a full one), or
		// 部份, the other way to write 部分.
		{"not a full refund nested", `"options":{"full_refund":false}`, "options"},
		{"not everything", `"refund_everything":false`, "refund_everything"},
		{"a half flag", `"half_refund":true`, "half_refund"},
		{"not the whole", `"isWholeOrder":false`, "isWholeOrder"},
		{"not entire", `"entire":false`, "entire"},
		{"not all in a JSON string", `"meta":"{\"refund_all\":false}"`, "meta"},
		{"partial as a string", `"partial":"true"`, "partial"},
		{"not full as no", `"full_refund":"No"`, "full_refund"},
		{"部分退款 flag", `"部分退款":true`, "部分退款"},
		{"全额退款 false", `"全额退款":false`, "全额退款"},
		{"部份退款", `"退款类型":"部份退款"`, "退款类型"},
		{"partial beside Chinese", `"类型":"partial退款"`, "类型"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := call(t, tools, u, "request_refund", head+tc.extra+`}`)
			if !got.out.Clarify || got.out.Executed || got.result["status"] != "needs_clarification" || got.action != nil {
				t.Fatalf("clarify %v executed %v, result %s; want a clarification, nothing proposed",
					got.out.Clarify, got.out.Executed, got.out.Result)
			}
			if why, _ := got.result["error"].(string); !strings.Contains(why, `"`+tc.member+`"`) || !strings.Contains(why, `"amount"`) {
				t.Errorf("error %q does not name %q and \"amount\"", why, tc.member)
			}
		})
	}
	if ps, err := e.svc.OpenRefunds(context.Background(), u.Client, u.User); err != nil || len(ps) != 0 {
		t.Fatalf("open refund proposals %d (%v); want none", len(ps), err)
	}
	// A member with no number in it is still ignored: everything left.
	got := call(t, tools, u, "request_refund", head+`"币种":"人民币"}`)
	if got.result["status"] != "awaiting_user_confirmation" || got.result["amount"] != "99.98 CNY" {
		t.Errorf("result %s; want a proposal of everything left", got.out.Result)
	}
	// Nor does a flag asking for everything, or saying no part, or one
	// whose name holds a word of an amount that says none as a flag's
	// ("one_time", "third_party").
	got = call(t, tools, u, "request_refund", head+`"full_refund":true,"partial":false,"is_partial":"no","全额退款":true,"options":{"refund_all":"true"},"one_time":true,"third_party":true}`)
	if got.result["status"] != "awaiting_user_confirmation" || got.result["amount"] != "99.98 CNY" {
		t.Errorf("a full refund flagged: result %s; want a proposal of everything left", got.out.Result)
	}
}
