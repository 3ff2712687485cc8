package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestSimulatorPayEndpoint: on the defaults (the simulator, pay_after and
// refund_after 0) an order is paid, and a confirmed refund completes, only
// when told. An operator tells it through the admin API: the simulator
// sends its signed notification, paygate records the payment or refund, and
// a second call, an unknown order or refund, or a missing token is refused.
func TestSimulatorPayEndpoint(t *testing.T) {
	const token = "adm-e2e-simpay-31"
	up := newScriptedProvider(t, purchaseScript)
	_, a := paymentApp(t, up.URL, "admin: {token: "+token+"}\n")
	ctx := context.Background()
	res, err := a.payments.CreateOrder(ctx, payments.CreateRequest{Client: "bot", User: testOpenID, SKU: "premium-monthly"})
	if err != nil {
		t.Fatal(err)
	}
	no := res.Order.OrderNo
	admin := httptest.NewServer(a.adminHandler())
	t.Cleanup(admin.Close)
	post := func(path, tok string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, admin.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("X-Paygate-CSRF", "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatalf("POST %s: %d, not JSON: %v", path, resp.StatusCode, err)
		}
		return resp.StatusCode, body
	}
	pay := func(orderNo, tok string) (int, map[string]any) {
		return post("/admin/api/simulator/orders/"+orderNo+"/pay", tok)
	}
	if st, body := pay(no, "wrong-token"); st != http.StatusUnauthorized {
		t.Fatalf("without the admin token: %d %v; want 401", st, body)
	}
	st, body := pay(no, token)
	if st != http.StatusOK || body["notification"].(map[string]any)["acked"] != true {
		t.Fatalf("pay: %d %v; want 200 and the notification acknowledged", st, body)
	}
	if o, err := a.store.GetOrder(ctx, no); err != nil || o.Status != store.StatusPaid {
		t.Fatalf("order after the simulated payment: %+v %v; want paid", o, err)
	}
	if st, body := pay(no, token); st != http.StatusConflict || body["error"] == "" {
		t.Errorf("paid twice: %d %v; want 409 with the reason", st, body)
	}
	if st, body := pay("PGNOSUCHORDER", token); st != http.StatusNotFound || body["error"] == "" {
		t.Errorf("unknown order: %d %v; want 404 with the reason", st, body)
	}

	// A refund the user confirmed stays processing at the simulator until
	// told (refund_after 0), then succeeds and is recorded.
	p, _, err := a.payments.ProposeRefund(ctx, payments.RefundRequest{Client: "bot", User: testOpenID, OrderNo: no, Reason: "changed my mind"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.payments.ConfirmRefund(ctx, "bot", testOpenID, p.RefundID); err != nil {
		t.Fatal(err)
	}
	complete := func(outRefundNo string) (int, map[string]any) {
		return post("/admin/api/simulator/refunds/"+outRefundNo+"/complete", token)
	}
	if st, body := complete(p.OutRefundNo); st != http.StatusOK || body["notification"].(map[string]any)["acked"] != true {
		t.Fatalf("complete the refund: %d %v; want 200 and the notification acknowledged", st, body)
	}
	if o, err := a.store.GetOrder(ctx, no); err != nil || o.Status != store.StatusRefunded || o.RefundedFen != o.AmountFen {
		t.Fatalf("order after the simulated refund: %+v %v; want refunded in full", o, err)
	}
	if st, body := complete(p.OutRefundNo); st != http.StatusConflict || body["error"] == "" {
		t.Errorf("completed twice: %d %v; want 409 with the reason", st, body)
	}
	if st, body := complete("RFNOSUCHREFUND"); st != http.StatusNotFound || body["error"] == "" {
		t.Errorf("unknown refund: %d %v; want 404 with the reason", st, body)
	}
}
