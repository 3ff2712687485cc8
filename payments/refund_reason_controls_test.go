package payments_test

import (
	"context"
	"encoding/json"
	"testing"
)

// TestRefundReasonControlCharacters: the reason a model writes goes to
// WeChat Pay, which shows it to the user on one line of its refund notice;
// line breaks and other control characters (C0, DEL, C1, U+2028/U+2029)
// become one space, as a catalog name may hold none, rather than a
// clarification that would have the model ask the user again for a reason
// they gave. Sent as written, "\u0000" and "\n" reached WeChat Pay. A
// reason of nothing else is missing.
func TestRefundReasonControlCharacters(t *testing.T) {
	e := newEnv(t, envOptions{})
	tools := newTools(e)
	for i, tc := range []struct{ name, reason, want string }{
		{"nul", `买错了\u0000\u0000`, "买错了"},
		{"line breaks", `wrong size\r\n\nplease refund`, "wrong size please refund"},
		{"tab and bell", `wrong\t\u0007size`, "wrong size"},
		{"c1 and separators", `late\u0085\u2028\u2029delivery\u009b`, "late delivery"},
		{"del", `broken\u007f cup`, "broken cup"},
		{"plain", `不想要了 thanks`, "不想要了 thanks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := paidOrder(t, e, "oUser-reason-ctl-"+string(rune('a'+i)), 1)
			got := call(t, tools, caller(o.User), "request_refund", `{"order_no":"`+o.OrderNo+`","reason":"`+tc.reason+`"}`)
			if got.result["status"] != "awaiting_user_confirmation" {
				t.Fatalf("result %s; want a proposal", got.out.Result)
			}
			ps, err := e.svc.OpenRefunds(context.Background(), "shop-bot", o.User)
			if err != nil || len(ps) != 1 {
				t.Fatalf("open refunds %d (%v); want 1", len(ps), err)
			}
			if ps[0].Reason != tc.want {
				r, _ := json.Marshal(ps[0].Reason)
				t.Errorf("reason kept (and sent to WeChat Pay) %s; want %q", r, tc.want)
			}
		})
	}
	// A reason of nothing else is missing; so is one of bytes that are not
	// UTF-8 (a model's output cut mid-character), which the proposal drops
	// before keeping it: it was kept as an empty reason.
	for i, reason := range []string{`\u0000\n\u0007`, "\xff\xfe \xc3"} {
		o := paidOrder(t, e, "oUser-reason-ctl-only-"+string(rune('a'+i)), 1)
		got := call(t, tools, caller(o.User), "request_refund", `{"order_no":"`+o.OrderNo+`","reason":"`+reason+`"}`)
		if got.result["status"] != "needs_clarification" || got.out.Executed {
			t.Errorf("a reason of %q alone: %s; want it asked for", reason, got.out.Result)
		}
	}
}
