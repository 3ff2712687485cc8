package webhook_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
)

func order(status store.OrderStatus, refunded int64) store.Order {
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	return store.Order{
		OrderNo: "P20260304A1", Client: "shop-bot", AppID: "wxapp1", User: "oUser1", SKU: "premium-monthly",
		Description: "Premium", Quantity: 1, AmountFen: 4999, Currency: "CNY", PayMethod: "jsapi",
		Status: status, CreatedAt: t0, UpdatedAt: t0.Add(time.Minute), ExpiresAt: t0.Add(30 * time.Minute),
		RefundedFen: refunded, TransactionID: "4200000001",
	}
}

func TestEventsMapping(t *testing.T) {
	S := func(s store.OrderStatus) store.Order { return order(s, 0) }
	// R is an order in review for reason, with transaction txid and
	// refunded fen back.
	R := func(reason, txid string, refunded int64) store.Order {
		o := order(store.StatusNeedsReview, refunded)
		o.ReviewReason, o.TransactionID = reason, txid
		return o
	}
	const (
		refundFirst = "refund_on_awaiting_payment: wechat pay refund RFp1 (SUCCESS) of 1000 fen"
		paidLater   = refundFirst + "; paid_while_in_review: wechat pay says paid 4999"
		refunded    = paidLater + "; refunded_while_in_review: wechat pay refund RFp2 (SUCCESS) of 2000 fen"
	)
	tests := []struct {
		name       string
		before     store.Order
		after      store.Order
		cause      string
		want       string // "" for no event
		refundAmt  int64
		refundStat string
	}{
		{name: "awaiting to paid", before: S(store.StatusAwaitingPayment), after: S(store.StatusPaid), cause: "notification", want: webhook.TypeOrderPaid},
		{name: "creating to paid (prepay found it paid)", before: S(store.StatusCreating), after: S(store.StatusPaid), cause: "prepay", want: webhook.TypeOrderPaid},
		{name: "review settled as paid", before: S(store.StatusNeedsReview), after: S(store.StatusPaid), cause: "admin", want: webhook.TypeOrderPaid},
		{name: "created awaiting approval", after: S(store.StatusApprovalRequired), cause: "create", want: webhook.TypeOrderApprovalRequired},
		{name: "approved: creating", before: S(store.StatusApprovalRequired), after: S(store.StatusCreating), cause: "approve"},
		{name: "created", after: S(store.StatusCreating), cause: "create"},
		{name: "prepaid", before: S(store.StatusCreating), after: S(store.StatusAwaitingPayment), cause: "prepay"},
		{name: "closed", before: S(store.StatusAwaitingPayment), after: S(store.StatusClosed), cause: "close", want: webhook.TypeOrderClosed},
		{name: "expired", before: S(store.StatusAwaitingPayment), after: S(store.StatusExpired), cause: "expire", want: webhook.TypeOrderClosed},
		{name: "rejected", before: S(store.StatusApprovalRequired), after: S(store.StatusRejected), cause: "reject", want: webhook.TypeOrderClosed},
		{name: "prepay refused", before: S(store.StatusCreating), after: S(store.StatusClosed), cause: "prepay", want: webhook.TypeOrderClosed},
		{name: "superseded duplicate", before: S(store.StatusCreating), after: S(store.StatusClosed), cause: "superseded"},
		{name: "stalled claimer's number abandoned", after: S(store.StatusClosed), cause: "abandoned"},
		{name: "needs review", before: S(store.StatusPaid), after: S(store.StatusNeedsReview), cause: "notification", want: webhook.TypeOrderNeedsReview},
		{name: "orphan recorded", after: S(store.StatusNeedsReview), cause: "orphan", want: webhook.TypeOrderNeedsReview},
		{name: "refund started", before: S(store.StatusPaid), after: S(store.StatusRefunding), cause: "refund"},
		{name: "refunded in full", before: order(store.StatusRefunding, 0), after: order(store.StatusRefunded, 4999), cause: "notification", want: webhook.TypeRefundSucceeded, refundAmt: 4999, refundStat: "succeeded"},
		{name: "second partial refund", before: order(store.StatusRefunding, 1000), after: order(store.StatusPartiallyRefunded, 3000), cause: "notification", want: webhook.TypeRefundSucceeded, refundAmt: 2000, refundStat: "succeeded"},
		{name: "refund closed", before: order(store.StatusRefunding, 0), after: order(store.StatusPaid, 0), cause: "notification", want: webhook.TypeRefundFailed, refundStat: "failed"},
		{name: "second refund closed", before: order(store.StatusRefunding, 1000), after: order(store.StatusPartiallyRefunded, 1000), cause: "notification", want: webhook.TypeRefundFailed, refundStat: "failed"},
		// A reservation undone before anything went to WeChat Pay (the
		// user cancelled as the confirmation ran): the merchant heard of no
		// refund starting, and none failed.
		{name: "reservation undone", before: order(store.StatusRefunding, 0), after: order(store.StatusPaid, 0), cause: "refund_aborted"},
		{name: "second reservation undone", before: order(store.StatusRefunding, 1000), after: order(store.StatusPartiallyRefunded, 1000), cause: "refund_aborted"},
		{name: "same status rewritten", before: S(store.StatusPaid), after: S(store.StatusPaid), cause: "query"},
		{name: "payment noted in review", before: R(refundFirst, "", 0), after: R(paidLater, "4200000001", 0), cause: "notification", want: webhook.TypeOrderNeedsReview},
		{name: "refund noted in review", before: R(paidLater, "4200000001", 0), after: R(refunded, "4200000001", 2000), cause: "notification", want: webhook.TypeOrderNeedsReview},
		{name: "fact noted in review", before: R(refundFirst, "", 0), after: R(paidLater, "", 0), cause: "query", want: webhook.TypeOrderNeedsReview},
		{name: "review rewritten unchanged", before: R(refundFirst, "", 0), after: R(refundFirst, "", 0), cause: "query"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := webhook.Events(payments.Transition{Before: tc.before, After: tc.after, Cause: tc.cause})
			if tc.want == "" {
				if len(evs) != 0 {
					t.Fatalf("got %d events (%s); want none", len(evs), evs[0].Payload)
				}
				return
			}
			if len(evs) != 1 {
				t.Fatalf("got %d events; want 1", len(evs))
			}
			ev := evs[0]
			if ev.Kind != webhook.Kind || ev.Key != tc.after.OrderNo || !strings.HasPrefix(ev.ID, "evt_") {
				t.Errorf("got kind %q key %q id %q; want webhook, the order number, evt_…", ev.Kind, ev.Key, ev.ID)
			}
			var env webhook.Envelope
			if err := json.Unmarshal(ev.Payload, &env); err != nil {
				t.Fatal(err)
			}
			if env.ID != ev.ID || env.Type != tc.want || env.CreatedAt != "2026-03-04T05:07:07Z" {
				t.Errorf("got id %q type %q created_at %q; want %q %q 2026-03-04T05:07:07Z", env.ID, env.Type, env.CreatedAt, ev.ID, tc.want)
			}
			// The order object is exactly SPEC 2.3's, as OrderView renders it.
			want, _ := json.Marshal(payments.OrderView(&tc.after))
			got, _ := json.Marshal(env.Data.Order)
			if string(got) != string(want) {
				t.Errorf("data.order %s; want %s", got, want)
			}
			if env.Data.OpenID != "oUser1" || env.Data.AppID != "wxapp1" || env.Data.Client != "shop-bot" {
				t.Errorf("data %+v; want the order's client, app and OpenID", env.Data)
			}
			if env.Data.ReviewReason != tc.after.ReviewReason || env.Data.TransactionID != tc.after.TransactionID {
				t.Errorf("data review_reason %q transaction_id %q; want the order's %q %q",
					env.Data.ReviewReason, env.Data.TransactionID, tc.after.ReviewReason, tc.after.TransactionID)
			}
			if tc.refundStat == "" {
				if env.Data.Refund != nil {
					t.Errorf("order event carries a refund: %v", env.Data.Refund)
				}
				return
			}
			if env.Data.Refund["status"] != tc.refundStat || env.Data.Refund["amount_fen"] != float64(tc.refundAmt) ||
				env.Data.Refund["order_no"] != tc.after.OrderNo || env.Data.Refund["refunded_fen"] != float64(tc.after.RefundedFen) {
				t.Errorf("data.refund %v; want status %s amount %d", env.Data.Refund, tc.refundStat, tc.refundAmt)
			}
		})
	}
}

func TestEventBodyKeys(t *testing.T) {
	o := order(store.StatusNeedsReview, 0)
	o.ReviewReason = "amount_mismatch: wechat pay says paid 1 fen"
	ev := webhook.NewEvent(webhook.TypeOrderNeedsReview, &o, nil, o.UpdatedAt)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(ev.Payload, &raw); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range raw {
		keys = append(keys, k)
	}
	if len(keys) != 4 || raw["id"] == nil || raw["type"] == nil || raw["created_at"] == nil || raw["data"] == nil {
		t.Errorf("top-level keys %v; want exactly id, type, created_at, data", keys)
	}
	var d map[string]any
	_ = json.Unmarshal(raw["data"], &d)
	if d["review_reason"] != o.ReviewReason {
		t.Errorf("review_reason %v; want %q", d["review_reason"], o.ReviewReason)
	}
	order := d["order"].(map[string]any)
	wantKeys := []string{"order_no", "sku", "description", "quantity", "amount_fen", "currency", "pay_method", "status", "created_at", "expires_at", "paid_at", "refunded_fen"}
	var gotKeys []string
	for _, k := range wantKeys {
		if _, ok := order[k]; ok {
			gotKeys = append(gotKeys, k)
		}
	}
	if !reflect.DeepEqual(gotKeys, wantKeys) || len(order) != len(wantKeys) {
		t.Errorf("order keys %v; want exactly %v", order, wantKeys)
	}
	for _, leak := range []string{"prepay_id", "claim_key", "code_url"} {
		if strings.Contains(string(ev.Payload), leak) {
			t.Errorf("body contains %q: %s", leak, ev.Payload)
		}
	}
}

func TestProposalEvent(t *testing.T) {
	o := order(store.StatusPaid, 0)
	p := store.RefundProposal{RefundID: "rf_1", OrderNo: o.OrderNo, Client: o.Client, User: o.User, AmountFen: 1000,
		CreatedAt: o.UpdatedAt, ExpiresAt: o.UpdatedAt.Add(15 * time.Minute)}
	ev := webhook.ProposalEvent(p, &o)
	var env webhook.Envelope
	if err := json.Unmarshal(ev.Payload, &env); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(payments.ProposalView(&p, "CNY"))
	got, _ := json.Marshal(env.Data.Refund)
	if env.Type != webhook.TypeRefundProposed || string(got) != string(want) || ev.Key != o.OrderNo {
		t.Errorf("got %s key %q; want a refund.proposed with refund %s keyed by the order", ev.Payload, ev.Key, want)
	}
	a := webhook.NewEvent(webhook.TypeOrderPaid, &o, nil, o.UpdatedAt)
	b := webhook.NewEvent(webhook.TypeOrderPaid, &o, nil, o.UpdatedAt)
	if a.ID == b.ID {
		t.Errorf("two events share id %s", a.ID)
	}
}

// TestRefundEventsNameTheRefund: a refund transition that carries its
// confirmed proposal names it in data.refund.
func TestRefundEventsNameTheRefund(t *testing.T) {
	p := &store.RefundProposal{RefundID: "rf_abc", OrderNo: "P20260304A1", AmountFen: 2000, Reason: "changed my mind"}
	tests := []struct {
		name   string
		before store.Order
		after  store.Order
		typ    string
	}{
		{name: "succeeded", before: order(store.StatusRefunding, 0), after: order(store.StatusPartiallyRefunded, 2000), typ: webhook.TypeRefundSucceeded},
		{name: "failed", before: order(store.StatusRefunding, 0), after: order(store.StatusPaid, 0), typ: webhook.TypeRefundFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := webhook.Events(payments.Transition{Before: tc.before, After: tc.after, Cause: "notification", Refund: p})
			if len(evs) != 1 {
				t.Fatalf("got %d events; want 1", len(evs))
			}
			var env webhook.Envelope
			_ = json.Unmarshal(evs[0].Payload, &env)
			if env.Type != tc.typ || env.Data.Refund["refund_id"] != "rf_abc" || env.Data.Refund["amount_fen"] != float64(2000) || env.Data.Refund["reason"] != "changed my mind" {
				t.Errorf("got %s %v; want %s naming rf_abc for 2000 fen", env.Type, env.Data.Refund, tc.typ)
			}
			// The keys the README lists for a refund's outcome.
			var keys []string
			for k := range env.Data.Refund {
				keys = append(keys, k)
			}
			if want := []string{"amount_fen", "created_at", "currency", "order_no", "reason", "refund_id", "refunded_fen", "settled_at", "status"}; !slices.Equal(slices.Sorted(slices.Values(keys)), want) {
				t.Errorf("data.refund keys %v; the README lists %v", slices.Sorted(slices.Values(keys)), want)
			}
		})
	}
}

// TestEventBodyNullsAndIntegers: what the README promises a merchant's
// decoder: data.order's times are RFC 3339 once known and null before
// (paid_at of an order not paid yet), never left out, and every amount is
// an integer number of fen, never a string or a decimal.
func TestEventBodyNullsAndIntegers(t *testing.T) {
	paid := order(store.StatusPaid, 0)
	paid.PaidAt = paid.UpdatedAt
	refunded := order(store.StatusPartiallyRefunded, 1500)
	refunded.PaidAt = refunded.CreatedAt.Add(time.Second)
	for _, tc := range []struct {
		name       string
		ev         store.Event
		paidAtNull bool
		amounts    []string
	}{
		{"order.approval_required", webhook.NewEvent(webhook.TypeOrderApprovalRequired, ptr(order(store.StatusApprovalRequired, 0)), nil, time.Now()), true,
			[]string{"data.order.amount_fen", "data.order.refunded_fen", "data.order.quantity"}},
		{"order.paid", webhook.NewEvent(webhook.TypeOrderPaid, &paid, nil, time.Now()), false,
			[]string{"data.order.amount_fen", "data.order.refunded_fen"}},
		{"refund.succeeded", webhook.Events(payments.Transition{
			Before: func() store.Order { o := refunded; o.Status, o.RefundedFen = store.StatusRefunding, 0; return o }(),
			After:  refunded, Cause: "refund",
			Refund: &store.RefundProposal{RefundID: "rf_n", OrderNo: refunded.OrderNo, AmountFen: 1500},
		})[0], false, []string{"data.order.amount_fen", "data.order.refunded_fen", "data.refund.amount_fen", "data.refund.refunded_fen"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := gjson.ParseBytes(tc.ev.Payload)
			if got := body.Get("type").Str; got != tc.name {
				t.Fatalf("type %q; want %q", got, tc.name)
			}
			p := body.Get("data.order.paid_at")
			switch {
			case !p.Exists():
				t.Errorf("data.order.paid_at left out: %s", tc.ev.Payload)
			case tc.paidAtNull && p.Type != gjson.Null:
				t.Errorf("paid_at %s before the payment; want null", p.Raw)
			case !tc.paidAtNull:
				if _, err := time.Parse(time.RFC3339, p.Str); err != nil {
					t.Errorf("paid_at %s; want an RFC 3339 time: %v", p.Raw, err)
				}
			}
			for _, k := range tc.amounts {
				v := body.Get(k)
				if v.Type != gjson.Number || strings.ContainsAny(v.Raw, ".eE") {
					t.Errorf("%s is %s; want an integer", k, v.Raw)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
