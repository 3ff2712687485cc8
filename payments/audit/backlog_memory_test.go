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
	"github.com/paygate/paygate/store"
)

// heapAtPut samples the live heap each time the worker keeps a text (the
// events of the pass it drains are live then), and keeps the most payload
// bytes one DueEvents returned.
type heapAtPut struct {
	Store
	mu       sync.Mutex
	peak     uint64
	mostRead int
}

func (h *heapAtPut) DueEvents(ctx context.Context, now time.Time, limit int, kinds ...string) ([]store.Event, error) {
	evs, err := h.Store.DueEvents(ctx, now, limit, kinds...)
	read := 0
	for _, e := range evs {
		read += len(e.Payload)
	}
	h.mu.Lock()
	h.mostRead = max(h.mostRead, read)
	h.mu.Unlock()
	return evs, err
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
// limit) would hold 11 GB. A pass reads at most store.DueBytes of
// payload, so what a drain holds does not grow with the backlog. On Redis
// the one read of them all was a reply so large that it timed out (3 s),
// pass after pass: the backlog was never drained.
//
// The bound is lowered to 512 KiB and the conversations are 48 KiB (64 KB
// as queued), so that 96 of them cross it a dozen times, as 32 MiB is by
// conversations of 4 MB, in seconds: events of 4 MB took 50 s a run
// through Redis (426 s under -race). Without the bound one read returns all 96
// events (6 MB of payload) and the drain holds 9 to 11 MB at once.
func TestBacklogOfLongConversationsIsDrainedInBoundedMemory(t *testing.T) {
	const n, textSize, dueBytes = 96, 48 << 10, 512 << 10
	store.LowerDueBytesForTest(t, dueBytes)
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
			if n*payload < 8*dueBytes {
				t.Fatalf("the backlog is %d bytes of payload; want the bound of %d crossed several times", n*payload, dueBytes)
			}
			base := heaptest.Live()
			h := &heapAtPut{Store: st}
			w := newTestWorker(t, h, nil)
			drainAll(t, w)
			// The chain, not Drain's count: an enqueue whose reply timed out
			// is re-sent by go-redis, the event queued twice with one id;
			// its second copy is found in the chain and counted again
			// (TestLostAckOrTwiceEnqueuedEventAppendsOnce).
			if head, err := st.AuditHead(context.Background()); err != nil || head.Seq != n {
				t.Fatalf("after the drain the chain's head is %+v (%v); want %d records", head, err, n)
			}
			if h.mostRead > dueBytes+payload {
				t.Errorf("one read of the outbox returned %d KB of payload; want at most the bound, %d KB, and one event more", h.mostRead>>10, dueBytes>>10)
			}
			grew := int64(h.peak) - int64(base)
			t.Logf("%d events of %d bytes of payload (%d KB in all): live heap peaked %d KB over the start", n, payload, n*payload>>10, grew>>10)
			// A pass holds up to the bound and one event more, each payload
			// beside its decoded text and the store's copies as it writes
			// them: 1.5 to 4 MB here.
			const bound = 12 * dueBytes
			if grew > bound {
				t.Errorf("draining %d events of %d KB held %d KB at once; want at most %d KB, whatever the backlog", n, payload>>10, grew>>10, bound>>10)
			}
		})
	}
}
