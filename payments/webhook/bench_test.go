package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// BenchmarkRelay measures a running Relay draining b.N events (one per
// order, so they may go out in parallel) to a local receiver that answers
// 204: the store's move and acknowledgement plus one signed POST per event.
func BenchmarkRelay(b *testing.B) {
	for _, driver := range drivers(b) {
		b.Run(driver, func(b *testing.B) {
			var got atomic.Int64
			all := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			st := testdrivers.Open(b, driver, nil)
			ctx := context.Background()
			o := &store.Order{OrderNo: "PBENCH", Client: "c", User: "u", AmountFen: 1, Currency: "CNY", Status: store.StatusPaid, UpdatedAt: time.Now()}
			evs := make([]store.Event, b.N)
			for i := range evs {
				o.OrderNo = fmt.Sprintf("PBENCH%s%08d", driver, i)
				evs[i] = webhook.NewEvent(webhook.TypeOrderPaid, o, nil, o.UpdatedAt)
			}
			for start := 0; start < len(evs); start += 500 {
				if err := st.EnqueueEvents(ctx, evs[start:min(start+500, len(evs))]...); err != nil {
					b.Fatal(err)
				}
			}
			r, err := webhook.New(webhook.Options{Store: st, URL: srv.URL, Secret: testSecret, Observe: func(res webhook.Result) {
				if got.Add(1) == int64(b.N) {
					close(all)
				}
			}})
			if err != nil {
				b.Fatal(err)
			}
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			b.ResetTimer()
			go func() { r.Run(rctx); close(done) }()
			select {
			case <-all:
			case <-time.After(5 * time.Minute):
				b.Fatalf("%d of %d delivered", got.Load(), b.N)
			}
			b.StopTimer()
			cancel()
			<-done
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
