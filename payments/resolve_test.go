package payments_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestResolveGuardsMoney: an operator's way out of needs_review settles as
// paid only an order WeChat Pay reported a payment for, of its price, to
// this merchant, once, with nothing refunded on it, and nothing at all while a confirmed refund is in flight
// (its outcome is still to come): each refusal is ErrCannotResolve with the
// order unchanged and returned as it stands; a status other than paid or
// closed is refused before anything is read.
func TestResolveGuardsMoney(t *testing.T) {
	const txid = "4200001234555555555555555555"
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			ctx := context.Background()
			for _, tc := range []struct {
				name     string
				review   func(o *store.Order)
				to       store.OrderStatus
				want     store.OrderStatus // "" when refused
				wantText string
			}{
				{"paid with a payment reported", func(o *store.Order) { o.TransactionID = txid }, store.StatusPaid, store.StatusPaid, ""},
				{"paid without a payment", func(o *store.Order) {}, store.StatusPaid, "", "no payment"},
				{"paid with money refunded", func(o *store.Order) { o.TransactionID, o.RefundedFen = txid, 100 }, store.StatusPaid, "", "refunded"},
				{"closed with money refunded", func(o *store.Order) { o.TransactionID, o.RefundedFen = txid, o.AmountFen }, store.StatusClosed, store.StatusClosed, ""},
				{"paid with a refund in flight", func(o *store.Order) { o.TransactionID, o.RefundReservedBy = txid, "rp_inflight" }, store.StatusPaid, "", "in flight"},
				{"closed with a refund in flight", func(o *store.Order) { o.TransactionID, o.RefundReservedBy = txid, "rp_inflight" }, store.StatusClosed, "", "in flight"},
				// The sweep's refund_record_missing: a reservation no refund
				// record names and no confirmation can take; nothing ends
				// it, so only closing takes the order out of review.
				{"closed with a reservation nothing was recorded under", func(o *store.Order) {
					o.TransactionID, o.RefundReservedBy = txid, "rp_unrecorded"
					o.ReviewReason = "refund_record_missing: refunding without a recorded refund; check the merchant platform"
				}, store.StatusClosed, store.StatusClosed, ""},
				{"paid with a reservation nothing was recorded under", func(o *store.Order) {
					o.TransactionID, o.RefundReservedBy = txid, "rp_unrecorded"
					o.ReviewReason = "refund_record_missing: refunding without a recorded refund; check the merchant platform"
				}, store.StatusPaid, "", "in flight"},
				{"paid with another amount", func(o *store.Order) {
					o.TransactionID, o.ReviewReason = txid, "amount_mismatch: wechat pay says paid 1 (currency CNY)"
				}, store.StatusPaid, "", "amount_mismatch"},
				{"paid twice", func(o *store.Order) {
					o.TransactionID, o.ReviewReason = txid, "appid_mismatch: …; transaction_mismatch: wechat pay says paid …"
				}, store.StatusPaid, "", "transaction_mismatch"},
				{"paid to another merchant", func(o *store.Order) {
					o.TransactionID, o.ReviewReason = txid, "mchid_mismatch: wechat pay says paid …"
				}, store.StatusPaid, "", "mchid_mismatch"},
				// WeChat Pay's word of money that went back, kept in the
				// reason and not counted in refunded_fen (applyPayment's
				// refund_not_requested, noteInReview's "refunded since",
				// applyRefund's refund_on_…): settled as paid, the merchant
				// delivers for money the payer has back.
				{"paid and refunded while notifications were lost", func(o *store.Order) {
					o.TransactionID, o.ReviewReason = txid, "refund_not_requested: wechat pay says paid 1 (currency CNY) and refunded since (trade_state REFUND), mchid m, appid a, transaction "+txid
				}, store.StatusPaid, "", "refund"},
				{"refunded before its payment was heard", func(o *store.Order) {
					o.TransactionID, o.ReviewReason = txid, "refund_on_awaiting_payment: wechat pay refund rf_1 (SUCCESS) of 1 fen, order total 1 fen, mchid m; paid_while_in_review: wechat pay says paid 1 (currency CNY), mchid m, appid a, transaction "+txid
				}, store.StatusPaid, "", "refund"},
				{"refunded on the merchant platform", func(o *store.Order) {
					o.TransactionID, o.ReviewReason = txid, "refund_not_requested: wechat pay refund rf_2 (SUCCESS) of 1 fen, order total 1 fen, mchid m"
				}, store.StatusPaid, "", "refund"},
				// A second transaction under a disagreement named before
				// transaction_mismatch (another payer or app id on an order
				// paid already): settled as paid, the merchant hears
				// order.paid twice and the second payment is never returned.
				{"paid again by another payer", func(o *store.Order) {
					o.TransactionID, o.ReviewReason = txid, "payer_mismatch: wechat pay says paid 1 (currency CNY), mchid m, appid a, transaction 4200009999999999999999999999"
				}, store.StatusPaid, "", "transaction"},
				// One payment of its price to this merchant by another payer
				// than the order's user (a friend's phone): the money is
				// here, a person may judge it good.
				{"paid once by another payer", func(o *store.Order) {
					o.TransactionID, o.ReviewReason = txid, "payer_mismatch: wechat pay says paid 1 (currency CNY), mchid m, appid a, transaction "+txid
				}, store.StatusPaid, store.StatusPaid, ""},
				{"closed after its refund on the merchant platform", func(o *store.Order) {
					o.TransactionID, o.ReviewReason = txid, "refund_not_requested: wechat pay refund rf_3 (SUCCESS) of 1 fen, order total 1 fen, mchid m"
				}, store.StatusClosed, store.StatusClosed, ""},
				// Settling as paid is allowed for the reasons known to
				// leave one payment of its price with this merchant, not
				// refused for those known not to: a reason added later is
				// refused until it is judged.
				{"paid for a reason not judged", func(o *store.Order) {
					o.TransactionID, o.ReviewReason = txid, "appid_mismatch: wechat pay says paid …; later_disagreement: wechat pay says …"
				}, store.StatusPaid, "", "later_disagreement"},
				{"paid after it expired", func(o *store.Order) {
					o.TransactionID, o.ReviewReason = txid, "paid_after_expired: wechat pay says paid 1 (currency CNY), mchid m, appid a, transaction "+txid
				}, store.StatusPaid, store.StatusPaid, ""},
				{"closed with another amount", func(o *store.Order) {
					o.TransactionID, o.ReviewReason = txid, "amount_mismatch: wechat pay says paid 1 (currency CNY)"
				}, store.StatusClosed, store.StatusClosed, ""},
				{"to refunded", func(o *store.Order) { o.TransactionID = txid }, store.StatusRefunded, "", "paid or closed"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					o := e.create("oUser-resolve-"+strings.ReplaceAll(tc.name, " ", "-"), 1)
					before := o.Status
					o.Status, o.ReviewReason = store.StatusNeedsReview, "appid_mismatch: wechat pay says paid …"
					tc.review(o)
					if o.RefundReservedBy == "rp_inflight" {
						if err := payments.RecordInFlight(ctx, e.svc, o.OrderNo, o.RefundReservedBy); err != nil {
							t.Fatal(err)
						}
					}
					if err := e.st.UpdateOrder(ctx, o, before); err != nil {
						t.Fatal(err)
					}
					got, err := e.svc.Resolve(ctx, o.OrderNo, tc.to)
					if tc.want != "" {
						if err != nil || got == nil || got.Status != tc.want {
							t.Fatalf("resolve: %+v %v; want %s", got, err, tc.want)
						}
						if now := e.order(o.OrderNo); now.Status != tc.want || now.RefundReservedBy != "" {
							t.Errorf("after the resolution: %s reserved by %q; want %s reserved by none", now.Status, now.RefundReservedBy, tc.want)
						}
						if _, err := e.svc.Resolve(ctx, o.OrderNo, tc.to); !errors.Is(err, payments.ErrNotInReview) {
							t.Errorf("resolve again: %v; want ErrNotInReview", err)
						}
						return
					}
					if !errors.Is(err, payments.ErrCannotResolve) || !strings.Contains(err.Error(), tc.wantText) {
						t.Errorf("resolve: %v; want ErrCannotResolve saying %q", err, tc.wantText)
					}
					if now := e.order(o.OrderNo); now.Status != store.StatusNeedsReview {
						t.Errorf("after a refused resolution: %s; want needs_review", now.Status)
					}
				})
			}
		})
	}
}
