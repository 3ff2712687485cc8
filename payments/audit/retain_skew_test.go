package audit

import (
	"context"
	"testing"
	"time"
)

// TestVerifyRetentionAllowsClockSkew: a text is kept for audit.retain_text
// from when it was said, on the clock of the replica that said it, less
// what the appending worker's clock counts as passed; a worker's clock
// ahead (replicas may differ by up to ClockSkew) lets it go that much
// before the record's time plus retain_text, and verify, reading its own
// clock, found it missing and reported the text removed without erasure:
// with thousands of records a day, a verify -text run from a daily cron
// failed on the texts whose retention was ending as it ran. A text missing
// within ClockSkew of its retention's end is gone with its retention, as
// an erasure covers texts said up to ClockSkew after it.
func TestVerifyRetentionAllowsClockSkew(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			st := e.store()
			said := time.Now().Add(-time.Hour + 10*time.Second) // 10 s of its hour left on this clock
			ev := mustEvent(t, Action{Time: said, Name: "order.created", Client: "shop-bot", User: "oAlice",
				OrderNo: "PG0001", SKU: "premium-monthly", Quantity: 1, AmountFen: 4999, Currency: "CNY"}, `[{"role":"user","content":"buy"}]`)
			ev.CreatedAt = said
			enqueue(t, st, ev)
			w := newTestWorker(t, st, func(o *WorkerOptions) {
				o.Now = func() time.Time { return time.Now().Add(30 * time.Second) } // a replica 30 s ahead
			})
			if got := drainAll(t, w); got != 1 {
				t.Fatalf("drained %d events; want 1", got)
			}
			res, err := Verify(context.Background(), st, VerifyOptions{Texts: true, RetainText: time.Hour})
			if err != nil {
				t.Fatalf("verify -text: %v; want the text gone with its retention, its worker's clock 30 s ahead", err)
			}
			if res.TextsGone+res.TextsChecked != 1 {
				t.Errorf("texts gone %d, checked %d; want the one", res.TextsGone, res.TextsChecked)
			}
		})
	}
}
