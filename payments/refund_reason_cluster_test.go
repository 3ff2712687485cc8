package payments_test

import (
	"context"
	"strings"
	"testing"

	"github.com/paygate/paygate/payments"
)

// TestRefundReasonIsCutBetweenCharactersAsSeen: a reason past WeChat Pay's
// 80 bytes is cut on a rune boundary, which can fall inside a character as
// the user reads it in WeChat Pay's refund notice: "👨‍👩‍👧" (runes joined by
// U+200D) was kept as a lone 👨, a flag as a boxed letter. The whole
// character is dropped instead, as from an order's description.
func TestRefundReasonIsCutBetweenCharactersAsSeen(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	head := strings.Repeat("a", 76) // the reason may take 4 bytes more
	for i, tc := range []struct{ name, reason, want string }{
		{"family", head + "👨\u200d👩\u200d👧", head},
		{"flag", head + "🇨🇳", head},
		{"skin tone", head + "👍🏽", head},
		{"space", head[:72] + "买错 了", head[:72] + "买错"},
		{"whole", head + "😀", head + "😀"},
		{"hangul jamo", head + "\u1112\u1161\u11ab", head},
		{"thai sara am", head + "\u0e01\u0e33", head},
		{"half-width kana", head + "\uff76\uff9e", head},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := paidOrder(t, e, "oUser-reason-cluster-"+strings.Repeat("x", i+1), 1)
			p, _, err := e.svc.ProposeRefund(ctx, payments.RefundRequest{Client: "shop-bot", User: o.User, OrderNo: o.OrderNo, Reason: tc.reason})
			if err != nil {
				t.Fatal(err)
			}
			if p.Reason != tc.want {
				t.Errorf("reason kept ends %q (%d bytes); want it to end %q (%d bytes)", p.Reason[72:], len(p.Reason), tc.want[72:], len(tc.want))
			}
		})
	}
}
