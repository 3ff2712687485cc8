package audit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/heaptest"
	"github.com/paygate/paygate/payments"
)

// heapAtPut samples the live heap each time the worker keeps a text: the
// events of the pass it drains are live then.
type heapAtPut struct {
	Store
	mu   sync.Mutex
	peak uint64
}

func (h *heapAtPut) PutAuditText(ctx context.Context, seq uint64, client, user string, text []byte, said time.Time, ttl time.Duration) error {
	live := heaptest.Live()
	h.mu.Lock()
	h.peak = max(h.peak, live)
	h.mu.Unlock()
	return h.Store.PutAuditText(ctx, seq, client, user, text, said, ttl)
}

// TestBacklogOfLongConversationsIsDrainedInBoundedMemory: a WeChat bot
// sends its whole history every turn, so each order it makes carries a
// conversation of megabytes into its audit event (base64 in the outbox
// payload, a third more). A backlog of such events (the worker behind a
// burst, a store that refused appends for a while, a restart) was read in
// one pass of up to store.MaxListLimit events, payloads and all: 48
// events of 4 MB held some 270 MB at once, 1,000 of 8 MiB (the body
// limit) would hold 11 GB. A pass reads at most a bounded number of
// payload bytes, so what a drain holds does not grow with the backlog. On
// Redis the one read of them all was a reply so large that it timed out
// (3 s), pass after pass: the backlog was never drained.
func TestBacklogOfLongConversationsIsDrainedInBoundedMemory(t *testing.T) {
	const n, textSize = 24, 4 << 20
	line := `{"role":"user","content":"我想问一下这个月的会员续费怎么算，还有上次的订单是不是已经退款了？"},`
	var b strings.Builder
	b.WriteString("[")
	for b.Len() < textSize {
		b.WriteString(line)
	}
	b.WriteString(`{"role":"user","content":"买一个月"}]`)
	turn := &payments.Turn{Messages: []byte(b.String()), Provider: "openrouter", Model: "openai/gpt-4o"}
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			st := e.store()
			for i := range n {
				ev, err := ActionEvent(Action{Time: time.Now(), Name: "order.created", Client: "shop-bot", User: "oLongChat",
					OrderNo: fmt.Sprintf("PGLONG%04d", i), AmountFen: 4999}, turn)
				if err != nil {
					t.Fatal(err)
				}
				enqueue(t, st, ev)
			}
			payload := 0
			{
				ev, _ := ActionEvent(Action{Name: "order.created", OrderNo: "x"}, turn)
				payload = len(ev.Payload)
			}
			base := heaptest.Live()
			h := &heapAtPut{Store: st}
			w := newTestWorker(t, h, nil)
			drainAll(t, w)
			// The chain, not Drain's count: on a Redis that each such
			// event keeps busy for half a second, an acknowledgement may
			// time out after it went through, and the event is found in
			// the chain at the next pass and counted again.
			if head, err := st.AuditHead(context.Background()); err != nil || head.Seq != n {
				t.Fatalf("after the drain the chain's head is %+v (%v); want %d records", head, err, n)
			}
			grew := int64(h.peak) - int64(base)
			t.Logf("%d events of %d bytes of payload (%d MB in all): live heap peaked %d MB over the start", n, payload, n*payload>>20, grew>>20)
			const bound = 96 << 20
			if grew > bound {
				t.Errorf("draining %d events of %d MB held %d MB at once; want at most %d MB, whatever the backlog", n, payload>>20, grew>>20, bound>>20)
			}
		})
	}
}
