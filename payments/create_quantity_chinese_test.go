package payments_test

import "testing"

// TestCreateOrderQuantityUnderChineseOrFullWidthNameIsAsked: a model
// answering a Chinese conversation that put the user's "要五杯" under a
// Chinese name ({"数量":5}) or typed the name in full-width letters
// ({"ｑｔｙ":5}) had it ignored as outside the schema, and an order of one
// was made without a word, where {"qty":5} is asked about. Such a call
// asks too; a Chinese member that says no count (the item's name, a
// price, a note) is still ignored.
func TestCreateOrderQuantityUnderChineseOrFullWidthNameIsAsked(t *testing.T) {
	e := newEnv(t, envOptions{})
	tools := newTools(e)
	u := caller("oUser-create-chinese")
	wantAllAsked(t, e, tools, u, "quantity", []askCase{
		{"数量", `"数量":5`, "数量"},
		{"购买数量", `"购买数量":"五"`, "购买数量"},
		{"件数", `"件数":3`, "件数"},
		{"份数", `"份数":2`, "份数"},
		{"full-width qty", `"ｑｔｙ":5`, "ｑｔｙ"},
		{"full-width quantity", `"ｑｕａｎｔｉｔｙ":5`, "ｑｕａｎｔｉｔｙ"},
		{"escaped 数量", `"\u6570\u91cf":5`, "数量"},
		// Traditional characters (a user in Hong Kong or Taiwan) and
		// Japanese: 數量, not 数量, was ignored and one was bought.
		{"數量", `"數量":5`, "數量"},
		{"購買數量", `"購買數量":"五"`, "購買數量"},
		{"個數", `"個數":3`, "個數"},
		{"件數", `"件數":2`, "件數"},
		{"個数", `"個数":2`, "個数"},
	})
	for _, tc := range []struct{ name, args string }{
		{"the item's name", `{"sku":"premium-monthly","商品名称":"高级会员 2026","备注":"送给朋友 1 份"}`},
		{"a price", `{"sku":"premium-monthly","单价":"0.01","金额":"0.01","运费":1}`},
		{"a price per count", `{"sku":"premium-monthly","数量单价":"0.01","數量單價":"0.01","件數金額":"0.01"}`},
		{"an order number", `{"sku":"premium-monthly","订单号":"PG123"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantOrderOf(t, tools, caller("oUser-create-chinese-"+tc.name), tc.args, 4999)
		})
	}
}
