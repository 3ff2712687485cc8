package redis

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/store"
)

// TestAckWithALostReply: an acknowledgement of a claimed event whose reply
// is lost and that go-redis re-sends leaves the key's next event due at
// once: the re-sent run must not find the event gone (taken off by the
// first run), answer "not queued" and leave {idx}:ob naming the lease's
// end, where no claim looked for the next event (the order's next webhook)
// until the lease ran out.
func TestAckWithALostReply(t *testing.T) {
	requireSharedRedis(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		script func(*scripts) *goredis.Script
		ack    func(s *Store, e store.Event) error
	}{
		{"AckEvent", func(sc *scripts) *goredis.Script { return sc.ack },
			func(s *Store, e store.Event) error { return s.AckEvent(ctx, e.Key, e.ID) }},
		{"AckEventAt", func(sc *scripts) *goredis.Script { return sc.ackAt },
			func(s *Store, e store.Event) error { return s.AckEventAt(ctx, e.Key, e.ID, e.CreatedAt) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // go-redis takes about 5 s to re-send on a new connection
			now := time.Now()
			var claimed store.Event
			withALostReply(t, tc.script,
				func(t *testing.T, s *Store) {
					if err := s.EnqueueEvents(ctx,
						store.Event{ID: "lr-ack-1", Kind: "webhook", Key: "LR-A"},
						store.Event{ID: "lr-ack-2", Kind: "webhook", Key: "LR-A"}); err != nil {
						t.Fatal(err)
					}
					evs, err := s.ClaimEvents(ctx, "webhook", now, time.Hour, 10)
					if err != nil || len(evs) != 1 || evs[0].ID != "lr-ack-1" {
						t.Fatalf("ClaimEvents: %v, %v; want lr-ack-1", evs, err)
					}
					claimed = evs[0]
				},
				func(t *testing.T, s *Store) {
					if err := tc.ack(s, claimed); err != nil {
						t.Fatalf("ack: %v", err)
					}
					// A minute on, well before the hour's lease would end.
					evs, err := s.ClaimEvents(ctx, "webhook", now.Add(time.Minute), time.Minute, 10)
					if err != nil || len(evs) != 1 || evs[0].ID != "lr-ack-2" {
						t.Errorf("ClaimEvents after the ack: %v, %v; want lr-ack-2, due now, not once the acknowledged event's lease ends", evs, err)
					}
				})
		})
	}
}
