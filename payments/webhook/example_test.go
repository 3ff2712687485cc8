package webhook_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/paygate/paygate/payments/webhook"
)

// A merchant's receiver (the README's Go snippet): verify the raw body,
// deduplicate by event id, act, answer 2xx.
func Example_receiver() {
	const secret = "whsec_example"
	var mu sync.Mutex
	processed := map[string]bool{} // use your database in production

	handler := func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		if err := webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, "bad signature", http.StatusBadRequest)
			return
		}
		var evt webhook.Envelope
		if err := json.Unmarshal(body, &evt); err != nil {
			http.Error(w, "bad event", http.StatusBadRequest)
			return
		}
		order, err := evt.Data.DecodeOrder() // amounts as int64, times parsed
		if err != nil {
			http.Error(w, "bad order", http.StatusBadRequest)
			return
		}
		// Check, act and remember as one step: a copy of the event can
		// arrive while this one is still handled (after paygate's 10 s).
		mu.Lock()
		defer mu.Unlock()
		if processed[evt.ID] { // a retry of an event already handled
			w.WriteHeader(http.StatusNoContent)
			return
		}
		switch evt.Type {
		case webhook.TypeOrderPaid:
			fmt.Printf("deliver %d × %s (%d fen paid) to %s in app %s\n", order.Quantity, order.SKU, order.AmountFen, evt.Data.OpenID, evt.Data.AppID)
		case webhook.TypeOrderClosed:
			fmt.Printf("order %s ended: %s\n", order.OrderNo, order.Status)
		}
		processed[evt.ID] = true
		w.WriteHeader(http.StatusNoContent)
	}

	srv := httptest.NewServer(http.HandlerFunc(handler))
	defer srv.Close()
	// What paygate sends, twice (a retry after a lost answer).
	body := `{"id":"evt_1","type":"order.paid","created_at":"2026-01-02T03:04:05Z","data":{"order":{"order_no":"PG1","sku":"premium-monthly","description":"Premium","quantity":1,"amount_fen":4999,"currency":"CNY","pay_method":"jsapi","status":"paid","created_at":"2026-01-02T03:00:00Z","expires_at":"2026-01-02T03:30:00Z","paid_at":"2026-01-02T03:04:05Z","refunded_fen":0},"client":"shop-bot","app_id":"wx123","openid":"oUser1"}}`
	for range 2 {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		req.Header.Set(webhook.SignatureHeader, webhook.Sign(secret, time.Now(), []byte(body)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode)
	}
	// Output:
	// deliver 1 × premium-monthly (4999 fen paid) to oUser1 in app wx123
	// 204
	// 204
}
