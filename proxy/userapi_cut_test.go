package proxy

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestUserOrdersOfACutConfirmationReadAsTheModelReadsThem: a confirmation
// that reserved its order and stopped before spending the user's word (the
// replica died, the store failed) sent nothing to WeChat Pay, and its
// proposal is still open. The user's turn (the payment state, query_order)
// reads such an order as what it was, paid or partially refunded
// (payments.Service.UnsentRefunds). GET /v1/paygate/orders and
// /orders/{order_no} showed it "refunding" beside the confirm button of that
// very proposal: the bot's page told the user their refund was on its way
// while the model told them nobody had sent one and asked them to tap. The
// order object is the same everywhere (SPEC 2.3). The button stays, the
// order's other proposal (a tap on it answers 409) stays unlisted.
func TestUserOrdersOfACutConfirmationReadAsTheModelReadsThem(t *testing.T) {
	const user = "o-cut-listed-user"
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			st := testdrivers.Open(t, driver, nil)
			now := time.Now().Add(-time.Hour).Truncate(time.Second)
			for _, tc := range []struct {
				no          string
				refundedFen int64
			}{{"PGCUT-paid", 0}, {"PGCUT-part", 1000}} {
				o := storetest.NewOrder(tc.no, "shop-bot", user, now)
				o.Status, o.PaidAt, o.TransactionID = store.StatusRefunding, now, "4200-"+tc.no
				o.RefundedFen, o.RefundReservedBy = tc.refundedFen, "rf_cut_"+tc.no
				if err := st.CreateOrder(ctx, o); err != nil {
					t.Fatal(err)
				}
				for _, id := range []string{"rf_cut_" + tc.no, "rf_other_" + tc.no} {
					p := &store.RefundProposal{RefundID: id, OrderNo: tc.no, Client: "shop-bot", User: user,
						AmountFen: 1000, OutRefundNo: payments.OutRefundNo(id)}
					if err := st.PutRefundProposal(ctx, p, time.Hour); err != nil {
						t.Fatal(err)
					}
				}
			}
			srv := userAPIServer(t, st)
			want := map[string]string{"PGCUT-paid": "paid", "PGCUT-part": "partially_refunded"}
			check := func(where string, o gjson.Result) {
				t.Helper()
				no := o.Get("order_no").Str
				if got := o.Get("status").Str; got != want[no] {
					t.Errorf("%s: order %s status %q; want %q, as the user's turn reads it: no refund of it was sent", where, no, got, want[no])
				}
				ids := o.Get("refunds_proposed.#.refund_id").Array()
				if len(ids) != 1 || ids[0].Str != "rf_cut_"+no {
					t.Errorf("%s: order %s refunds_proposed %s; want only rf_cut_%s, the proposal a tap carries out", where, no, o.Get("refunds_proposed").Raw, no)
				}
			}
			status, list := listOrders(t, srv, testClientKey, user, "")
			if status != http.StatusOK || len(list.Get("data").Array()) != 2 {
				t.Fatalf("list: %d %s; want both orders", status, list.Raw)
			}
			for _, o := range list.Get("data").Array() {
				check("GET /v1/paygate/orders", o)
			}
			for no := range want {
				resp := send(t, http.MethodGet, srv, "/v1/paygate/orders/"+no, "", map[string]string{headerOpenID: user})
				body := readAll(t, resp.Body)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET order %s: %d %s", no, resp.StatusCode, body)
				}
				check("GET /v1/paygate/orders/"+no, gjson.Parse(body))
			}
		})
	}
}
