package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/proxy/console"
	"github.com/paygate/paygate/store"
)

// prepayUnrecorded is a store whose write of an order's prepay (the move
// to awaiting_payment) fails with err: WeChat Pay opened the order, and
// paygate could not record it.
type prepayUnrecorded struct {
	store.Store
	err error
}

func (s prepayUnrecorded) UpdateOrder(ctx context.Context, o *store.Order, expect store.OrderStatus, ev ...store.Event) error {
	if o.Status == store.StatusAwaitingPayment {
		return fmt.Errorf("write order: %w", s.err)
	}
	return s.Store.UpdateOrder(ctx, o, expect, ev...)
}

// TestAdminApprovalAnsweredAsMadeWhenItsPrepayIsNotRecorded: a manager's
// approval is committed (the order leaves the queue, audited as approved)
// and WeChat Pay opens the order, but the store fails as paygate records
// the prepay: the order stays creating, for the reconciler. The admin API
// answered 503 "the store is unavailable" (or 500 "internal error") and
// nothing else, and the console said "Could not approve": the manager was
// told the approval had not happened when it had. The answer says it was
// approved, with the order as it stands, as it does when WeChat Pay does
// not open the order (502). A store that lost its data is answered with
// what /readyz and every other admin route say of it (restart every
// replica), not "unavailable": it refuses every command, the reconciler's
// too, until the replicas restart.
func TestAdminApprovalAnsweredAsMadeWhenItsPrepayIsNotRecorded(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		status int
		want   string // in the error
	}{
		{"store unavailable", store.ErrUnavailable, http.StatusServiceUnavailable, "the store is unavailable"},
		{"store failed otherwise", errors.New("disk full"), http.StatusInternalServerError, "the store failed"},
		// As the Redis store refuses every command once it lost its data.
		{"store lost its data", fmt.Errorf("redis: %w: %w", store.ErrUnavailable, store.ErrDataLost), http.StatusServiceUnavailable, store.DataLostAdvice},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, a := paymentApp(t, "http://127.0.0.1:1", "admin: {token: "+consoleToken+"}\n",
				withStoreWrap(func(st store.Store) store.Store { return prepayUnrecorded{st, tc.err} }))
			admin := httptest.NewServer(a.adminHandler())
			t.Cleanup(admin.Close)
			res, err := a.payments.CreateOrder(context.Background(), payments.CreateRequest{Client: "bot", User: "oUser-unrecorded", SKU: "premium-yearly", Quantity: 2})
			if err != nil || res.Order.Status != store.StatusApprovalRequired {
				t.Fatalf("create: %+v %v; want approval_required", res, err)
			}
			no := res.Order.OrderNo
			req, err := http.NewRequest(http.MethodPost, admin.URL+"/admin/api/approvals/"+no+"/approve", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+consoleToken)
			req.Header.Set(console.CSRFHeader, "1")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body := gjson.ParseBytes(b)

			if _, ok := a.sim.Order(no); !ok {
				t.Fatalf("WeChat Pay has no order %s: the approval did not reach it", no)
			}
			if o, err := a.store.GetOrder(context.Background(), no); err != nil || o.Status != store.StatusCreating {
				t.Fatalf("order %+v %v; want creating (approved, the prepay unrecorded)", o, err)
			}
			if resp.StatusCode != tc.status || !strings.HasPrefix(body.Get("error").Str, "approved, but ") {
				t.Errorf("%d %s; want %d with an error that says it was approved", resp.StatusCode, b, tc.status)
			}
			if !strings.Contains(body.Get("error").Str, tc.want) {
				t.Errorf("error %q; want it to say %q", body.Get("error").Str, tc.want)
			}
			if got := body.Get("order.order_no").Str; got != no || body.Get("order.status").Str != string(store.StatusCreating) {
				t.Errorf("answer's order %s; want %s as it stands, creating", body.Get("order").Raw, no)
			}
			if strings.Contains(string(b), "disk full") {
				t.Errorf("the answer carries the store's own error: %s", b)
			}
		})
	}
}
