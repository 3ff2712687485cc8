package webhook_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
)

func TestStateEvent(t *testing.T) {
	at := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		status store.OrderStatus
		want   string // "" : nothing to resend
	}{
		{store.StatusCreating, ""},
		{store.StatusAwaitingPayment, ""},
		{store.StatusRefunding, ""},
		{store.StatusPaid, webhook.TypeOrderPaid},
		{store.StatusApprovalRequired, webhook.TypeOrderApprovalRequired},
		{store.StatusClosed, webhook.TypeOrderClosed},
		{store.StatusExpired, webhook.TypeOrderClosed},
		{store.StatusRejected, webhook.TypeOrderClosed},
		{store.StatusNeedsReview, webhook.TypeOrderNeedsReview},
		{store.StatusRefunded, webhook.TypeRefundSucceeded},
		{store.StatusPartiallyRefunded, webhook.TypeRefundSucceeded},
	} {
		t.Run(string(tc.status), func(t *testing.T) {
			o := &store.Order{OrderNo: "PG1", Status: tc.status, AmountFen: 4999, RefundedFen: 1000, Client: "bot", User: "oU", ReviewReason: "amount"}
			ev, err := webhook.StateEvent(o, at)
			if tc.want == "" {
				if !errors.Is(err, webhook.ErrNothingToResend) {
					t.Fatalf("err %v; want ErrNothingToResend", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var env webhook.Envelope
			if err := json.Unmarshal(ev.Payload, &env); err != nil {
				t.Fatal(err)
			}
			if env.Type != tc.want || env.ID != ev.ID || ev.Key != "PG1" || ev.Kind != webhook.Kind || env.CreatedAt != "2026-11-30T08:00:00Z" {
				t.Fatalf("event %+v envelope %+v; want %s on PG1", ev, env, tc.want)
			}
			if env.Data.Order["status"] != string(tc.status) || env.Data.OpenID != "oU" {
				t.Errorf("data %+v", env.Data)
			}
			if tc.want == webhook.TypeRefundSucceeded && (env.Data.Refund["refunded_fen"] != float64(1000) || env.Data.Refund["status"] != "succeeded") {
				t.Errorf("refund object %+v; want 1000 fen refunded", env.Data.Refund)
			}
			if (tc.status == store.StatusNeedsReview) != (env.Data.ReviewReason != "") {
				t.Errorf("review reason %q for %s", env.Data.ReviewReason, tc.status)
			}
		})
	}
}
