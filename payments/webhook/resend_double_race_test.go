package webhook_test

import (
	"context"
	"net/http"
	"testing"
)

// TestResendTornTwiceStillFindsTheEvent: the order.paid was given up and
// two resends run at once. The first resend's first read lists the keys
// before the other resend queues the dead letter's event, and reads the
// heads after it cleared the dead letter: it sees neither. Its second read
// lists the keys (the order's queue, holding the event) before the relay,
// woken by the other resend, moves the event to the order's (empty, so
// unlisted) delivery queue, and reads the heads after: it sees neither
// again. Nothing was delivered; a 409 "delivered, add force=true" has the
// operator force a new id, and the merchant deliver the goods twice.
func TestResendTornTwiceStillFindsTheEvent(t *testing.T) {
	st, hook := hookedRedis(t)
	clk := newClock()
	rc, up := downReceiver(t, clk.Now)
	o, r := paidAndGivenUp(t, st, rc, clk, "PGRESENDTORN2")
	before := len(rc.arrivals())

	moved := make(chan error, 1)
	move := func(ctx context.Context) {
		ev, ok := head(t, st, o.OrderNo)
		if !ok {
			moved <- nil
			return
		}
		moved <- relayMove(ctx, st, o.OrderNo, ev)
	}
	var other resendAnswer
	concurrent := func(context.Context) {
		other = postResend(t, r, o.OrderNo, "")
		hook.armed.Store(&move)
	}
	hook.armed.Store(&concurrent)
	a := postResend(t, r, o.OrderNo, "")
	if other.code != http.StatusAccepted {
		t.Fatalf("the other resend: %+v; want 202", other)
	}
	select {
	case err := <-moved:
		if err != nil {
			t.Fatalf("the move: %v", err)
		}
	default:
		t.Fatal("the resend read the key list once: the second race was not run")
	}
	if a.code != http.StatusOK || a.EventID != other.EventID {
		t.Errorf("the resend torn twice: %+v; want 200 naming the other's %s", a, other.EventID)
	}
	up.Store(true)
	drain(t, r)
	got := rc.arrivals()[before:]
	if len(got) != 1 || got[0].id != other.EventID {
		t.Errorf("delivered after the two resends: %+v; want %s once", got, other.EventID)
	}
}
