package payments_test

import (
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
)

// TestNoRefundProposedPastWeChatPaysYear: WeChat Pay takes no refund of an
// order paid more than a year ago (INVALID_REQUEST). Proposed all the same,
// the user was asked to confirm a refund that could only be refused, and
// heard "refused" after confirming. request_refund says why at once; an
// order within its year is proposed as before.
func TestNoRefundProposedPastWeChatPaysYear(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			within := paidOrder(t, e, "oUser-refund-year-a", 1)
			past := paidOrder(t, e, "oUser-refund-year-b", 1)

			e.clock.Advance(364 * 24 * time.Hour)
			tc := call(t, newTools(e), caller(within.User), "request_refund", `{"order_no":"`+within.OrderNo+`","reason":"late"}`)
			if tc.result["status"] != "awaiting_user_confirmation" {
				t.Fatalf("364 days after payment: %s; want a proposal", tc.out.Result)
			}

			e.clock.Advance(2 * 24 * time.Hour)
			tc = call(t, newTools(e), caller(past.User), "request_refund", `{"order_no":"`+past.OrderNo+`","reason":"late"}`)
			msg, _ := tc.result["error"].(string)
			if tc.result["status"] != "not_refundable" || !strings.Contains(msg, "year") || tc.action != nil {
				t.Errorf("366 days after payment: %s, action %s; want not_refundable saying it is past a year, no proposal", tc.out.Result, tc.out.Action)
			}
			if got := e.order(past.OrderNo); got.Status != store.StatusPaid || got.Version != past.Version {
				t.Errorf("order %s v%d; want paid, untouched", got.Status, got.Version)
			}
		})
	}
}
