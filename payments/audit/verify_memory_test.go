package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// heapAtText measures the live heap (after a collection) as Verify reads
// the text of record first, and again at record last.
type heapAtText struct {
	Store
	first, last uint64
	at          map[uint64]uint64
}

func (h *heapAtText) GetAuditText(ctx context.Context, seq uint64) ([]byte, error) {
	if seq == h.first || seq == h.last {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		h.at[seq] = m.HeapAlloc
	}
	return h.Store.GetAuditText(ctx, seq)
}

// TestVerifyTextsKeepsLittleOfErasedRecords: verify -text holds the texts
// an erasure removed until the walk ends (the erasure's record comes after
// them), but only what it needs to settle them, not each record whole: a
// record carries the turn's sampling parameters, a logit_bias of hundreds
// of entries among them, and verify of a chain after many erasures grew by
// all of them (tens of kilobytes per erased text here, gigabytes for a
// large merchant's chain) before it could answer.
func TestVerifyTextsKeepsLittleOfErasedRecords(t *testing.T) {
	const n = 300
	bias := make([]string, 300) // OpenAI's limit of logit_bias entries
	for i := range bias {
		bias[i] = fmt.Sprintf(`"%d":-100`, 10000+i)
	}
	turn := &payments.Turn{Messages: []byte(`[{"role":"user","content":"buy"}]`), Provider: "openrouter", Model: "openai/gpt-4o",
		Params: map[string]any{"logit_bias": json.RawMessage("{" + strings.Join(bias, ",") + "}"), "temperature": json.RawMessage("0.2")}}
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			st := e.store()
			for i := range n {
				ev, err := ActionEvent(Action{Time: time.Now(), Name: "order.created", Client: "shop-bot", User: "oAlice",
					OrderNo: fmt.Sprintf("PG%04d", i), AmountFen: 4999}, turn)
				if err != nil {
					t.Fatal(err)
				}
				ev.Key = store.DefaultEventKey // one queue: drained in one pass
				enqueue(t, st, ev)
			}
			w := newTestWorker(t, st, nil)
			if got := drainAll(t, w); got != n {
				t.Fatalf("drained %d; want %d", got, n)
			}
			if k, err := w.Erase(context.Background(), "shop-bot", "oAlice"); err != nil || k != n {
				t.Fatalf("erase: %d %v; want %d", k, err, n)
			}
			h := &heapAtText{Store: st, first: 1, last: n, at: map[uint64]uint64{}}
			// One record a page: what the walk holds besides the missing
			// texts is the same at both measures.
			res, err := Verify(context.Background(), h, VerifyOptions{Texts: true, PageSize: 1})
			if err != nil || res.TextsGone != n {
				t.Fatalf("verify: %+v %v; want %d texts erased", res, err, n)
			}
			grew := int64(h.at[n]) - int64(h.at[1])
			t.Logf("live heap grew by %d bytes over %d erased texts (%d per text)", grew, n-1, grew/(n-1))
			if perText := grew / (n - 1); perText > 1024 {
				t.Errorf("verify -text keeps %d bytes per erased text while it walks; want at most 1 KiB", perText)
			}
		})
	}
}
