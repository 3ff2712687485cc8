package audit

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkWorkerAppend measures the outbox-to-chain path per record: b.N
// audit events (each with a conversation text) drained by one Worker.
func BenchmarkWorkerAppend(b *testing.B) {
	for _, driver := range drivers(b) {
		b.Run(driver, func(b *testing.B) {
			e := newEnv(b, driver)
			st := e.store()
			text := `[{"role":"system","content":"You sell plans."},{"role":"user","content":"I want the monthly plan"}]`
			for i := range b.N {
				enqueue(b, st, mustEvent(b, Action{Time: time.Now(), Name: "order.created", User: "oAlice", OrderNo: fmt.Sprintf("PG%d", i), AmountFen: 4999}, text))
			}
			w := newTestWorker(b, st, nil)
			b.ResetTimer()
			n, err := w.Drain(context.Background())
			if err != nil || n != b.N {
				b.Fatalf("drained %d %v; want %d", n, err, b.N)
			}
		})
	}
}

// BenchmarkVerify measures verification per record.
func BenchmarkVerify(b *testing.B) {
	for _, driver := range drivers(b) {
		b.Run(driver, func(b *testing.B) {
			e := newEnv(b, driver)
			st := e.store()
			for i := range 2000 {
				enqueue(b, st, mustEvent(b, Action{Time: time.Now(), Name: "order.paid", User: "oBob", OrderNo: fmt.Sprintf("PG%d", i), AmountFen: 100}, ""))
			}
			if n, err := newTestWorker(b, st, nil).Drain(context.Background()); err != nil || n != 2000 {
				b.Fatalf("drain: %d %v", n, err)
			}
			b.ResetTimer()
			for range b.N {
				if res, err := Verify(context.Background(), st, VerifyOptions{}); err != nil || res.Records != 2000 {
					b.Fatalf("verify: %+v %v", res, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2000), "ns/record")
		})
	}
}
