package webhook_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestOrderDecodesRealDeliveries: webhook.Order, the typed order object for
// Go receivers, holds data.order of what a running relay POSTs, key for
// key: decoded with DisallowUnknownFields (no key of the wire is missing
// from the type) and encoded back to the same JSON (no key of the type is
// missing from the wire, no value changed: amounts as integers, times
// RFC 3339 in UTC, paid_at null before the payment). Envelope's
// Data.DecodeOrder gives the same Order, its amounts exact int64 (the
// map gives float64).
func TestOrderDecodesRealDeliveries(t *testing.T) {
	clk := newClock()
	rc := newReceiver(t, clk.Now, nil)
	st := testdrivers.Open(t, "embedded", nil)
	ob := orders{t, st}
	closed := ob.create("PTYPED1", store.StatusAwaitingPayment)
	ob.move(closed, store.StatusExpired, "expired")
	paid := ob.create("PTYPED2", store.StatusAwaitingPayment)
	ob.move(paid, store.StatusPaid, "notification")
	ob.refund(paid, "rf_typed", 1000)
	drain(t, newRelay(t, st, rc.URL, clk.Now, nil))

	seen := map[string]bool{}
	for _, a := range rc.arrivals() {
		seen[a.typ] = true
		var raw struct {
			Data struct {
				Order json.RawMessage `json:"order"`
			} `json:"data"`
		}
		if err := json.Unmarshal(a.body, &raw); err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw.Data.Order))
		dec.DisallowUnknownFields()
		var o webhook.Order
		if err := dec.Decode(&o); err != nil {
			t.Errorf("%s: data.order does not decode into webhook.Order: %v\n%s", a.typ, err, raw.Data.Order)
			continue
		}
		back, _ := json.Marshal(o)
		var want, got map[string]any
		_ = json.Unmarshal(raw.Data.Order, &want)
		_ = json.Unmarshal(back, &got)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: webhook.Order encodes back as %s; the delivery said %s", a.typ, back, raw.Data.Order)
		}
		var evt webhook.Envelope
		if err := json.Unmarshal(a.body, &evt); err != nil {
			t.Fatal(err)
		}
		viaEnv, err := evt.Data.DecodeOrder()
		if err != nil || !reflect.DeepEqual(viaEnv, o) {
			t.Errorf("%s: Data.DecodeOrder() = %+v, %v; want %+v", a.typ, viaEnv, err, o)
		}
	}
	for _, typ := range []string{webhook.TypeOrderClosed, webhook.TypeOrderPaid, webhook.TypeRefundSucceeded} {
		if !seen[typ] {
			t.Errorf("no %s delivered; got %v", typ, seen)
		}
	}
}

// TestDecodeOrderValues: the typed fields carry the order's values.
func TestDecodeOrderValues(t *testing.T) {
	body := `{"id":"evt_1","type":"order.paid","created_at":"2026-01-02T03:04:05Z","data":{"order":{"order_no":"PG1","sku":"premium-monthly","description":"d","quantity":2,"amount_fen":4999,"currency":"CNY","pay_method":"jsapi","status":"paid","created_at":"2026-01-02T03:00:00Z","expires_at":"2026-01-02T03:30:00Z","paid_at":null,"refunded_fen":0}}}`
	var evt webhook.Envelope
	if err := json.Unmarshal([]byte(body), &evt); err != nil {
		t.Fatal(err)
	}
	o, err := evt.Data.DecodeOrder()
	if err != nil {
		t.Fatal(err)
	}
	if o.OrderNo != "PG1" || o.Quantity != 2 || o.AmountFen != 4999 || o.Status != "paid" || o.PaidAt != nil ||
		o.CreatedAt == nil || !o.CreatedAt.Equal(time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)) {
		t.Errorf("DecodeOrder = %+v", o)
	}
}
