package redis

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// replyBytes counts the bytes of the string replies of scripts run in
// pipelines (the heads a read hands back): n of them all, most of the
// largest pipeline of several commands.
type replyBytes struct{ n, most atomic.Int64 }

func (r *replyBytes) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (r *replyBytes) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }

func (r *replyBytes) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		err := next(ctx, cmds)
		n := int64(0)
		for _, c := range cmds {
			if cmd, ok := c.(*goredis.Cmd); ok {
				if vs, ok := cmd.Val().([]any); ok {
					for _, v := range vs {
						if s, ok := v.(string); ok {
							n += int64(len(s))
						}
					}
				}
			}
		}
		r.n.Add(n)
		if len(cmds) > 1 {
			for m := r.most.Load(); n > m && !r.most.CompareAndSwap(m, n); m = r.most.Load() {
			}
		}
		return err
	}
}

// TestClaimPastLongAuditHeadsReadsNoPayload: the webhook relay's
// ClaimEvents looks past the due heads of other kinds ahead of its own by
// reading the rest of its window of 500 keys in one pipeline, and that
// read handed back each head whole. An order's queue holds its audit
// events, each carrying its turn's conversation (7 MB queued for one of 4
// MB): a backlog of them made the relay's every claim one reply of the
// whole backlog, hundreds of MB, that the read timeout (3 s) cut, pass
// after pass, so no webhook went out while it lasted, and what it held
// grew with the backlog. Looking past a head needs its kind and due time
// alone: the read hands back no payload.
func TestClaimPastLongAuditHeadsReadsNoPayload(t *testing.T) {
	requireSharedRedis(t)
	s := openOn(t, storetest.NewClock(), Options{Addrs: []string{sharedAddr}})
	ctx := context.Background()
	const orders, payload = 24, 256 << 10
	big := []byte(`{"text":"` + strings.Repeat("x", payload) + `"}`)
	for i := range orders {
		if err := s.EnqueueEvents(ctx, store.Event{ID: fmt.Sprintf("cl-a%d", i), Kind: "audit", Key: fmt.Sprintf("CL-%02d", i), Payload: big}); err != nil {
			t.Fatalf("EnqueueEvents: %v", err)
		}
	}
	if err := s.EnqueueEvents(ctx, store.Event{ID: "cl-w", Kind: "webhook", Key: "webhook:CL", Payload: []byte(`{"event":"order.paid"}`)}); err != nil {
		t.Fatalf("EnqueueEvents: %v", err)
	}
	counter := &replyBytes{}
	s.Client().AddHook(counter)
	evs, err := s.ClaimEvents(ctx, "webhook", time.Now().Add(time.Second), time.Minute, 10)
	if err != nil {
		t.Fatalf("ClaimEvents: %v", err)
	}
	if len(evs) != 1 || evs[0].ID != "cl-w" {
		t.Fatalf("claimed %d events; want the webhook", len(evs))
	}
	if got := counter.n.Load(); got > payload {
		t.Errorf("claiming the webhook behind %d audit heads of %d KB read %d KB of heads; want less than one payload", orders, payload>>10, got>>10)
	}
}
