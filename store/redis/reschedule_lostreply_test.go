package redis

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/store"
)

// TestRescheduleWithALostReply: a move whose reply is lost and that
// go-redis re-sends is reported as the move it was, and the event is due
// at its new time: the re-sent run must not find the event already moved
// (by itself), answer "not moved" and leave {idx}:ob naming the old time,
// where no claim looked for it until the pause an operator ended was over.
func TestRescheduleWithALostReply(t *testing.T) {
	requireSharedRedis(t)
	ctx := context.Background()
	now := time.Now()
	var heads []store.Event
	withALostReply(t, func(sc *scripts) *goredis.Script { return sc.reschedule },
		func(t *testing.T, s *Store) {
			if err := s.EnqueueEvents(ctx, store.Event{ID: "lr-move", Kind: "webhook", Key: "LR-M"}); err != nil {
				t.Fatal(err)
			}
			if err := s.RetryEvent(ctx, "LR-M", "lr-move", now.Add(time.Hour), 0, ""); err != nil {
				t.Fatal(err)
			}
			var err error
			if heads, err = s.OutboxHeads(ctx, "LR-M"); err != nil || len(heads) != 1 {
				t.Fatalf("OutboxHeads: %v, %v; want lr-move", heads, err)
			}
		},
		func(t *testing.T, s *Store) {
			if moved, err := s.RescheduleEvent(ctx, "LR-M", "lr-move", heads[0].NextAt, now); err != nil || !moved {
				t.Errorf("RescheduleEvent: moved %v, %v; want moved", moved, err)
			}
			// A minute on, not at now itself: the Store maps its clock onto
			// the server's (serverMs) and re-reads the server's time every
			// second, so a now the move mapped before a re-read can map a
			// millisecond or so earlier after it on a loaded machine. The
			// event stood an hour out before the move; a minute tells the two
			// apart.
			evs, err := s.ClaimEvents(ctx, "webhook", now.Add(time.Minute), time.Minute, 10)
			if err != nil || len(evs) != 1 || evs[0].ID != "lr-move" {
				t.Errorf("ClaimEvents a minute after the move: %v, %v; want lr-move, due now, not in an hour", evs, err)
			}
		})
}
