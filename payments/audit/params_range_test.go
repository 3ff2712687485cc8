package audit

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestOutOfRangeParamIsRecorded: a request whose sampling parameter is a
// valid JSON number outside float64 (seed 1e400) must still give its order's
// transition an audit record (TransitionEvents "never fails": an unencodable
// action is recorded without its params). With params kept as raw JSON the
// event encodes, but Seal cannot canonicalise it: the worker reschedules it
// forever, the chain lacks the record, and the order's queue is held behind it.
// TestOutOfRangeParamIsRecorded: a sampling parameter that is valid JSON but
// out of float64's range (seed 1e400) is recorded, as the text the bot sent;
// it made the record unsealable, so it was retried forever and the order's
// queue (its webhooks too) stalled behind it.
func TestOutOfRangeParamIsRecorded(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			st := testdrivers.Open(t, driver, nil)
			turn := TurnFromRequest("shop-bot", "u1", []byte(`{"messages":[{"role":"user","content":"buy","x_vendor":1e400}],"seed":1e400}`), "p", "m")
			now := time.Now()
			o := store.Order{OrderNo: "PPARAMRANGE" + driver, Client: "shop-bot", User: "u1", SKU: "s", Quantity: 1, AmountFen: 100,
				Currency: "CNY", Status: store.StatusAwaitingPayment, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)}
			evs := TransitionEvents(payments.Transition{After: o, Cause: "create", Turn: turn})
			if err := st.CreateOrder(ctx, &o, evs...); err != nil {
				t.Fatal(err)
			}
			w, err := NewWorker(WorkerOptions{Store: st, RetainText: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			_, derr := w.Drain(ctx)
			h, err := st.AuditHead(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if h.Seq != 1 {
				t.Errorf("audit head %d after Drain (err %v); want the order's record appended", h.Seq, derr)
			}
			s, _ := st.OutboxStats(ctx)
			if s.Pending != 0 {
				t.Errorf("%d events still pending (%q); want none", s.Pending, s.LastError)
			}
		})
	}
}
