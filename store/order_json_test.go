package store

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestOrderMemberInAnotherCaseIsNotKeptOverTheWrite: json.Unmarshal reads
// a member spelled in another case ("Status", "Refunded_Fen") into the
// field it folds to, so it is not a member this version does not know. Kept
// as one (Order.later) and written back after the order's own members, it
// came last in every later record and was read over this version's write:
// a refund's refunded_fen and refunding status were lost at the next read.
func TestOrderMemberInAnotherCaseIsNotKeptOverTheWrite(t *testing.T) {
	const base = `{"order_no":"PG-1","client":"shop","user":"u","amount_fen":4999,"status":"paid","refunded_fen":0,"version":2`
	cases := []struct{ name, extra string }{
		{"status", `,"Status":"paid"`},
		{"refunded_fen", `,"Refunded_Fen":0`},
		{"both, and a member this version does not know", `,"STATUS":"paid","refunded_FEN":0,"hold_fen":700`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var o Order
			if err := json.Unmarshal([]byte(base+tc.extra+`}`), &o); err != nil {
				t.Fatal(err)
			}
			o.Status, o.RefundedFen = StatusRefunding, 4999
			j, err := json.Marshal(&o)
			if err != nil {
				t.Fatal(err)
			}
			var got Order
			if err := json.Unmarshal(j, &got); err != nil {
				t.Fatal(err)
			}
			if got.Status != StatusRefunding || got.RefundedFen != 4999 {
				t.Errorf("read back status %s, refunded %d; want refunding, 4999: %s", got.Status, got.RefundedFen, j)
			}
			if strings.Contains(tc.extra, "hold_fen") && !strings.Contains(string(j), `"hold_fen":700`) {
				t.Errorf("the unknown member was lost: %s", j)
			}
		})
	}
}

// TestDecodeOrderAllocatesAsItsFields: every turn of a user with orders
// decodes their records (LoadUserState), and an order with no member a
// later version added must cost no allocation beyond its fields' decode:
// json.Unmarshal into an Order, which the drivers called, copied the
// whole record for the walk that looks for such members, allocated its
// callback, and decoded the record a second time from a state of its own.
func TestDecodeOrderAllocatesAsItsFields(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 123456789, time.UTC)
	j, err := json.Marshal(&Order{OrderNo: "PG20261203100000abcdef", Client: "shop", AppID: "wx1234567890",
		User: "oWx-openid-0123456789abcdef", SKU: "coffee-large", Description: "Large coffee", Quantity: 2,
		AmountFen: 4999, Currency: "CNY", PayMethod: "jsapi", Status: StatusPaid, CreatedAt: now, UpdatedAt: now,
		PaidAt: now, TransactionID: "4200000001", RefundNos: []string{"RF-1"}, Version: 3})
	if err != nil {
		t.Fatal(err)
	}
	fields := testing.AllocsPerRun(100, func() {
		var o orderFields
		_ = json.Unmarshal(j, &o)
	})
	order := testing.AllocsPerRun(100, func() {
		var o Order
		_ = DecodeOrder(j, &o)
	})
	if order > fields {
		t.Errorf("decoding an order: %v allocations; its fields alone: %v", order, fields)
	}
}
