package payments_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// BenchmarkNotify measures the notify route end to end in process (verify,
// decrypt, one exactly-once transition, the id recorded) with each store
// driver, and reports p50/p99 per notification. WeChat allows about 5 s.
func BenchmarkNotify(b *testing.B) {
	for _, driver := range drivers(b) {
		b.Run(driver, func(b *testing.B) {
			e := newEnv(b, envOptions{driver: driver})
			ctx := context.Background()
			notes := make([]*wxsim.Notification, b.N)
			for i := range b.N {
				now := time.Now()
				o := &store.Order{
					OrderNo: payments.NewOrderNo(now), Client: "shop-bot", AppID: e.sim.AppID(), User: fmt.Sprintf("oBench%d", i),
					SKU: "premium-monthly", Description: "Premium", Quantity: 1, AmountFen: 4999, Currency: "CNY",
					PayMethod: "jsapi", Status: store.StatusAwaitingPayment, CreatedAt: now, UpdatedAt: now,
				}
				if err := e.st.CreateOrder(ctx, o); err != nil {
					b.Fatal(err)
				}
				tx := e.paidTx(o)
				tx.TransactionID = fmt.Sprintf("4200%024d", i)
				notes[i] = e.buildPayment(tx, nil)
			}
			h := e.svc.NotifyHandler()
			durs := make([]time.Duration, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				req := httptest.NewRequest(http.MethodPost, payments.NotifyPath, bytes.NewReader(notes[i].Body))
				req.Header = notes[i].Header.Clone()
				rec := httptest.NewRecorder()
				start := time.Now()
				h.ServeHTTP(rec, req)
				durs[i] = time.Since(start)
				if rec.Code != http.StatusNoContent {
					b.Fatalf("notification %d: got %d %s", i, rec.Code, rec.Body)
				}
			}
			b.StopTimer()
			sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
			q := func(p float64) float64 { return float64(durs[int(p*float64(len(durs)-1))].Microseconds()) / 1000 }
			b.ReportMetric(q(0.50), "p50-ms")
			b.ReportMetric(q(0.99), "p99-ms")
			b.ReportMetric(q(1), "max-ms")
		})
	}
}
